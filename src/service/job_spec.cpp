// Job requests: parsing, validation and the command line (job_spec.h).
#include "dojo/service/job_spec.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <set>

#include "dojo/autodiff/training.h"
#include "dojo/compiler/plan.h"
#include "dojo/compiler/precision_policy.h"
#include "dojo/machine/machine.h"
#include "dojo/runtime/gradient_sync.h"
#include "dojo/util/error.h"

namespace dojo::service {
namespace {

using nlohmann::json;

constexpr std::size_t kMostBodyBytes = 64 * 1024;

// The options a job may set, per kind (the CLI's long options with dashes as underscores). Outputs, resumption and
// output format are the service's.
const std::vector<std::string_view>& allowed_options(std::string_view kind) {
    static const std::vector<std::string_view> train = {
        "data", "data_dir", "precision", "epochs", "batch", "optimizer", "lr", "momentum", "weight_decay", "seed",
        "train_limit", "test_limit", "sample_shape", "eval_batch", "kernels", "checkpoint_every", "strict"};
    static const std::vector<std::string_view> sim = {
        "machine", "batch", "precision", "strategy", "optimizer", "bucket_mib", "grad_compression", "top", "video"};
    return kind == "train" ? train : sim;
}

std::string option_flag(const std::string& key) {
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    return flag;
}

void check_value(const std::string& key, const json& value) {
    if (value.is_string()) {
        if (value.get<std::string>().empty() || value.get<std::string>().size() > 1024) {
            throw UsageError("args." + key + ": give a non-empty string of at most 1024 characters");
        }
    } else if (value.is_number()) {
        if (!std::isfinite(value.get<double>())) {
            throw UsageError("args." + key + ": must be a finite number");
        }
    } else if (value.is_boolean()) {
        if (!value.get<bool>()) {
            throw UsageError("args." + key + ": a flag is true or left out");
        }
    } else if (value.is_array()) {
        if (value.empty() || value.size() > 8 ||
            std::any_of(value.begin(), value.end(), [](const json& v) { return !v.is_number_integer(); })) {
            throw UsageError("args." + key + ": an array of 1 to 8 integers, like [3, 64, 64]");
        }
    } else {
        throw UsageError("args." + key + ": must be a string, a number, true or an array of integers");
    }
}

std::string text_of(const json& value) {
    if (value.is_string()) {
        return value.get<std::string>();
    }
    if (value.is_number_integer()) {
        return std::to_string(value.get<std::int64_t>());
    }
    if (value.is_array()) {
        std::string out;
        for (const json& v : value) {
            out += (out.empty() ? "" : ",") + std::to_string(v.get<std::int64_t>());
        }
        return out;
    }
    return value.dump();  // a finite double, as JSON writes it (shortest round-trip)
}

// A machine preset exists (its description loads): checked once per name, as every request may name one.
void check_machine_preset(const std::string& name) {
    static std::mutex mutex;
    static std::set<std::string> known;
    {
        const std::lock_guard lock(mutex);
        if (known.contains(name)) {
            return;
        }
    }
    (void)machine::load_machine(name, machine::default_machines_dir());  // UsageError naming it if not
    const std::lock_guard lock(mutex);
    if (known.size() < 1024) {  // presets are few; names a tenant invents are refused above, never kept
        known.insert(name);
    }
}

// The values the command itself would refuse, refused before the job is accepted with the command's own parsers:
// precisions, strategies, optimizers, machines, kernels, wire formats, and counts and rates out of range. (A data
// source is checked when the job runs: it names files on the server.)
void check_option_values(const json& args) {
    const auto text = [&](const char* key) { return args[key].is_string() ? args[key].get<std::string>() : ""; };
    const auto need_text = [&](const char* key) {
        if (!args[key].is_string()) {
            throw UsageError(std::string("args.") + key + " must be a string");
        }
        return args[key].get<std::string>();
    };
    if (args.contains("precision")) {
        (void)compiler::parse_precision(need_text("precision"));
    }
    if (args.contains("optimizer")) {
        (void)autodiff::optimizer_named(need_text("optimizer"));
    }
    if (args.contains("strategy") && need_text("strategy") != "auto") {
        (void)compiler::parse_strategy(text("strategy"));
    }
    if (args.contains("machine")) {  // a preset of the server's (no path: a tenant reads no file by naming it)
        const std::string name = need_text("machine");
        if (name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
            throw UsageError("args.machine names a machine preset (dojo machine list), not a path");
        }
        check_machine_preset(name);
    }
    if (args.contains("grad_compression")) {
        (void)runtime::parse_wire_format(need_text("grad_compression"));
    }
    if (args.contains("kernels") && need_text("kernels") != "fast" && text("kernels") != "reference") {
        throw UsageError("args.kernels is '" + text("kernels") + "'; expected fast or reference");
    }
    for (const char* key : {"epochs", "batch", "train_limit", "test_limit", "eval_batch", "checkpoint_every",
                            "bucket_mib", "top"}) {
        if (args.contains(key) && (!args[key].is_number() || !(args[key].get<double>() >= 1))) {
            throw UsageError(std::string("args.") + key + " must be a number of at least 1");
        }
    }
    for (const char* key : {"lr", "momentum", "weight_decay", "seed"}) {
        if (args.contains(key) && (!args[key].is_number() || !(args[key].get<double>() >= 0))) {
            throw UsageError(std::string("args.") + key + " must be a number of at least 0");
        }
    }
}

}  // namespace

std::string_view to_string(Priority priority) {
    switch (priority) {
    case Priority::High: return "high";
    case Priority::Low: return "low";
    case Priority::Normal: break;
    }
    return "normal";
}

Priority parse_priority(std::string_view text) {
    if (text == "high") return Priority::High;
    if (text == "normal") return Priority::Normal;
    if (text == "low") return Priority::Low;
    throw UsageError("priority '" + std::string(text) + "' is not high, normal or low");
}

JobSpec parse_job_request(std::string_view body, int max_slots) {
    if (body.size() > kMostBodyBytes) {
        throw UsageError("the request body is " + std::to_string(body.size()) + " bytes; at most " +
                         std::to_string(kMostBodyBytes) + " are accepted");
    }
    const json request = json::parse(body, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
        throw UsageError("the request body must be a JSON object: {\"kind\": \"train\", \"args\": {\"model\": ...}}");
    }
    for (const auto& [key, value] : request.items()) {
        if (key != "kind" && key != "args" && key != "priority" && key != "slots" && key != "ranks") {
            throw UsageError("unknown field '" + key + "'; a job has kind, args, priority, slots and ranks");
        }
    }
    JobSpec spec;
    if (!request.contains("kind") || !request["kind"].is_string() ||
        (request["kind"] != "train" && request["kind"] != "sim")) {
        throw UsageError("kind must be \"train\" or \"sim\"");
    }
    spec.kind = request["kind"].get<std::string>();
    if (request.contains("priority")) {
        if (!request["priority"].is_string()) {
            throw UsageError("priority must be a string: high, normal or low");
        }
        spec.priority = parse_priority(request["priority"].get<std::string>());
    }
    if (request.contains("slots")) {
        if (!request["slots"].is_number_integer() || request["slots"].get<std::int64_t>() < 1 ||
            request["slots"].get<std::int64_t>() > max_slots) {
            throw UsageError("slots must be an integer from 1 to " + std::to_string(max_slots) + " (this tenant's most)");
        }
        spec.slots = request["slots"].get<int>();
    }
    if (request.contains("ranks")) {
        if (!request["ranks"].is_number_integer() || request["ranks"].get<std::int64_t>() < 1 ||
            request["ranks"].get<std::int64_t>() > spec.slots || spec.slots % request["ranks"].get<int>() != 0) {
            throw UsageError("ranks must be an integer from 1 to slots (" + std::to_string(spec.slots) +
                             ") that divides it: each rank runs slots / ranks threads");
        }
        spec.ranks = request["ranks"].get<int>();
        if (spec.ranks > 1 && spec.kind != "train") {
            throw UsageError("ranks: only a train job runs as MPI ranks (a sim job is one process)");
        }
    }
    if (!request.contains("args") || !request["args"].is_object()) {
        throw UsageError("args must be an object holding the model and the command's options");
    }
    const json& args = request["args"];
    if (!args.contains("model") || !args["model"].is_string() || args["model"].get<std::string>().empty() ||
        args["model"].get<std::string>().front() == '-') {
        throw UsageError("args.model must be a catalog spec or an .onnx path, like \"mlp\"");
    }
    const std::vector<std::string_view>& allowed = allowed_options(spec.kind);
    for (const auto& [key, value] : args.items()) {
        if (key == "model") {
            continue;
        }
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
            std::string names;
            for (const std::string_view name : allowed) {
                names += (names.empty() ? "" : ", ") + std::string(name);
            }
            throw UsageError("args." + key + " is not an option a " + spec.kind + " job may set; these are: " + names);
        }
        check_value(key, value);
    }
    if (spec.kind == "sim" && !args.contains("machine")) {
        throw UsageError("a sim job needs args.machine, like \"tile\"");
    }
    if (spec.kind == "sim" && !args.contains("batch")) {
        throw UsageError("a sim job needs args.batch, the global batch");
    }
    check_option_values(args);
    spec.args = args;
    return spec;
}

