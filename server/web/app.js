// kiln's page: submit images, watch this session's jobs live, browse its gallery.
import { Api, ApiError, JobFeed } from "./api.js";

const $ = (id) => document.getElementById(id);
const api = new Api();
const jobs = new Map();  // id -> job JSON, this session's only
let models = [];
let chosenFile = null;
let galleryCursor = null;

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

async function loadModels() {
  models = await api.request("v1/models", { auth: false });
  const select = $("model");
  select.replaceChildren(...models.map((m) => {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = `${m.name} (x${m.scale})`;
    return o;
  }));
  describeModel();
}

function describeModel() {
  const m = models.find((x) => x.name === $("model").value);
  $("model-info").textContent = m
    ? `${m.arch}, ${m.scale}x upscale, ${(m.parameters / 1e6).toFixed(2)} M parameters`
    : "";
}

async function loadLimits() {
  try {
    const l = await api.request("v1/limits");
    $("limits").textContent =
      `Limits: ${formatBytes(l.max_body_bytes)} per upload, ${(l.max_pixels / 1e6).toFixed(1)} megapixels.`;
  } catch (_) {
    $("limits").textContent = "PNG or JPEG. The server checks size limits and says why it refuses.";
  }
}

function chooseFile(file) {
  $("form-error").textContent = "";
  if (!file) return;
  if (!["image/png", "image/jpeg"].includes(file.type)) {
    $("form-error").textContent = `${file.name}: not a PNG or JPEG (the server would refuse it too)`;
  }
  chosenFile = file;
  const img = $("preview");
  img.onload = () => {
    $("drop-text").textContent =
      `${file.name}: ${img.naturalWidth}×${img.naturalHeight}, ${formatBytes(file.size)}`;
  };
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  $("send").disabled = false;
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
  $("model").addEventListener("change", describeModel);
  $("job-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!chosenFile) return;
    $("form-error").textContent = "";
    const form = new FormData();
    form.append("image", chosenFile, chosenFile.name);
    form.append("request", JSON.stringify({ model: $("model").value, priority: $("priority").value }));
    $("send").disabled = true;
    try {
      const created = await api.request("v1/jobs", { method: "POST", body: form });
      upsertJob({ ...created, model: $("model").value });
      refreshJob(created.id);
    } catch (err) {
      showError("form-error", err);
    } finally {
      $("send").disabled = false;
    }
  });
}

// ---- jobs ---------------------------------------------------------------------------------

function upsertJob(job) {
  const old = jobs.get(job.id) || {};
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
      if (res && res.id) upsertJob(res);
      refreshJob(id);
    }
  } catch (err) {
    showError("form-error", err);
  }
}

function renderJobs() {
  const list = [...jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  $("jobs").replaceChildren(...list.map((job) => {
    const li = document.createElement("li");
    li.dataset.jobId = job.id;
    const top = document.createElement("div");
    top.className = "top";
    const status = document.createElement("span");
    status.className = `status ${job.status}`;
    status.textContent = job.status;
    const info = document.createElement("span");
    const where = job.status === "queued" && job.position !== undefined ? ` · position ${job.position}` : "";
    info.textContent = `${job.model || ""}${where} ${elapsed(job)}`;
    top.append(status, info);
    li.append(top);
    if (job.progress && job.progress.total) {
      const bar = document.createElement("progress");
      bar.max = job.progress.total;
      bar.value = job.progress.done;
      bar.setAttribute("aria-label", `progress ${job.progress.done} of ${job.progress.total}`);
      li.append(bar);
    }
    if (job.error) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = job.error.message;
      li.append(p);
    }
    const actions = document.createElement("div");
    actions.className = "actions";
    const add = (label, action) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", () => jobAction(job.id, action));
      actions.append(b);
    };
    if (job.status === "queued" || job.status === "running") add("Cancel", "cancel");
    if (job.status === "failed" || job.status === "cancelled") add("Retry", "retry");
    add("Delete", "delete");
    li.append(actions);
    return li;
  }));
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
  } catch (_) {
    $("queue-state").textContent = "";
  }
}

// ---- gallery ------------------------------------------------------------------------------

async function loadGallery(reset) {
  if (reset) {
    galleryCursor = null;
    $("gallery").replaceChildren();
  }
  const cursor = galleryCursor ? `&cursor=${encodeURIComponent(galleryCursor)}` : "";
  try {
    const page = await api.request(`v1/gallery?limit=24${cursor}`);
    for (const item of page.items) $("gallery").append(galleryTile(item));
    galleryCursor = page.next_cursor;
    $("more").hidden = !galleryCursor;
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
  api.imageUrl(item.thumbnail_url).then((u) => { img.src = u; }).catch(() => {});
  b.append(img);
  b.addEventListener("click", () => openViewer(item));
  return b;
}

async function openViewer(item) {
  const after = await api.imageUrl(item.url);
  $("after").src = after;
  $("download").href = after;
  $("download").download = `${item.job_id}-${item.index}.png`;
  try {
    $("before").src = await api.imageUrl(`v1/jobs/${item.job_id}/input`);
  } catch (_) {
    $("before").src = after;  // no input kept: the slider shows the output on both sides
  }
  $("slider").value = 50;
  $("after-clip").style.width = "50%";
  $("viewer").showModal();
}

// ---- start --------------------------------------------------------------------------------

async function main() {
  wireForm();
  $("slider").addEventListener("input", (e) => { $("after-clip").style.width = `${e.target.value}%`; });
  $("close").addEventListener("click", () => $("viewer").close());
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
    await Promise.all([loadModels(), loadLimits(), listJobs(), showQueue(), loadGallery(true)]);
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
