// The HTTP/JSON API (server.h).
#include "dojo/service/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dojo/frontend/catalog.h"
#include "dojo/service/dashboard.h"
#include "dojo/service/openapi.h"
#include "dojo/service/runner.h"
#include "dojo/service/slurm.h"
#include "dojo/service/store.h"
#include "dojo/service/tile_view.h"
#include "dojo/machine/machine.h"
#include "dojo/util/error.h"

namespace dojo::service {
namespace {

using nlohmann::json;

void reply_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", message}}.dump(), "application/json");
}

void reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
}

// A job's model must exist before the job is accepted: an .onnx file the server can read, or a catalog spec the
// catalog knows (its options checked too). UsageError otherwise, naming it.
void check_model(const std::string& model) {
    if (model.ends_with(".onnx")) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(model, ec)) {
            throw UsageError("args.model: no ONNX file '" + model + "' on the server (give a path the server can read)");
        }
        return;
    }
    try {
        (void)frontend::catalog_sample(model);
    } catch (const Error& e) {
        throw UsageError(std::string("args.model: ") + e.what());
    }
}

json job_json(const Job& job) {
    json j = {{"id", job.id}, {"tenant", job.tenant}, {"kind", job.spec.kind}, {"args", job.spec.args},
              {"priority", to_string(job.spec.priority)}, {"slots", job.spec.slots},
              {"ranks", job.spec.ranks}, {"state", job.state},
              {"submitted", job.submitted}, {"attempts", job.attempts}, {"kills", job.kills}, {"exit_code", job.exit_code}};
    j["started"] = job.started > 0 ? json(job.started) : json(nullptr);
    j["finished"] = job.finished > 0 ? json(job.finished) : json(nullptr);
    j["error"] = job.error.empty() ? json(nullptr) : json(job.error);
    return j;
}

std::string file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class Api {
public:
    Api(Store& store, Engine& runner, int slots) : store_(store), runner_(runner), slots_(slots) {}

    void route(httplib::Server& server) {
        server.Get("/", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(std::string(dashboard_html()), "text/html; charset=utf-8");  // it asks for a token
        });
        server.Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
            with_tenant(req, res, [&](const Tenant& t) { stream_events(t, res); });
        });
        server.Get("/v1/cluster", [this](const httplib::Request& req, httplib::Response& res) {
            with_tenant(req, res, [&](const Tenant& t) { reply(res, 200, cluster_json(t)); });
        });
        server.Get("/openapi.json", [](const httplib::Request&, httplib::Response& res) {
            reply(res, 200, openapi_document());  // public: it says how to call, not what anyone runs
        });
        server.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
            with_tenant(req, res, [&](const Tenant& t) { submit(t, req, res); });
        });
        server.Get("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
            with_tenant(req, res, [&](const Tenant& t) {
                int limit = 1000;
                if (req.has_param("limit")) {
                    const std::string text = req.get_param_value("limit");
                    if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos ||
                        std::stoi(text) < 1) {
                        return reply_error(res, 400, "limit must be a whole number from 1 to 999999");
                    }
                    limit = std::stoi(text);
                }
                json list = json::array();
                for (const Job& job : store_.jobs(t.admin ? "" : t.name, limit)) {
                    list.push_back(job_json(job));
                }
                reply(res, 200, {{"jobs", list}});
            });
        });
        server.Get(R"(/v1/jobs/(\d{1,18}))", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) { reply(res, 200, job_json(job)); });
        });
        server.Post(R"(/v1/jobs/(\d{1,18})/cancel)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                const bool ended = job.state != "queued" && job.state != "running";
                const std::string state = ended ? job.state : runner_.cancel(job.id, now_seconds());
                runner_.notify();
                reply(res, 200, {{"id", job.id}, {"state", state}});
            });
        });
        server.Get(R"(/v1/jobs/(\d{1,18})/logs)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                res.set_content(file_text(runner_.job_dir(job.id) + "/log.txt"), "text/plain");
            });
        });
        server.Get(R"(/v1/jobs/(\d{1,18})/metrics)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) { reply(res, 200, metrics_of(job)); });
        });
        server.Get(R"(/v1/jobs/(\d{1,18})/artifacts)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                json names = json::array();
                std::error_code ec;
                for (const auto& entry : std::filesystem::directory_iterator(runner_.job_dir(job.id) + "/artifacts", ec)) {
                    if (entry.is_regular_file()) {
                        names.push_back(entry.path().filename().string());
                    }
                }
                reply(res, 200, {{"id", job.id}, {"artifacts", names}});
            });
        });
        // A name is a plain file name of the job's artifacts: no directories, so no way out of them.
        server.Get(R"(/v1/jobs/(\d{1,18})/artifacts/([A-Za-z0-9._-]{1,128}))",
                   [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                const std::string name = req.matches[2].str();
                const std::filesystem::path path = std::filesystem::path(runner_.job_dir(job.id)) / "artifacts" / name;
                if (name.front() == '.' || !std::filesystem::is_regular_file(path)) {
                    return reply_error(res, 404, "job " + std::to_string(job.id) + " has no artifact '" + name + "'");
                }
                res.set_content(file_text(path.string()), name.ends_with(".json") ? "application/json"
                                                                                   : "application/octet-stream");
            });
        });
        server.Get(R"(/v1/jobs/(\d{1,18})/result)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                if (job.state != "succeeded") {
                    return reply_error(res, 404, "job " + std::to_string(job.id) + " is " + job.state +
                                                     ": a result exists once it has succeeded");
                }
                res.set_content(file_text(runner_.job_dir(job.id) + "/result.json"), "application/json");
            });
        });
        // A succeeded sim job's plan on its simulated Dojo's tiles (tile_view.h).
        server.Get(R"(/v1/jobs/(\d{1,18})/placement)", [this](const httplib::Request& req, httplib::Response& res) {
            with_job(req, res, [&](const Job& job) {
                if (job.spec.kind != "sim" || job.state != "succeeded") {
                    return reply_error(res, 404, "job " + std::to_string(job.id) + " is no succeeded sim job: only " +
                                                     "a simulated plan has a placement");
                }
                const json result = json::parse(file_text(runner_.job_dir(job.id) + "/result.json"), nullptr, false);
                try {
                    reply(res, 200, tile_view(result, machine::default_machines_dir()));
                } catch (const UsageError& e) {
                    reply_error(res, 404, e.what());
                }
            });
        });
        server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty()) {
                reply_error(res, res.status, res.status == 404 ? "no such resource" : "request refused");
            }
        });
        server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
            reply_error(res, 500, "internal error: the server logs say more");
        });
    }

