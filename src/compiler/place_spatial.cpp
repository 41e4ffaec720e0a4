// Spatial placement (place_spatial.h): layers of each stage onto rectangles of a chip's cores, within its SRAM.
#include "dojo/compiler/place_spatial.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "dojo/ir/op.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;


constexpr int kMaxPanels = 64;
constexpr int kNone = -1;

// The parameter a matrix op reads as its weight (directly or through layout ops), or an invalid id.
NodeId weight_of(const ir::Graph& g, NodeId id) {
    const ir::Node& node = g.node(id);
    if (node.op != OpKind::MatMul && node.op != OpKind::Conv2d && node.op != OpKind::Gather) {
        return {};
    }
    for (NodeId input : node.inputs) {
        for (int depth = 0; depth < 5; ++depth) {
            const ir::Node& in = g.node(input);
            if (in.op == OpKind::Parameter) {
                return input;
            }
            const bool rounding = in.op == OpKind::RoundTo || in.op == OpKind::RoundGrad;  // the precision policy's
            if (!rounding && ((in.op != OpKind::Transpose && in.op != OpKind::Reshape) || in.inputs.size() != 1)) {
                break;
            }
            input = in.inputs.front();
        }
    }
    return {};
}

// A RoundTo or RoundGrad of a parameter (through other roundings): the precision policy's rounding of a weight,
// which belongs to the layer of the matrix op that reads it, not to the layer before.
bool rounds_a_parameter(const ir::Graph& g, NodeId id) {
    while (g.node(id).op == OpKind::RoundTo || g.node(id).op == OpKind::RoundGrad) {
        id = g.node(id).inputs.front();
    }
    return g.node(id).op == OpKind::Parameter;
}

std::string layer_name(const ir::Graph& g, NodeId weight, NodeId first) {
    if (weight.valid() && !g.node(weight).name.empty()) {
        std::string name = g.node(weight).name;
        const std::string suffix = ".weight";
        if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            name.resize(name.size() - suffix.size());
        }
        return name;
    }
    return g.node(first).name.empty() ? "ops from #" + std::to_string(first.index) : g.node(first).name;
}

// One stage's layers and their byte and FLOP figures, before any cores are given out.
struct StageLayers {
    std::vector<PlacedLayer> layers;
    std::vector<int> layer_of;            // [training node]: its layer (kNone: another stage's, or none)
    std::vector<double> parameter_bytes;  // per layer, F32 masters per device (the 16-bit copy is this x width)
};

