// derive_topology: the device and the levels above it, from a machine description's kinds and keys.
#include "dojo/sim/topology.h"

#include <algorithm>
#include <string>
#include <vector>

#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

using machine::Machine;
using machine::Zone;
using machine::ZoneKind;

double property(const ZoneKind& kind, const std::string& key, double fallback = 0.0) {
    const auto it = kind.properties.find(key);
    return it == kind.properties.end() ? fallback : it->second.value;
}

bool is_device(const Machine& m, const Zone& zone) {
    const ZoneKind& kind = m.kind(zone.kind);
    if (!kind.peak_flops.empty()) {
        return true;
    }
    for (const Zone& child : zone.children) {
        if (!m.kind(child.kind).flop_per_cycle.empty()) {
            return true;
        }
    }
    return false;
}

// The zones from the root down to the first device zone; empty if there is none.
bool path_to_device(const Machine& m, const Zone& zone, std::vector<const Zone*>& path) {
    path.push_back(&zone);
    if (is_device(m, zone)) {
        return true;
    }
    for (const Zone& child : zone.children) {
        if (path_to_device(m, child, path)) {
            return true;
        }
    }
    path.pop_back();
    return false;
}

// A kind's label `key` (one of `choices`; the first when it is absent), or a UsageError naming the machine and kind.
std::string label_choice(const Machine& m, const Zone& zone, const ZoneKind& kind, const std::string& key,
                         const std::vector<std::string>& choices) {
    const auto it = kind.labels.find(key);
    if (it == kind.labels.end()) {
        return choices.front();
    }
    if (std::find(choices.begin(), choices.end(), it->second) == choices.end()) {
        std::string expected;
        for (const std::string& c : choices) {
            expected += (expected.empty() ? "" : " or ") + c;
        }
        throw UsageError("machine '" + m.name + "': kinds." + zone.kind + "." + key + " is '" + it->second +
                         "'; expected " + expected);
    }
    return it->second;
}

// The kernel rates of a kind with runtime = "opendojo": each one required (bench/cpu_calibration measures them).
CpuKernelRates cpu_kernel_rates(const ZoneKind& kind, const std::string& where) {
    auto required = [&](const char* name) {
        if (kind.properties.count(name) == 0) {
            throw UsageError(where + " says runtime = \"opendojo\" but does not state " + name +
                             " (measure it with build/bench/cpu_calibration: machines/lib/hosts.toml)");
        }
        return property(kind, name);
    };
    CpuKernelRates r;
    r.fused_map_s = required("fused_map_time");
    r.fused_divide_s = required("fused_divide_time");
    for (const auto& [op, key] : {std::pair{ir::OpKind::Exp, "fused_exp_time"}, {ir::OpKind::Log, "fused_log_time"},
                                  {ir::OpKind::Tanh, "fused_tanh_time"}, {ir::OpKind::Erf, "fused_erf_time"},
                                  {ir::OpKind::Sigmoid, "fused_sigmoid_time"}}) {
        r.fused_function_s[op] = required(key);
    }
    r.fused_sum_s = required("fused_sum_time");
    for (const auto& [op, key] :
         {std::pair{ir::OpKind::ReduceSum, "reference_reduce_sum_bandwidth"},
          {ir::OpKind::LogSoftmax, "reference_log_softmax_bandwidth"}, {ir::OpKind::Slice, "reference_slice_bandwidth"},
          {ir::OpKind::SliceBackward, "reference_slice_bandwidth"}, {ir::OpKind::Reshape, "reference_reshape_bandwidth"}}) {
        r.reference_bandwidth[op] = required(key);
    }
    r.reference_map_bandwidth = required("reference_map_bandwidth");
    r.matmul_small_efficiency[0] = required("matmul_small_fp32_efficiency");
    r.matmul_small_efficiency[1] = required("matmul_small_bf16_efficiency");
    const char* directions[] = {"forward", "backward_data", "backward_filter"};
    for (int d = 0; d < 3; ++d) {
        for (int p = 0; p < 2; ++p) {
            for (int k = 0; k < 3; ++k) {
                const std::string key = std::string("conv_") + directions[d] + (p == 0 ? "_fp32" : "_bf16") +
                                        "_" + std::to_string(32 << (2 * k)) + "px_efficiency";
                r.conv_pixel_efficiency[d][p][k] = required(key.c_str());
            }
        }
    }
    r.pool_tiled_forward_s = required("pool_tiled_forward_time");
    r.pool_tiled_backward_s = required("pool_tiled_backward_time");
    r.pool_window_forward_s = required("pool_window_forward_time");
    r.pool_window_backward_s = required("pool_window_backward_time");
    r.pool_window_plain_forward_s = required("pool_window_plain_forward_time");
    r.pool_window_plain_backward_s = required("pool_window_plain_backward_time");
    r.round_bf16_s = required("round_bf16_time");
    r.round_cfp8_s = required("round_cfp8_time");
    r.round_cfp8_stochastic_s = required("round_cfp8_stochastic_time");
    r.round_bf16_small_s = required("round_bf16_small_time");
    r.round_cfp8_small_s = required("round_cfp8_small_time");
    r.round_cfp8_stochastic_small_s = required("round_cfp8_stochastic_small_time");
    r.transpose_tiles_s = required("transpose_tiles_time");
    r.transpose_tiles_small_s = required("transpose_tiles_small_time");
    r.fused_memory_bandwidth = required("fused_memory_bandwidth");
    r.copy_bandwidth = required("copy_bandwidth");
    r.kernel_overhead_s = required("kernel_overhead");
    r.matrix_call_overhead_s = required("matrix_call_overhead");
    r.node_overhead_s = required("node_overhead");
    return r;
}