private:
    template <class F>
    void with_tenant(const httplib::Request& req, httplib::Response& res, F&& f) {
        const std::string header = req.get_header_value("Authorization");
        const std::string prefix = "Bearer ";
        const std::optional<Tenant> tenant =
            header.rfind(prefix, 0) == 0 ? store_.tenant_by_token(header.substr(prefix.size())) : std::nullopt;
        if (!tenant) {
            return reply_error(res, 401, "send a tenant's token: Authorization: Bearer TOKEN (dojo tenant add)");
        }
        f(*tenant);
    }

    template <class F>
    void with_job(const httplib::Request& req, httplib::Response& res, F&& f) {
        with_tenant(req, res, [&](const Tenant& t) {
            const std::int64_t id = std::stoll(req.matches[1].str());
            const std::optional<Job> job = store_.job(id);
            if (!job || (!t.admin && job->tenant != t.name)) {  // another tenant's job is no more visible than none
                return reply_error(res, 404, "no job " + std::to_string(id));
            }
            f(*job);
        });
    }

    void submit(const Tenant& tenant, const httplib::Request& req, httplib::Response& res) {
        JobSpec spec;
        try {
            spec = parse_job_request(req.body, std::min(tenant.max_slots, slots_));
            check_model(spec.args["model"].get<std::string>());
        } catch (const UsageError& e) {
            return reply_error(res, 400, e.what());
        }
        try {
            reply(res, 201, {{"id", store_.submit(tenant, spec, now_seconds())}});
            runner_.notify();
        } catch (const UsageError& e) {
            reply_error(res, 429, e.what());
        }
    }

    // Server-sent events: one `job` event (the job's JSON) whenever one of the tenant's jobs (an admin's: any) is
    // submitted or changes state or attempt, found by looking at the store four times a second; a comment every 15 s
    // keeps the connection open through proxies. Ends when the client goes or the server stops.
    void stream_events(const Tenant& t, httplib::Response& res) {
        auto seen = std::make_shared<std::map<std::int64_t, std::string>>();  // job -> "state/attempts" sent
        auto sequence = std::make_shared<std::int64_t>(0);
        auto quiet_since = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider("text/event-stream", [this, t, seen, sequence, quiet_since](
                                                                    std::size_t, httplib::DataSink& sink) {
            if (stopping_.load()) {
                sink.done();
                return true;
            }
            bool sent = false;
            for (const Job& job : store_.jobs(t.admin ? "" : t.name, 100000)) {
                const std::string key = job.state + "/" + std::to_string(job.attempts);
                auto [it, added] = seen->emplace(job.id, key);
                if (!added && it->second == key) {
                    continue;
                }
                it->second = key;
                const std::string event = "id: " + std::to_string(++*sequence) + "\nevent: job\ndata: " +
                                          job_json(job).dump() + "\n\n";
                if (!sink.write(event.data(), event.size())) {
                    return false;
                }
                sent = true;
            }
            const auto now = std::chrono::steady_clock::now();
            if (sent) {
                *quiet_since = now;
            } else if (now - *quiet_since > std::chrono::seconds(15)) {
                const std::string ping = ": still here\n\n";
                if (!sink.write(ping.data(), ping.size())) {
                    return false;
                }
                *quiet_since = now;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            return true;
        });
    }

  public:
    void stop() { stopping_.store(true); }

  private:
    std::atomic<bool> stopping_{false};

    // The host's slots and who holds them (another tenant's job is "other" to a tenant that is not an admin), and the
    // utilization samples with their mean idle fraction.
    json cluster_json(const Tenant& t) {
        json slots = json::array();
        int index = 0;
        for (const Engine::SlotHolder& s : runner_.slot_holders()) {
            const json holder = s.job == 0                       ? json(nullptr)
                                : t.admin || s.tenant == t.name ? json(s.job)
                                                                 : json("other");
            slots.push_back({{"slot", index++}, {"job", holder}});
        }
        json samples = json::array();
        double idle = 0;
        const std::vector<std::pair<double, double>> utilization = runner_.utilization();
        for (const auto& [time, busy] : utilization) {
            samples.push_back({{"t", time}, {"busy", busy}});
            idle += 1.0 - busy;
        }
        return {{"engine", runner_.name()}, {"total_slots", slots_}, {"slots", slots}, {"utilization", samples},
                {"idle_fraction", utilization.empty() ? 0.0 : idle / static_cast<double>(utilization.size())}};
    }

    // A train job's progress so far (the --metrics lines: epoch, batch, batches, loss, samples/s) and, once it has
    // succeeded, its epochs' results (train loss, test loss and accuracy).
    json metrics_of(const Job& job) {
        json steps = json::array();
        std::ifstream in(runner_.job_dir(job.id) + "/metrics.jsonl");
        for (std::string line; std::getline(in, line);) {
            const json parsed = json::parse(line, nullptr, false);
            if (!parsed.is_discarded()) {  // a line being written as we read is skipped
                steps.push_back(parsed);
            }
        }
        json epochs = json::array();
        if (job.state == "succeeded") {
            const json result = json::parse(file_text(runner_.job_dir(job.id) + "/result.json"), nullptr, false);
            if (!result.is_discarded() && result.contains("epochs")) {
                epochs = result["epochs"];
                for (json& e : epochs) {
                    e.erase("step_seconds");  // the plot's data, not every step's time
                }
            }
        }
        return {{"id", job.id}, {"state", job.state}, {"progress", steps}, {"epochs", epochs}};
    }

    Store& store_;
    Engine& runner_;
    int slots_;
};

}  // namespace

