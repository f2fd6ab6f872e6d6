#include "scheduler/redis/record_codec.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln::scheduler {

namespace {

using nlohmann::json;

[[noreturn]] void corrupt(std::string_view what, const std::string& why) {
    throw core::Error(core::ErrorCode::BAD_FILE,
                      "stored " + std::string(what) + " record is not valid: " + why);
}

json parse_object(std::string_view record, std::string_view what) {
    json j = json::parse(record, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        corrupt(what, "not a JSON object");
    return j;
}

// The field `key` of j when present, else `fallback`; a field of the wrong type is corrupt.
template <typename T>
T field(const json& j, const char* key, T fallback, std::string_view what) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null())
        return fallback;
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        corrupt(what, std::string("field \"") + key + "\" has the wrong type");
    }
}

template <typename T, typename Parse>
T enum_field(const json& j, const char* key, T fallback, Parse parse, std::string_view what) {
    const std::string name = field<std::string>(j, key, "", what);
    if (name.empty())
        return fallback;
    const auto parsed = parse(name);
    if (!parsed)
        corrupt(what, std::string("field \"") + key + "\" is \"" + name + "\"");
    return *parsed;
}

// The inverse of idempotency_key_hex.
std::string from_hex(const std::string& hex, std::string_view what) {
    const auto nibble = [&](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        corrupt(what, "field \"idempotency_key_hex\" is not hex");
    };
    if (hex.size() % 2 != 0)
        corrupt(what, "field \"idempotency_key_hex\" has an odd length");
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2)
        out += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
    return out;
}

// Other strings are the server's own (ids, names, validated JSON, messages); a byte that is
// not UTF-8 in a message becomes U+FFFD rather than failing the write.
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string idempotency_key_hex(std::string_view key) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(key.size() * 2);
    for (const char c : key) {
        const auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string encode_job(const Job& job) {
    json outputs = json::array();
    for (const JobOutput& o : job.outputs) {
        outputs.push_back({{"index", o.index},
                           {"width", o.width},
                           {"height", o.height},
                           {"content_type", o.content_type},
                           {"digest", o.digest}});
    }
    json j = {{"id", job.id},
              {"session_id", job.session_id},
              {"seq", job.seq},
              {"model", job.model},
              {"task", std::string(task_kind_name(job.task))},
              {"params_json", job.params_json},
              {"tile", job.tile},
              {"priority", std::string(priority_name(job.priority))},
              {"status", std::string(job_status_name(job.status))},
              {"created_at", job.created_at},
              {"started_at", job.started_at},
              {"finished_at", job.finished_at},
              {"attempts", job.attempts},
              {"progress_done", job.progress_done},
              {"progress_total", job.progress_total},
              {"retry_of", job.retry_of},
              {"idempotency_key_hex", idempotency_key_hex(job.idempotency_key)},
              {"request_hash", job.request_hash},
              {"input_width", job.input_width},
              {"input_height", job.input_height},
              {"update_seq", job.update_seq},
              {"outputs", std::move(outputs)}};
    if (job.error)
        j["error"] = {{"code", job.error->code}, {"message", job.error->message}};
    return dump(j);
}

Job decode_job(std::string_view record) {
    constexpr std::string_view what = "job";
    const json j = parse_object(record, what);
    Job job;
    job.id = field<std::string>(j, "id", "", what);
    job.session_id = field<std::string>(j, "session_id", "", what);
    if (job.id.empty() || job.session_id.empty())
        corrupt(what, "no id or session");
    job.seq = field<int64_t>(j, "seq", 0, what);
    job.model = field<std::string>(j, "model", "", what);
    job.task = enum_field(j, "task", TaskKind::UPSCALE, parse_task_kind, what);
    job.params_json = field<std::string>(j, "params_json", "{}", what);
    job.tile = field<int>(j, "tile", -1, what);
    job.priority = enum_field(j, "priority", Priority::NORMAL, parse_priority, what);
    job.status = enum_field(j, "status", JobStatus::QUEUED, parse_job_status, what);
    job.created_at = field<int64_t>(j, "created_at", 0, what);
    job.started_at = field<int64_t>(j, "started_at", 0, what);
    job.finished_at = field<int64_t>(j, "finished_at", 0, what);
    job.attempts = field<int>(j, "attempts", 0, what);
    job.progress_done = field<int>(j, "progress_done", 0, what);
    job.progress_total = field<int>(j, "progress_total", 0, what);
    job.retry_of = field<std::string>(j, "retry_of", "", what);
    job.idempotency_key = from_hex(field<std::string>(j, "idempotency_key_hex", "", what), what);
    job.request_hash = field<std::string>(j, "request_hash", "", what);
    job.input_width = field<int>(j, "input_width", 0, what);
    job.input_height = field<int>(j, "input_height", 0, what);
    job.update_seq = field<int64_t>(j, "update_seq", 0, what);
    if (const auto e = j.find("error"); e != j.end() && !e->is_null()) {
        if (!e->is_object())
            corrupt(what, "field \"error\" is not an object");
        job.error = JobError{field<std::string>(*e, "code", "", what),
                             field<std::string>(*e, "message", "", what)};
    }
    if (const auto o = j.find("outputs"); o != j.end() && !o->is_null()) {
        if (!o->is_array())
            corrupt(what, "field \"outputs\" is not an array");
        for (const json& out : *o) {
            if (!out.is_object())
                corrupt(what, "an output is not an object");
            JobOutput x;
            x.index = field<int>(out, "index", 0, what);
            x.width = field<int>(out, "width", 0, what);
            x.height = field<int>(out, "height", 0, what);
            x.content_type = field<std::string>(out, "content_type", "image/png", what);
            x.digest = field<std::string>(out, "digest", "", what);
            job.outputs.push_back(std::move(x));
        }
    }
    return job;
}

}  // namespace kiln::scheduler
