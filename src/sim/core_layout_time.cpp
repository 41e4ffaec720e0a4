// time_core_layout: a placed stage's compute on its rectangles of cores (core_layout_time.h).
#include "core_layout_time.h"

#include <algorithm>
#include <cmath>

namespace dojo::sim {

using compiler::Plan;
using ir::NodeId;

// A placed stage's compute on its chip's cores (compiler/place_spatial.h), from its ops' times on all cores
// (node_s: per micro-batch, per step for the update), written into `stage`:
//   in turn       the ops as timed, plus re-spreading each layer's output over the mesh for the next layer and its
//                 gradient back, half of it across the mesh's bisection each way (the pass's own estimate);
//   side by side  each rectangle runs its layers' ops with its share of the cores (time x working cores / its
//                 cores); the micro-batch's pieces stream through the rectangles as through a pipeline paced by the
//                 slowest, with one piece of fill per further rectangle; the update runs on every rectangle at once.
// Ops the pass placed on no layer run on all cores after the rest. Returns the spans of one micro-batch.
std::vector<CoreSpan> time_core_layout(const compiler::StagePlacement& sp, const compiler::CoreMesh& mesh,
                                       const Plan& plan, const std::vector<double>& node_s, StageTime& stage) {
    const std::size_t layers = sp.layers.size();
    std::vector<double> forward(layers, 0.0), backward(layers, 0.0), update(layers, 0.0);
    double loose_forward = 0, loose_backward = 0, loose_update = 0;
    for (std::size_t i = 0; i < node_s.size(); ++i) {
        if (!plan.live[i] || plan.stage[i] != sp.stage || node_s[i] <= 0) {
            continue;
        }
        const int layer = i < sp.layer_of.size() ? sp.layer_of[i] : -1;
        const bool fwd = i <= plan.last_forward.index && !plan.per_step[i];
        std::vector<double>& into = plan.per_step[i] ? update : fwd ? forward : backward;
        double& loose = plan.per_step[i] ? loose_update : fwd ? loose_forward : loose_backward;
        (layer >= 0 ? into[static_cast<std::size_t>(layer)] : loose) += node_s[i];
    }
    std::vector<CoreSpan> spans;
    if (sp.temporal || sp.regions.size() <= 1) {
        const std::string track = "all " + std::to_string(mesh.working_cores) + " cores (layers in turn)";
        const double bisection = mesh.bisection_bandwidth;
        double at = 0, extra_forward = 0, extra_backward = 0;
        for (std::size_t l = 0; l < layers; ++l) {
            spans.push_back({track, sp.layers[l].name, true, at, forward[l]});
            at += forward[l];
            if (l + 1 < layers && bisection > 0 && sp.temporal) {
                const double x = 0.5 * sp.layers[l].output_bytes / bisection;
                spans.push_back({track, "re-spread " + sp.layers[l].name + "'s output", true, at, x});
                at += x;
                extra_forward += x;
            }
        }
        at = 0;
        for (std::size_t l = layers; l-- > 0;) {
            spans.push_back({track, sp.layers[l].name, false, at, backward[l]});
            at += backward[l];
            if (l > 0 && bisection > 0 && sp.temporal) {
                const double x = 0.5 * sp.layers[l - 1].output_bytes / bisection;
                spans.push_back({track, "re-spread the gradient of " + sp.layers[l - 1].name, false, at, x});
                at += x;
                extra_backward += x;
            }
        }
        stage.forward_s += extra_forward;
        stage.backward_s += extra_backward;
        stage.respread_s = extra_forward + extra_backward;
        return spans;
    }
    // Side by side: rectangles in the order the micro-batch meets them (their first layers').
    const std::size_t regions = sp.regions.size();
    std::vector<double> fr(regions, 0.0), br(regions, 0.0), ur(regions, 0.0);
    std::vector<std::string> names(regions);
    std::vector<std::size_t> first_layer(regions, layers);
    for (std::size_t l = 0; l < layers; ++l) {
        const auto k = static_cast<std::size_t>(sp.layers[l].region);
        const double scale = static_cast<double>(mesh.working_cores) / std::max(1, sp.regions[k].cores);
        fr[k] += forward[l] * scale;
        br[k] += backward[l] * scale;
        ur[k] += update[l] * scale;
        names[k] += (names[k].empty() ? "" : ", ") + sp.layers[l].name;
        first_layer[k] = std::min(first_layer[k], l);
    }
    std::vector<std::size_t> chain(regions);
    for (std::size_t k = 0; k < regions; ++k) {
        chain[k] = k;
    }
    std::sort(chain.begin(), chain.end(), [&](std::size_t a, std::size_t b) { return first_layer[a] < first_layer[b]; });
    const double pieces = static_cast<double>(sp.pieces);
    const double fill = (pieces + static_cast<double>(regions) - 1) / pieces;
    const double f_max = *std::max_element(fr.begin(), fr.end());
    const double b_max = *std::max_element(br.begin(), br.end());
    stage.forward_s = f_max * fill + loose_forward;
    stage.backward_s = b_max * fill + loose_backward;
    stage.optimizer_s = *std::max_element(ur.begin(), ur.end()) + loose_update;
    for (std::size_t position = 0; position < regions; ++position) {
        const std::size_t k = chain[position];
        const compiler::Region& region = sp.regions[k];
        const std::string track = "cores (" + std::to_string(region.x) + "," + std::to_string(region.y) + ") " +
                                  std::to_string(region.width) + "x" + std::to_string(region.height);
        auto busy = [](double part, double whole) {
            return " (busy " + std::to_string(static_cast<int>(std::lround(100 * part / std::max(whole, 1e-30)))) + "%)";
        };
        spans.push_back({track, names[k] + busy(fr[k], f_max), true,
                         static_cast<double>(position) * f_max / pieces, f_max});
        spans.push_back({track, names[k] + busy(br[k], b_max), false,
                         static_cast<double>(regions - 1 - position) * b_max / pieces, b_max});
    }
    return spans;
}

}  // namespace dojo::sim
