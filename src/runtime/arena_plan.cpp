#include "dojo/runtime/arena_plan.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "dojo/util/check.h"

namespace dojo::runtime {

ArenaPlan plan_arena(std::span<const Lifetime> lifetimes, std::size_t alignment_bytes) {
    DOJO_CHECK(alignment_bytes > 0 && (alignment_bytes & (alignment_bytes - 1)) == 0)
        << "alignment " << alignment_bytes << " is not a power of two";
    const auto aligned = [&](std::size_t bytes) { return (bytes + alignment_bytes - 1) & ~(alignment_bytes - 1); };
    ArenaPlan plan;
    plan.offset_bytes.assign(lifetimes.size(), 0);

    // The lower bound: bytes live at each position (a sweep over the lifetimes' ends).
    std::map<std::uint32_t, std::int64_t> change;
    for (const Lifetime& l : lifetimes) {
        DOJO_CHECK(l.first <= l.last) << "lifetime [" << l.first << ", " << l.last << "] ends before it starts";
        if (l.bytes == 0) {
            continue;
        }
        change[l.first] += static_cast<std::int64_t>(aligned(l.bytes));
        change[l.last + 1] -= static_cast<std::int64_t>(aligned(l.bytes));
    }
    std::int64_t live = 0;
    for (const auto& [position, delta] : change) {
        live += delta;
        plan.peak_live_bytes = std::max(plan.peak_live_bytes, static_cast<std::size_t>(live));
    }

    // Largest first (ties: earlier first, then by index, so the plan is deterministic).
    std::vector<std::size_t> order(lifetimes.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (lifetimes[a].bytes != lifetimes[b].bytes) {
            return lifetimes[a].bytes > lifetimes[b].bytes;
        }
        return lifetimes[a].first < lifetimes[b].first;
    });
    struct Placed {
        std::size_t begin, end;  // bytes [begin, end)
        std::uint32_t first, last;
    };
    std::vector<Placed> placed;  // sorted by begin
    std::vector<const Placed*> overlapping;
    for (const std::size_t k : order) {
        const Lifetime& l = lifetimes[k];
        if (l.bytes == 0) {
            continue;
        }
        const std::size_t size = aligned(l.bytes);
        overlapping.clear();
        for (const Placed& p : placed) {
            if (p.first <= l.last && l.first <= p.last) {
                overlapping.push_back(&p);
            }
        }
        // The lowest gap between values live at the same time that holds this one (they are sorted by offset).
        std::size_t offset = 0;
        for (const Placed* p : overlapping) {
            if (p->begin >= offset + size) {
                break;
            }
            offset = std::max(offset, p->end);
        }
        plan.offset_bytes[k] = offset;
        plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
        const Placed entry{offset, offset + size, l.first, l.last};
        placed.insert(std::upper_bound(placed.begin(), placed.end(), entry,
                                       [](const Placed& a, const Placed& b) { return a.begin < b.begin; }),
                      entry);
    }
    return plan;
}

}  // namespace dojo::runtime
