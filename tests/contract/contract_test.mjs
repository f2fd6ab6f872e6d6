// The server's answers against openapi.yaml (issue 17): a scenario through every route and
// every status the document lists, each request and answer validated by contract.mjs (ajv).
// Started by run.sh, which sets:
//   KILN_URL         kiln serve, started with the limits below and --api-key
//   KILN_API_KEY     its --api-key
//   KILN_PID         its process id (the last test drains it with SIGTERM)
//   KILN_IMAGES      tests/data/image (committed fixtures)
//   KILN_OPENAPI     the document
//   KILN_CONTRACT_OUT  where coverage.md goes (optional)
//   KILN_STORE_URL   a second kiln serve, on a Redis store (--store redis://), no --api-key
//   KILN_REDIS_PID   that Redis's process id (a test kills it)
// Limits run.sh starts kiln with: --max-body 1 (MiB), --max-queued 5,
// --max-queued-per-session 3, --http-threads 8 (4 event streams), --drain-grace 10,
// --max-streams-per-session 2, --sessions-per-client-hour 40, --max-stored-per-session 0.25
// (MiB).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, multipart } from "./client.mjs";
import { Contract } from "./contract.mjs";

const {
  KILN_URL, KILN_API_KEY, KILN_PID, KILN_IMAGES, KILN_OPENAPI, KILN_CONTRACT_OUT, KILN_STORE_URL, KILN_REDIS_PID,
} = process.env;
assert.ok(KILN_URL && KILN_API_KEY && KILN_PID && KILN_IMAGES && KILN_OPENAPI && KILN_STORE_URL && KILN_REDIS_PID,
  "run this through tests/contract/run.sh");

const UPSCALE = "srvgg_x4"; // tests/data/weights/srvgg_x4.pth: 2196 parameters, milliseconds a job
const GENERATE = "fashion-unet"; // tests/data/diffusion/fashion-unet
const contract = new Contract(KILN_OPENAPI);
const api = new Client(contract, KILN_URL);
const image = (name) => readFileSync(join(KILN_IMAGES, name));
const png = image("palette8.png"); // 9 x 6
const jpeg = image("baseline.jpg"); // 33 x 17
const unknownId = randomBytes(16).toString("hex");
const s = {}; // what the tests hand on: tokens, job ids

function upscaleJob(data, extra = {}) {
  return { model: UPSCALE, input: { image: data.toString("base64") }, ...extra };
}

async function submit(token, json, expect = 202, headers = {}) {
  return api.call({ method: "POST", path: "/v1/jobs", token, json, expect, headers });
}

async function waitFor(token, id, done, what) {
  for (let i = 0; i < 1200; ++i) {
    const { json } = await api.call({ path: `/v1/jobs/${id}`, token, expect: 200 });
    if (done(json)) return json;
    await sleep(100);
  }
  assert.fail(`job ${id} never became ${what}`);
}

// CRC-32 (ISO 3309, as PNG chunks use it); Node 18's zlib has no crc32.
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// palette8.png with a tEXt chunk of `size` bytes after its IHDR: the same 9 x 6 image, a
// larger file (what a session's stored bytes count).
function paddedPng(size) {
  const type = Buffer.from("tEXt");
  const data = Buffer.concat([Buffer.from("Comment\0"), Buffer.alloc(size, 0x61)]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, data])));
  const ihdrEnd = 8 + 25; // signature, then IHDR: length, type, 13 bytes, CRC
  return Buffer.concat([png.subarray(0, ihdrEnd), length, type, data, crc, png.subarray(ihdrEnd)]);
}

const finished = (job) => ["succeeded", "failed", "cancelled"].includes(job.status);

async function newSession() {
  const { json } = await api.call({
    method: "POST", path: "/v1/sessions", headers: { Authorization: `Bearer ${KILN_API_KEY}` }, expect: 201,
  });
  return json.token;
}

