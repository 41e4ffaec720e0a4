#include "onnx_constant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace dojo::frontend::folding {
namespace {

// Element count, refusing sizes no folded constant reaches (a malformed file must neither exhaust memory nor spend
// a minute building a tensor: folded constants are shapes, indices and masks, far below 2^24 elements; a model's
// weights are initializers, which are not folded).
std::int64_t product(const std::vector<std::int64_t>& dims) {
    constexpr std::int64_t kMaxElements = std::int64_t{1} << 24;
    std::int64_t n = 1;
    for (const std::int64_t d : dims) {
        if (d < 0 || (d > 0 && n > kMaxElements / d)) {
            throw std::invalid_argument("a constant of more than 2^24 elements or a negative dimension");
        }
        n *= d;
    }
    return n;
}

std::vector<std::int64_t> strides(const std::vector<std::int64_t>& dims) {
    std::vector<std::int64_t> s(dims.size(), 1);
    for (std::size_t d = dims.size(); d-- > 1;) {
        s[d - 1] = s[d] * dims[d];
    }
    return s;
}

// The flat index into a tensor of `from` dims broadcast to `to` dims, for each flat index of `to`.
std::vector<std::size_t> broadcast_map(const std::vector<std::int64_t>& from, const std::vector<std::int64_t>& to) {
    const std::vector<std::int64_t> from_strides = strides(from);
    const std::size_t extra = to.size() - from.size();
    std::vector<std::size_t> map(static_cast<std::size_t>(product(to)));
    for (std::size_t i = 0; i < map.size(); ++i) {
        std::int64_t rest = static_cast<std::int64_t>(i);
        std::int64_t at = 0;
        for (std::size_t d = to.size(); d-- > 0;) {
            const std::int64_t coord = rest % to[d];
            rest /= to[d];
            if (d >= extra && from[d - extra] != 1) {
                at += coord * from_strides[d - extra];
            }
        }
        map[i] = static_cast<std::size_t>(at);
    }
    return map;
}

double convert(double v, ElementKind kind) {
    switch (kind) {
        case ElementKind::Int:
            return std::isfinite(v) ? std::trunc(v) : 0.0;
        case ElementKind::Bool:
            return v != 0 ? 1.0 : 0.0;
        case ElementKind::Float:
            return static_cast<double>(static_cast<float>(v));
    }
    return v;
}

}  // namespace

std::int64_t Constant::count() const { return product(dims); }

std::vector<std::int64_t> Constant::ints() const {
    std::vector<std::int64_t> out;
    out.reserve(values.size());
    for (const double v : values) {
        constexpr double kLimit = 9.2e18;  // beyond this, the int64 it came from was "unbounded" (INT64_MAX/MIN)
        out.push_back(v >= kLimit    ? std::numeric_limits<std::int64_t>::max()
                      : v <= -kLimit ? std::numeric_limits<std::int64_t>::min()
                                     : static_cast<std::int64_t>(v));
    }
    return out;
}

Constant make_ints(std::vector<std::int64_t> values, bool scalar) {
    Constant c{ElementKind::Int, {}, {}};
    if (!scalar) {
        c.dims = {static_cast<std::int64_t>(values.size())};
    } else if (values.size() != 1) {
        throw std::invalid_argument("a scalar holds one value");
    }
    c.values.assign(values.begin(), values.end());
    return c;
}

Constant cast(const Constant& x, ElementKind kind) {
    Constant c{kind, x.dims, x.values};
    for (double& v : c.values) {
        v = convert(v, kind);
    }
    return c;
}

std::int64_t normalize(std::int64_t axis, std::int64_t rank) {
    const std::int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
        throw std::invalid_argument("axis " + std::to_string(axis) + " is out of range for rank " +
                                    std::to_string(rank));
    }
    return a;
}

std::vector<std::int64_t> broadcast_dims(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
    std::vector<std::int64_t> out(std::max(a.size(), b.size()));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
        const std::int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
        if (da != db && da != 1 && db != 1) {
            throw std::invalid_argument("shapes do not broadcast (dimension " + std::to_string(da) + " vs " +
                                        std::to_string(db) + ")");
        }
        out[i] = da == 1 ? db : da;
    }
    return out;
}