Device describe_device(const Machine& m, const Zone& zone) {
    const ZoneKind& kind = m.kind(zone.kind);
    Device d;
    d.kind = zone.kind;
    d.power_w = property(kind, "power");
    d.idle_power_fraction = property(kind, "idle_power_fraction", 0.3);
    d.sustained_matrix_fraction = property(kind, "sustained_matrix_fraction", 1.0);
    d.sustained_matrix_fraction_16bit = property(kind, "sustained_matrix_fraction_16bit", 0.0);
    d.reference_bandwidth = property(kind, "reference_bandwidth", 0.0);
    d.matrix_tile = static_cast<std::int64_t>(property(kind, "matrix_tile", 1));
    d.memory_bytes = property(kind, "hbm", property(kind, "memory"));  // a CPU rank: its share of the host's DRAM
    if (kind.properties.count("hbm") == 0 && kind.properties.count("memory") != 0) {
        d.memory_name = "DRAM";
    }
    d.memory_bandwidth = property(kind, "hbm_bandwidth", property(kind, "memory_bandwidth"));
    d.reduce_bandwidth = property(kind, "reduce_bandwidth");
    d.cache_bytes = property(kind, "cache");
    d.link_bandwidth_beyond_cache = property(kind, "link_bandwidth_beyond_cache");
    d.reduce_bandwidth_beyond_cache = property(kind, "reduce_bandwidth_beyond_cache");
    const auto algorithm = kind.labels.find("allreduce_algorithm");
    d.allreduce_algorithm = algorithm == kind.labels.end() ? "" : algorithm->second;
    if (!d.allreduce_algorithm.empty() && d.allreduce_algorithm != "binomial" && d.allreduce_algorithm != "ring") {
        throw UsageError("machine '" + m.name + "': kinds." + zone.kind + ".allreduce_algorithm is '" +
                         d.allreduce_algorithm + "'; the simulator knows ring and binomial (or leave it out)");
    }
    const auto cores = kind.labels.find("collective_cores");
    if (cores != kind.labels.end() && cores->second != "shared" && cores->second != "dedicated") {
        throw UsageError("machine '" + m.name + "': kinds." + zone.kind + ".collective_cores is '" + cores->second +
                         "'; expected shared (collectives run on the compute cores) or dedicated");
    }
    d.collectives_share_cores = cores != kind.labels.end() && cores->second == "shared";
    const auto conversion = kind.labels.find("format_conversion");
    if (conversion != kind.labels.end() && conversion->second != "on_store" && conversion->second != "pass") {
        throw UsageError("machine '" + m.name + "': kinds." + zone.kind + ".format_conversion is '" +
                         conversion->second + "'; expected on_store (producers store the narrow format) or pass (a " +
                         "rounding is a pass of its own over memory)");
    }
    d.rounds_on_store = conversion == kind.labels.end() || conversion->second == "on_store";
    d.transposes_in_place = label_choice(m, zone, kind, "transposed_operands", {"copied", "in_place"}) == "in_place";
    d.bias_gradient_in_epilogue = label_choice(m, zone, kind, "bias_gradient", {"pass", "epilogue"}) == "epilogue";
    d.tensor_comm_overlapped =
        label_choice(m, zone, kind, "tensor_parallel_comm", {"exposed", "overlapped"}) == "overlapped";
    d.parameter_gather_overlapped =
        label_choice(m, zone, kind, "parameter_gather", {"after_update", "overlapped"}) == "overlapped";
    d.fp8_linear_only = label_choice(m, zone, kind, "fp8_products", {"all", "linear"}) == "linear";
    d.row_kernels_fused = label_choice(m, zone, kind, "row_kernels", {"passes", "fused"}) == "fused";
    d.attention_fused = label_choice(m, zone, kind, "attention", {"materialised", "fused"}) == "fused";
    d.fp8_operands_k_major = label_choice(m, zone, kind, "fp8_operands", {"any_layout", "k_major"}) == "k_major";
    d.keeps_kernel_inputs =
        label_choice(m, zone, kind, "saved_activations", {"every_value", "kernel_inputs"}) == "kernel_inputs";
    if (const auto runs_as = kind.labels.find("cfp8_runs_as"); runs_as != kind.labels.end()) {
        if (runs_as->second != "bf16" && runs_as->second != "fp8") {
            throw UsageError("machine '" + m.name + "': kinds." + zone.kind + ".cfp8_runs_as is '" + runs_as->second +
                             "'; expected bf16 (no 8-bit matrix units) or fp8");
        }
        d.cfp8_operand_bytes = runs_as->second == "bf16" ? 2 : 1;
    }
    if (const auto runtime = kind.labels.find("runtime"); runtime != kind.labels.end()) {
        if (runtime->second != "opendojo") {
            throw UsageError("machine '" + m.name + "': kinds." + zone.kind + ".runtime is '" + runtime->second +
                             "'; expected opendojo (a CPU host that trains with dojo train), or leave it out");
        }
        d.runs_cpu_runtime = true;
        d.cpu_kernels = cpu_kernel_rates(kind, m.name + ": kinds." + zone.kind);
    }
    if (!kind.peak_flops.empty()) {  // a GPU
        d.matrix_flops = kind.peak_flops;
        d.parallel_units = static_cast<std::int64_t>(property(kind, "sm_count", 1));
        d.vector_flops_fp32 = kind.peak_flops.count("fp32") != 0 ? kind.peak_flops.at("fp32") : 0.0;
        d.vector_flops_16bit = d.vector_flops_fp32;
        // Per direction, less NVLink's packet protocol overhead: what a copy or a collective can move.
        d.link_bandwidth = property(kind, "nvlink_bandwidth") / 2 * property(kind, "nvlink_protocol_efficiency", 1.0);
        d.link_latency_s = property(kind, "link_latency");
        return d;
    }
    for (const Zone& child : zone.children) {  // a chip of cores
        const ZoneKind& core = m.kind(child.kind);
        if (core.flop_per_cycle.empty()) {
            continue;
        }
        const double clock = property(core, "clock");
        const double n = static_cast<double>(child.count);
        d.parallel_units = child.count;
        for (const auto& [precision, per_cycle] : core.flop_per_cycle) {
            d.matrix_flops[precision] = n * clock * per_cycle;
        }
        d.vector_flops_fp32 = core.flop_per_cycle.count("fp32") != 0 ? n * clock * core.flop_per_cycle.at("fp32") : 0;
        d.vector_flops_16bit = n * clock * property(core, "simd_bf16_flop_per_cycle", 0.0);
        d.local_bytes = n * property(core, "sram");
        d.local_bandwidth = n * property(core, "sram_load_bandwidth");
        d.cache_bandwidth = n * property(core, "cache_bandwidth");
        d.matrix_tile = static_cast<std::int64_t>(property(core, "matrix_tile", static_cast<double>(d.matrix_tile)));
        d.core_local_bytes = property(core, "sram");
    }
    d.mesh_columns = static_cast<int>(property(kind, "mesh_columns"));
    d.mesh_rows = static_cast<int>(property(kind, "mesh_rows"));
    d.mesh_bisection_bandwidth = d.mesh_columns > 0 ? property(kind, "bisection_bandwidth") : 0.0;
    if (d.vector_flops_16bit == 0) {
        d.vector_flops_16bit = d.vector_flops_fp32;
    }
    // A D1's mesh edge; a CPU rank's transport to the other ranks of its host (shared memory).
    d.link_bandwidth = property(kind, "edge_bandwidth", property(kind, "link_bandwidth"));
    d.link_latency_s = property(kind, "die_to_die_latency", property(kind, "link_latency"));
    return d;
}