test("service routes: health, readiness, models, limits, metrics", async () => {
  await api.call({ path: "/healthz", expect: 200 });
  for (let i = 0; (await api.call({ path: "/readyz" })).status !== 200; ++i) {
    assert.ok(i < 100, "/readyz never answered 200");
    await sleep(100);
  }
  const { json: models } = await api.call({ path: "/v1/models", expect: 200 });
  assert.deepEqual(models.map((m) => m.name).sort(), [GENERATE, UPSCALE]);
  const { json: limits } = await api.call({ path: "/v1/limits", expect: 200 });
  assert.equal(limits.max_queued, 5);
  assert.equal(limits.max_event_streams, 4);
  assert.equal(limits.max_event_streams_per_session, 2);
  assert.equal(limits.max_sessions_per_client_hour, 40);
  assert.equal(limits.max_stored_bytes_per_session, 262144);
  const { body } = await api.call({ path: "/metrics", expect: 200 });
  assert.match(body.toString(), /kiln_queue_length/);
});

test("sessions: --api-key refuses a missing or wrong key (401), the key makes one (201)", async () => {
  await api.call({ method: "POST", path: "/v1/sessions", expect: 401 });
  await api.call({ method: "POST", path: "/v1/sessions", headers: { Authorization: "Bearer wrong-key" }, expect: 401 });
  s.a = await newSession();
  s.b = await newSession();
});

test("every route that needs a session answers 401 without one, and to a forged token", async () => {
  for (const o of contract.operations) {
    const security = o.op.security ?? contract.doc.security;
    if (security.some((x) => Object.keys(x).length === 0)) continue;
    const path = o.template.replace("{id}", unknownId).replace("{k}", "0");
    const json = o.op.requestBody ? upscaleJob(png) : undefined;
    const { headers } = await api.call({ method: o.method, path, json, expect: 401, invalid: "no Authorization" });
    assert.equal(headers["www-authenticate"], "Bearer");
    await api.call({ method: o.method, path, json, token: "0".repeat(64), expect: 401 });
  }
});

test("POST /v1/jobs: JSON (202), multipart (202), idempotent replay (200), generate (202)", async () => {
  // One at a time: --max-queued-per-session is 3, and each job takes milliseconds.
  const done = async (id) => {
    const job = await waitFor(s.a, id, finished, "finished");
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    return job;
  };
  // No params at all: the answer's params are {} (issue 17's oneOf failure).
  const jpegJob = await submit(s.a, upscaleJob(jpeg));
  assert.equal(jpegJob.headers.location, `/v1/jobs/${jpegJob.json.id}`);
  s.jpegJob = jpegJob.json.id;
  assert.deepEqual((await done(s.jpegJob)).params, {});
  const form = multipart([
    { name: "request", type: "application/json", data: JSON.stringify({ model: UPSCALE, params: {} }) },
    { name: "image", type: "image/png", filename: "palette8.png", data: png },
  ]);
  s.pngJob = (await api.call({ method: "POST", path: "/v1/jobs", token: s.a, form, expect: 202 })).json.id;
  await done(s.pngJob);
  const keyed = upscaleJob(png, { params: { tile: 0 }, priority: "high" });
  const key = { "Idempotency-Key": "contract-1" };
  const first = await submit(s.a, keyed, 202, key);
  const replay = await submit(s.a, keyed, 200, key);
  assert.equal(replay.json.id, first.json.id);
  assert.equal(replay.headers.location, `/v1/jobs/${first.json.id}`);
  await submit(s.a, { ...keyed, params: { tile: 16 } }, 422, key); // idempotency_key_reused
  await done(first.json.id);
  s.genJob = (await submit(s.a, {
    model: GENERATE, task: "generate", input: { prompt: "ankle boot" },
    params: { steps: 3, count: 2, seed: 7, sampler: "euler" },
  })).json.id;
  assert.equal((await done(s.genJob)).outputs.length, 2);
  // Generate params {}: the answer's params hold the seed the server chose.
  const gen = await done((await submit(s.a, { model: GENERATE, input: { prompt: "" }, params: {} })).json.id);
  assert.equal(gen.task, "generate");
  assert.ok(Number.isInteger(gen.params.seed));
});

