// The OpenAPI 3 document of the service (openapi.h).
#include "dojo/service/openapi.h"

#include <string>

namespace dojo::service {
namespace {

using nlohmann::json;

json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }

json reply(const std::string& description, const json& schema) {
    return {{"description", description}, {"content", {{"application/json", {{"schema", schema}}}}}};
}

json errors(std::initializer_list<int> statuses) {
    json out = json::object();
    for (const int status : statuses) {
        out[std::to_string(status)] = reply(status == 401   ? "no valid token"
                                            : status == 404 ? "no such job (or another tenant's)"
                                            : status == 429 ? "the tenant's queue is full"
                                                            : "the request is wrong; the error says how",
                                            ref("Error"));
    }
    return out;
}

// `responses` with one more: the success reply.
json with(json responses, const std::string& status, json reply_object) {
    responses[status] = std::move(reply_object);
    return responses;
}

json job_id_parameter() {
    return json::array({{{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "integer"}}}}});
}

json schemas() {
    const json states = {"queued", "running", "preempted", "succeeded", "failed", "cancelled"};
    return {
        {"Error", {{"type", "object"}, {"required", {"error"}}, {"properties", {{"error", {{"type", "string"}}}}}}},
        {"JobRequest",
         {{"type", "object"},
          {"required", {"kind", "args"}},
          {"additionalProperties", false},
          {"properties",
           {{"kind", {{"type", "string"}, {"enum", {"train", "sim"}}}},
            {"args",
             {{"type", "object"},
              {"description", "the positional model and the CLI's long options, dashes as underscores"},
              {"required", {"model"}},
              {"properties", {{"model", {{"type", "string"}}}}}}},
            {"priority", {{"type", "string"}, {"enum", {"high", "normal", "low"}}, {"default", "normal"}}},
            {"slots", {{"type", "integer"}, {"minimum", 1}, {"default", 1}}},
            {"ranks",
             {{"type", "integer"},
              {"minimum", 1},
              {"default", 1},
              {"description", "train: MPI ranks (data parallel) sharing the slots; divides slots"}}}}}}},
        {"Job",
         {{"type", "object"},
          {"properties",
           {{"id", {{"type", "integer"}}},
            {"tenant", {{"type", "string"}}},
            {"kind", {{"type", "string"}}},
            {"args", {{"type", "object"}}},
            {"priority", {{"type", "string"}}},
            {"slots", {{"type", "integer"}}},
            {"ranks", {{"type", "integer"}}},
            {"state", {{"type", "string"}, {"enum", states}}},
            {"submitted", {{"type", "number"}, {"description", "Unix seconds"}}},
            {"started", {{"type", {"number", "null"}}}},
            {"finished", {{"type", {"number", "null"}}}},
            {"attempts", {{"type", "integer"}, {"description", "times it was started"}}},
            {"kills", {{"type", "integer"}, {"description", "times its process was killed (SIGKILL) and it was queued again"}}},
            {"exit_code", {{"type", "integer"}}},
            {"error", {{"type", {"string", "null"}}}}}}}},
    };
}

}  // namespace

nlohmann::json openapi_document() {
    json paths;
    paths["/v1/jobs"]["post"] = {
        {"summary", "submit a job"},
        {"requestBody", {{"required", true}, {"content", {{"application/json", {{"schema", ref("JobRequest")}}}}}}},
        {"responses", with(errors({400, 401, 429}), "201",
                           reply("queued", {{"type", "object"}, {"properties", {{"id", {{"type", "integer"}}}}}}))}};
    paths["/v1/jobs"]["get"] = {
        {"summary", "the tenant's jobs, newest first (an admin's: every tenant's)"},
        {"responses", with(errors({401}), "200",
                           reply("jobs", {{"type", "object"},
                                          {"properties", {{"jobs", {{"type", "array"}, {"items", ref("Job")}}}}}}))}};
    paths["/v1/jobs/{id}"]["get"] = {{"summary", "one job"}, {"parameters", job_id_parameter()},
                                     {"responses", with(errors({401, 404}), "200", reply("the job", ref("Job")))}};
    paths["/v1/jobs/{id}/cancel"]["post"] = {
        {"summary", "cancel: a queued job at once, a running one by stopping it"},
        {"parameters", job_id_parameter()},
        {"responses", with(errors({401, 404}), "200", reply("its state after", {{"type", "object"}}))}};
    paths["/v1/jobs/{id}/logs"]["get"] = {
        {"summary", "the job's stderr"}, {"parameters", job_id_parameter()},
        {"responses", with(errors({401, 404}), "200",
                           json{{"description", "text"}, {"content", {{"text/plain", json::object()}}}})}};
    paths["/v1/jobs/{id}/result"]["get"] = {
        {"summary", "the command's --json output, once the job has succeeded"}, {"parameters", job_id_parameter()},
        {"responses", with(errors({401, 404}), "200", reply("the result", {{"type", "object"}}))}};
    paths["/v1/events"]["get"] = {
        {"summary", "server-sent events: a `job` event (the job's JSON) whenever one of the tenant's jobs changes"},
        {"responses", with(errors({401}), "200",
                           json{{"description", "an event stream"}, {"content", {{"text/event-stream", json::object()}}}})}};
    paths["/v1/jobs/{id}/placement"]["get"] = {
        {"summary", "a succeeded sim job's plan on its simulated Dojo's tiles: which tiles its devices use, with their "
                    "pipeline stages and data-parallel replicas"},
        {"parameters", job_id_parameter()},
        {"responses", with(errors({401, 404}), "200", reply("the tiles", {{"type", "object"}}))}};
    paths["/v1/cluster"]["get"] = {
        {"summary", "the host's slots and who holds them (another tenant's job shows as \"other\"), utilization samples "
                    "of the last minutes and their mean idle fraction"},
        {"responses", with(errors({401}), "200", reply("the cluster", {{"type", "object"}}))}};
    return {{"openapi", "3.0.3"},
            {"info", {{"title", "OpenDojo training service"}, {"version", "1"}}},
            {"security", json::array({{{"bearer", json::array()}}})},
            {"components",
             {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}, {"schemas", schemas()}}},
            {"paths", paths}};
}

}  // namespace dojo::service