void serve(const ServeOptions& options, const std::atomic<bool>& stop, const std::function<void(int)>& ready) {
    Store store(options.state_dir);
    std::unique_ptr<Engine> engine;
    int slots = 0;
    if (options.scheduler == "slurm") {  // Slurm holds the jobs that were running: they go on there
        SlurmOptions slurm_options;
        slurm_options.priorities =
            options.slurm_priorities == "partitions" ? SlurmPriorities::Partitions : SlurmPriorities::Qos;
        auto slurm = std::make_unique<SlurmEngine>(store, options.state_dir, options.dojo, slurm_options);
        slots = static_cast<int>(slurm->slot_holders().size());
        engine = std::move(slurm);
    } else {
        const int recovered = store.recover_interrupted();
        if (recovered > 0) {
            std::fprintf(stderr, "dojo serve: %d job(s) the last server left running are queued again\n", recovered);
        }
        slots = options.slots > 0 ? options.slots : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        engine = std::make_unique<Runner>(store, options.state_dir, options.dojo, slots,
                                          options.fair_share_half_life_s);
    }
    Engine& runner = *engine;
    httplib::Server server;
    server.set_payload_max_length(1 << 20);
    // Debian's cpp-httplib listens with a backlog of 5: under a burst of connections (200 clients) the kernel then
    // drops SYNs and clients wait a second to retry, or are reset. Listening again on the bound socket raises it.
    int listening = -1;
    server.set_socket_options([&listening](socket_t sock) {
        httplib::default_socket_options(sock);
        listening = sock;
    });
    // Each request, and each open event stream, holds one of the pool's threads while it lasts.
    server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    Api api(store, runner, slots);
    api.route(server);
    const int port = options.port == 0 ? server.bind_to_any_port(options.host.c_str())
                                       : (server.bind_to_port(options.host.c_str(), options.port) ? options.port : -1);
    if (port < 0) {
        throw IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                      " (in use, or not this host's address); choose another with --listen HOST:PORT");
    }
    if (listening >= 0) {
        ::listen(listening, SOMAXCONN);
    }
    std::thread http([&] { server.listen_after_bind(); });
    if (ready) {
        ready(port);
    }
    while (!stop.load()) {
        runner.tick(now_seconds());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    api.stop();  // event streams end, so that the server's threads can
    server.stop();
    http.join();
}

}  // namespace dojo::service