StageLayers cut_layers(const Plan& plan, int s, double width, const CoreMesh& mesh, const NodeCost& node_seconds) {
    const ir::Graph& g = plan.step.graph;
    const std::uint32_t loss = plan.last_forward.index;
    const std::size_t n = g.size();
    StageLayers out;
    out.layer_of.assign(n, kNone);
    std::vector<int>& layer_of = out.layer_of;
    // Forward nodes, cut at each weight-reading matrix op.
    bool has_weight = false;
    std::vector<std::uint32_t> weight_roundings;  // placed with their first reader, below
    for (std::uint32_t i = 0; i <= loss && i < n; ++i) {
        const NodeId id{i};
        if (!plan.live[i] || plan.stage[i] != s || ir::is_leaf(g.node(id).op)) {
            continue;
        }
        if (rounds_a_parameter(g, id)) {
            weight_roundings.push_back(i);
            continue;
        }
        const NodeId weight = weight_of(g, id);
        if (out.layers.empty() || (weight.valid() && has_weight)) {
            out.layers.push_back(PlacedLayer{});
            out.layers.back().name = layer_name(g, weight, id);
            has_weight = weight.valid();
        } else if (weight.valid()) {  // the first weight of a layer opened by lighter ops names it
            out.layers.back().name = layer_name(g, weight, id);
            has_weight = true;
        }
        layer_of[i] = static_cast<int>(out.layers.size()) - 1;
        out.layers.back().forward.push_back(id);
    }
    if (out.layers.empty()) {
        return out;
    }
    for (std::size_t k = weight_roundings.size(); k-- > 0;) {  // latest first: a rounding of a rounding follows it
        const std::uint32_t r = weight_roundings[k];
        int layer = kNone;
        for (std::uint32_t i = r + 1; i <= loss && i < n && layer == kNone; ++i) {
            const std::vector<NodeId>& inputs = g.node(NodeId{i}).inputs;
            if (layer_of[i] != kNone && std::find(inputs.begin(), inputs.end(), NodeId{r}) != inputs.end()) {
                layer = layer_of[i];
            }
        }
        layer = layer == kNone ? static_cast<int>(out.layers.size()) - 1 : layer;
        layer_of[r] = layer;
        std::vector<NodeId>& forward = out.layers[static_cast<std::size_t>(layer)].forward;
        forward.insert(std::upper_bound(forward.begin(), forward.end(), NodeId{r},
                                        [](NodeId a, NodeId b) { return a.index < b.index; }),
                       NodeId{r});
    }
    out.parameter_bytes.assign(out.layers.size(), 0.0);
    const int last = static_cast<int>(out.layers.size()) - 1;
    std::map<std::uint32_t, std::uint32_t> gradient_of;  // gradient node -> its parameter
    const std::vector<NodeId>& params = g.parameters();
    for (std::size_t k = 0; k < params.size() && k < plan.step.gradients.size(); ++k) {
        gradient_of[plan.step.gradients[k].index] = params[k].index;
    }
    // A leaf of this stage (the plan puts it on its first reader's stage; another stage receives it as a
    // transfer) belongs to its first placed reader's layer; forward readers come first in node order.
    auto claim_leaves = [&](std::uint32_t i) {
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            if (layer_of[in.index] == kNone && ir::is_leaf(g.node(in).op) && plan.stage[in.index] == s) {
                layer_of[in.index] = layer_of[i];
            }
        }
    };
    for (std::uint32_t i = 0; i <= loss && i < n; ++i) {
        if (layer_of[i] != kNone && !ir::is_leaf(g.node(NodeId{i}).op)) {
            claim_leaves(i);
        }
    }
    std::vector<bool> forward_only(n, false);  // a backward node placed by its forward inputs alone
    std::vector<bool> floating(n, false);      // one no placed input places: it goes with its readers
    for (std::uint32_t i = loss + 1; i < n; ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (!plan.live[i] || plan.stage[i] != s || ir::is_leaf(node.op)) {
            continue;
        }
        int by_leaf = kNone, by_backward = kNone, by_forward = kNone;
        const auto grad = gradient_of.find(i);
        if (grad != gradient_of.end()) {
            by_leaf = layer_of[grad->second];
        }
        for (const NodeId in : node.inputs) {
            const int l = layer_of[in.index];
            if (l == kNone) {
                continue;
            }
            const OpKind op = g.node(in).op;
            if (op == OpKind::Input || forward_only[in.index]) {
                continue;  // the learning rate (every layer's update reads it); a value that goes with its readers
            }
            int& slot = ir::is_leaf(op) ? by_leaf : (in.index > loss ? by_backward : by_forward);
            slot = slot == kNone ? l : std::min(slot, l);
        }
        if (by_leaf == kNone && by_backward == kNone && by_forward == kNone) {
            floating[i] = true;  // placed with its readers below (an optimizer term of an unclaimed state)
            continue;
        }
        layer_of[i] = by_leaf != kNone ? by_leaf : by_backward != kNone ? by_backward : by_forward;
        forward_only[i] = by_leaf == kNone && by_backward == kNone;
        claim_leaves(i);
    }
    // The backward pass runs layer by layer from the last, per micro-batch: a backward value must be computed by the
    // time its readers run, so a backward node moves up to its highest per-micro-batch reader's layer (an
    // activation transposed for the next layer's weight gradient: a node that reads only forward values, placed
    // with its readers). A node nothing placed yet places (an optimizer's momentum times its decay, reading only a
    // state and constants) goes to its highest reader's layer, or the last if nothing reads it, and then claims its
    // leaves. (The update runs once per step after every backward: its order between layers does not matter.)
    std::vector<int> highest_reader(n, kNone);  // among per-micro-batch backward readers (any reader if floating)
    for (std::uint32_t i = static_cast<std::uint32_t>(n); i-- > loss + 1;) {
        if (floating[i]) {
            layer_of[i] = highest_reader[i] != kNone ? highest_reader[i] : last;
            claim_leaves(i);
        }
        if (layer_of[i] == kNone || ir::is_leaf(g.node(NodeId{i}).op)) {
            continue;
        }
        if (!plan.per_step[i] && highest_reader[i] != kNone) {
            layer_of[i] = std::max(layer_of[i], highest_reader[i]);
        }
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            if (in.index > loss && (floating[in.index] || !plan.per_step[i])) {
                highest_reader[in.index] = std::max(highest_reader[in.index], layer_of[i]);
            }
        }
    }

    // Figures per layer.
    const Strategy& st = plan.strategy;
    const double in_flight = micro_batches_in_flight(st, s);
    const double mb = static_cast<double>(st.micro_batches);
    const bool recompute = st.recompute && !plan.recomputation.segments.empty() &&
                           plan.recomputation.segments[static_cast<std::size_t>(s)] > 0;
    std::map<std::uint32_t, NodeId> assigned;  // state -> the value it takes (its layout)
    for (const autodiff::Assignment& a : plan.step.updates) {
        assigned[a.target.index] = a.value;
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        const int l = layer_of[i];
        if (l == kNone) {
            continue;
        }
        PlacedLayer& layer = out.layers[static_cast<std::size_t>(l)];
        const NodeId id{i};
        const ir::Node& node = g.node(id);
        const double bytes = plan.tensor.bytes_per_device(g, id);
        if (node.op == OpKind::Parameter) {
            layer.static_bytes += 2 * bytes;  // master and gradient
            out.parameter_bytes[static_cast<std::size_t>(l)] += bytes;
            continue;
        }
        if (node.op == OpKind::State) {
            const auto it = assigned.find(i);
            const NodeId layout_of = it == assigned.end() ? id : it->second;
            const double held = plan.tensor.layout[layout_of.index].split() && !plan.tensor.layout[i].split()
                                    ? bytes / st.tp
                                    : bytes;
            layer.static_bytes += st.zero ? held / st.dp : held;
            continue;
        }
        if (ir::is_leaf(node.op)) {
            continue;
        }
        ++layer.nodes;
        const double share = plan.tensor.divided[i] ? static_cast<double>(st.tp) : 1.0;
        const double flops = ir::cost_of(g, id).flops / share;
        layer.flops += plan.per_step[i] ? flops : flops * mb;
        const double work = node_seconds ? node_seconds(g, id, share) * mesh.flops_per_core * mesh.working_cores
                                         : flops;
        layer.work += plan.per_step[i] ? work : work * mb;
        if (i > loss) {
            continue;
        }
        if (id == layer.forward.back()) {
            layer.output_bytes = bytes * width;
        }
        if (plan.saved[i]) {
            const bool kept = !recompute || plan.recomputation.checkpoint[i];
            layer.activation_bytes += bytes * width * (kept ? in_flight : 1.0);
        } else {
            layer.working_bytes = std::max(layer.working_bytes, bytes * width);
        }
    }
    return out;
}

