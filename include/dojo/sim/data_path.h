/** \file
 * The input pipeline of a video-trained model at machine scale: what a training step's rate asks of the hosts that
 * decode the fleet's clips, of the links that carry decoded frames to the devices, and of the storage the clips come
 * from, and which of them (or the compute) bounds the rate.
 *
 *   frames/s           samples/s x camera frames per sample
 *   decode cores       frames/s x stored pixels per frame / (pixels/s one host core decodes): the host kind's
 *                      `video_decode_pixels_per_s_per_core` (measured on the development VM by bench/video_decode.py,
 *                      assumed for other hosts); H.264 decoding time grows with the pixel count
 *   host -> device     samples/s x bytes of a decoded sample at the training resolution and precision, against the
 *                      hosts' `pcie_bandwidth` (Dojo: host to DIPs; DGX: host to GPUs)
 *   storage            frames/s x compressed bytes per frame, against the hosts' `storage_bandwidth` (their links to
 *                      storage, summed), capped by a zone's `storage_system_bandwidth` (what the storage system itself
 *                      delivers, e.g. Tesla's 2021 cluster's 1.6 TB/s NVMe tier) where the machine has one
 * Each resource gives the samples/s it could sustain; the least of them and the compute's is the machine's rate.
 * A machine whose host kinds lack a figure has that resource reported as unknown, never as unlimited.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"

namespace dojo::sim {

struct VideoInput {
    int frames_per_sample = 8;               ///< cameras x sequence
    int stored_width = 1280, stored_height = 960;  ///< as the clips are stored (decoding cost)
    double stored_bytes_per_frame = 0;       ///< compressed
    double sample_bytes = 0;                 ///< a decoded sample as the devices receive it
    /// Parses --video's "cameras=8,sequence=1,stored=1280x960,bitrate=8Mbps,fps=36" (each key optional); the
    /// compressed bytes per frame are the bitrate over the frame rate. Throws UsageError naming a bad key.
    /// sample_bytes is the caller's.
    static VideoInput parse(const std::string& spec);
};

struct Resource {
    std::string name;                  ///< "compute", "decode", "host-to-device", "storage"
    std::optional<double> capacity;    ///< what the machine has: cores, or bytes/s; none when not described
    std::optional<double> needed;      ///< at the compute's rate: cores, or bytes/s; none when the machine lacks the
                                       ///< figure to tell (decode cores where no host has a decode rate)
    std::optional<double> samples_per_s;  ///< the rate this resource alone sustains; none when not described
};

struct DataPathReport {
    double frames_per_s = 0;           ///< at the compute's rate
    std::vector<Resource> resources;   ///< compute first
    std::string bound;                 ///< the resource with the least samples_per_s
    double samples_per_s = 0;          ///< the machine's rate: the least of the resources'
};

/// The data path of `machine` training at `compute_samples_per_s` on `input`.
DataPathReport data_path(const machine::Machine& machine, double compute_samples_per_s, const VideoInput& input);

}  // namespace dojo::sim
