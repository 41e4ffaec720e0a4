// The input pipeline of a camera-fed model at a simulated rate (sim/data_path.h), as `dojo sim --video` and
// `dojo compare --video` report it: the text block and the JSON object.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dojo/machine/machine.h"
#include "dojo/sim/data_path.h"
#include "dojo/sim/simulate.h"

namespace dojo::cli {

/// The data path of `model` (a catalog spec or ONNX file, fed camera video as `video` describes: sim::VideoInput)
/// on `machine` at `result`'s simulated rate: the decoded sample is the model's input, 2 bytes a value in bf16 and
/// cfp8, 4 in fp32.
sim::DataPathReport video_data_path(const std::string& video, const std::string& model,
                                    const machine::Machine& machine, const sim::SimResult& result);

nlohmann::json data_path_json(const sim::DataPathReport& report);

/// The indented block `dojo sim` prints under its report.
void print_data_path(const sim::DataPathReport& report);

}  // namespace dojo::cli