test("POST /v1/jobs refusals: 400, 404, 413, 415, 422", async () => {
  const post = (options) => api.call({ method: "POST", path: "/v1/jobs", token: s.a, ...options });
  await post({ text: "{", contentType: "application/json", expect: 400, invalid: "not JSON" });
  await post({ json: { model: UPSCALE, input: { image: "@@not base64@@" } }, expect: 400 });
  await post({ json: upscaleJob(png, { model: "no-such-model" }), expect: 404 });
  await post({ json: upscaleJob(image("huge_ihdr.png")), expect: 413 }); // 100000 x 100000
  // Over --max-body (1 MiB): refused before it is parsed.
  await post({ json: upscaleJob(randomBytes(1100 * 1024)), expect: 413 });
  await post({ text: "model=x", contentType: "text/plain", expect: 415, invalid: "not a documented body type" });
  await post({ json: upscaleJob(image("cmyk.jpg")), expect: 415 });
  await post({ json: upscaleJob(Buffer.from("these are notes, not an image\n")), expect: 415 });
  await post({ json: upscaleJob(png, { params: { tile: -1 } }), expect: 422, invalid: "tile below 0" });
  await post({ json: upscaleJob(png.subarray(0, 100)), expect: 422 }); // truncated PNG
  await post({ json: upscaleJob(png, { task: "generate" }), expect: 422 }); // task vs input
  await post({ json: { model: GENERATE, input: { prompt: "a cat" } }, expect: 422 }); // unknown prompt
  const tooLong = await post({
    json: { model: GENERATE, input: { prompt: "x".repeat(1001) } }, expect: 400, invalid: "prompt over maxLength",
  });
  assert.match(tooLong.json.error.message, /longer than 1000 bytes/);
  const nested = JSON.stringify(upscaleJob(png)).replace(/}$/, `,"x":${"[".repeat(65)}${"]".repeat(65)}}`);
  const deep = await post({ text: nested, contentType: "application/json", expect: 400 });
  assert.match(deep.json.error.message, /nests deeper than 64 levels/);
});

test("stored bytes per session: submit and retry past the limit answer 507", async () => {
  const c = await newSession();
  await api.call({ method: "POST", path: "/v1/queue/pause", token: c, expect: 200 });
  const big = paddedPng(150_000); // two of them are over the 256 KiB a session may keep
  const { json: first } = await submit(c, upscaleJob(big));
  await api.call({ method: "POST", path: `/v1/jobs/${first.id}/cancel`, token: c, expect: 200 });
  const full = await submit(c, upscaleJob(big), 507);
  assert.equal(full.json.error.code, "session_storage_full");
  const retry = await api.call({ method: "POST", path: `/v1/jobs/${first.id}/retry`, token: c, expect: 507 });
  assert.equal(retry.json.error.code, "session_storage_full");
  await api.call({ method: "DELETE", path: `/v1/jobs/${first.id}`, token: c, expect: 204 });
  const { json: again } = await submit(c, upscaleJob(big)); // room again
  await api.call({ method: "POST", path: `/v1/jobs/${again.id}/cancel`, token: c, expect: 200 });
  await api.call({ method: "DELETE", path: "/v1/sessions/current", token: c, expect: 204 });
});

test("GET /v1/jobs/{id}, list, pages, filters (200, 400, 404)", async () => {
  await api.call({ path: `/v1/jobs/${unknownId}`, token: s.a, expect: 404 });
  await api.call({ path: "/v1/jobs/..%2f..%2fkiln.db", token: s.a, expect: 404, invalid: "not an id" });
  await api.call({ path: `/v1/jobs/${s.jpegJob}`, token: s.b, expect: 404 }); // another session's
  const { json: page } = await api.call({ path: "/v1/jobs?limit=2", token: s.a, expect: 200 });
  assert.equal(page.jobs.length, 2);
  assert.equal(typeof page.next_cursor, "string");
  await api.call({ path: `/v1/jobs?limit=2&cursor=${page.next_cursor}`, token: s.a, expect: 200 });
  await api.call({ path: "/v1/jobs?status=succeeded&updated_since=0", token: s.a, expect: 200 });
  await api.call({ path: "/v1/jobs?status=done", token: s.a, expect: 400, invalid: "no such status" });
  await api.call({ path: "/v1/jobs?limit=0", token: s.a, expect: 400, invalid: "limit below 1" });
});

test("outputs and thumbnails: 200 with ETag, 304 on If-None-Match, 404", async () => {
  for (const suffix of ["", "/thumbnail"]) {
    for (const [id, k] of [[s.jpegJob, 0], [s.genJob, 1]]) {
      const path = `/v1/jobs/${id}/outputs/${k}${suffix}`;
      const { headers } = await api.call({ path, token: s.a, expect: 200 });
      await api.call({ path, token: s.a, headers: { "If-None-Match": headers.etag }, expect: 304 });
    }
    await api.call({ path: `/v1/jobs/${s.jpegJob}/outputs/1${suffix}`, token: s.a, expect: 404 });
    await api.call({ path: `/v1/jobs/${s.jpegJob}/outputs/0${suffix}`, token: s.b, expect: 404 });
  }
});

