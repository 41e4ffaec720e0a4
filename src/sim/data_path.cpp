// The input pipeline at machine scale (data_path.h).
#include "dojo/sim/data_path.h"

#include <algorithm>
#include <limits>

#include "dojo/util/error.h"
#include "dojo/util/text.h"

namespace dojo::sim {
namespace {

double number(const std::string& key, const std::string& text) {
    std::size_t used = 0;
    const double value = leading_number(text, used);
    if (used == 0 || used != text.size() || !(value > 0 && value < 1e15)) {
        throw UsageError("--video " + key + "=" + text + ": expected a positive number");
    }
    return value;
}

// Sum over the machine's instances of every kind that has `key`: units x the kind's value.
std::optional<double> machine_sum(const machine::Machine& m, const machine::Totals& t, const std::string& key) {
    double sum = 0;
    bool any = false;
    for (const auto& [kind, count] : t.units) {
        const auto& props = m.kind(kind).properties;
        if (const auto it = props.find(key); it != props.end()) {
            sum += static_cast<double>(count) * it->second.value;
            any = true;
        }
    }
    return any ? std::optional(sum) : std::nullopt;
}

// The decode rate per core of the machine's host kinds (their mean, weighted by cores): none if no host has one.
std::optional<double> decode_rate_per_core(const machine::Machine& m, const machine::Totals& t) {
    double cores = 0, pixels = 0;
    for (const auto& [kind, count] : t.units) {
        const auto& props = m.kind(kind).properties;
        const auto c = props.find("cores"), r = props.find("video_decode_pixels_per_s_per_core");
        if (c != props.end() && r != props.end()) {
            cores += static_cast<double>(count) * c->second.value;
            pixels += static_cast<double>(count) * c->second.value * r->second.value;
        }
    }
    return cores > 0 ? std::optional(pixels / cores) : std::nullopt;
}

}  // namespace

VideoInput VideoInput::parse(const std::string& spec) {
    VideoInput in;
    int cameras = 8, sequence = 1;
    double bitrate_bps = 8e6, fps = 36;
    std::size_t at = 0;
    while (at <= spec.size() && !spec.empty()) {
        const std::size_t end = std::min(spec.find(',', at), spec.size());
        const std::string term = spec.substr(at, end - at);
        at = end + 1;
        const std::size_t eq = term.find('=');
        const std::string key = term.substr(0, eq), value = eq == std::string::npos ? "" : term.substr(eq + 1);
        if (key == "cameras") {
            cameras = static_cast<int>(number(key, value));
        } else if (key == "sequence") {
            sequence = static_cast<int>(number(key, value));
        } else if (key == "stored") {
            const std::size_t x = value.find('x');
            if (x == std::string::npos) {
                throw UsageError("--video stored=" + value + ": expected WIDTHxHEIGHT, e.g. 1280x960");
            }
            in.stored_width = static_cast<int>(number(key, value.substr(0, x)));
            in.stored_height = static_cast<int>(number(key, value.substr(x + 1)));
        } else if (key == "bitrate") {
            const bool mega = value.ends_with("Mbps");
            bitrate_bps = number(key, mega ? value.substr(0, value.size() - 4) : value) * (mega ? 1e6 : 1);
        } else if (key == "fps") {
            fps = number(key, value);
        } else {
            throw UsageError("unknown --video key '" + key + "'; expected cameras=, sequence=, stored=WxH, "
                             "bitrate=N[Mbps] (per camera), fps=");
        }
    }
    if (cameras < 1 || cameras > 64 || sequence < 1 || sequence > 256) {
        throw UsageError("--video: cameras must be 1..64 and sequence 1..256");
    }
    in.frames_per_sample = cameras * sequence;
    in.stored_bytes_per_frame = bitrate_bps / 8 / fps;
    return in;
}

DataPathReport data_path(const machine::Machine& m, double compute_samples_per_s, const VideoInput& in) {
    const machine::Totals t = machine::totals(m);
    DataPathReport r;
    r.frames_per_s = compute_samples_per_s * in.frames_per_sample;
    r.resources.push_back({"compute", std::nullopt, 0, compute_samples_per_s});

    const double pixels_per_sample = static_cast<double>(in.stored_width) * in.stored_height * in.frames_per_sample;
    const std::optional<double> cores = machine_sum(m, t, "cores");
    const std::optional<double> rate = decode_rate_per_core(m, t);
    Resource decode{"decode", cores,
                    rate ? std::optional(compute_samples_per_s * pixels_per_sample / *rate) : std::nullopt,
                    std::nullopt};
    if (cores && rate) {
        decode.samples_per_s = *cores * *rate / pixels_per_sample;
    }
    r.resources.push_back(decode);

    const std::optional<double> pcie = machine_sum(m, t, "pcie_bandwidth");
    Resource transfer{"host-to-device", pcie, compute_samples_per_s * in.sample_bytes, std::nullopt};
    if (pcie && in.sample_bytes > 0) {
        transfer.samples_per_s = *pcie / in.sample_bytes;
    }
    r.resources.push_back(transfer);

    // The hosts' links to storage, capped by the storage system's own total where the machine describes one.
    std::optional<double> storage = machine_sum(m, t, "storage_bandwidth");
    if (const std::optional<double> system = machine_sum(m, t, "storage_system_bandwidth")) {
        storage = storage ? std::min(*storage, *system) : *system;
    }
    const double stored_per_sample = in.stored_bytes_per_frame * in.frames_per_sample;
    Resource read{"storage", storage, compute_samples_per_s * stored_per_sample, std::nullopt};
    if (storage && stored_per_sample > 0) {
        read.samples_per_s = *storage / stored_per_sample;
    }
    r.resources.push_back(read);

    r.samples_per_s = std::numeric_limits<double>::infinity();
    for (const Resource& resource : r.resources) {
        if (resource.samples_per_s && *resource.samples_per_s < r.samples_per_s) {
            r.samples_per_s = *resource.samples_per_s;
            r.bound = resource.name;
        }
    }
    return r;
}

}  // namespace dojo::sim