// How a stage is laid out: residency (0 = SRAM, 1 = weights in HBM, 2 = all in HBM), weight panels, the pieces
// its micro-batch streams through the rectangles in, and whether layers take the whole mesh in turn.
struct Mode {
    int residency = 0;
    int panels = 1;
    std::int64_t pieces = 1;
    bool temporal = false;
};

// What a layer holds at `mode`, spread over its cores.
double resident_bytes(const PlacedLayer& layer, double parameter_bytes, double width, const Mode& mode,
                      std::int64_t micro_batch) {
    const double panels_bytes = 2.0 * parameter_bytes * width / mode.panels;  // two panels of the 16-bit weights
    // A piece of ceil(micro_batch / pieces) samples is in flight through a layer at a time.
    const auto piece = static_cast<double>((micro_batch + mode.pieces - 1) / mode.pieces);
    const double working = layer.working_bytes * piece / static_cast<double>(micro_batch);
    switch (mode.residency) {
        case 0: return layer.static_bytes + layer.activation_bytes + working;
        case 1: return layer.activation_bytes + working + panels_bytes;
        default: return working + panels_bytes;
    }
}

// Real-valued core targets: at least `need`, the rest in proportion to each layer's work, `flops` (PlacedLayer::work;
// water-filling to `cores` in all).
std::vector<double> core_targets(const std::vector<double>& need, const std::vector<double>& flops, double cores) {
    double total_flops = 0;
    for (const double f : flops) {
        total_flops += f;
    }
    auto sum_at = [&](double lambda) {
        double sum = 0;
        for (std::size_t i = 0; i < need.size(); ++i) {
            sum += std::max(need[i], lambda * flops[i]);
        }
        return sum;
    };
    std::vector<double> target(need);
    if (total_flops <= 0) {  // nothing to balance: spread what is left evenly
        double left = cores;
        for (const double x : need) {
            left -= x;
        }
        for (double& t : target) {
            t += std::max(0.0, left) / static_cast<double>(target.size());
        }
        return target;
    }
    double lo = 0, hi = cores / total_flops;
    for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (sum_at(mid) <= cores ? lo : hi) = mid;
    }
    for (std::size_t i = 0; i < need.size(); ++i) {
        target[i] = std::max(need[i], lo * flops[i]);
    }
    return target;
}