test("inputs: PNG, JPEG and a prompt as submitted (200), another session's (404)", async () => {
  const types = [];
  for (const id of [s.pngJob, s.jpegJob, s.genJob]) {
    types.push((await api.call({ path: `/v1/jobs/${id}/input`, token: s.a, expect: 200 })).headers["content-type"]);
  }
  assert.deepEqual(types.map((t) => t.split(";")[0]), ["image/png", "image/jpeg", "application/json"]);
  await api.call({ path: `/v1/jobs/${s.pngJob}/input`, token: s.b, expect: 404 });
});

test("gallery: pages (200), a bad limit (400)", async () => {
  const { json } = await api.call({ path: "/v1/gallery?limit=1", token: s.a, expect: 200 });
  assert.ok(json.items.length >= 1 && typeof json.next_cursor === "string");
  await api.call({ path: `/v1/gallery?cursor=${json.next_cursor}`, token: s.a, expect: 200 });
  await api.call({ path: "/v1/gallery?limit=101", token: s.a, expect: 400, invalid: "limit above 100" });
});

test("queue controls, cancel (200, 409, 404), retry (202, 409, 404), queue limits (429)", async () => {
  for (const t of [s.a, s.b]) await api.call({ method: "POST", path: "/v1/queue/pause", token: t, expect: 200 });
  const queued = [];
  for (let i = 0; i < 3; ++i) queued.push((await submit(s.a, upscaleJob(png))).json.id);
  const full = await submit(s.a, upscaleJob(png), 429);
  assert.equal(full.json.error.code, "session_queue_full");
  const { json: q } = await api.call({ path: "/v1/queue", token: s.a, expect: 200 });
  assert.deepEqual(q, { paused: true, queued: 3, running: 0 });
  const { json: cancelled } = await api.call({ method: "POST", path: `/v1/jobs/${queued[0]}/cancel`, token: s.a, expect: 200 });
  assert.equal(cancelled.status, "cancelled");
  const { json: retried } = await api.call({ method: "POST", path: `/v1/jobs/${queued[0]}/retry`, token: s.a, expect: 202 });
  assert.equal(retried.retry_of, queued[0]);
  await api.call({ method: "POST", path: `/v1/jobs/${retried.id}/cancel`, token: s.a, expect: 200 });
  // 2 of A's and 3 of B's: the global limit of 5.
  for (let i = 0; i < 3; ++i) await submit(s.b, upscaleJob(png));
  const global = await submit(s.a, upscaleJob(png), 429);
  assert.equal(global.json.error.code, "queue_full");
  await api.call({ method: "POST", path: `/v1/jobs/${queued[0]}/retry`, token: s.a, expect: 429 });
  const { json: cleared } = await api.call({ method: "DELETE", path: "/v1/queue", token: s.b, expect: 200 });
  assert.equal(cleared.cancelled, 3);
  await api.call({ method: "DELETE", path: "/v1/queue", token: s.a, expect: 200 });
  for (const t of [s.a, s.b]) await api.call({ method: "POST", path: "/v1/queue/resume", token: t, expect: 200 });
  s.cancelledJob = queued[0];
  await api.call({ method: "POST", path: `/v1/jobs/${s.jpegJob}/cancel`, token: s.a, expect: 409 });
  await api.call({ method: "POST", path: `/v1/jobs/${s.jpegJob}/retry`, token: s.a, expect: 409 });
  await api.call({ method: "POST", path: `/v1/jobs/${unknownId}/cancel`, token: s.a, expect: 404 });
  await api.call({ method: "POST", path: `/v1/jobs/${unknownId}/retry`, token: s.a, expect: 404 });
});

test("cancel of a running job (202)", async () => {
  const { json } = await submit(s.a, { model: GENERATE, input: { prompt: "bag" }, params: { steps: 1000, count: 16 } });
  await waitFor(s.a, json.id, (j) => j.status === "running" && j.progress.done > 0, "running");
  const { json: job } = await api.call({ method: "POST", path: `/v1/jobs/${json.id}/cancel`, token: s.a, expect: 202 });
  assert.equal(job.status, "running");
  assert.equal((await waitFor(s.a, json.id, finished, "finished")).status, "cancelled");
});

