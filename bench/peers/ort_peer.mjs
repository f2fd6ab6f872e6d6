#!/usr/bin/env node
// ONNX Runtime CPU peer for kiln's upscale benchmark.
//
//   node bench/peers/ort_peer.mjs --model m.onnx --size S --threads T \
//        --repeat R --warmup W [--arch NAME]
//
// Runs the model (input "input", NCHW float32, dynamic H/W, as written by
// torch_peer.py --export-onnx) on a random 1x3xSxS input and prints one JSON
// line: {"peer":"onnxruntime","arch","size","threads","mode","median_s",
// "min_s","runs":[...],"peak_rss_bytes",...}.
//
// Install: cd bench/peers && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import ort from 'onnxruntime-node';

function parseArgs(argv) {
  const opts = { size: 64, threads: 1, repeat: 3, warmup: 1, arch: null, model: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const key = a.startsWith('--') ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : null;
    if (key === null || !(key in opts)) throw new Error(`unknown argument ${a}`);
    const val = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (val === undefined) throw new Error(`missing value for --${key}`);
    opts[key] = ['model', 'arch'].includes(key) ? val : Number.parseInt(val, 10);
  }
  if (!opts.model) throw new Error('--model is required');
  for (const k of ['size', 'threads', 'repeat', 'warmup']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 0 || (k !== 'warmup' && opts[k] < 1)) {
      throw new Error(`bad --${k}`);
    }
  }
  return opts;
}

// Deterministic uniform [0,1) input (xorshift32), so runs are reproducible.
function randomInput(n) {
  const data = new Float32Array(n);
  let s = 0x9e3779b9 >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    data[i] = s / 4294967296;
  }
  return data;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const inputName = session.inputNames[0];
  const S = opts.size;
  const x = new ort.Tensor('float32', randomInput(3 * S * S), [1, 3, S, S]);
  const feeds = { [inputName]: x };

  for (let i = 0; i < opts.warmup; i++) await session.run(feeds);
  const runs = [];
  let outDims = null;
  for (let i = 0; i < opts.repeat; i++) {
    const t0 = performance.now();
    const out = await session.run(feeds);
    runs.push((performance.now() - t0) / 1000);
    const t = out[session.outputNames[0]];
    outDims = t.dims;
    t.dispose?.();
  }

  const require = createRequire(import.meta.url);
  let version = null;
  try {
    version = require(path.join('onnxruntime-node', 'package.json')).version;
  } catch { /* package.json not exported: fall back to ort.env */ }
  version ??= ort.env?.versions?.node ?? null;

  console.log(JSON.stringify({
    peer: 'onnxruntime',
    arch: opts.arch ?? path.basename(opts.model, '.onnx'),
    size: S,
    threads: opts.threads,
    mode: 'cpu-ep',
    median_s: median(runs),
    min_s: Math.min(...runs),
    runs,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024, // maxRSS is KiB
    output_dims: outDims,
    onnxruntime: version,
  }));
  await session.release?.();
}

main().catch((e) => {
  console.error(`ort_peer: ${e?.stack ?? e}`);
  process.exit(1);
});