Constant map2(const Constant& a, const Constant& b, ElementKind kind, const std::function<double(double, double)>& f) {
    Constant c{kind, broadcast_dims(a.dims, b.dims), {}};
    const std::vector<std::size_t> ma = broadcast_map(a.dims, c.dims);
    const std::vector<std::size_t> mb = broadcast_map(b.dims, c.dims);
    c.values.resize(ma.size());
    for (std::size_t i = 0; i < ma.size(); ++i) {
        c.values[i] = convert(f(a.values[ma[i]], b.values[mb[i]]), kind);
    }
    return c;
}

Constant where(const Constant& cond, const Constant& a, const Constant& b) {
    Constant c{a.kind, broadcast_dims(broadcast_dims(cond.dims, a.dims), b.dims), {}};
    const std::vector<std::size_t> mc = broadcast_map(cond.dims, c.dims);
    const std::vector<std::size_t> ma = broadcast_map(a.dims, c.dims);
    const std::vector<std::size_t> mb = broadcast_map(b.dims, c.dims);
    c.values.resize(mc.size());
    for (std::size_t i = 0; i < mc.size(); ++i) {
        c.values[i] = cond.values[mc[i]] != 0 ? a.values[ma[i]] : b.values[mb[i]];
    }
    return c;
}

Constant gather(const Constant& data, const Constant& indices, std::int64_t axis) {
    if (data.scalar()) {
        throw std::invalid_argument("cannot gather from a scalar");
    }
    const auto rank = static_cast<std::int64_t>(data.dims.size());
    const auto a = static_cast<std::size_t>(normalize(axis, rank));
    const std::int64_t dim = data.dims[a];
    std::int64_t outer = 1;
    std::int64_t inner = 1;
    for (std::size_t d = 0; d < data.dims.size(); ++d) {
        (d < a ? outer : inner) *= d == a ? 1 : data.dims[d];
    }
    Constant c{data.kind, {}, {}};
    c.dims.assign(data.dims.begin(), data.dims.begin() + static_cast<std::ptrdiff_t>(a));
    c.dims.insert(c.dims.end(), indices.dims.begin(), indices.dims.end());
    c.dims.insert(c.dims.end(), data.dims.begin() + static_cast<std::ptrdiff_t>(a) + 1, data.dims.end());
    for (std::int64_t o = 0; o < outer; ++o) {
        for (std::int64_t index : indices.ints()) {
            index = index < 0 ? index + dim : index;
            if (index < 0 || index >= dim) {
                throw std::invalid_argument("index out of range");
            }
            for (std::int64_t i = 0; i < inner; ++i) {
                c.values.push_back(data.values[static_cast<std::size_t>((o * dim + index) * inner + i)]);
            }
        }
    }
    return c;
}

Constant unsqueeze(const Constant& x, std::vector<std::int64_t> axes) {
    const auto rank = static_cast<std::int64_t>(x.dims.size() + axes.size());
    for (std::int64_t& axis : axes) {
        axis = normalize(axis, rank);
    }
    std::sort(axes.begin(), axes.end());
    Constant c{x.kind, {}, x.values};
    std::size_t next = 0;
    for (std::int64_t d = 0; d < rank; ++d) {
        if (std::binary_search(axes.begin(), axes.end(), d)) {
            c.dims.push_back(1);
        } else {
            c.dims.push_back(x.dims.at(next++));
        }
    }
    return c;
}

Constant squeeze(const Constant& x, std::vector<std::int64_t> axes) {
    const auto rank = static_cast<std::int64_t>(x.dims.size());
    for (std::int64_t& axis : axes) {
        axis = normalize(axis, rank);
    }
    Constant c{x.kind, {}, x.values};
    for (std::int64_t d = 0; d < rank; ++d) {
        const bool listed = std::find(axes.begin(), axes.end(), d) != axes.end();
        if ((axes.empty() && x.dims[static_cast<std::size_t>(d)] == 1) || listed) {
            if (x.dims[static_cast<std::size_t>(d)] != 1) {
                throw std::invalid_argument("cannot squeeze an axis of size " +
                                            std::to_string(x.dims[static_cast<std::size_t>(d)]));
            }
            continue;
        }
        c.dims.push_back(x.dims[static_cast<std::size_t>(d)]);
    }
    return c;
}