double zplane_latency(const Machine& m) {
    for (const auto& [name, kind] : m.kinds) {
        if (kind.properties.count("port_bandwidth") != 0 && kind.properties.count("switch_latency") != 0) {
            return kind.properties.at("switch_latency").value;
        }
    }
    return 1e-6;  // no Z-plane kind: one Ethernet switch hop
}

}  // namespace

compiler::CoreMesh core_mesh(const Topology& topology, compiler::Precision precision) {
    const Device& d = topology.device;
    compiler::CoreMesh mesh;
    mesh.chip = d.kind;
    mesh.columns = d.mesh_columns;
    mesh.rows = d.mesh_rows;
    mesh.working_cores = static_cast<int>(d.parallel_units);
    mesh.sram_bytes_per_core = d.core_local_bytes;
    mesh.hbm_bytes = d.memory_bytes;
    mesh.hbm_bandwidth = d.memory_bandwidth;
    mesh.bisection_bandwidth = d.mesh_bisection_bandwidth;
    const auto peak = d.matrix_flops.find(std::string(compiler::to_string(precision)));
    mesh.flops_per_core = peak == d.matrix_flops.end() || d.parallel_units == 0
                              ? 0
                              : peak->second / static_cast<double>(d.parallel_units);
    return mesh;
}