struct Rect {
    int x, y, width, height;
};

bool harvested(const CoreMesh& mesh, int x, int y) {
    const int off = mesh.columns * mesh.rows - mesh.working_cores;
    return y == mesh.rows - 1 && x >= mesh.columns - off;
}

int working_cores_in(const CoreMesh& mesh, const Rect& r) {
    int cores = 0;
    for (int y = r.y; y < r.y + r.height; ++y) {
        for (int x = r.x; x < r.x + r.width; ++x) {
            cores += harvested(mesh, x, y) ? 0 : 1;
        }
    }
    return cores;
}

// Slicing floorplan: layers [a, b) into `r`, cut across its longer side so that the working cores on each side
// are in proportion to the sides' targets.
void slice(const CoreMesh& mesh, const std::vector<double>& target, int a, int b, Rect r,
           std::vector<Region>& regions) {
    const int cores = working_cores_in(mesh, r);
    if (b - a == 1 || cores <= 1) {
        Region region{r.x, r.y, r.width, r.height, cores, {}, 0, 0};
        for (int l = a; l < b; ++l) {
            region.layers.push_back(l);
        }
        regions.push_back(std::move(region));
        return;
    }
    double total = 0;
    for (int l = a; l < b; ++l) {
        total += target[static_cast<std::size_t>(l)];
    }
    int k = a + 1;
    double prefix = target[static_cast<std::size_t>(a)], best = std::abs(prefix - total / 2);
    double running = prefix;
    for (int l = a + 1; l < b - 1; ++l) {
        running += target[static_cast<std::size_t>(l)];
        if (std::abs(running - total / 2) < best) {
            best = std::abs(running - total / 2);
            k = l + 1;
            prefix = running;
        }
    }
    const double wanted = total > 0 ? prefix / total : 0.5;
    auto part = [&](bool across_width, int first, bool second) {
        if (across_width) {
            return second ? Rect{r.x + first, r.y, r.width - first, r.height} : Rect{r.x, r.y, first, r.height};
        }
        return second ? Rect{r.x, r.y + first, r.width, r.height - first} : Rect{r.x, r.y, r.width, first};
    };
    // The cut: across the longer side (the other if that one is a single cell), at the position whose share of
    // working cores is closest to the first side's share of the targets, keeping a core per layer on each side
    // where there is room (layers share cores only when they must) and at least one core per side.
    bool across_width = r.width >= r.height ? r.width > 1 : r.height == 1;
    const int length = across_width ? r.width : r.height;
    int chosen = 0;
    double chosen_error = std::numeric_limits<double>::infinity();
    bool chosen_roomy = false;
    for (int first = 1; first < length; ++first) {
        const int left = working_cores_in(mesh, part(across_width, first, false));
        const int right = cores - left;
        if (left == 0 || right == 0) {
            continue;
        }
        const bool roomy = left >= k - a && right >= b - k;
        const double error = std::abs(static_cast<double>(left) / cores - wanted);
        if ((roomy && !chosen_roomy) || (roomy == chosen_roomy && error < chosen_error)) {
            chosen = first;
            chosen_error = error;
            chosen_roomy = roomy;
        }
    }
    if (chosen == 0) {  // no cut leaves working cores on both sides: the layers share this rectangle
        slice(mesh, target, a, a + 1, r, regions);
        regions.back().layers.clear();
        for (int l = a; l < b; ++l) {
            regions.back().layers.push_back(l);
        }
        return;
    }
    slice(mesh, target, a, k, part(across_width, chosen, false), regions);
    slice(mesh, target, k, b, part(across_width, chosen, true), regions);
}