Constant concat(const std::vector<Constant>& parts, std::int64_t axis) {
    if (parts.empty() || parts.front().scalar()) {
        throw std::invalid_argument("concat needs tensors of rank >= 1");
    }
    const auto a = static_cast<std::size_t>(normalize(axis, static_cast<std::int64_t>(parts.front().dims.size())));
    Constant c{parts.front().kind, parts.front().dims, {}};
    c.dims[a] = 0;
    std::int64_t outer = 1;
    for (std::size_t d = 0; d < a; ++d) {
        outer *= c.dims[d];
    }
    for (const Constant& p : parts) {
        if (p.dims.size() != c.dims.size()) {
            throw std::invalid_argument("concat of tensors of different ranks");
        }
        c.dims[a] += p.dims[a];
    }
    for (std::int64_t o = 0; o < outer; ++o) {
        for (const Constant& p : parts) {
            const std::int64_t block = p.count() / std::max<std::int64_t>(outer, 1);
            c.values.insert(c.values.end(), p.values.begin() + o * block, p.values.begin() + (o + 1) * block);
        }
    }
    if (static_cast<std::int64_t>(c.values.size()) != c.count()) {
        throw std::invalid_argument("concat of tensors whose other dimensions differ");
    }
    return c;
}

Constant reshape(const Constant& x, std::vector<std::int64_t> dims) {
    if (product(dims) != x.count()) {
        throw std::invalid_argument("reshape changes the element count");
    }
    return Constant{x.kind, std::move(dims), x.values};
}

Constant expand(const Constant& x, const std::vector<std::int64_t>& shape) {
    Constant c{x.kind, broadcast_dims(x.dims, shape), {}};
    for (const std::size_t at : broadcast_map(x.dims, c.dims)) {
        c.values.push_back(x.values[at]);
    }
    return c;
}

Constant constant_of_shape(const std::vector<std::int64_t>& shape, const Constant& value) {
    if (value.count() != 1) {
        throw std::invalid_argument("the value must hold one element");
    }
    for (const std::int64_t d : shape) {
        if (d < 0) {
            throw std::invalid_argument("negative dimension");
        }
    }
    return Constant{value.kind, shape, std::vector<double>(static_cast<std::size_t>(product(shape)), value.values[0])};
}

Constant range(double start, double limit, double delta, ElementKind kind) {
    if (delta == 0) {
        throw std::invalid_argument("delta is 0");
    }
    const double n = std::max(0.0, std::ceil((limit - start) / delta));
    if (n > 1e7) {
        throw std::invalid_argument("range too long");
    }
    Constant c{kind, {static_cast<std::int64_t>(n)}, {}};
    for (std::int64_t i = 0; i < c.dims[0]; ++i) {
        c.values.push_back(convert(start + static_cast<double>(i) * delta, kind));
    }
    return c;
}

SliceAxis resolve_slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
    if (step == 0) {
        throw std::invalid_argument("slice step 0");
    }
    // A negative index counts from the end; one past the far end (INT64_MIN + 1 from exporters) clamps.
    auto from_end = [dim](std::int64_t v) {
        return v < 0 ? (v <= std::numeric_limits<std::int64_t>::min() + dim ? -1 - dim : v + dim) : v;
    };
    if (step > 0) {
        const std::int64_t s = std::clamp<std::int64_t>(from_end(start), 0, dim);
        const std::int64_t e = std::clamp<std::int64_t>(from_end(end), 0, dim);
        return SliceAxis{s, e > s ? (e - s + step - 1) / step : 0, step};
    }
    // Reversing (ONNX: start clamped to [0, dim - 1], end to [-1, dim - 1]).
    const std::int64_t s = std::clamp<std::int64_t>(from_end(start), 0, dim - 1);
    const std::int64_t e = std::clamp<std::int64_t>(from_end(end), -1, dim - 1);
    return SliceAxis{s, dim > 0 && s > e ? (s - e - step - 1) / -step : 0, step};
}

