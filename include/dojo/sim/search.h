/** \file
 * The strategy search (`--strategy auto`): splits of a model over a machine tried and simulated, the fastest fitting
 * plan first. Strategies with the same micro-batch size share one build of the step (compiler/plan.h: lay_out).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dojo/sim/simulate.h"

namespace dojo::sim {

/// The splits the search tries on `topology` at `global_batch`: tp dividing the innermost level, pp in powers of two
/// up to 128, dp as large as the devices allow and dividing the batch, one-sample micro-batches when pipelined.
std::vector<compiler::Strategy> candidate_splits(const Topology& topology, std::int64_t global_batch);

/// Tries data/tensor/pipeline splits of `model` at `global_batch` on the machine (tp within the innermost level,
/// pp in powers of two, dp as large as the batch and devices allow, one-sample micro-batches when pipelined) and
/// returns every result, fastest fitting plan first. Gradients are all-reduced in buckets of `bucket_bytes` with
/// `gradient_wire_bytes` per element on the wire (compiler/plan.h).
///
/// A split whose parameters, gradients and optimizer state alone (each divided as far as any saving divides it)
/// exceed a device's memory cannot fit, whatever it saves: it is not simulated unless no other split fits (then
/// every split is, and the fastest is the answer). `skipped`, when given, receives how many were left out.
std::vector<SimResult> search_strategies(const std::string& model, std::int64_t global_batch,
                                         const Topology& topology, compiler::Precision precision,
                                         const autodiff::OptimizerConfig& optimizer,
                                         std::size_t bucket_bytes = std::size_t{8} << 20,
                                         double gradient_wire_bytes = 4, std::size_t* skipped = nullptr);

}  // namespace dojo::sim