test("events: text/event-stream with Jobs as data, Last-Event-ID replay, a bad id (400)", async () => {
  let submitted;
  const live = await api.stream({
    token: s.a,
    until: (events) => {
      if (events.length === 1) submitted = submit(s.a, upscaleJob(png)).then((r) => r.json.id);
      return events.some((e) => e.job && e.job.status === "succeeded");
    },
  });
  assert.equal(live.headers["content-type"].split(";")[0], "text/event-stream");
  assert.deepEqual(live.events[0].comments, ["kiln events"]);
  assert.equal(live.events.at(-1).job.id, await submitted);
  const replay = await api.stream({ token: s.a, headers: { "Last-Event-ID": "0" }, until: (e) => e.length >= 4 });
  const ids = replay.events.filter((e) => e.job).map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  await api.stream({ token: s.a, query: "?last_event_id=0", until: (e) => e.some((x) => x.job) });
  await api.call({ path: "/v1/events", token: s.a, headers: { "Last-Event-ID": "seven" }, expect: 400, invalid: "not an event id" });
});

test("deletes: a job (204, then 404), a session (204, then 401)", async () => {
  await api.call({ method: "DELETE", path: `/v1/jobs/${s.pngJob}`, token: s.a, expect: 204 });
  await api.call({ path: `/v1/jobs/${s.pngJob}`, token: s.a, expect: 404 });
  await api.call({ path: `/v1/jobs/${s.pngJob}/input`, token: s.a, expect: 404 });
  await api.call({ method: "DELETE", path: `/v1/jobs/${s.pngJob}`, token: s.a, expect: 404 });
  await api.call({ method: "DELETE", path: "/v1/sessions/current", token: s.b, expect: 204 });
  await api.call({ path: "/v1/queue", token: s.b, expect: 401 });
});

// Opens a stream and resolves once it is open ({held}) or refused ({refused}).
async function openStream(token) {
  const control = {};
  let opened;
  const isOpen = new Promise((resolve) => (opened = resolve));
  const done = api.stream({ token, control, until: () => (opened(true), false), timeoutMs: 600_000 });
  const first = await Promise.race([isOpen, done]);
  return first === true ? { held: { control, done } } : { refused: first };
}

async function closeStreams(held) {
  for (const h of held) h.control.close();
  await Promise.all(held.map((h) => h.done));
}

test("a session's event streams past --max-streams-per-session answer 429", async () => {
  // The server notices a closed stream within half a second and frees its places; the
  // earlier tests' streams must not count against the cap of 4 here.
  await sleep(1500);
  const token = await newSession();
  const held = [];
  try {
    for (let i = 0; i < 2; ++i) {
      const opened = await openStream(token);
      assert.ok(opened.held, `stream ${i + 1} of 2 was refused`);
      held.push(opened.held);
    }
    const third = await openStream(token);
    assert.equal(third.refused?.status, 429);
    assert.ok(Number(third.refused.headers["retry-after"]) >= 1);
  } finally {
    await closeStreams(held);
  }
});

test("event streams past the cap answer 503 with Retry-After", async () => {
  // Two streams per session (the session limit), over new sessions, until the server's cap
  // (4; a stream closed by the test above may still hold its place for half a second).
  const held = [];
  let refused;
  try {
    for (let i = 0; i < 10 && !refused; ++i) {
      const token = await newSession();
      for (let k = 0; k < 2 && !refused; ++k) {
        const opened = await openStream(token);
        if (opened.held) held.push(opened.held);
        else refused = opened.refused;
      }
    }
    assert.equal(refused?.status, 503, "no stream was refused");
    assert.ok(held.length <= 4, `${held.length} streams open past the cap of 4`);
  } finally {
    await closeStreams(held);
  }
});

test("sessions past --sessions-per-client-hour answer 429 with Retry-After", async () => {
  let refused;
  for (let i = 0; i <= 40 && !refused; ++i) {
    const res = await api.call({
      method: "POST", path: "/v1/sessions", headers: { Authorization: `Bearer ${KILN_API_KEY}` },
    });
    if (res.status === 429) refused = res;
    else assert.equal(res.status, 201);
  }
  assert.equal(refused?.json.error.code, "too_many_sessions", "no session was refused");
  assert.ok(Number(refused.headers["retry-after"]) > 3000);
});

