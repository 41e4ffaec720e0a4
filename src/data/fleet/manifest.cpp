// The clip store's SQLite manifest (manifest.h).
#include "dojo/data/fleet/manifest.h"

#include <filesystem>
#include <sstream>

#include <sqlite3.h>

#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "dojo/util/text.h"

namespace dojo::data::fleet {
namespace {

constexpr const char* kFormat = "dojo-clip-store-1";

constexpr const char* kSchema = R"(
CREATE TABLE store(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips(
  clip TEXT PRIMARY KEY, shard TEXT NOT NULL, scene TEXT NOT NULL, split TEXT NOT NULL, seed INTEGER NOT NULL,
  frames INTEGER NOT NULL, fps INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
  keyframe_interval INTEGER NOT NULL, ego_speed_mean REAL NOT NULL, ego_speed_max REAL NOT NULL,
  car INTEGER NOT NULL, truck INTEGER NOT NULL, pedestrian INTEGER NOT NULL, cyclist INTEGER NOT NULL,
  cone INTEGER NOT NULL, barrier INTEGER NOT NULL, structure INTEGER NOT NULL,
  labels_offset INTEGER NOT NULL, labels_bytes INTEGER NOT NULL);
CREATE TABLE streams(
  clip TEXT NOT NULL REFERENCES clips(clip), camera TEXT NOT NULL, offset INTEGER NOT NULL, bytes INTEGER NOT NULL,
  frames INTEGER NOT NULL, keyframes TEXT NOT NULL, PRIMARY KEY(clip, camera));
CREATE INDEX clips_by_scene ON clips(scene, split);
)";

// A prepared statement, finalized on scope exit.
class Statement {
public:
    Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
            throw IoError("manifest " + path + ": " + sqlite3_errmsg(db));
        }
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    void bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT); }
    void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
    void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    /// Steps once: true while there is a row.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            throw IoError("manifest " + path_ + ": " + sqlite3_errmsg(db_));
        }
        return rc == SQLITE_ROW;
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    double real(int column) const { return sqlite3_column_double(stmt_, column); }
    std::string text(int column) const {
        const auto* p = sqlite3_column_text(stmt_, column);
        return p ? reinterpret_cast<const char*>(p) : "";
    }

private:
    sqlite3* db_;
    std::string path_;
    sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql, const std::string& path) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        throw IoError("manifest " + path + ": " + text);
    }
}

std::string join_keyframes(const std::vector<int>& keyframes) {
    std::string out;
    for (const int k : keyframes) {
        out += (out.empty() ? "" : " ") + std::to_string(k);
    }
    return out;
}

std::vector<int> split_keyframes(const std::string& text) {
    std::vector<int> out;
    std::istringstream in(text);
    for (int k = 0; in >> k;) {
        out.push_back(k);
    }
    return out;
}

double parse_number(const std::string& key, const std::string& value) {
    std::size_t used = 0;
    const double number = leading_number(value, used);
    if (used == 0 || used != value.size() || !(number >= 0 && number < 1e9)) {
        throw UsageError("clip filter " + key + "=" + value + ": expected a non-negative number");
    }
    return number;
}

}  // namespace

void ClipFilter::set(const std::string& term) {
    const std::size_t eq = term.find('=');
    const std::string key = term.substr(0, eq), value = eq == std::string::npos ? "" : term.substr(eq + 1);
    if (eq == std::string::npos || value.empty()) {
        throw UsageError("clip filter '" + term + "': expected KEY=VALUE");
    }
    if (key == "scene") {
        kind = parse_scene_kind(value);
    } else if (key == "split") {
        if (value != "train" && value != "test") {
            throw UsageError("clip filter split=" + value + ": expected train or test");
        }
        split = value;
    } else if (key == "min-speed") {
        min_speed_mps = parse_number(key, value);
    } else if (key == "max-speed") {
        max_speed_mps = parse_number(key, value);
    } else if (key == "limit") {
        limit = static_cast<int>(parse_number(key, value));
    } else if (key.starts_with("min-")) {
        min_objects[static_cast<int>(parse_object_class(key.substr(4)))] = static_cast<int>(parse_number(key, value));
    } else {
        throw UsageError("unknown clip filter '" + key +
                         "'; expected scene, split, min-speed, max-speed, min-CLASS (e.g. min-pedestrian) or limit");
    }
}

