/** \file
 * Spatial placement: Dojo-style mapping of each pipeline stage's layers onto rectangles of cores of the chip that
 * runs it, so that activations flow between neighbouring rectangles, with a per-core SRAM budget.
 *
 * Layers. A stage's forward nodes are cut into layers in graph order: a layer starts at each node that reads a
 * weight through a matrix op (MatMul, Conv2d, Gather of an embedding table) and holds the light ops after it up to
 * the next one (nodes before the first such op join the first layer). A layer is named after its weight with
 * ".weight" dropped ("h.0.attn.in_proj", "conv1"). Backward and optimizer nodes go to the layer of the parameter,
 * optimizer state or gradient they read, else to the earliest layer among their backward inputs (the gradient
 * flowing into a layer is differentiated where that layer sits), else to the layer of their forward input; each
 * per-micro-batch backward node then moves up to its highest per-micro-batch reader's layer (the backward pass
 * runs from the last layer down, and the value must exist when that reader runs: an activation transposed for the
 * next layer's weight gradient), and a node none of these place goes with its readers. The
 * weights, gradients and optimizer state of a layer live on its cores, and so do its saved activations.
 *
 * Per-core bytes of a layer (one device of the stage: with tp > 1, every chip of the tensor-parallel group holds
 * the same map with its 1/tp shard):
 *   static       parameters (FP32 masters) + gradients + optimizer state (/ dp with zero=1)
 *   activations  its saved forward values x the micro-batches in flight (pp - stage under 1F1B), at the
 *                precision's width; with recompute=1 its checkpoints x in flight plus its other saved values once
 *   working      its largest value that is not saved (the output being produced), at the precision's width
 * each divided evenly over the layer's cores.
 *
 * Residency, tried in order; the first where some layout fits every core's SRAM is taken:
 *   "SRAM"            everything above stays on the cores;
 *   "weights in HBM"  static bytes live in the chip's share of the interface processors' HBM and stream in by DMA,
 *                     double-buffered: each core holds two panels of its share of the 16-bit weights (1/k of it,
 *                     the least power-of-two k up to 64 that fits), and the update streams masters, gradients and
 *                     optimizer state through once per step;
 *   "all in HBM"      activations also go to HBM (written after the forward pass, read back by the backward pass);
 *                     the cores keep the working values and the weight panels.
 * Layout, at that residency:
 *   side by side      layers on their own rectangles, all busy at once; the micro-batch streams through them in
 *                     `pieces` (powers of two up to its samples), each layer holding one piece's working values;
 *                     time: micro-batches x pieces flow as through a pipeline paced by the busiest core at the
 *                     cores' matrix peak, with one unit of fill per further rectangle (activations move one hop to
 *                     a neighbour: not timed);
 *   in turn           ("temporal") every layer on the whole mesh, one after another: what stays adds up, but only
 *                     one layer's working values and weight panels are there at a time; time: every layer's FLOPs
 *                     over all cores, plus re-spreading each layer's output over the mesh for the next layer and its
 *                     gradient back (half of it across the bisection each way, per micro-batch).
 *   LayoutChoice::Auto takes the one with the least time (each with its fewest panels); Spatial or Temporal prefer
 *   theirs wherever it fits. DMA streams are reported in bytes and seconds, not added to these times.
 * A stage that fits none (or needs HBM on a machine without it: a bare d1 or tile) is rejected: `fits` is false
 * and `report` says what was short and by how much. Nothing overflows silently.
 *
 * Cores per layer. Each layer first gets the cores its per-core bytes need at the chosen residency; the rest are
 * shared out in proportion to its work per step (forward, backward and update: its FLOPs, or its nodes' times when
 * place_spatial is given the simulator's op model; water-filling, so a layer already holding more cores than its
 * share keeps them). Rectangles come from a slicing floorplan: the layer
 * sequence is cut where the cores on each side are closest to the halves, the rectangle is cut across its longer
 * side in that proportion, recursively; consecutive layers end up in neighbouring rectangles. Where a rectangle is
 * a single core and still holds several layers, they share it (time-multiplexed). Harvested cores (a D1 has 360
 * positions, 354 working; which 6 are off is not published, spec 13 Q2) are taken as the last cells of the last
 * row and count for nothing.
 *
 * Load: a layer's work divided by its working cores; `balance` is the mean load over the stage's cores against
 * the largest (1.0: every core does equal work). When samples stream through the rectangles, the busiest core
 * sets the pace.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

/// What placement needs of the chip that runs one device's share of a stage.
struct CoreMesh {
    std::string chip;                  ///< kind name, e.g. "d1"
    int columns = 0, rows = 0;         ///< positions on the mesh
    int working_cores = 0;             ///< columns x rows less the harvested ones
    double sram_bytes_per_core = 0;
    double hbm_bytes = 0;              ///< the chip's share of interface-processor HBM (0: none reachable)
    double hbm_bandwidth = 0;          ///< bytes/s, the chip's share
    double flops_per_core = 0;         ///< matrix peak at the precision, FLOP/s
    double bisection_bandwidth = 0;    ///< bytes/s across the mesh's middle, per direction (0: not known)
};

struct PlacedLayer {
    std::string name;
    int region = 0;                    ///< index into StagePlacement::regions
    std::vector<ir::NodeId> forward;   ///< its forward nodes, in order
    std::int64_t nodes = 0;            ///< every node placed on it (forward, backward, optimizer)
    double flops = 0;                  ///< per step on one device: every micro-batch's forward and backward, the update
    double work = 0;                   ///< what cores are shared out and timed by: `flops`, or with a NodeCost its
                                       ///< nodes' seconds on all cores as FLOPs at the mesh's peak (see place_spatial)
    double static_bytes = 0;           ///< parameters + gradients + optimizer state, per device
    double activation_bytes = 0;       ///< saved activations held, per device (see the file comment)
    double working_bytes = 0;          ///< largest transient value, per device
    double output_bytes = 0;           ///< its last forward value (what the next layer reads), per micro-batch
    double stream_bytes_per_step = 0;  ///< moved between HBM and SRAM by DMA each step (0 when resident)
};

struct Region {
    int x = 0, y = 0, width = 0, height = 0;  ///< cells of the mesh, origin at the top left
    int cores = 0;                     ///< working cores inside
    std::vector<int> layers;           ///< indices into StagePlacement::layers
    double bytes_per_core = 0;         ///< what each of its cores holds at the stage's residency
    double flops_per_core = 0;         ///< per step
    double work_per_core = 0;          ///< per step, of PlacedLayer::work
};

struct StagePlacement {
    int stage = 0;
    std::string residency;             ///< "SRAM", "weights in HBM", "all in HBM"
    int weight_panels = 1;             ///< k of the double-buffered weight panels (1 when resident)
    std::int64_t pieces = 1;           ///< the micro-batch streams through the rectangles in this many pieces
    bool temporal = false;             ///< layers take the whole mesh one after another (no side-by-side fit)
    bool fits = true;
    std::string report;                ///< why it does not fit (empty when it does)
    std::vector<PlacedLayer> layers;
    std::vector<int> layer_of;         ///< [training node]: index into `layers` of its layer; -1 for none of this stage's
    std::vector<Region> regions;
    double balance = 0;                ///< mean core load / largest core load
    double compute_s = 0;              ///< per step at the cores' matrix peak, with the in-chip pipeline's fill
    double respread_s = 0;             ///< in turn: moving each layer's output (and gradient) across the mesh
    double stream_bytes_per_step = 0;  ///< sum over layers
    double stream_s = 0;               ///< that at the chip's HBM bandwidth share
    double mean_hops = 0;              ///< mesh hops between consecutive layers' rectangles (nearest cells)
};

struct SpatialPlacement {
    CoreMesh mesh;
    std::string precision;
    std::vector<StagePlacement> stages;
    bool fits() const;
};

/// Which layouts the pass may choose: the faster of the two (Auto), side by side wherever it fits (Spatial; in turn
/// only where nothing side by side fits), or in turn (Temporal; side by side only where nothing in turn fits).
enum class LayoutChoice { Auto, Spatial, Temporal };
/// "auto", "spatial" or "temporal"; UsageError otherwise.
LayoutChoice parse_layout_choice(const std::string& text);

/// Places every stage of `plan` (after lay_out) on `mesh` at the plan's precision. UsageError for a mesh
/// without cores or SRAM (a GPU). `node_seconds` (optional; the simulator's op model, sim/op_time.h: stage_cost)
/// times a node on all of the chip's cores: given, a layer's work is its nodes' time rather than its FLOPs at peak,
/// so cores are shared out, loads balanced and layouts compared by what the nodes cost there (a small matmul that
/// tiles poorly onto the matrix units, a memory-bound map), as the simulator will time them.
SpatialPlacement place_spatial(const Plan& plan, const CoreMesh& mesh,
                               LayoutChoice layout = LayoutChoice::Auto, const NodeCost& node_seconds = {});

/// The placement as text: per stage, the mesh with one letter per layer's rectangle ('.' harvested, '+' a core
/// shared by several layers) and a table of layers. Stable for golden tests.
std::string dump_placement(const SpatialPlacement& placement);

}  // namespace dojo::compiler
