// SQLite state of the service (store.h).
#include "dojo/service/store.h"

#include <sqlite3.h>

#include <filesystem>
#include <regex>

#include "dojo/service/tokens.h"
#include "dojo/util/error.h"

namespace dojo::service {
namespace {

// A prepared statement, finalized when it goes out of scope.
class Statement {
public:
    Statement(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
            throw Error(std::string("service state: ") + sqlite3_errmsg(db));
        }
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Statement& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    Statement& bind(int i, double v) {
        sqlite3_bind_double(stmt_, i, v);
        return *this;
    }
    bool step() {  // true while a row is ready
        const int rc = sqlite3_step(stmt_);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            throw Error(std::string("service state: ") + sqlite3_errmsg(db_));
        }
        return rc == SQLITE_ROW;
    }
    std::string text(int column) const {
        const unsigned char* t = sqlite3_column_text(stmt_, column);
        return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    double real(int column) const { return sqlite3_column_double(stmt_, column); }

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kJobColumns =
    "id, tenant, spec, state, submitted, started, finished, exit_code, attempts, error, kills";

Job job_from(const Statement& s) {
    Job j;
    j.id = s.integer(0);
    j.tenant = s.text(1);
    j.spec = job_spec_from_json(nlohmann::json::parse(s.text(2)));
    j.state = s.text(3);
    j.submitted = s.real(4);
    j.started = s.real(5);
    j.finished = s.real(6);
    j.exit_code = static_cast<int>(s.integer(7));
    j.attempts = static_cast<int>(s.integer(8));
    j.error = s.text(9);
    j.kills = static_cast<int>(s.integer(10));
    return j;
}

Tenant tenant_from(const Statement& s) {
    return Tenant{s.text(0), s.integer(1) != 0, static_cast<int>(s.integer(2)), static_cast<int>(s.integer(3))};
}

}  // namespace

Store::Store(const std::string& state_dir) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    const std::string path = state_dir + "/state.db";
    if (ec || sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
        const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : ec.message();
        sqlite3_close(db_);
        throw IoError("cannot open the service state " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS tenants(name TEXT PRIMARY KEY, token_hash TEXT UNIQUE NOT NULL, "
         "admin INTEGER NOT NULL, max_slots INTEGER NOT NULL, max_queued INTEGER NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, "
         "spec TEXT NOT NULL, state TEXT NOT NULL, submitted REAL NOT NULL, started REAL NOT NULL DEFAULT 0, "
         "finished REAL NOT NULL DEFAULT 0, exit_code INTEGER NOT NULL DEFAULT 0, "
         "attempts INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL, "
         "slots INTEGER NOT NULL, kills INTEGER NOT NULL DEFAULT 0)");
    add_kills_column_if_missing();
    exec("CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state)");
    exec("CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs(tenant, state)");
}

Store::~Store() { sqlite3_close(db_); }

// A state directory written before jobs counted their kills: the column is added, every job at 0.
void Store::add_kills_column_if_missing() {
    Statement columns(db_, "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'kills'");
    if (!columns.step()) {
        exec("ALTER TABLE jobs ADD COLUMN kills INTEGER NOT NULL DEFAULT 0");
    }
}

void Store::exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string why = message != nullptr ? message : "unknown";
        sqlite3_free(message);
        throw Error("service state: " + why);
    }
}

std::string Store::add_tenant(const Tenant& tenant) {
    static const std::regex name_rule("[A-Za-z0-9_-]{1,64}");
    if (!std::regex_match(tenant.name, name_rule)) {
        throw UsageError("tenant name '" + tenant.name + "': use 1 to 64 letters, digits, '-' or '_'");
    }
    if (tenant.max_slots < 1 || tenant.max_queued < 1) {
        throw UsageError("--max-slots and --max-queued must be 1 or more");
    }
    const std::lock_guard lock(mutex_);
    Statement exists(db_, "SELECT 1 FROM tenants WHERE name = ?");
    if (exists.bind(1, tenant.name).step()) {
        throw UsageError("tenant '" + tenant.name + "' exists already");
    }
    const std::string token = new_token();
    Statement insert(db_, "INSERT INTO tenants(name, token_hash, admin, max_slots, max_queued) VALUES(?, ?, ?, ?, ?)");
    insert.bind(1, tenant.name).bind(2, token_hash(token)).bind(3, std::int64_t{tenant.admin ? 1 : 0});
    insert.bind(4, std::int64_t{tenant.max_slots}).bind(5, std::int64_t{tenant.max_queued}).step();
    return token;
}

std::optional<Tenant> Store::tenant_by_token(const std::string& token) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT name, admin, max_slots, max_queued FROM tenants WHERE token_hash = ?");
    if (!s.bind(1, token_hash(token)).step()) {
        return std::nullopt;
    }
    return tenant_from(s);
}