int Topology::common_level(std::int64_t a, std::int64_t b) const {
    if (a == b) {
        return -1;
    }
    for (std::size_t l = 0; l < levels.size(); ++l) {
        if (a / levels[l].devices == b / levels[l].devices) {
            return static_cast<int>(l);
        }
    }
    return static_cast<int>(levels.size()) - 1;
}

Topology derive_topology(const Machine& m) {
    std::vector<const Zone*> path;
    if (!path_to_device(m, m.root, path)) {
        throw UsageError("machine '" + m.name + "' has no kind with FLOP rates (peak or flop_per_cycle) to simulate on");
    }
    Topology t;
    t.machine = m.name;
    t.software = m.software;
    t.machine_power_w = machine::totals(m).power_watts;
    t.device = describe_device(m, *path.back());
    std::int64_t total = 1;
    for (const Zone* zone : path) {
        total *= zone->count;
    }
    t.device.count = total;
    // Device memory held by DIP-like children of an ancestor (HBM outside the device), shared by its devices.
    std::int64_t devices = 1;
    double latency = t.device.link_latency_s;
    for (std::size_t i = path.size() - 1; i-- > 0;) {
        const Zone& zone = *path[i];
        const ZoneKind& kind = m.kind(zone.kind);
        devices *= path[i + 1]->count;
        Level level;
        level.kind = zone.kind;
        level.devices = devices;
        level.instances = total / devices;
        double ethernet = 0, hbm = 0, hbm_bandwidth = 0;
        for (const Zone& child : zone.children) {
            const ZoneKind& c = m.kind(child.kind);
            ethernet += static_cast<double>(child.count) * property(c, "ethernet_bandwidth");
            hbm += static_cast<double>(child.count) * property(c, "hbm");
            hbm_bandwidth += static_cast<double>(child.count) * property(c, "hbm_bandwidth");
        }
        if (t.device.memory_bytes == 0 && hbm > 0) {
            t.device.memory_bytes = hbm / static_cast<double>(devices);
            t.device.memory_bandwidth = hbm_bandwidth / static_cast<double>(devices);
        }
        if (t.device.memory_bytes == 0 && kind.properties.count("host_memory") != 0) {  // CPU ranks share the DRAM
            t.device.memory_bytes = property(kind, "host_memory") / static_cast<double>(devices);
            t.device.memory_name = "DRAM";
        }
        if (kind.properties.count("edges") != 0 && kind.properties.count("edge_bandwidth") != 0) {
            level.egress_bandwidth = property(kind, "edges") * property(kind, "edge_bandwidth");
        } else if (kind.properties.count("injection_bandwidth") != 0) {
            level.egress_bandwidth = property(kind, "injection_bandwidth");
            latency = property(kind, "injection_latency", latency);
        } else if (ethernet > 0) {
            level.egress_bandwidth = ethernet;
            latency = zplane_latency(m);
        } else if (!t.levels.empty()) {
            level.egress_bandwidth = t.levels.back().egress_bandwidth * static_cast<double>(path[i + 1]->count);
        } else {
            level.egress_bandwidth = t.device.link_bandwidth * static_cast<double>(path[i + 1]->count);
        }
        latency = kind.properties.count("switch_latency") != 0 ? property(kind, "switch_latency") : latency;
        level.latency_s = latency;
        t.levels.push_back(level);
    }
    if (t.levels.empty()) {  // a bare device (one GPU): a level of one so that common_level has an answer
        t.levels.push_back(Level{t.device.kind, 1, 1, t.device.link_bandwidth, t.device.link_latency_s});
    }
    return t;
}

}  // namespace dojo::sim