// The error codes an operation's documented 503 answer may carry.
function codes503(operation) {
  const response = operation.op.responses["503"];
  if (!response) return [];
  const { object } = contract.deref(response, [...operation.at, "responses", "503"]);
  return object.content["application/json"].schema.properties.error.properties.code.enum;
}

test("a Redis store out of reach: every route that needs it answers 503 store_unavailable", async () => {
  const store = new Client(contract, KILN_STORE_URL);
  const { json: session } = await store.call({ method: "POST", path: "/v1/sessions", expect: 201 });
  const token = session.token;
  const { json: job } = await store.call({ method: "POST", path: "/v1/jobs", token, json: upscaleJob(png), expect: 202 });
  for (let i = 0; ; ++i) {
    const { json: state } = await store.call({ path: `/v1/jobs/${job.id}`, token, expect: 200 });
    if (state.status === "succeeded") break;
    assert.ok(i < 300 && !finished(state), `the Redis node's job is ${JSON.stringify(state)}`);
    await sleep(50);
  }
  process.kill(Number(KILN_REDIS_PID), "SIGKILL");
  for (let i = 0; (await store.call({ path: "/readyz" })).status !== 503; ++i) {
    assert.ok(i < 100, "/readyz of the Redis node never answered 503 after its Redis was killed");
    await sleep(20);
  }
  // Every operation, as the document says: store_unavailable where its 503 lists it, else the
  // route needs no store and answers 200.
  const unavailable = [];
  for (const o of contract.operations) {
    const path = o.template.replace("{id}", job.id).replace("{k}", "0");
    const security = o.op.security ?? contract.doc.security;
    const anonymous = security.some((x) => Object.keys(x).length === 0);
    const json = o.op.requestBody ? upscaleJob(png) : undefined;
    const needsStore = codes503(o).includes("store_unavailable");
    const res = await store.call({ method: o.method, path, token: anonymous ? undefined : token, json, expect: needsStore ? 503 : 200 });
    if (needsStore) {
      assert.equal(res.json.error.code, "store_unavailable", `${o.method} ${o.template}`);
      assert.ok(Number(res.headers["retry-after"]) >= 1, `${o.method} ${o.template}: Retry-After`);
      unavailable.push(`${o.method} ${o.template}`);
    }
  }
  assert.ok(unavailable.length >= 19, `only ${unavailable.length} operations document store_unavailable`);
});

test("draining (SIGTERM): new jobs, retries and /readyz answer 503 with Retry-After", async () => {
  const { json } = await submit(s.a, { model: GENERATE, input: { prompt: "coat" }, params: { steps: 1000, count: 16 } });
  await waitFor(s.a, json.id, (j) => j.status === "running", "running");
  process.kill(Number(KILN_PID), "SIGTERM");
  for (let i = 0; (await api.call({ path: "/readyz" })).status !== 503; ++i) {
    assert.ok(i < 50, "/readyz never answered 503 after SIGTERM");
    await sleep(50);
  }
  await submit(s.a, upscaleJob(png), 503);
  await api.call({ method: "POST", path: `/v1/jobs/${s.cancelledJob}/retry`, token: s.a, expect: 503 });
});

after(() => {
  const rows = contract.coverage();
  const lines = ["| route | status | covered |", "|---|---|---|"];
  for (const r of rows) lines.push(`| ${r.op} | ${r.status} | ${r.covered ? "yes" : "**no**"} |`);
  const table = lines.join("\n");
  console.log(`\nroute x status covered by the contract test (${rows.filter((r) => r.covered).length} of ${rows.length}):\n${table}`);
  if (KILN_CONTRACT_OUT) writeFileSync(join(KILN_CONTRACT_OUT, "coverage.md"), table + "\n");
});

test("coverage: every documented route x status was answered and validated", async () => {
  // Runs last (tests in a file run in order): the statuses the scenario above did not see.
  const missing = contract.coverage().filter((r) => !r.covered).map((r) => `${r.op} ${r.status}`);
  assert.deepEqual(missing, [], "documented but never answered");
});
