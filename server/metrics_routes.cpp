// GET /metrics: Prometheus text exposition of the scheduler, the job store and HTTP.
#include <sstream>

#include "server/api_context.h"
#include "server/http_error.h"

namespace kiln::server {

namespace {

void write_histogram(std::ostringstream& out,
                     const std::string& name,
                     const std::map<std::string, scheduler::Histogram>& by_model) {
    out << "# TYPE " << name << " histogram\n";
    for (const auto& [model, h] : by_model) {
        for (size_t i = 0; i < h.bounds.size(); ++i) {
            out << name << "_bucket{model=\"" << model << "\",le=\"" << h.bounds[i] << "\"} "
                << h.buckets[i] << "\n";
        }
        out << name << "_bucket{model=\"" << model << "\",le=\"+Inf\"} " << h.count << "\n";
        out << name << "_sum{model=\"" << model << "\"} " << h.sum << "\n";
        out << name << "_count{model=\"" << model << "\"} " << h.count << "\n";
    }
}

std::string render(ApiContext& context) {
    const scheduler::SchedulerStats stats = context.scheduler.stats();
    std::ostringstream out;
    out << "# TYPE kiln_jobs gauge\n";
    const auto counts = context.jobs.count_by_status();
    for (auto status : {scheduler::JobStatus::QUEUED, scheduler::JobStatus::RUNNING,
                        scheduler::JobStatus::SUCCEEDED, scheduler::JobStatus::FAILED,
                        scheduler::JobStatus::CANCELLED}) {
        const auto it = counts.find(status);
        out << "kiln_jobs{status=\"" << scheduler::job_status_name(status) << "\"} "
            << (it == counts.end() ? 0 : it->second) << "\n";
    }
    out << "# TYPE kiln_jobs_finished_total counter\n";
    for (const auto& [status, n] : stats.finished_by_status)
        out << "kiln_jobs_finished_total{status=\"" << status << "\"} " << n << "\n";
    out << "# TYPE kiln_queue_length gauge\nkiln_queue_length " << stats.queued << "\n";
    out << "# TYPE kiln_jobs_running gauge\nkiln_jobs_running " << stats.running << "\n";
    write_histogram(out, "kiln_queue_wait_seconds", stats.queue_wait_by_model);
    write_histogram(out, "kiln_run_seconds", stats.run_time_by_model);
    out << "# TYPE kiln_admissions_refused_total counter\n";
    for (const auto& [reason, n] : stats.refused_by_reason)
        out << "kiln_admissions_refused_total{reason=\"" << http_error_of(reason).code << "\"} "
            << n << "\n";
    out << "# TYPE kiln_memory_pool_bytes gauge\n";
    out << "kiln_memory_pool_bytes{state=\"in_use\"} " << stats.pool_bytes_in_use << "\n";
    out << "kiln_memory_pool_bytes{state=\"cached\"} " << stats.pool_bytes_cached << "\n";
    out << "kiln_memory_pool_bytes{state=\"reserved\"} "
        << stats.pool_bytes_in_use + stats.pool_bytes_cached << "\n";
    out << "kiln_memory_pool_bytes{state=\"peak\"} " << stats.pool_bytes_peak << "\n";
    out << "# TYPE kiln_model_cache_bytes gauge\n";
    size_t cached = 0;
    for (const auto& m : stats.models) {
        out << "kiln_model_cache_bytes{model=\"" << m.name << "\"} " << m.memory_bytes << "\n";
        cached += m.memory_bytes + m.plan_bytes;
    }
    out << "# TYPE kiln_plan_cache_bytes gauge\n";
    for (const auto& m : stats.models)
        out << "kiln_plan_cache_bytes{model=\"" << m.name << "\"} " << m.plan_bytes << "\n";
    out << "# TYPE kiln_plan_cache_total counter\n";
    out << "kiln_plan_cache_total{result=\"hit\"} " << stats.plan_cache_hits << "\n";
    out << "kiln_plan_cache_total{result=\"miss\"} " << stats.plan_cache_misses << "\n";
    out << "# TYPE kiln_model_cache_models gauge\nkiln_model_cache_models " << stats.models.size()
        << "\n";
    out << "# TYPE kiln_model_cache_total_bytes gauge\nkiln_model_cache_total_bytes " << cached
        << "\n";
    out << "# TYPE kiln_http_requests_total counter\n";
    for (const auto& [key, n] : context.http.snapshot()) {
        const auto& [method, route, status] = key;
        out << "kiln_http_requests_total{method=\"" << method << "\",route=\"" << route
            << "\",status=\"" << status << "\"} " << n << "\n";
    }
    return out.str();
}

}  // namespace

void register_metrics_routes(Router& router, ApiContext& context) {
    router.add("GET", "/metrics",
               [&context](const httplib::Request&, httplib::Response& res, const std::string&) {
                   res.status = 200;
                   res.set_content(render(context), "text/plain; version=0.0.4");
               });
}

}  // namespace kiln::server