Constant transpose(const Constant& x, const std::vector<std::int64_t>& perm) {
    const std::size_t rank = x.dims.size();
    std::vector<std::int64_t> order = perm;
    if (order.empty()) {  // ONNX's default: the axes reversed
        for (std::size_t d = rank; d-- > 0;) {
            order.push_back(static_cast<std::int64_t>(d));
        }
    }
    std::vector<bool> seen(rank, false);
    for (const std::int64_t axis : order) {
        if (order.size() != rank || axis < 0 || axis >= static_cast<std::int64_t>(rank) ||
            seen[static_cast<std::size_t>(axis)]) {
            throw std::invalid_argument("Transpose perm is not a permutation of the axes");
        }
        seen[static_cast<std::size_t>(axis)] = true;
    }
    Constant out{x.kind, {}, {}};
    for (const std::int64_t axis : order) {
        out.dims.push_back(x.dims[static_cast<std::size_t>(axis)]);
    }
    const std::vector<std::int64_t> x_strides = strides(x.dims);
    const std::int64_t n = out.count();
    out.values.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {  // out index i -> its coordinates -> x's offset
        std::int64_t rest = i, at = 0;
        for (std::size_t d = rank; d-- > 0;) {
            at += (rest % out.dims[d]) * x_strides[static_cast<std::size_t>(order[d])];
            rest /= out.dims[d];
        }
        out.values[static_cast<std::size_t>(i)] = x.values[static_cast<std::size_t>(at)];
    }
    return out;
}

Constant scatter_nd(const Constant& data, const Constant& indices, const Constant& updates) {
    if (indices.dims.empty()) {
        throw std::invalid_argument("ScatterND indices need a last axis");
    }
    const auto k = static_cast<std::size_t>(indices.dims.back());
    if (k > data.dims.size()) {
        throw std::invalid_argument("ScatterND indices index more axes than the data has");
    }
    std::int64_t slice_size = 1;  // elements each index tuple addresses: the data's axes after the first k
    for (std::size_t d = k; d < data.dims.size(); ++d) {
        slice_size *= data.dims[d];
    }
    const std::int64_t tuples = indices.count() / std::max<std::int64_t>(static_cast<std::int64_t>(k), 1);
    if (updates.count() != tuples * slice_size) {
        throw std::invalid_argument("ScatterND updates have " + std::to_string(updates.count()) + " elements, the "
                                    "indices address " + std::to_string(tuples * slice_size));
    }
    const std::vector<std::int64_t> data_strides = strides(data.dims);
    Constant out = data;
    for (std::int64_t t = 0; t < tuples; ++t) {
        std::int64_t at = 0;
        for (std::size_t d = 0; d < k; ++d) {
            std::int64_t i = static_cast<std::int64_t>(indices.values[static_cast<std::size_t>(t) * k + d]);
            i = i < 0 ? i + data.dims[d] : i;
            if (i < 0 || i >= data.dims[d]) {
                throw std::invalid_argument("ScatterND index " + std::to_string(i) + " is out of range");
            }
            at += i * data_strides[d];
        }
        for (std::int64_t j = 0; j < slice_size; ++j) {
            out.values[static_cast<std::size_t>(at + j)] =
                updates.values[static_cast<std::size_t>(t * slice_size + j)];
        }
    }
    return out;
}

Constant slice(const Constant& x, const std::vector<std::int64_t>& axes, const std::vector<SliceAxis>& ranges) {
    std::vector<SliceAxis> full;
    for (const std::int64_t d : x.dims) {
        full.push_back(SliceAxis{0, d, 1});
    }
    for (std::size_t i = 0; i < axes.size(); ++i) {
        full.at(static_cast<std::size_t>(axes[i])) = ranges.at(i);
    }
    Constant c{x.kind, {}, {}};
    for (const SliceAxis& r : full) {
        c.dims.push_back(r.count);
    }
    const std::vector<std::int64_t> x_strides = strides(x.dims);
    const std::int64_t n = c.count();
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t rest = i;
        std::int64_t at = 0;
        for (std::size_t d = c.dims.size(); d-- > 0;) {
            const std::int64_t coord = rest % c.dims[d];
            rest /= c.dims[d];
            at += (full[d].start + coord * full[d].step) * x_strides[d];
        }
        c.values.push_back(x.values[static_cast<std::size_t>(at)]);
    }
    return c;
}

}  // namespace dojo::frontend::folding
