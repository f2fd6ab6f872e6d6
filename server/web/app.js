// kiln's page: submit images to upscale or prompts to generate from, watch this session's
// jobs live, browse its gallery.
import { Api, ApiError, JobFeed } from "./api.js";

const $ = (id) => document.getElementById(id);
const api = new Api();
const jobs = new Map();  // id -> job JSON, this session's only
let models = [];
let chosenFile = null;
let sending = false;
let galleryCursor = null;
// Generate jobs keep their prompt as the job's input, not in the job JSON: remembered here when
// submitted, otherwise read once from GET v1/jobs/{id}/input.
const prompts = new Map();  // job id -> prompt
const details = new Map();  // job id -> Promise<{prompt, params}>

function showError(where, err) {
  const text = err instanceof ApiError
    ? `${err.message}${err.retryAfter ? ` (try again in ${err.retryAfter} s)` : ""}`
    : String(err.message || err);
  $(where).textContent = text;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function elapsed(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return `${((end - Date.parse(job.started_at)) / 1000).toFixed(1)} s`;
}

// ---- models and the form ------------------------------------------------------------------

const modelNamed = (name) => models.find((m) => m.name === name);
const isGenerateModel = (m) => !!m && m.task === "generate";

// A job or gallery item of a generate model (by the model list; a job whose model is gone still
// shows its generate params: a seed is always stored).
function isGenerateJob(job) {
  const m = modelNamed(job.model);
  if (m) return isGenerateModel(m);
  return !!job.params && ("seed" in job.params || "steps" in job.params);
}

function modelLabel(m) {
  return isGenerateModel(m)
    ? `${m.name} — generate ${m.width}×${m.height} images, ${m.arch}`
    : `${m.name} — upscale ×${m.scale}, ${m.family} ${m.arch}${noiseLabel(m)}`;
}

function noiseLabel(m) {
  if (!m.noise) return "";
  return m.noise === "none" || m.noise === "conservative" ? `, ${m.noise}` : `, denoise ${m.noise}`;
}

async function loadModels() {
  models = await api.request("v1/models", { auth: false });
  const groups = [["Upscale", models.filter((m) => !isGenerateModel(m))],
                  ["Generate", models.filter(isGenerateModel)]];
  $("model").replaceChildren(...groups.filter(([, ms]) => ms.length).map(([label, ms]) => {
    const g = document.createElement("optgroup");
    g.label = label;
    g.append(...ms.map((m) => {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = modelLabel(m);
      return o;
    }));
    return g;
  }));
  describeModel();
}

function describeModel() {
  const m = modelNamed($("model").value);
  const generate = isGenerateModel(m);
  const millions = m ? `${(m.parameters / 1e6).toFixed(2)} M parameters` : "";
  $("model-info").textContent = !m ? ""
    : generate ? `${m.arch}, ${millions}: ${m.width}×${m.height} images from a prompt`
    : `${m.family} ${m.arch}, ${m.scale}x upscale${noiseLabel(m)}, ${millions}`;
  $("upscale-fields").hidden = generate;
  $("generate-fields").hidden = !generate;
  if (generate) fillPrompts(m);
  $("send").textContent = generate ? "Generate" : "Upscale";
  updateSend();
}

// The model's prompts (class models know nothing else) and the empty, unconditional one; the
// choice is kept when another model knows it too.
function fillPrompts(m) {
  const select = $("prompt");
  const keep = select.options.length ? select.value : null;
  const option = (value, text) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  };
  select.replaceChildren(...(m.prompts || []).map((p) => option(p, p)),
                         option("", "(empty: unconditional)"));
  if (keep !== null && [...select.options].some((o) => o.value === keep)) select.value = keep;
}

function updateSend() {
  const generate = isGenerateModel(modelNamed($("model").value));
  $("send").disabled = sending || !(generate || chosenFile);
}

// A number field: omitted when blank (the server's default), sent as typed otherwise (the
// server checks ranges and says what is allowed).
function numberParam(params, id, key, label) {
  const el = $(id);
  if (el.validity.badInput) throw new Error(`${label}: not a number`);
  if (el.value.trim() !== "") params[key] = Number(el.value);
}

function generateRequest() {
  const params = {};
  numberParam(params, "steps", "steps", "Steps");
  params.sampler = $("sampler").value;
  numberParam(params, "guidance", "guidance", "Guidance");
  numberParam(params, "seed", "seed", "Seed");
  numberParam(params, "count", "count", "Images");
  return {
    model: $("model").value,
    input: { prompt: $("prompt").value },
    params,
    priority: $("priority").value,
  };
}

let limits = null;