int hops_between(const Region& a, const Region& b) {
    const int gap_x = std::max({0, a.x - (b.x + b.width - 1), b.x - (a.x + a.width - 1)});
    const int gap_y = std::max({0, a.y - (b.y + b.height - 1), b.y - (a.y + a.height - 1)});
    return gap_x + gap_y;
}

std::string mb_text(double bytes) {
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%.3g MB", bytes / 1e6);
    return buffer;
}

const char* residency_name(int residency) {
    return residency == 0 ? "SRAM" : residency == 1 ? "weights in HBM" : "all in HBM";
}

// Places one stage in `mode`; false (with `why`) if some core's bytes exceed its SRAM.
bool try_place(const CoreMesh& mesh, const StageLayers& sl, double width, const Mode& mode,
               std::int64_t micro_batch, StagePlacement& out, std::string& why) {
    const std::size_t L = sl.layers.size();
    std::vector<double> bytes(L), need(L), load(L);  // load: each layer's work (PlacedLayer::work)
    double need_total = 0;
    for (std::size_t i = 0; i < L; ++i) {
        bytes[i] = resident_bytes(sl.layers[i], sl.parameter_bytes[i], width, mode, micro_batch);
        need[i] = bytes[i] / mesh.sram_bytes_per_core;
        load[i] = sl.layers[i].work;
        need_total += need[i];
    }
    if (mode.temporal) {
        // Every layer on the whole mesh in turn: what stays (static bytes, activations) adds up; one layer's
        // working values and weight panels are there at a time.
        const Mode kept{mode.residency, mode.panels, mode.pieces, false};
        double held = 0, transient = 0, work = 0, real_flops = 0;
        for (std::size_t i = 0; i < L; ++i) {
            const PlacedLayer& layer = sl.layers[i];
            const double all = resident_bytes(layer, sl.parameter_bytes[i], width, kept, micro_batch);
            const double stays = mode.residency == 0 ? layer.static_bytes + layer.activation_bytes
                                 : mode.residency == 1 ? layer.activation_bytes
                                                       : 0.0;
            held += stays;
            transient = std::max(transient, all - stays);
            work += load[i];
            real_flops += layer.flops;
        }
        Region whole{0, 0, mesh.columns, mesh.rows, mesh.working_cores, {}, 0, 0};
        for (std::size_t i = 0; i < L; ++i) {
            whole.layers.push_back(static_cast<int>(i));
        }
        whole.bytes_per_core = (held + transient) / mesh.working_cores;
        whole.flops_per_core = real_flops / mesh.working_cores;
        whole.work_per_core = work / mesh.working_cores;
        if (whole.bytes_per_core > mesh.sram_bytes_per_core) {
            why = "its layers in turn on all " + std::to_string(mesh.working_cores) + " cores need " +
                  mb_text(whole.bytes_per_core) + " per core at " + residency_name(mode.residency) + ", " +
                  mb_text(whole.bytes_per_core - mesh.sram_bytes_per_core) + " over its SRAM";
            return false;
        }
        out.regions = {std::move(whole)};
        return true;
    }
    if (need_total > mesh.working_cores) {
        why = "its layers need " + mb_text(need_total * mesh.sram_bytes_per_core) + " side by side at " +
              residency_name(mode.residency) + " but the chip's " + std::to_string(mesh.working_cores) +
              " cores hold " + mb_text(mesh.working_cores * mesh.sram_bytes_per_core);
        return false;
    }
    // Rounding to whole rectangles can leave a layer short; grow the short layers' needs and cut again.
    for (int attempt = 0; attempt < 8; ++attempt) {
        const std::vector<double> target = core_targets(need, load, mesh.working_cores);
        std::vector<Region> regions;
        slice(mesh, target, 0, static_cast<int>(L), Rect{0, 0, mesh.columns, mesh.rows}, regions);
        bool short_somewhere = false;
        std::string worst;
        double worst_over = 0;
        for (Region& region : regions) {
            double held = 0, work = 0, real_flops = 0;
            for (const int l : region.layers) {
                held += bytes[static_cast<std::size_t>(l)];
                work += load[static_cast<std::size_t>(l)];
                real_flops += sl.layers[static_cast<std::size_t>(l)].flops;
            }
            region.bytes_per_core = region.cores > 0 ? held / region.cores : std::numeric_limits<double>::infinity();
            region.flops_per_core = region.cores > 0 ? real_flops / region.cores : 0;
            region.work_per_core = region.cores > 0 ? work / region.cores : 0;
            if (region.bytes_per_core > mesh.sram_bytes_per_core) {
                short_somewhere = true;
                const double over = region.bytes_per_core - mesh.sram_bytes_per_core;
                if (over > worst_over) {
                    worst_over = over;
                    worst = "layer '" + sl.layers[static_cast<std::size_t>(region.layers.front())].name + "' on " +
                            std::to_string(region.cores) + " cores needs " + mb_text(region.bytes_per_core) +
                            " per core, " + mb_text(over) + " over its " + mb_text(mesh.sram_bytes_per_core) +
                            " of SRAM";
                }
                for (const int l : region.layers) {
                    need[static_cast<std::size_t>(l)] *= 1.25;
                }
            }
        }
        if (!short_somewhere) {
            out.regions = std::move(regions);
            return true;
        }
        why = worst + " at " + residency_name(mode.residency);
    }
    return false;
}

