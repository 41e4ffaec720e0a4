// Per kernel of a training step's ExecPlan: the time it takes on this CPU (the executor's profile) against the time
// the simulator's CPU kernel model gives it (sim/cpu_kernel_time.h, on the machine's device), as JSON lines: where
// the model is right and where it is wrong, one kernel at a time (bench/whole_steps.py reads them). A oneDNN kernel's
// line also gives its reorders (runtime::OneDnnKernels::reorders): their measured seconds, inside "seconds", and
// the bytes they move (the elements', padding excluded, as the simulator times them).
//
//   node_times MODEL BATCH PRECISION [STEPS [MACHINE]]     (MACHINE: dev-vm:ranks_per_host=1,cores_per_rank=2)
//
// MODEL is a catalog spec or an .onnx file (loaded as it declares its input); the step is the one `dojo train` runs:
// the one-process Plan lowered by lower_cpu. Values: parameters ~ U(-0.05, 0.05), inputs ~ U(0, 1), targets one-hot
// (token ids 1 and 0 for a language model), AdamW at step 1: the kernels' times do not depend on the values beyond that.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "dojo/compiler/build_step.h"
#include "dojo/compiler/plan.h"
#include "dojo/machine/machine.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/trainer.h"
#include "dojo/sim/cpu_kernel_time.h"
#include "dojo/sim/topology.h"

namespace {

using namespace dojo;

void fill_leaves(runtime::Executor& executor, const compiler::Step& step) {
    const ir::Graph& g = step.training.graph;
    std::mt19937 random(7);
    std::uniform_real_distribution<float> weight(-0.05f, 0.05f), unit(0.0f, 1.0f);
    for (const ir::NodeId p : g.parameters()) {
        for (float& v : executor.value(p).data) {
            v = weight(random);
        }
    }
    const bool tokens = step.target_kind == compiler::TargetKind::ClassIds;  // the input holds token ids
    for (float& v : executor.value(step.input).data) {
        v = tokens ? 1.0f : unit(random);
    }
    ir::Buffer<float>& target = executor.value(step.target);
    std::fill(target.data.begin(), target.data.end(), 0.0f);
    if (step.target_kind == compiler::TargetKind::ClassProbabilities && target.shape.rank() == 2) {
        for (std::int64_t r = 0; r < target.shape[0]; ++r) {
            target.data[static_cast<std::size_t>(r * target.shape[1])] = 1.0f;
        }
    }
    const auto set = [&](ir::NodeId id, float v) {
        if (id.valid()) {
            std::fill(executor.value(id).data.begin(), executor.value(id).data.end(), v);
        }
    };
    set(step.training.learning_rate, 1e-3f);
    set(step.training.bias_correction1, 0.1f);
    set(step.training.bias_correction2, 0.001f);
    set(step.step_input, 1.0f);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: node_times MODEL BATCH PRECISION [STEPS [MACHINE]]\n");
        return 2;
    }
    const std::string spec = argv[1];
    const std::int64_t batch = std::atoll(argv[2]);
    const int steps = argc > 4 ? std::atoi(argv[4]) : 20;
    const std::string machine_spec = argc > 5 ? argv[5] : "dev-vm:ranks_per_host=1,cores_per_rank=2";
    const sim::Device device =
        sim::derive_topology(machine::load_machine(machine_spec, machine::default_machines_dir())).device;
    const compiler::StepFactory build = compiler::step_factory(
        spec, {compiler::make_policy(compiler::parse_precision(argv[3]), 0), autodiff::AdamWConfig{}});
    const compiler::Step step = build(batch);
    const compiler::Plan plan = compiler::make_plan(build, spec, batch, compiler::Strategy{});
    const runtime::ExecutorOptions options = runtime::training_executor_options(step, runtime::Kernels::Fast, true);
    runtime::Executor executor(runtime::lower_cpu(plan, options), options);
    fill_leaves(executor, step);
    for (int k = 0; k < 3; ++k) {  // warm-up: first touches, oneDNN's caches
        executor.run();
    }
    executor.reset_profile();
    const ir::Graph& g = plan.step.graph;
    const runtime::ExecPlan& exec = executor.plan();
    // The reorders' seconds so far, per node: the warm-up's, left out below.
    auto reorder_seconds = [&](std::uint32_t i) {
        return exec.onednn ? exec.onednn->reorder_seconds(ir::NodeId{i}) : 0.0;
    };
    std::vector<double> warm_up_reorder_s(g.size());
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        warm_up_reorder_s[i] = reorder_seconds(i);
    }
    for (int k = 0; k < steps; ++k) {
        executor.run();
    }
    const std::vector<sim::KernelTraffic> traffic = sim::kernel_traffic(exec, plan.step.updates, device.cache_bytes);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const runtime::NodeKernel k = exec.kernel[i];
        if (k == runtime::NodeKernel::None || k == runtime::NodeKernel::FusedMember ||
            k == runtime::NodeKernel::Alias) {
            continue;
        }
        const ir::Node& node = g.node(ir::NodeId{i});
        const int group = exec.member_of[i];
        std::size_t reorder_bytes = 0;
        if (exec.onednn) {
            for (const runtime::OneDnnKernels::Reorder& r : exec.onednn->reorders(ir::NodeId{i})) {
                reorder_bytes += runtime::reorder_skipped(exec, r.value, r.into_shared_copy) ? 0 : r.bytes_moved;
            }
        }
        std::printf("{\"node\": %u, \"op\": \"%s\", \"kernel\": \"%s\", \"elements\": %lld, \"members\": %zu, "
                    "\"externals\": %zu, \"blocked\": %d, \"reorder_seconds\": %.9g, \"reorder_bytes\": %zu, "
                    "\"seconds\": %.9g, \"predicted_seconds\": %.9g}\n",
                    i, std::string(ir::to_string(node.op)).c_str(), std::string(runtime::to_string(k)).c_str(),
                    static_cast<long long>(node.type.shape.numel()),
                    group >= 0 ? exec.groups[static_cast<std::size_t>(group)].members.size() : 1,
                    group >= 0 ? exec.groups[static_cast<std::size_t>(group)].externals.size() : node.inputs.size(),
                    exec.blocked[i] ? 1 : 0, (reorder_seconds(i) - warm_up_reorder_s[i]) / steps, reorder_bytes,
                    executor.node_seconds()[i] / steps,
                    sim::cpu_kernel_time(exec, ir::NodeId{i}, device, traffic[i]).seconds);
    }
    std::fprintf(stderr, "%d threads; apply: predicted %.6g s\n", omp_get_max_threads(),
                 sim::cpu_apply_seconds(device, traffic.back()));
    return 0;
}