async function loadLimits() {
  try {
    limits = await api.request("v1/limits", { auth: false });
    $("limits").textContent =
      `PNG or JPEG, up to ${formatBytes(limits.max_body_bytes)} per upload, ` +
      `${(limits.max_pixels / 1e6).toFixed(2)} megapixels and ${limits.max_side} px a side.`;
  } catch (_) {
    $("limits").textContent = "PNG or JPEG. The server checks size limits and says why it refuses.";
  }
}

// What the server will say before it says it; the file can still be sent (the server decides).
function limitWarning(file, width, height) {
  if (!limits) return "";
  if (file.size > limits.max_body_bytes) return `over the ${formatBytes(limits.max_body_bytes)} upload limit`;
  if (width * height > limits.max_pixels) return `over the ${limits.max_pixels}-pixel limit`;
  if (Math.max(width, height) > limits.max_side) return `over the ${limits.max_side} px side limit`;
  return "";
}

function chooseFile(file) {
  $("form-error").textContent = "";
  if (!file) return;
  if (!["image/png", "image/jpeg"].includes(file.type)) {
    $("form-error").textContent = `${file.name}: not a PNG or JPEG (the server would refuse it too)`;
  }
  chosenFile = file;
  const img = $("preview");
  if (img.src) URL.revokeObjectURL(img.src);
  $("drop-text").textContent = `${file.name}: ${formatBytes(file.size)}`;
  img.onload = () => {
    const warning = limitWarning(file, img.naturalWidth, img.naturalHeight);
    $("drop-text").textContent =
      `${file.name}: ${img.naturalWidth}×${img.naturalHeight}, ${formatBytes(file.size)}` +
      (warning ? ` (${warning})` : "");
  };
  img.onerror = () => { img.hidden = true; };
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  updateSend();
}

function wireForm() {
  const drop = $("drop");
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file").click();
    }
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("model").addEventListener("change", () => {
    $("form-error").textContent = "";
    describeModel();
  });
  $("job-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const generate = isGenerateModel(modelNamed($("model").value));
    if (sending || (!generate && !chosenFile)) return;
    $("form-error").textContent = "";
    let body;
    try {
      if (generate) {
        body = generateRequest();
      } else {
        body = new FormData();
        body.append("image", chosenFile, chosenFile.name);
        body.append("request", JSON.stringify({ model: $("model").value, priority: $("priority").value }));
      }
    } catch (err) {
      showError("form-error", err);
      return;
    }
    sending = true;
    updateSend();
    try {
      const created = await api.request("v1/jobs", { method: "POST", body });
      if (generate) prompts.set(created.id, body.input.prompt);
      upsertJob({ ...created, model: $("model").value, ...(generate ? { params: body.params } : {}) });
      refreshJob(created.id);
    } catch (err) {
      showError("form-error", err);
    } finally {
      sending = false;
      updateSend();
    }
  });
}

// A generate job's prompt and params (seed included: the server stores the one it used).
function generateDetails(id) {
  if (!details.has(id)) {
    const promise = (async () => {
      const known = jobs.get(id);
      const job = known && known.params && "seed" in known.params ? known : await api.request(`v1/jobs/${id}`);
      if (!prompts.has(id)) prompts.set(id, (await api.request(`v1/jobs/${id}/input`)).prompt);
      return { prompt: prompts.get(id), params: job.params || {} };
    })();
    promise.catch(() => details.delete(id));  // asked again on the next render
    details.set(id, promise);
  }
  return details.get(id);
}

const quoted = (prompt) => (prompt ? `“${prompt}”` : "(unconditional)");

// ---- jobs ---------------------------------------------------------------------------------

function upsertJob(job) {
  const old = jobs.get(job.id) || {};
  // A poll answer or a refresh can arrive after a newer event: never step back.
  if (old.update_seq !== undefined && job.update_seq !== undefined && job.update_seq < old.update_seq) return;
  const merged = { ...old, ...job };
  jobs.set(job.id, merged);
  renderJobs();
  if (merged.status === "succeeded" && old.status !== "succeeded") loadGallery(true);
}

async function refreshJob(id) {
  try {
    upsertJob(await api.request(`v1/jobs/${id}`));
  } catch (_) {
    // Updates will come through the feed.
  }
}

async function jobAction(id, action) {
  try {
    if (action === "delete") {
      await api.request(`v1/jobs/${id}`, { method: "DELETE" });
      jobs.delete(id);
      renderJobs();
      loadGallery(true);
    } else {
      const res = await api.request(`v1/jobs/${id}/${action}`, { method: "POST" });
      if (res && res.id && res.id !== id && prompts.has(id)) prompts.set(res.id, prompts.get(id));
      if (res && res.id) upsertJob({ model: (jobs.get(id) || {}).model, ...res });
      refreshJob(id);
    }
  } catch (err) {
    showError("form-error", err);
  }
}

