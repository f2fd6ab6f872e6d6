// The kiln v1 API as the page uses it: a session token kept in localStorage (never in a URL),
// relative URLs only (the page works under any sub-path behind a proxy), and live job updates
// that fall back to polling by themselves.

const SESSION_KEY = "kiln.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Server URLs may be absolute paths ("/v1/..."); the page resolves them against its own
// location so a proxy prefix ("/kiln/") is kept.
export function relative(url) {
  return url.startsWith("/") ? url.slice(1) : url;
}

export class Api {
  constructor() {
    this.session = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
  }

  async ensureSession() {
    if (this.session) {
      try {
        await this.request("v1/queue");
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
      }
    }
    const created = await this.request("v1/sessions", { method: "POST", auth: false });
    this.session = created;
    localStorage.setItem(SESSION_KEY, JSON.stringify(created));
  }

  async forget() {
    try {
      await this.request("v1/sessions/current", { method: "DELETE" });
    } finally {
      localStorage.removeItem(SESSION_KEY);
      this.session = null;
    }
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.session) h.Authorization = `Bearer ${this.session.token}`;
    return h;
  }

  async request(path, { method = "GET", body, headers = {}, auth = true, raw = false } = {}) {
    const init = { method, headers: auth ? this.headers(headers) : headers };
    if (body !== undefined) {
      if (body instanceof FormData) {
        init.body = body;
      } else {
        init.body = JSON.stringify(body);
        init.headers["Content-Type"] = "application/json";
      }
    }
    const res = await fetch(relative(path), init);
    if (!res.ok) {
      let code = `http_${res.status}`;
      let message = res.statusText;
      try {
        const err = (await res.json()).error;
        code = err.code;
        message = err.message;
      } catch (_) {
        // Not a JSON error body (a proxy's page): keep the status text.
      }
      const e = new ApiError(res.status, code, message);
      e.retryAfter = res.headers.get("Retry-After");
      throw e;
    }
    if (raw) return res;
    if (res.status === 204) return null;
    return res.json();
  }

  // An image behind the token, as an object URL for <img src>.
  async imageUrl(path) {
    const res = await this.request(path, { raw: true });
    return URL.createObjectURL(await res.blob());
  }
}

// Job updates: Server-Sent Events read through fetch (EventSource cannot send the token in a
// header), resumed with Last-Event-ID; when the stream fails or goes quiet for longer than two
// heartbeats, polling GET v1/jobs?updated_since= takes over and the stream is tried again later.
export class JobFeed {
  constructor(api, { onJob, onReset, onMode }) {
    this.api = api;
    this.onJob = onJob;
    this.onReset = onReset;
    this.onMode = onMode;
    this.lastEventId = null;
    this.stopped = false;
  }

  start() {
    this.stream();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  async stream() {
    while (!this.stopped) {
      try {
        await this.readStream();
      } catch (_) {
        // Falls through to polling.
      }
      if (this.stopped) return;
      this.onMode("polling");
      await this.poll(30000);
    }
  }

  async readStream() {
    this.abort = new AbortController();
    const headers = this.api.headers({ Accept: "text/event-stream" });
    if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
    const res = await fetch("v1/events", { headers, signal: this.abort.signal });
    if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
    this.onMode("live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: "", id: null };
    for (;;) {
      // Two heartbeats (15 s each) missed: the stream is stalled (a buffering proxy).
      let timer;
      const quiet = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("events: stalled")), 35000);
      });
      let chunk;
      try {
        chunk = await Promise.race([reader.read(), quiet]);
      } catch (e) {
        this.abort.abort();
        throw e;
      } finally {
        clearTimeout(timer);
      }
      const { value, done } = chunk;
      if (done) throw new Error("events: closed");
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line === "") {
          this.dispatch(event);
          event = { type: "message", data: "", id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.type = val;
          else if (field === "data") event.data += (event.data ? "\n" : "") + val;
          else if (field === "id") event.id = val;
        }
      }
    }
  }

  dispatch(event) {
    if (event.id !== null) this.lastEventId = event.id;
    if (event.type === "job" && event.data) this.onJob(JSON.parse(event.data));
    else if (event.type === "reset") this.onReset();
  }

  // Polls for `duration` ms, then returns so the stream can be tried again.
  async poll(duration) {
    const until = Date.now() + duration;
    while (!this.stopped && Date.now() < until) {
      try {
        const since = this.lastEventId === null ? "" : `&updated_since=${this.lastEventId}`;
        const page = await this.api.request(`v1/jobs?limit=100${since}`);
        for (const job of page.jobs) {
          this.onJob(job);
          // A job's update_seq is the id of the event that announced its last change.
          if (job.update_seq !== undefined && (this.lastEventId === null || job.update_seq > Number(this.lastEventId))) {
            this.lastEventId = String(job.update_seq);
          }
        }
      } catch (_) {
        // The badge already says polling; try again next round.
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
