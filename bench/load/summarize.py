#!/usr/bin/python3
"""Prints a Markdown table comparing load-runner JSON files (bench/results/*-load-*.json),
one column per file.

    /usr/bin/python3 bench/load/summarize.py bench/results/2026-11-24-load-*.json
"""

import json
import os
import sys


def ms(summary):
    if not summary or not summary.get("count"):
        return "-"
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} / {summary['max_ms']:.1f}"


def rows(r):
    f = r.get("fairness") or {}
    c = r["checks"]
    lat = r["latency"]
    pool = r.get("server_metrics", {}).get('kiln_memory_pool_bytes{state="peak"}')
    return [
        ("sessions × jobs", f"{r['sessions']} × {r['jobs_per_session']}"),
        ("mode", r["mode"]),
        ("workers / HTTP threads", f"{r['workers']} / {r.get('http_threads') or '?'}"),
        ("load average before → after",
         f"{r['machine']['loadavg_before'][0]} → {r['machine']['loadavg_after'][0]}"),
        ("jobs succeeded / expected", f"{r['jobs_succeeded']} / {r['jobs_expected']}"),
        ("errors", ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "0"),
        ("retries (counted)", ", ".join(f"{k} {v}" for k, v in sorted(r["retries"].items()))
         or "0"),
        ("jobs/s", r["jobs_per_s"]),
        ("server mean run time per job, s", r["server_mean_run_s"]),
        ("submit p50 / p99 / max, ms", ms(lat.get("submit"))),
        ("poll p50 / p99 / max, ms", ms(lat.get("poll"))),
        ("SSE event delay p50 / p99 / max, ms", ms(lat.get("event_delay"))),
        ("session create p50 / p99 / max, ms", ms(lat.get("session_create"))),
        ("connect p50 / p99 / max, ms", ms(lat.get("connect"))),
        ("fairness: 1-job session's queue wait, s", f.get("probe_queue_wait_s", "-")),
        ("fairness: jobs started before it / sessions queued then / workers",
         f"{f['jobs_started_before_probe']} / {f['sessions_with_queued_jobs_at_probe_submit']}"
         f" / {f['workers']}" if f else "-"),
        ("outputs checked (wrong size / not nearest own input)",
         f"{c['outputs_checked']} ({c['output_size_wrong']} / {c['output_not_nearest_own']})"),
        ("foreign job ids in listings", c["foreign_ids_in_listings"]),
        ("server peak RSS (VmHWM), MiB",
         "-" if not r.get("server_peak_rss_bytes") else
         f"{r['server_peak_rss_bytes'] / 2**20:.1f}"),
        ("memory pool peak, MiB", "-" if pool is None else f"{pool / 2**20:.1f}"),
        ("wall time, s", r["wall_s"]),
        ("result", "OK" if r["ok"] else "FAILED"),
    ]


def main():
    files = sys.argv[1:]
    if not files:
        sys.exit(__doc__)
    results = []
    for name in files:
        with open(name) as f:
            results.append(json.load(f))
    table = [rows(r) for r in results]
    print("| | " + " | ".join(f"`{os.path.basename(n)}`" for n in files) + " |")
    print("|---|" + "---:|" * len(files))
    for i, (label, _) in enumerate(table[0]):
        print(f"| {label} | " + " | ".join(str(t[i][1]) for t in table) + " |")


if __name__ == "__main__":
    main()
