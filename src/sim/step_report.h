// What simulate() reports once the step is timed: whether it fits (the stage short by the most, and the core
// placement's verdict on a mesh) and its energy. Private to src/sim.
#pragma once

#include "dojo/compiler/place_spatial.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

// Sets result.fits and result.fit_report from its stages' memory: the stage short by the most, in full, and how
// many others are short (a 128-stage pipeline that does not fit would otherwise make a report of 128 sentences).
// On a mesh of cores (`placement` not empty) also each stage's core placement: a stage whose layers no core layout
// holds does not fit, even where the chip's total SRAM and HBM share would.
void report_fit(const Device& device, const compiler::SpatialPlacement& placement, SimResult& result);

// Energy of one step, joules: each device draws idle power (idle_power_fraction x TDP) all step plus the rest of its
// TDP while busy (every stage's busy_s on its dp x tp devices); the rest of the machine's power (tile regulators,
// hosts, switches: the machine total less its devices' TDP) is drawn all step.
double step_energy_j(const Topology& topology, const compiler::Strategy& strategy, const SimResult& result);

}  // namespace dojo::sim
