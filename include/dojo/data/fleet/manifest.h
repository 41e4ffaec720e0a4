/** \file
 * The clip store's index (`manifest.sqlite` beside the shards): the store's settings, one row per clip (shard,
 * scene kind, split, frames, keyframe interval, ego speed, object counts by class, where its labels are) and one per
 * camera stream (where its MP4 bytes are, frames, keyframes). Queries select training subsets by these columns, as a
 * fleet's data engine mines clips for a scenario.
 *
 * SQL schema: tables `store(key, value)`, `clips(...)`, `streams(...)`; see manifest.cpp's kSchema. Every query is
 * a prepared statement with bound values: no user text is spliced into SQL.
 */
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dojo/data/fleet/scene.h"

struct sqlite3;

namespace dojo::data::fleet {

inline constexpr const char* kManifestName = "manifest.sqlite";

struct StreamRecord {
    std::string camera;
    std::uint64_t offset = 0, bytes = 0;  ///< of the MP4 member's bytes in the clip's shard
    int frames = 0;
    std::vector<int> keyframes;
};

struct ClipRecord {
    std::string clip;         ///< "clip-000012"
    std::string shard;        ///< file name, relative to the store directory
    SceneKind kind = SceneKind::Urban;
    std::string split;        ///< "train" or "test" (held-out scenes)
    std::uint64_t seed = 0;
    int frames = 0, fps = 0, width = 0, height = 0, keyframe_interval = 0;
    double ego_speed_mean_mps = 0, ego_speed_max_mps = 0;
    std::array<int, kObjectClasses> objects{};  ///< distinct objects of each class within the grid during the clip
    std::uint64_t labels_offset = 0, labels_bytes = 0;
    std::vector<StreamRecord> streams;
};

/// A selection of clips: every field that is set must hold.
struct ClipFilter {
    std::optional<SceneKind> kind;
    std::optional<std::string> split;
    std::optional<double> min_speed_mps, max_speed_mps;
    std::array<std::optional<int>, kObjectClasses> min_objects{};
    std::optional<int> limit;
    /// Parses "key=value" terms: scene=KIND, split=train|test, min-speed=M/S, max-speed=M/S, min-CLASS=N (e.g.
    /// min-pedestrian=3), limit=N. Throws UsageError naming a bad term and listing the keys.
    void set(const std::string& term);
};

class Manifest {
public:
    /// Opens `dir`/manifest.sqlite; `create` makes a new, empty one under a temporary name (the file must not
    /// exist), which commit() renames into place: a store whose manifest exists is complete. Throws IoError naming
    /// the file when it is missing, not a manifest, or from another format version.
    Manifest(const std::string& dir, bool create);
    /// Closes a created manifest and renames it into place.
    void commit();
    ~Manifest();
    Manifest(const Manifest&) = delete;
    Manifest& operator=(const Manifest&) = delete;

    void set_setting(const std::string& key, const std::string& value);
    std::map<std::string, std::string> settings() const;
    /// Adds a clip with its streams (one transaction).
    void add(const ClipRecord& clip);
    /// The clips `filter` selects, in clip-name order, with their streams.
    std::vector<ClipRecord> query(const ClipFilter& filter) const;

private:
    sqlite3* db_ = nullptr;
    std::string path_;      // the manifest's final name
    std::string partial_;   // where a created manifest is written until commit(); empty when opened
};

}  // namespace dojo::data::fleet