// Per step at the cores' matrix peak: in turn, all cores share every layer's work; side by side, micro-batches x
// pieces flow through the rectangles as through a pipeline whose slowest stage is the busiest core, with a fill
// and drain of one unit per further rectangle.
double compute_time(const StagePlacement& stage, const CoreMesh& mesh, int micro_batches) {
    double total = 0, busiest = 0;
    for (const Region& region : stage.regions) {
        total += region.work_per_core * region.cores;
        busiest = std::max(busiest, region.work_per_core);
    }
    const double rate = mesh.flops_per_core > 0 ? mesh.flops_per_core : 1.0;
    if (stage.temporal) {
        return total / mesh.working_cores / rate;
    }
    const double units = static_cast<double>(micro_batches) * static_cast<double>(stage.pieces);
    return busiest * (units + static_cast<double>(stage.regions.size()) - 1) / units / rate;
}

// In turn, each layer's output is re-spread over the whole mesh for the next layer, and its gradient back: about
// half of it crosses the mesh's bisection each time, per micro-batch.
double respread_time(const StageLayers& sl, const CoreMesh& mesh, int micro_batches) {
    if (mesh.bisection_bandwidth <= 0) {
        return 0;
    }
    double bytes = 0;
    for (std::size_t i = 0; i + 1 < sl.layers.size(); ++i) {
        bytes += 2 * 0.5 * sl.layers[i].output_bytes;
    }
    return bytes * micro_batches / mesh.bisection_bandwidth;
}

}  // namespace

bool SpatialPlacement::fits() const {
    return std::all_of(stages.begin(), stages.end(), [](const StagePlacement& s) { return s.fits; });
}

LayoutChoice parse_layout_choice(const std::string& text) {
    if (text == "auto") {
        return LayoutChoice::Auto;
    }
    if (text == "spatial") {
        return LayoutChoice::Spatial;
    }
    if (text == "temporal") {
        return LayoutChoice::Temporal;
    }
    throw UsageError("unknown layout '" + text + "': expected auto, spatial (layers side by side on rectangles of "
                     "cores) or temporal (layers in turn on the whole mesh)");
}

