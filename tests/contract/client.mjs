// The contract test's HTTP client: every request is checked against openapi.yaml before it is
// sent and every answer after it arrives (contract.mjs, ajv). node:http rather than fetch, so
// that bodies go out byte for byte (Node 18's fetch ends a multipart body without the CRLF
// cpp-httplib 0.11.4 needs; docs/ci.md) and an event stream can be read and left at will.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { ContractError } from "./contract.mjs";

function send(base, { method, path, headers, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    // A server that answers before reading the whole body (413) may close while we write;
    // its answer still arrives.
    let answered = false;
    req.on("response", () => (answered = true));
    req.on("error", (e) => {
      if (e.code !== "EPIPE" && e.code !== "ECONNRESET") reject(e);
    });
    req.on("close", () => answered || reject(new Error(`${method} ${path}: closed without an answer`)));
    req.end(body);
  });
}

export function multipart(parts) {
  const boundary = "kiln-contract-" + randomBytes(8).toString("hex");
  const chunks = [];
  for (const p of parts) {
    const file = p.filename ? `; filename="${p.filename}"` : "";
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${file}\r\n` +
      `Content-Type: ${p.type}\r\n\r\n`), Buffer.from(p.data), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks), parts };
}

export class Client {
  constructor(contract, base) {
    this.contract = contract;
    this.base = base;
  }

  // options: method, path (with query), token, headers, json (an object) | text (a raw body) |
  // form (from multipart()), contentType; expect (the status); invalid (why the document
  // itself refuses this request: then its validation must fail, proving the document and the
  // server refuse the same thing). Returns {status, headers, body, json}.
  async call(options) {
    const { method = "GET", path, token, expect } = options;
    const url = new URL(path, this.base);
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    let body;
    let contentType = options.contentType;
    let parsed;
    let form;
    if (options.json !== undefined) {
      body = Buffer.from(JSON.stringify(options.json));
      contentType ??= "application/json";
      parsed = options.json;
    } else if (options.text !== undefined) {
      body = Buffer.from(options.text);
      try {
        parsed = JSON.parse(options.text);
      } catch (_) {
        parsed = undefined;
      }
    } else if (options.form) {
      body = options.form.body;
      contentType = options.form.contentType;
      form = {};
      for (const p of options.form.parts) {
        form[p.name] = p.type === "application/json" ? JSON.parse(p.data) : Buffer.from(p.data).toString("latin1");
      }
    }
    if (contentType) headers["Content-Type"] = contentType;
    if (method !== "GET") headers["Content-Length"] = String(body ? body.length : 0);
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const what = `${method} ${url.pathname}${url.search}`;
    let refused = null;
    try {
      this.contract.validateRequest({
        method, path: url.pathname, query: url.searchParams, headers: lower, contentType,
        json: form ? undefined : parsed, form,
      });
    } catch (e) {
      if (!(e instanceof ContractError)) throw e;
      refused = e.message;
    }
    if (options.invalid && !refused) {
      assert.fail(`${what}: openapi.yaml accepts this request, which is meant to break it (${options.invalid})`);
    }
    if (!options.invalid && refused) assert.fail(`${what}: the request breaks openapi.yaml:\n${refused}`);
    const res = await send(this.base, { method, path: url.pathname + url.search, headers, body });
    const json = this.contract.validateResponse(method, url.pathname, res);
    if (expect !== undefined && res.status !== expect) {
      assert.fail(`${what}: expected ${expect}, got ${res.status}: ${res.body.toString("utf8").slice(0, 300)}`);
    }
    return { ...res, json };
  }

  // GET /v1/events: checks the answer's status, headers and Content-Type against the document,
  // then reads events until until(events) is true, validating each `event: job` data as a Job.
  // Returns {status, headers, events}; the connection is closed afterwards.
  // control (optional) gets close(), which ends a stream that until() keeps open.
  stream({ token, headers = {}, query = "", until, timeoutMs = 120_000, control }) {
    const path = "/v1/events" + query;
    const url = new URL(path, this.base);
    const all = { ...headers, Accept: "text/event-stream" };
    if (token) all.Authorization = `Bearer ${token}`;
    this.contract.validateRequest({
      method: "GET", path: url.pathname, query: url.searchParams,
      headers: Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), v])),
    });
    return new Promise((resolve, reject) => {
      const events = [];
      let done = false;
      const req = http.get(url, { headers: all, agent: false }, (res) => {
        const finish = (error) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          req.destroy();
          if (error) reject(error);
          else resolve({ status: res.statusCode, headers: res.headers, events });
        };
        if (control) control.close = () => finish();
        const timer = setTimeout(() => finish(new Error(`${path}: no matching event within ${timeoutMs} ms (${events.length} read)`)), timeoutMs);
        if (res.statusCode !== 200) {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            try {
              this.contract.validateResponse("GET", url.pathname, { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
              finish();
            } catch (e) {
              finish(e);
            }
          });
          return;
        }
        try {
          // The body is a stream: its headers and type are checked here, its events below.
          this.contract.validateResponse("GET", url.pathname, { status: 200, headers: res.headers, body: Buffer.alloc(0) });
        } catch (e) {
          return finish(e);
        }
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
          let end;
          while ((end = text.indexOf("\n\n")) >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            const event = { comments: [], data: "" };
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) event.comments.push(line.slice(1).trim());
              else if (line.startsWith("id: ")) event.id = Number(line.slice(4));
              else if (line.startsWith("event: ")) event.event = line.slice(7);
              else if (line.startsWith("data: ")) event.data += line.slice(6);
              else if (line.startsWith("retry: ")) event.retry = Number(line.slice(7));
            }
            try {
              if (event.event === "job") {
                event.job = JSON.parse(event.data);
                this.contract.check(this.contract.schemaAt("Job"), event.job, `event ${event.id} data`);
              }
            } catch (e) {
              return finish(e);
            }
            events.push(event);
            if (until(events)) return finish();
          }
        });
        res.on("end", () => finish(new Error(`${path}: the stream ended after ${events.length} events`)));
      });
      req.on("error", (e) => (done ? null : reject(e)));
    });
  }
}