// The list is updated in place, keyed by job id, so a focused button keeps its focus while
// updates arrive and the elapsed times tick.
function jobItem(job) {
  let li = $("jobs").querySelector(`li[data-job-id="${CSS.escape(job.id)}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.jobId = job.id;
    li.innerHTML = '<div class="top"><span class="status"></span><span class="info"></span></div>' +
      '<progress hidden></progress><p class="error" hidden></p><div class="actions"></div>';
  }
  const status = li.querySelector(".status");
  status.className = `status ${job.status}`;
  status.textContent = job.status;
  li.dataset.status = job.status;
  const where = job.status === "queued" && job.position !== undefined ? ` · position ${job.position}` : "";
  const retry = job.retry_of ? ` · retry of ${job.retry_of.slice(0, 8)}` : "";
  const time = elapsed(job);
  const generate = isGenerateJob(job);
  let what = "";
  if (generate) {
    const p = job.params || {};
    const count = p.count || 1;
    what = ` · ${prompts.has(job.id) ? quoted(prompts.get(job.id)) : "…"} · ${count} image${count === 1 ? "" : "s"}` +
      (p.seed !== undefined ? ` · seed ${p.seed}` : "");
    if (!prompts.has(job.id) && !details.has(job.id)) generateDetails(job.id).then(renderJobs, () => {});
  }
  const total = job.progress ? job.progress.total : 0;
  const steps = generate && total && job.status === "running" ? ` · step ${job.progress.done} of ${total}` : "";
  li.querySelector(".info").textContent =
    `${job.model || ""}${what}${where}${retry}${steps}${time ? ` · ${time}` : ""}`;
  const bar = li.querySelector("progress");
  bar.hidden = !total;
  if (!bar.hidden) {
    bar.max = total;
    bar.value = job.progress.done;
    bar.setAttribute("aria-label", generate ? `step ${job.progress.done} of ${total}`
                                            : `progress ${job.progress.done} of ${total}`);
  }
  const error = li.querySelector(".error");
  error.hidden = !job.error;
  error.textContent = job.error ? job.error.message : "";
  const wanted = [];
  if (job.status === "queued" || job.status === "running") wanted.push(["Cancel", "cancel"]);
  if (job.status === "failed" || job.status === "cancelled") wanted.push(["Retry", "retry"]);
  wanted.push(["Delete", "delete"]);
  const actions = li.querySelector(".actions");
  const key = wanted.map((w) => w[1]).join(",");
  if (actions.dataset.key !== key) {  // rebuilt only when the choice changes
    actions.dataset.key = key;
    actions.replaceChildren(...wanted.map(([label, action]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.action = action;
      b.setAttribute("aria-label", `${label} job ${job.id.slice(0, 8)}`);
      b.addEventListener("click", () => jobAction(job.id, action));
      return b;
    }));
  }
  return li;
}

function renderJobs() {
  const list = [...jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const ul = $("jobs");
  for (const li of [...ul.children]) if (!jobs.has(li.dataset.jobId)) li.remove();
  list.forEach((job, i) => {
    const li = jobItem(job);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
  $("jobs-empty").hidden = list.length > 0;
}

async function listJobs() {
  const page = await api.request("v1/jobs?limit=100");
  jobs.clear();
  for (const job of page.jobs) jobs.set(job.id, job);
  renderJobs();
}

// ---- queue controls -----------------------------------------------------------------------

async function queueAction(method, path) {
  try {
    await api.request(path, { method });
    await showQueue();
  } catch (err) {
    showError("form-error", err);
  }
}

async function showQueue() {
  try {
    const q = await api.request("v1/queue");
    $("queue-state").textContent = q.paused ? "Queue paused" : "";
    $("pause").disabled = q.paused;
    $("resume").disabled = !q.paused;
  } catch (_) {
    $("queue-state").textContent = "";
  }
}

// ---- gallery ------------------------------------------------------------------------------

// Reloads (reset) can overlap when jobs finish close together: only the latest one draws.
let galleryGeneration = 0;
const galleryUrls = new Set();  // object URLs of the thumbnails shown, revoked on reload

async function loadGallery(reset) {
  const generation = reset ? ++galleryGeneration : galleryGeneration;
  const cursor = !reset && galleryCursor ? `&cursor=${encodeURIComponent(galleryCursor)}` : "";
  try {
    const page = await api.request(`v1/gallery?limit=24${cursor}`);
    if (generation !== galleryGeneration) return;
    if (reset) {
      for (const u of galleryUrls) URL.revokeObjectURL(u);
      galleryUrls.clear();
      $("gallery").replaceChildren();
    }
    for (const item of page.items) $("gallery").append(galleryTile(item));
    galleryCursor = page.next_cursor;
    $("more").hidden = !galleryCursor;
    $("gallery-empty").hidden = $("gallery").children.length > 0;
  } catch (_) {
    // The gallery stays as it is; the next job completion reloads it.
  }
}

function galleryTile(item) {
  const b = document.createElement("button");
  b.type = "button";
  b.setAttribute("aria-label", `Open ${item.model} result ${item.width}×${item.height}`);
  const img = document.createElement("img");
  img.alt = `${item.model} result`;
  b.dataset.jobId = item.job_id;
  b.dataset.index = item.index;
  api.imageUrl(item.thumbnail_url).then((u) => {
    galleryUrls.add(u);
    img.src = u;
  }).catch(() => {});
  b.append(img);
  if (isGenerateJob(item)) {  // small images, scaled up crisply, captioned with their prompt
    b.classList.add("generated");
    const caption = document.createElement("span");
    caption.className = "caption";
    b.append(caption);
    generateDetails(item.job_id).then(({ prompt, params }) => {
      const seed = params.seed !== undefined ? ` · seed ${params.seed}` : "";
      caption.textContent = `${prompt || "(unconditional)"}${seed} · #${item.index + 1}`;
      b.setAttribute("aria-label",
        `Open generated image ${quoted(prompt)}${seed}, image ${item.index + 1}, ${item.width}×${item.height}`);
      img.alt = `generated ${quoted(prompt)}`;
    }, () => {});
  }
  b.addEventListener("click", () => openViewer(item));
  return b;
}