std::vector<std::string> job_argv(const JobSpec& spec, const std::string& dojo, const std::string& job_dir,
                                  bool resume) {
    std::vector<std::string> argv;
    if (spec.ranks > 1) {  // data parallel: its ranks die with mpirun as mpirun dies with the engine (DOJO_DIE_WITH_PARENT)
        argv = {"mpirun", "-np", std::to_string(spec.ranks), "--bind-to", "none", "--oversubscribe", "-x",
                "DOJO_DIE_WITH_PARENT=1"};
        if (geteuid() == 0) {
            argv.push_back("--allow-run-as-root");
        }
    }
    argv.insert(argv.end(), {dojo, spec.kind, spec.args["model"].get<std::string>()});
    for (const auto& [key, value] : spec.args.items()) {
        if (key == "model") {
            continue;
        }
        argv.push_back(option_flag(key));
        if (!value.is_boolean()) {
            argv.push_back(text_of(value));
        }
    }
    if (spec.kind == "train") {
        argv.insert(argv.end(), {"--checkpoint", job_dir + "/checkpoint", "--metrics", job_dir + "/metrics.jsonl",
                                 "--threads", std::to_string(spec.slots / spec.ranks)});
        if (resume) {
            argv.push_back("--resume");
        }
        if (spec.args["model"].get<std::string>().ends_with(".onnx")) {  // dojo train writes back ONNX models only
            argv.insert(argv.end(), {"--out", job_dir + "/artifacts/model.onnx"});
        }
    } else {
        argv.insert(argv.end(), {"--trace", job_dir + "/artifacts/trace.json"});
    }
    argv.push_back("--json");
    return argv;
}

nlohmann::json to_json(const JobSpec& spec) {
    return {{"kind", spec.kind}, {"args", spec.args}, {"priority", to_string(spec.priority)}, {"slots", spec.slots},
            {"ranks", spec.ranks}};
}

JobSpec job_spec_from_json(const nlohmann::json& stored) {
    JobSpec spec;
    spec.kind = stored.at("kind").get<std::string>();
    spec.args = stored.at("args");
    spec.priority = parse_priority(stored.at("priority").get<std::string>());
    spec.slots = stored.at("slots").get<int>();
    spec.ranks = stored.value("ranks", 1);
    return spec;
}

}  // namespace dojo::service