SpatialPlacement place_spatial(const Plan& plan, const CoreMesh& mesh, LayoutChoice layout,
                               const NodeCost& node_seconds) {
    if (mesh.columns <= 0 || mesh.rows <= 0 || mesh.working_cores <= 0 || mesh.sram_bytes_per_core <= 0) {
        throw UsageError("spatial placement needs a mesh of cores with SRAM (a Dojo chip); '" + mesh.chip +
                         "' has none");
    }
    if (mesh.working_cores > mesh.columns * mesh.rows) {
        throw UsageError("spatial placement: '" + mesh.chip + "' has " + std::to_string(mesh.working_cores) +
                         " working cores on a " + std::to_string(mesh.columns) + " x " + std::to_string(mesh.rows) +
                         " mesh");
    }
    const double width = plan.precision == Precision::Fp32 ? 1.0 : 0.5;  // of the graph's F32 4 bytes
    SpatialPlacement result;
    result.mesh = mesh;
    result.precision = to_string(plan.precision);
    for (int s = 0; s < plan.strategy.pp; ++s) {
        StageLayers sl = cut_layers(plan, s, width, mesh, node_seconds);
        StagePlacement stage;
        stage.stage = s;
        std::string why;
        bool placed = sl.layers.empty();  // a stage without forward work (pp close to the node count) holds nothing
        if (placed) {
            stage.residency = "SRAM";
        }
        // Residency first (what stays on chip); within it, of side by side (with each number of pieces) and in
        // turn, the least compute plus re-spreading time, each with its fewest panels.
        for (int residency = 0; residency < 3 && !placed; ++residency) {
            if (residency > 0 && mesh.hbm_bytes <= 0) {
                why += "; the chip reaches no HBM (a machine without interface processors)";
                break;
            }
            for (const bool temporal : {false, true}) {
                for (std::int64_t pieces = 1; pieces <= (temporal ? 1 : plan.micro_batch); pieces *= 2) {
                    for (int panels = 1; panels <= (residency == 0 ? 1 : kMaxPanels); panels *= 2) {
                        const Mode mode{residency, panels, pieces, temporal};
                        StagePlacement trial = stage;
                        if (!try_place(mesh, sl, width, mode, plan.micro_batch, trial, why)) {
                            continue;
                        }
                        trial.residency = residency_name(residency);
                        trial.weight_panels = panels;
                        trial.pieces = pieces;
                        trial.temporal = temporal;
                        trial.compute_s = compute_time(trial, mesh, plan.strategy.micro_batches);
                        trial.respread_s = temporal ? respread_time(sl, mesh, plan.strategy.micro_batches) : 0.0;
                        // A layout the caller prefers beats the other; between equals, the faster.
                        const auto rank = [&](const StagePlacement& x) {
                            return (layout == LayoutChoice::Spatial && x.temporal) ||
                                   (layout == LayoutChoice::Temporal && !x.temporal);
                        };
                        const bool better =
                            rank(trial) != rank(stage) ? rank(trial) < rank(stage)
                                                       : trial.compute_s + trial.respread_s <
                                                             stage.compute_s + stage.respread_s;
                        if (!placed || better) {
                            stage = std::move(trial);
                        }
                        placed = true;
                        break;  // more panels only stream more
                    }
                }
            }
        }
        const double mb = static_cast<double>(plan.strategy.micro_batches);
        if (placed) {
            for (std::size_t i = 0; i < sl.layers.size(); ++i) {
                PlacedLayer& layer = sl.layers[i];
                const double w16 = sl.parameter_bytes[i] * width;
                if (stage.residency != "SRAM") {
                    // Per micro-batch: forward and backward read the 16-bit weights, backward accumulates into the
                    // FP32 gradients (read and write); per step the update reads and writes masters and state.
                    layer.stream_bytes_per_step = mb * (2 * w16 + 2 * sl.parameter_bytes[i]) +
                                                  2 * (layer.static_bytes - sl.parameter_bytes[i]);
                }
                if (stage.residency == "all in HBM") {
                    layer.stream_bytes_per_step += mb * 2 * layer.activation_bytes;
                }
                stage.stream_bytes_per_step += layer.stream_bytes_per_step;
            }
            double total_flops = 0, busiest = 0;
            for (Region& region : stage.regions) {
                for (const int l : region.layers) {
                    sl.layers[static_cast<std::size_t>(l)].region = static_cast<int>(&region - stage.regions.data());
                    total_flops += sl.layers[static_cast<std::size_t>(l)].work;
                }
                busiest = std::max(busiest, region.work_per_core);
            }
            stage.balance = busiest > 0 ? total_flops / mesh.working_cores / busiest : 1.0;
            stage.stream_s = mesh.hbm_bandwidth > 0 ? stage.stream_bytes_per_step / mesh.hbm_bandwidth : 0;
            double hops = 0;
            for (std::size_t i = 1; i < sl.layers.size(); ++i) {
                hops += hops_between(stage.regions[static_cast<std::size_t>(sl.layers[i - 1].region)],
                                     stage.regions[static_cast<std::size_t>(sl.layers[i].region)]);
            }
            stage.mean_hops = sl.layers.size() > 1 ? hops / static_cast<double>(sl.layers.size() - 1) : 0;
        } else {
            stage.fits = false;
            stage.residency = "none";
            stage.report = "stage " + std::to_string(s) + " does not fit one " + mesh.chip + ": " + why;
        }
        stage.layers = std::move(sl.layers);
        stage.layer_of = std::move(sl.layer_of);
        result.stages.push_back(std::move(stage));
    }
    return result;
}

