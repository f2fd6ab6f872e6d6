#!/usr/bin/python3
"""kiln vs PyTorch vs ONNX Runtime: CPU time per image for Real-ESRGAN and waifu2x models.

For each (arch, size, threads) runs kiln, the PyTorch peer and the ONNX
Runtime peer, each in its own process on the same architecture and input
size, and prints a Markdown table: median seconds per engine, kiln's speed-up
over each peer (peer_time / kiln_time), achieved GFLOP/s and peak RSS.  Writes
everything, with the machine facts, to bench/results/<date>-<cpu>-upscale.json.

  /usr/bin/python3 bench/run_upscale_bench.py            # full run
  /usr/bin/python3 bench/run_upscale_bench.py --quick    # 64x64, 1 thread, 1 run

The script itself needs only the standard library; the PyTorch peer is run
with --python (default /usr/bin/python3, where Debian's torch lives) and the
ONNX Runtime peer with node (install: cd bench/peers &&
ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci).
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(REPO, "bench", "peers")

# arch -> (kiln model name, MFLOP per input pixel, label)
ARCHS = {
    "rrdbnet": ("realesrgan-x4plus", 35.85, "RRDBNet x4plus"),
    "srvgg": ("realesr-animevideov3-x4", 1.24, "SRVGGNetCompact x4"),
    # Unpadded networks: a size x size window reads its border too, so the work per window
    # pixel falls with the size (UpConv7 1.22 at 64, 1.13 at 256; CUNet 2.11, 1.67): the
    # 256 figures, from kiln's graph.
    "upconv7": ("waifu2x-upconv7-anime-noise0-scale2x", 1.13, "waifu2x UpConv7 2x"),
    "cunet2": ("waifu2x-cunet-noise0-scale2x", 1.67, "waifu2x CUNet 2x"),
    # Convolutions and the attentions' two products, from kiln's graph (`kiln bench`).
    "omnisr": ("4x_WTP_descreenton", 1.52, "OmniSR x4"),
}
ENGINES = ("kiln", "pytorch", "onnxruntime")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def csv_ints(s):
    return [int(v) for v in s.split(",") if v.strip()]


def csv_strs(s):
    return [v.strip() for v in s.split(",") if v.strip()]


def sh(cmd, timeout=30, cwd=REPO):
    """Output of a small fact-gathering command, or None."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        return p.stdout.strip() if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def last_json_line(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_engine(cmd, timeout, env):
    """Runs one engine process; returns its JSON object or {"error": ...}."""
    t0 = time.monotonic()
    try:
        # Own session, so that a timeout also ends the engine's children
        # (the PyTorch peer's auto-mode probes).
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=REPO, env=env, start_new_session=True)
    except OSError as e:
        return {"error": f"cannot start: {e}", "cmd": cmd}
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        return {"error": f"timeout after {timeout:.0f} s", "cmd": cmd}
    wall = time.monotonic() - t0
    res = last_json_line(stdout)
    if p.returncode != 0 or res is None or res.get("median_s") is None:
        tail = (stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
        return {"error": f"exit {p.returncode}: {tail[:300]}", "cmd": cmd,
                "process_wall_s": wall}
    res["cmd"] = cmd
    res["process_wall_s"] = wall
    return res


def cpu_facts():
    facts = {"cpu_model": None, "logical_cpus": os.cpu_count(), "flags": []}
    try:
        facts["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        m = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
        facts["cpu_model"] = m.group(1).strip() if m else None
        m = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
        if m:
            have = set(m.group(1).split())
            facts["flags"] = sorted(have & {"avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                            "avx512_vnni", "avx512_bf16", "amx_tile",
                                            "amx_bf16", "amx_int8"})
        cores = {(p, c) for p, c in re.findall(
            r"^physical id\s*:\s*(\d+)\s*\n(?:.*\n)*?^core id\s*:\s*(\d+)", info, re.M)}
        facts["physical_cores"] = len(cores) or None
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            m = re.search(r"^MemTotal:\s*(\d+) kB", f.read(), re.M)
            facts["mem_total_bytes"] = int(m.group(1)) * 1024 if m else None
    except OSError:
        pass
    return facts


def machine_facts(args):
    facts = cpu_facts()
    facts.update({
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "loadavg_start": os.getloadavg(),
        "python_for_torch": args.python,
        "torch": sh([args.python, "-c", "import torch; print(torch.__version__)"], 120),
        "blas": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
        if os.path.exists("/usr/lib/x86_64-linux-gnu/libblas.so.3") else None,
        "node": sh([args.node, "--version"]),
        "onnxruntime": None,
        "kiln_binary": args.kiln,
        "kiln_commit": sh(["git", "rev-parse", "HEAD"]),
        "kiln_tree_dirty": bool(sh(["git", "status", "--porcelain", "--untracked-files=no"])),
    })
    try:
        with open(os.path.join(PEERS, "node_modules", "onnxruntime-node", "package.json")) as f:
            facts["onnxruntime"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    return facts


def results_path(out_dir, cpu_model):
    slug = re.sub(r"[^a-z0-9]+", "-", (cpu_model or "unknown-cpu").lower()).strip("-")
    slug = re.sub(r"-(processor|cpu)$", "", slug)[:48] or "cpu"
    base = f"{dt.date.today().isoformat()}-{slug}-upscale"
    path = os.path.join(out_dir, base + ".json")
    n = 2
    while os.path.exists(path):
        path = os.path.join(out_dir, f"{base}-{n}.json")
        n += 1
    return path


# --------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------

def kiln_cmd(args, arch, size, threads, repeat, warmup):
    return [args.kiln, "bench", "-m", ARCHS[arch][0], "--models-dir", args.models_dir,
            "--size", str(size), "--threads", str(threads),
            "--repeat", str(repeat), "--warmup", str(warmup)]


def torch_cmd(args, arch, size, threads, repeat, warmup):
    cmd = [args.python, os.path.join(PEERS, "torch_peer.py"), "--arch", arch,
           "--size", str(size), "--threads", str(threads),
           "--repeat", str(repeat), "--warmup", str(warmup), "--mode", args.torch_mode]
    if args.weights.get(arch):
        cmd += ["--state-dict", args.weights[arch]]
    return cmd


def ort_cmd(args, arch, size, threads, repeat, warmup, onnx_path):
    return [args.node, os.path.join(PEERS, "ort_peer.mjs"), "--model", onnx_path,
            "--arch", arch, "--size", str(size), "--threads", str(threads),
            "--repeat", str(repeat), "--warmup", str(warmup)]


def export_onnx(args, arch, env):
    """Writes the ONNX model for the ORT peer (same weights as the torch peer)."""
    os.makedirs(args.onnx_dir, exist_ok=True)
    path = os.path.join(args.onnx_dir, f"{arch}.onnx")
    cmd = [args.python, os.path.join(PEERS, "torch_peer.py"), "--arch", arch,
           "--export-onnx", path]
    if args.weights.get(arch):
        cmd += ["--state-dict", args.weights[arch]]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"ONNX export failed: {e}"
    if p.returncode != 0 or not os.path.exists(path):
        tail = (p.stderr.strip() or "no output").splitlines()[-1]
        return None, f"ONNX export failed (exit {p.returncode}): {tail[:300]}"
    return path, None


def timeout_for(args, arch, size, threads, repeat, warmup, engine):
    """Generous per-process limit: assumes only 15 GFLOP/s per thread."""
    if args.timeout:
        return args.timeout
    est = ARCHS[arch][1] * 1e6 * size * size / (15e9 * threads)
    runs = repeat + warmup
    if engine == "pytorch" and args.torch_mode == "auto":
        runs += 6  # three probe processes, 1 warm-up + 1 timed run each
    return 120 + 3 * est * runs


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def gflops(arch, size, seconds):
    return ARCHS[arch][1] * 1e6 * size * size / seconds / 1e9


def fmt_s(res):
    if "error" in res:
        return "ERR"
    s = res["median_s"]
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_mib(v):
    return f"{v / 2**20:.0f}" if isinstance(v, (int, float)) else "–"


SHORT = {"kiln": "kiln", "pytorch": "pt", "onnxruntime": "ort"}


def table(rows, engines):
    """Markdown table; engine names shortened as in SHORT (legend printed)."""
    peers = [e for e in engines if e != "kiln"]
    sh_ = [SHORT[e] for e in engines]
    head = ["model", "size", "thr"] + [f"{n} median" for n in sh_]
    if "kiln" in engines:
        head += [f"kiln vs {SHORT[p]}" for p in peers]
    head += [f"{n} GFLOP/s" for n in sh_] + [f"{n} RSS MiB" for n in sh_]
    if "kiln" in engines:
        head.append("kiln plan MiB")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for row in rows:
        r = row["results"]
        cells = [ARCHS[row["arch"]][2], f"{row['size']}²", str(row["threads"])]
        cells += [fmt_s(r[e]) for e in engines]
        kiln = r.get("kiln", {})
        if "kiln" in engines:
            cells += [f"{row['speedup'][p]:.2f}×" if p in row["speedup"] else "–" for p in peers]
        cells += ["–" if "error" in r[e] else f"{row['gflops'][e]:.1f}" for e in engines]
        cells += [fmt_mib(r[e].get("peak_rss_bytes")) for e in engines]
        if "kiln" in engines:
            cells.append(fmt_mib(kiln.get("plan_peak_bytes")))
        lines.append("| " + " | ".join(cells) + " |")
        for e in engines:
            if "error" in r[e]:
                notes.append(f"  {ARCHS[row['arch']][2]} {row['size']}² {row['threads']}t "
                             f"{e}: {r[e]['error']}")
    legend = ("pt = PyTorch CPU, ort = ONNX Runtime CPU; 'kiln vs X' = X median / kiln "
              "median (>1: kiln faster); GFLOP/s from the median and the model's nominal "
              "FLOPs; RSS = peak resident set of the engine's process; plan = kiln's "
              "planned peak activation memory.")
    out = "\n".join(lines) + "\n\n" + legend
    if notes:
        out += "\n\nErrors:\n" + "\n".join(notes)
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=csv_strs, default=None,
                    help="comma list of rrdbnet,srvgg,upconv7,cunet2,omnisr (default all)")
    ap.add_argument("--sizes", type=csv_ints, default=None, help="default 64,256")
    ap.add_argument("--threads", type=csv_ints, default=None, help="default 1,2")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed runs per engine (default 5 at sizes <= 128, else 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1)")
    ap.add_argument("--peers", type=csv_strs, default=["pytorch", "onnxruntime"],
                    help="comma list of pytorch,onnxruntime (empty string: kiln only)")
    ap.add_argument("--no-kiln", action="store_true", help="run the peers only")
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "app", "kiln"))
    ap.add_argument("--models-dir", default=os.path.join(REPO, "models"))
    ap.add_argument("--torch-mode", default=None,
                    choices=["auto", "channels_last", "torchscript", "torchscript_ofi", "eager"],
                    help="PyTorch peer mode (default auto: fastest of channels_last and "
                         "frozen TorchScript, probed per row; --quick: channels_last)")
    ap.add_argument("--weights", action="append", default=[], metavar="ARCH=PATH.pth",
                    help="real weights for the peers (default: random, fixed seed)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 64² only, 1 thread, 1 warm-up + 1 timed run")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per engine process (default: from the FLOP count)")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter for the torch peer")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--onnx-dir", default=os.path.join(REPO, "bench", "out", "onnx"))
    ap.add_argument("--out", default=None,
                    help="results JSON (default bench/results/<date>-<cpu>-upscale.json)")
    args = ap.parse_args()

    archs = args.archs or list(ARCHS)
    for a in archs:
        if a not in ARCHS:
            ap.error(f"unknown arch {a!r} (choose from {', '.join(ARCHS)})")
    sizes = args.sizes or ([64] if args.quick else [64, 256])
    threads_list = args.threads or ([1] if args.quick else [1, 2])
    warmup = args.warmup if args.warmup is not None else 1
    args.torch_mode = args.torch_mode or ("channels_last" if args.quick else "auto")
    weights = {}
    for w in args.weights:
        a, _, p = w.partition("=")
        if a not in ARCHS or not p:
            ap.error(f"--weights wants ARCH=PATH, got {w!r}")
        weights[a] = os.path.abspath(p)
    args.weights = weights
    for p in args.peers:
        if p not in ("pytorch", "onnxruntime"):
            ap.error(f"unknown peer {p!r}")
    engines = ([] if args.no_kiln else ["kiln"]) + [e for e in ENGINES[1:] if e in args.peers]
    if not engines:
        ap.error("nothing to run")

    def repeat_for(size):
        if args.repeat is not None:
            return args.repeat
        if args.quick:
            return 1
        return 5 if size <= 128 else 3

    facts = machine_facts(args)
    print(f"# {facts['cpu_model']}, {facts['usable_cpus']} CPUs usable, "
          f"torch {facts['torch']}, onnxruntime {facts['onnxruntime']}, "
          f"kiln {(facts['kiln_commit'] or '?')[:10]}{'+dirty' if facts['kiln_tree_dirty'] else ''}",
          flush=True)

    onnx = {}
    if "onnxruntime" in engines:
        if facts["onnxruntime"] is None:
            msg = ("onnxruntime-node not installed: cd bench/peers && "
                   "ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci")
            onnx = {a: (None, msg) for a in archs}
        else:
            for a in archs:
                onnx[a] = export_onnx(args, a, dict(os.environ))
                print(f"# ONNX {a}: {onnx[a][0] or onnx[a][1]}", flush=True)

    rows = []
    for arch in archs:
        for size in sizes:
            for thr in threads_list:
                rep = repeat_for(size)
                env = dict(os.environ, OMP_NUM_THREADS=str(thr))
                results = {}
                for e in engines:
                    tmo = timeout_for(args, arch, size, thr, rep, warmup, e)
                    if e == "kiln":
                        cmd = kiln_cmd(args, arch, size, thr, rep, warmup)
                    elif e == "pytorch":
                        cmd = torch_cmd(args, arch, size, thr, rep, warmup)
                    else:
                        path, err = onnx[arch]
                        if err:
                            results[e] = {"error": err}
                            continue
                        cmd = ort_cmd(args, arch, size, thr, rep, warmup, path)
                    results[e] = run_engine(cmd, tmo, env)
                    r = results[e]
                    print(f"# {arch} {size}² {thr}t {e}: "
                          + (r["error"] if "error" in r else
                             f"median {r['median_s']:.4f} s ({r.get('mode', '')})"), flush=True)
                speedup = {}
                kiln = results.get("kiln", {})
                for p in engines[1:] if "kiln" in engines else []:
                    if "error" not in kiln and "error" not in results[p]:
                        speedup[p] = results[p]["median_s"] / kiln["median_s"]
                gf = {e: gflops(arch, size, results[e]["median_s"])
                      for e in engines if "error" not in results[e]}
                rows.append({"arch": arch, "model": ARCHS[arch][0], "size": size,
                             "threads": thr, "repeat": rep, "warmup": warmup,
                             "mflop_per_input_pixel": ARCHS[arch][1],
                             "gflop_per_image": ARCHS[arch][1] * size * size / 1e3,
                             "results": results, "speedup": speedup, "gflops": gf})

    facts["loadavg_end"] = os.getloadavg()
    print()
    print(table(rows, engines))

    out = args.out or results_path(os.path.join(REPO, "bench", "results"), facts["cpu_model"])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    doc = {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.argv[0]] + sys.argv[1:],
        "machine": facts,
        "engines": engines,
        "torch_mode": args.torch_mode,
        "weights": weights or "random (fixed seed)",
        "speedup_definition": "peer median_s / kiln median_s",
        "rows": rows,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"\nwrote {os.path.relpath(out, REPO)}")
    failed = sum("error" in r["results"][e] for r in rows for e in engines)
    return 1 if failed == len(rows) * len(engines) else 0


if __name__ == "__main__":
    sys.exit(main())