Manifest::Manifest(const std::string& dir, bool create) : path_(dir + "/" + kManifestName) {
    if (create && std::filesystem::exists(path_)) {
        throw UsageError("a clip store already exists in " + dir + " (" + path_ + "); choose another --out directory "
                         "or remove it first");
    }
    if (!create && !std::filesystem::is_regular_file(path_)) {
        throw IoError("no clip store in " + dir + ": " + path_ + " is missing (make one with dojo data synth)");
    }
    const int flags = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    if (create) {
        partial_ = path_ + ".partial";
        std::filesystem::remove(partial_);  // an earlier run's, never committed
    }
    if (sqlite3_open_v2((create ? partial_ : path_).c_str(), &db_, flags | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
        const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw IoError("cannot open manifest " + path_ + ": " + message);
    }
    sqlite3_busy_timeout(db_, 5000);
    try {
        if (create) {
            exec(db_, kSchema, path_);
            set_setting("format", kFormat);
        } else if (const auto s = settings(); s.count("format") == 0 || s.at("format") != kFormat) {
            throw IoError("manifest " + path_ + " is from another store format (" +
                          (s.count("format") ? s.at("format") : std::string("none")) + "); this dojo reads " + kFormat);
        }
    } catch (const Error&) {
        sqlite3_close(db_);
        throw;
    } catch (const std::exception&) {
        sqlite3_close(db_);
        throw IoError("manifest " + path_ + " is not a clip-store manifest");
    }
}

Manifest::~Manifest() {
    sqlite3_close(db_);
    if (!partial_.empty()) {
        std::error_code ignored;
        std::filesystem::remove(partial_, ignored);  // never committed: incomplete
    }
}

void Manifest::commit() {
    DOJO_CHECK(!partial_.empty());
    sqlite3_close(db_);
    db_ = nullptr;
    std::error_code error;
    std::filesystem::rename(partial_, path_, error);
    if (error) {
        throw IoError("cannot finish manifest " + path_ + ": " + error.message());
    }
    partial_.clear();
}

void Manifest::set_setting(const std::string& key, const std::string& value) {
    Statement s(db_, "INSERT OR REPLACE INTO store(key, value) VALUES(?, ?)", path_);
    s.bind(1, key);
    s.bind(2, value);
    s.step();
}

std::map<std::string, std::string> Manifest::settings() const {
    Statement s(db_, "SELECT key, value FROM store", path_);
    std::map<std::string, std::string> out;
    while (s.step()) {
        out[s.text(0)] = s.text(1);
    }
    return out;
}

void Manifest::add(const ClipRecord& c) {
    exec(db_, "BEGIN", path_);
    try {
        Statement s(db_, "INSERT INTO clips VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", path_);
        int i = 1;
        s.bind(i++, c.clip);
        s.bind(i++, c.shard);
        s.bind(i++, std::string(scene_kind_name(c.kind)));
        s.bind(i++, c.split);
        s.bind(i++, static_cast<std::int64_t>(c.seed));
        for (const int v : {c.frames, c.fps, c.width, c.height, c.keyframe_interval}) {
            s.bind(i++, std::int64_t{v});
        }
        s.bind(i++, c.ego_speed_mean_mps);
        s.bind(i++, c.ego_speed_max_mps);
        for (const int n : c.objects) {
            s.bind(i++, std::int64_t{n});
        }
        s.bind(i++, static_cast<std::int64_t>(c.labels_offset));
        s.bind(i++, static_cast<std::int64_t>(c.labels_bytes));
        s.step();
        for (const StreamRecord& st : c.streams) {
            Statement t(db_, "INSERT INTO streams VALUES(?,?,?,?,?,?)", path_);
            t.bind(1, c.clip);
            t.bind(2, st.camera);
            t.bind(3, static_cast<std::int64_t>(st.offset));
            t.bind(4, static_cast<std::int64_t>(st.bytes));
            t.bind(5, std::int64_t{st.frames});
            t.bind(6, join_keyframes(st.keyframes));
            t.step();
        }
        exec(db_, "COMMIT", path_);
    } catch (...) {
        exec(db_, "ROLLBACK", path_);
        throw;
    }
}

std::vector<ClipRecord> Manifest::query(const ClipFilter& f) const {
    std::string sql = "SELECT clip, shard, scene, split, seed, frames, fps, width, height, keyframe_interval, "
                      "ego_speed_mean, ego_speed_max, car, truck, pedestrian, cyclist, cone, barrier, structure, "
                      "labels_offset, labels_bytes FROM clips WHERE 1";
    if (f.kind) sql += " AND scene = :scene";
    if (f.split) sql += " AND split = :split";
    if (f.min_speed_mps) sql += " AND ego_speed_mean >= :min_speed";
    if (f.max_speed_mps) sql += " AND ego_speed_mean <= :max_speed";
    for (int c = 0; c < kObjectClasses; ++c) {
        if (f.min_objects[c]) {  // the column name is one of ours, never the user's text
            sql += std::string(" AND ") + object_class_name(static_cast<ObjectClass>(c)) + " >= " +
                   std::to_string(*f.min_objects[c]);
        }
    }
    sql += " ORDER BY clip";
    if (f.limit) sql += " LIMIT " + std::to_string(*f.limit);
    Statement s(db_, sql, path_);
    int i = 1;
    if (f.kind) s.bind(i++, std::string(scene_kind_name(*f.kind)));
    if (f.split) s.bind(i++, *f.split);
    if (f.min_speed_mps) s.bind(i++, *f.min_speed_mps);
    if (f.max_speed_mps) s.bind(i++, *f.max_speed_mps);
    std::vector<ClipRecord> out;
    while (s.step()) {
        ClipRecord c;
        c.clip = s.text(0);
        c.shard = s.text(1);
        c.kind = parse_scene_kind(s.text(2));
        c.split = s.text(3);
        c.seed = static_cast<std::uint64_t>(s.integer(4));
        c.frames = static_cast<int>(s.integer(5));
        c.fps = static_cast<int>(s.integer(6));
        c.width = static_cast<int>(s.integer(7));
        c.height = static_cast<int>(s.integer(8));
        c.keyframe_interval = static_cast<int>(s.integer(9));
        c.ego_speed_mean_mps = s.real(10);
        c.ego_speed_max_mps = s.real(11);
        for (int k = 0; k < kObjectClasses; ++k) {
            c.objects[k] = static_cast<int>(s.integer(12 + k));
        }
        c.labels_offset = static_cast<std::uint64_t>(s.integer(19));
        c.labels_bytes = static_cast<std::uint64_t>(s.integer(20));
        out.push_back(std::move(c));
    }
    for (ClipRecord& c : out) {
        Statement t(db_, "SELECT camera, offset, bytes, frames, keyframes FROM streams WHERE clip = ? ORDER BY rowid", path_);
        t.bind(1, c.clip);
        while (t.step()) {
            c.streams.push_back({t.text(0), static_cast<std::uint64_t>(t.integer(1)),
                                 static_cast<std::uint64_t>(t.integer(2)), static_cast<int>(t.integer(3)),
                                 split_keyframes(t.text(4))});
        }
    }
    return out;
}

}  // namespace dojo::data::fleet