namespace {

char region_symbol(std::size_t r) {
    static const char symbols[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return symbols[r % (sizeof symbols - 1)];
}

}  // namespace

std::string dump_placement(const SpatialPlacement& placement) {
    const CoreMesh& mesh = placement.mesh;
    std::string out;
    char line[256];
    for (const StagePlacement& stage : placement.stages) {
        std::snprintf(line, sizeof line, "stage %d on one %s (%d x %d mesh, %d working cores, %s of SRAM each): ",
                      stage.stage, mesh.chip.c_str(), mesh.columns, mesh.rows, mesh.working_cores,
                      mb_text(mesh.sram_bytes_per_core).c_str());
        out += line;
        if (!stage.fits) {
            out += "DOES NOT FIT\n  " + stage.report + "\n";
            continue;
        }
        if (stage.temporal) {
            std::snprintf(line, sizeof line, "%zu layers in turn on the whole mesh, %s", stage.layers.size(),
                          stage.residency.c_str());
        } else {
            std::snprintf(line, sizeof line, "%zu layers in %zu rectangles, %s", stage.layers.size(),
                          stage.regions.size(), stage.residency.c_str());
        }
        out += line;
        if (stage.pieces > 1) {
            std::snprintf(line, sizeof line, ", micro-batch in %lld pieces", static_cast<long long>(stage.pieces));
            out += line;
        }
        if (stage.residency != "SRAM") {
            std::snprintf(line, sizeof line, " (%d-panel double buffers; %s streamed per step, %.3g ms at %.3g GB/s)",
                          stage.weight_panels, mb_text(stage.stream_bytes_per_step).c_str(), stage.stream_s * 1e3,
                          mesh.hbm_bandwidth / 1e9);
            out += line;
        }
        if (stage.temporal && stage.respread_s > 0) {
            std::snprintf(line, sizeof line, "\n  re-spreading activations between layers %.4g ms per step",
                          stage.respread_s * 1e3);
            out += line;
        }
        std::snprintf(line, sizeof line, "\n  compute %.4g ms per step at peak; load balance %.2f (mean core load / "
                      "busiest), %.2f mesh hops between consecutive layers on average\n", stage.compute_s * 1e3,
                      stage.balance, stage.mean_hops);
        out += line;
        std::vector<std::string> grid(static_cast<std::size_t>(mesh.rows),
                                      std::string(static_cast<std::size_t>(mesh.columns), '?'));
        for (std::size_t r = 0; r < stage.regions.size(); ++r) {
            const Region& region = stage.regions[r];
            for (int y = region.y; y < region.y + region.height; ++y) {
                for (int x = region.x; x < region.x + region.width; ++x) {
                    grid[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)] =
                        harvested(mesh, x, y) ? '.' : region_symbol(r);
                }
            }
        }
        for (const std::string& row : grid) {
            out += "    " + row + "\n";
        }
        out += "    rect layer                          cores  at (x,y) w x h   GFLOP/step   per core   MB/core\n";
        for (const PlacedLayer& layer : stage.layers) {
            const Region& region = stage.regions[static_cast<std::size_t>(layer.region)];
            const std::string shared = region.layers.size() > 1 ? " (shared)" : "";
            std::snprintf(line, sizeof line, "    %c    %-30.30s %5d  (%2d,%2d) %2d x %-2d %11.4g %10.4g %9.3f%s\n",
                          region_symbol(static_cast<std::size_t>(layer.region)), layer.name.c_str(), region.cores,
                          region.x, region.y, region.width, region.height, layer.flops / 1e9,
                          region.flops_per_core / 1e9, region.bytes_per_core / 1e6, shared.c_str());
            out += line;
        }
    }
    return out;
}

}  // namespace dojo::compiler