const viewerUrls = [];

async function openViewer(item) {
  const generate = isGenerateJob(item);
  try {
    const after = await api.imageUrl(item.url);
    viewerUrls.push(after);
    $("download").href = after;
    $("download").download = `${item.job_id}-${item.index}.png`;
    if (generate) {
      // No before: the input is a prompt. The image, scaled up crisply, with what made it.
      $("generated").src = after;
      let text = `${item.width}×${item.height}, image ${item.index + 1}`;
      try {
        const { prompt, params } = await generateDetails(item.job_id);
        const p = [`prompt ${quoted(prompt)}`, `seed ${params.seed}`];
        if (params.steps !== undefined) p.push(`${params.steps} steps`);
        if (params.sampler) p.push(params.sampler);
        if (params.guidance !== undefined) p.push(`guidance ${params.guidance}`);
        text = `${p.join(" · ")} · ${text}`;
        $("generated").alt = `generated image, prompt ${quoted(prompt)}, seed ${params.seed}`;
      } catch (_) {
        $("generated").alt = "generated image";
      }
      $("generated-info").textContent = text;
    } else {
      $("after").src = after;
      try {
        const before = await api.imageUrl(`v1/jobs/${item.job_id}/input`);
        viewerUrls.push(before);
        $("before").src = before;
      } catch (_) {
        $("before").src = after;  // no input kept: the slider shows the output on both sides
      }
    }
  } catch (err) {
    showError("form-error", err);
    return;
  }
  $("viewer-title").textContent = generate ? `Generated by ${item.model}` : "Before / after";
  $("compare").hidden = generate;
  $("single").hidden = !generate;
  $("slider").value = 50;
  $("after-clip").style.width = "50%";
  $("viewer").showModal();
}

function closeViewer() {
  for (const u of viewerUrls.splice(0)) URL.revokeObjectURL(u);
  $("before").removeAttribute("src");
  $("after").removeAttribute("src");
  $("generated").removeAttribute("src");
}

// ---- start --------------------------------------------------------------------------------

async function main() {
  wireForm();
  $("slider").addEventListener("input", (e) => { $("after-clip").style.width = `${e.target.value}%`; });
  $("close").addEventListener("click", () => $("viewer").close());
  $("viewer").addEventListener("close", closeViewer);
  $("more").addEventListener("click", () => loadGallery(false));
  $("pause").addEventListener("click", () => queueAction("POST", "v1/queue/pause"));
  $("resume").addEventListener("click", () => queueAction("POST", "v1/queue/resume"));
  $("clear").addEventListener("click", () => queueAction("DELETE", "v1/queue"));
  $("forget").addEventListener("click", async () => {
    if (!confirm("Delete this session with all its jobs and images?")) return;
    await api.forget().catch(() => {});
    location.reload();
  });
  try {
    await api.ensureSession();
    // The gallery after the models: they tell generated images from upscaled ones.
    const modelsLoaded = loadModels();
    await Promise.all([modelsLoaded, loadLimits(), listJobs(), showQueue(),
                       modelsLoaded.finally(() => loadGallery(true))]);
  } catch (err) {
    showError("form-error", err);
  }
  const badge = $("live");
  new JobFeed(api, {
    onJob: upsertJob,
    onReset: () => listJobs().catch(() => {}),
    onMode: (mode) => {
      badge.className = `badge ${mode}`;
      badge.textContent = mode === "live" ? "live" : "polling (events unavailable)";
    },
  }).start();
  setInterval(renderJobs, 1000);  // elapsed times tick
}

main();