std::optional<Tenant> Store::tenant(const std::string& name) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT name, admin, max_slots, max_queued FROM tenants WHERE name = ?");
    if (!s.bind(1, name).step()) {
        return std::nullopt;
    }
    return tenant_from(s);
}

std::int64_t Store::submit(const Tenant& tenant, const JobSpec& spec, double now) {
    const std::lock_guard lock(mutex_);
    Statement count(db_, "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND state IN ('queued', 'running', 'preempted')");
    count.bind(1, tenant.name).step();
    if (count.integer(0) >= tenant.max_queued) {
        throw UsageError("tenant '" + tenant.name + "' has " + std::to_string(count.integer(0)) +
                         " jobs queued or running, its most; wait for some to finish or cancel them");
    }
    Statement insert(db_, "INSERT INTO jobs(tenant, spec, state, submitted, priority, slots) "
                          "VALUES(?, ?, 'queued', ?, ?, ?)");
    insert.bind(1, tenant.name).bind(2, to_json(spec).dump()).bind(3, now);
    insert.bind(4, std::int64_t{static_cast<int>(spec.priority)}).bind(5, std::int64_t{spec.slots}).step();
    return sqlite3_last_insert_rowid(db_);
}

std::optional<Job> Store::job(std::int64_t id) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, (std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?").c_str());
    if (!s.bind(1, id).step()) {
        return std::nullopt;
    }
    return job_from(s);
}

std::vector<Job> Store::jobs(const std::string& tenant, int limit) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, (std::string("SELECT ") + kJobColumns +
                      " FROM jobs WHERE ? = '' OR tenant = ? ORDER BY id DESC LIMIT ?")
                         .c_str());
    s.bind(1, tenant).bind(2, tenant).bind(3, std::int64_t{limit});
    std::vector<Job> out;
    while (s.step()) {
        out.push_back(job_from(s));
    }
    return out;
}

std::vector<Job> Store::jobs_in_state(const std::string& state) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, (std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state = ? ORDER BY id").c_str());
    s.bind(1, state);
    std::vector<Job> out;
    while (s.step()) {
        out.push_back(job_from(s));
    }
    return out;
}

std::vector<UseInterval> Store::use_intervals(double now, double since) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT tenant, slots, started, finished, state FROM jobs WHERE started > 0 AND "
                     "(state = 'running' OR finished >= ?)");
    s.bind(1, since);
    std::vector<UseInterval> out;
    while (s.step()) {
        const bool running = s.text(4) == "running";
        const double finished = s.real(3);
        if (running || finished > 0) {  // a preempted job's time up to its preemption is not recorded
            out.push_back({s.text(0), static_cast<int>(s.integer(1)), s.real(2), running ? now : finished});
        }
    }
    return out;
}

std::vector<QueuedJob> Store::waiting_jobs() {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT id, tenant, priority, slots, submitted FROM jobs WHERE state IN ('queued', 'preempted') "
                     "ORDER BY id");
    std::vector<QueuedJob> out;
    while (s.step()) {
        out.push_back({s.integer(0), s.text(1), static_cast<Priority>(s.integer(2)), static_cast<int>(s.integer(3)),
                       s.real(4), 0.0});
    }
    return out;
}

void Store::mark_running(std::int64_t id, double now) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1 WHERE id = ?");
    s.bind(1, now).bind(2, id).step();
}

void Store::mark_finished(std::int64_t id, const std::string& state, int exit_code, const std::string& error,
                          double now) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE jobs SET state = ?, exit_code = ?, error = ?, finished = ? WHERE id = ?");
    s.bind(1, state).bind(2, std::int64_t{exit_code}).bind(3, error).bind(4, now).bind(5, id).step();
}

std::string Store::cancel_if_queued(std::int64_t id, double now) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state IN ('queued', 'preempted')");
    s.bind(1, now).bind(2, id).step();
    Statement state(db_, "SELECT state FROM jobs WHERE id = ?");
    return state.bind(1, id).step() ? state.text(0) : std::string();
}

void Store::mark_preempted(std::int64_t id) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE jobs SET state = 'preempted' WHERE id = ? AND state = 'running'");
    s.bind(1, id).step();
}

void Store::requeue_killed(std::int64_t id) {
    const std::lock_guard lock(mutex_);
    Statement s(db_, "UPDATE jobs SET state = 'queued', kills = kills + 1 WHERE id = ? AND state = 'running'");
    s.bind(1, id).step();
}

int Store::recover_interrupted() {
    const std::lock_guard lock(mutex_);
    exec("UPDATE jobs SET state = 'queued' WHERE state = 'running'");
    return sqlite3_changes(db_);
}

}  // namespace dojo::service
