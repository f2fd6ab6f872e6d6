// openapi.yaml as an executable contract. Every schema is checked by ajv (JSON Schema 2020-12,
// the dialect of OpenAPI 3.1) against the document itself, loaded once under one $id so that
// its own "#/components/..." references resolve; this file only finds which schema applies
// (operation, status, media type, header, parameter) and coerces header and query strings to
// the types their schemas name. It never checks a shape itself.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

const DOC_ID = "kiln-openapi";
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

// "#/a/b~1c" -> ["a", "b/c"]
function pointerParts(ref) {
  return ref.replace(/^#\//, "").split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function pointer(parts) {
  return "#/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

export class ContractError extends Error {}

export class Contract {
  constructor(file) {
    this.doc = parse(readFileSync(file, "utf8"));
    // strict: an unknown keyword or a mistyped schema in the document is an error here too.
    this.ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
    addFormats(this.ajv);
    // OpenAPI's annotation for code generators; the oneOf beside it (branches with distinct
    // `task` consts) is what validates.
    this.ajv.addKeyword({ keyword: "discriminator", schemaType: "object" });
    // The document's top-level fields, so that ajv can hold the whole document as the one
    // schema that its references point into; none of them validates anything.
    for (const keyword of ["openapi", "info", "servers", "security", "paths", "components", "tags", "webhooks"]) {
      this.ajv.addKeyword({ keyword });
    }
    this.ajv.addSchema(this.doc, DOC_ID);
    this.validators = new Map();
    this.operations = [];
    for (const [template, item] of Object.entries(this.doc.paths)) {
      const names = [];
      const regex = new RegExp(
        "^" +
          template.replace(/\{([^}]+)\}/g, (_, name) => {
            names.push(name);
            return "([^/]+)";
          }) +
          "$",
      );
      for (const method of METHODS) {
        if (!item[method]) continue;
        this.operations.push({
          method: method.toUpperCase(),
          template,
          regex,
          names,
          op: item[method],
          at: ["paths", template, method],
          shared: item.parameters || [],
        });
      }
    }
    this.covered = new Map(); // "METHOD template" -> Set of statuses seen and validated
  }

  // Follows an OpenAPI $ref (parameters, responses, headers) to the object and its location.
  deref(object, at) {
    let hops = 0;
    while (object && object.$ref) {
      if (++hops > 8) throw new ContractError(`$ref loop at ${pointer(at)}`);
      at = pointerParts(object.$ref);
      object = at.reduce((o, key) => (o ? o[key] : undefined), this.doc);
      if (object === undefined) throw new ContractError(`unresolved $ref ${pointer(at)}`);
    }
    return { object, at };
  }

  // The ajv validator of the schema at a location in the document.
  validator(at) {
    const ref = DOC_ID + pointer(at);
    let v = this.validators.get(ref);
    if (!v) {
      v = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, v);
    }
    return v;
  }

  // Throws ContractError with ajv's own messages when `value` does not match.
  check(at, value, what) {
    const v = this.validator(at);
    if (v(value)) return;
    const errors = v.errors.map((e) => `  ${e.instancePath || "(root)"} ${e.message}` +
      (e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "") +
      ` [schema ${e.schemaPath}]`);
    throw new ContractError(`${what} does not match ${pointer(at)}:\n${errors.join("\n")}`);
  }

  schemaAt(name) {
    return ["components", "schemas", name];
  }

  find(method, path) {
    for (const o of this.operations) {
      if (o.method !== method) continue;
      const m = o.regex.exec(path);
      if (m) return { ...o, pathValues: Object.fromEntries(o.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
    }
    throw new ContractError(`${method} ${path} is not an operation of openapi.yaml`);
  }

  // A header or query string as the type its schema names (its $ref followed).
  coerce(text, schemaAt) {
    const { object: schema } = this.deref(schemaAt.reduce((o, k) => o[k], this.doc), schemaAt);
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    if (type === "boolean" && (text === "true" || text === "false")) return text === "true";
    return text;
  }

  parameters(found) {
    const out = [];
    for (const [list, base] of [
      [found.shared, [...found.at.slice(0, 2), "parameters"]],
      [found.op.parameters || [], [...found.at, "parameters"]],
    ]) {
      list.forEach((p, i) => out.push(this.deref(p, [...base, i])));
    }
    return out;
  }

  // request: {method, path, query: URLSearchParams, headers (lowercase names), contentType,
  // json (parsed body) | form (multipart parts as values)}. Throws ContractError.
  validateRequest(request) {
    const found = this.find(request.method, request.path);
    const where = `request ${request.method} ${found.template}`;
    const known = new Set();
    for (const { object: p, at } of this.parameters(found)) {
      const schemaAt = [...at, "schema"];
      let value;
      if (p.in === "path") value = found.pathValues[p.name];
      else if (p.in === "query") {
        known.add(p.name);
        value = request.query.get(p.name) ?? undefined;
      } else if (p.in === "header") value = request.headers[p.name.toLowerCase()];
      if (value === undefined) {
        if (p.required) throw new ContractError(`${where}: required ${p.in} parameter ${p.name} is missing`);
        continue;
      }
      this.check(schemaAt, this.coerce(value, schemaAt), `${where}: ${p.in} parameter ${p.name}=${JSON.stringify(value)}`);
    }
    for (const name of request.query.keys()) {
      if (!known.has(name)) throw new ContractError(`${where}: query parameter ${name} is not documented`);
    }
    const security = found.op.security ?? this.doc.security ?? [];
    const anonymous = security.length === 0 || security.some((s) => Object.keys(s).length === 0);
    if (!anonymous && !/^Bearer \S+$/.test(request.headers.authorization || "")) {
      throw new ContractError(`${where}: needs Authorization: Bearer <token> (security)`);
    }
    const body = found.op.requestBody && this.deref(found.op.requestBody, [...found.at, "requestBody"]);
    if (!body) {
      if (request.json !== undefined || request.form !== undefined) throw new ContractError(`${where}: takes no body`);
      return found;
    }
    if (request.contentType === undefined) {
      if (body.object.required) throw new ContractError(`${where}: a body is required`);
      return found;
    }
    const media = request.contentType.split(";")[0].trim().toLowerCase();
    if (!body.object.content[media]) {
      throw new ContractError(`${where}: content type ${media} is not one of ${Object.keys(body.object.content).join(", ")}`);
    }
    const value = request.form ?? request.json;
    if (value === undefined) throw new ContractError(`${where}: the body is not valid ${media}`);
    this.check([...body.at, "content", media, "schema"], value, `${where} body (${media})`);
    return found;
  }

  // response: {status, headers (lowercase names), body: Buffer}. Returns the parsed JSON body
  // (or undefined). Throws ContractError; records the status as covered when it matches.
  validateResponse(method, path, response) {
    const found = this.find(method, path);
    const where = `response ${response.status} to ${method} ${found.template}`;
    const responses = found.op.responses;
    let key = String(response.status);
    if (!responses[key]) {
      // `default` describes only the 500 of a bug; any other status must be listed.
      if (response.status >= 500 && responses.default) key = "default";
      else throw new ContractError(`${where}: status ${response.status} is not documented (documented: ${Object.keys(responses).join(", ")})`);
    }
    const { object: r, at } = this.deref(responses[key], [...found.at, "responses", key]);
    for (const [name, h] of Object.entries(r.headers || {})) {
      const { object: header, at: hAt } = this.deref(h, [...at, "headers", name]);
      const value = response.headers[name.toLowerCase()];
      if (value === undefined) {
        if (header.required) throw new ContractError(`${where}: required header ${name} is missing`);
        continue;
      }
      const schemaAt = [...hAt, "schema"];
      this.check(schemaAt, this.coerce(value, schemaAt), `${where}: header ${name}: ${value}`);
    }
    let parsed;
    if (!r.content) {
      if (response.body.length !== 0) throw new ContractError(`${where}: documented without a body, got ${response.body.length} bytes`);
    } else {
      const type = response.headers["content-type"];
      if (!type) throw new ContractError(`${where}: no Content-Type (documented: ${Object.keys(r.content).join(", ")})`);
      const media = type.split(";")[0].trim().toLowerCase();
      if (!r.content[media]) {
        throw new ContractError(`${where}: Content-Type ${media} is not documented (documented: ${Object.keys(r.content).join(", ")})`);
      }
      const schemaAt = [...at, "content", media, "schema"];
      if (media === "application/json") {
        try {
          parsed = JSON.parse(response.body.toString("utf8"));
        } catch (e) {
          throw new ContractError(`${where}: the body is not JSON: ${e.message}`);
        }
        this.check(schemaAt, parsed, `${where} body`);
      } else if (media.startsWith("text/")) {
        this.check(schemaAt, response.body.toString("utf8"), `${where} body`);
      } else {
        this.check(schemaAt, response.body.toString("latin1"), `${where} body`);
        const magic = { "image/png": "89504e470d0a1a0a", "image/jpeg": "ffd8ff" }[media];
        if (magic && response.body.subarray(0, magic.length / 2).toString("hex") !== magic) {
          throw new ContractError(`${where}: the body is not ${media} (it starts ${response.body.subarray(0, 8).toString("hex")})`);
        }
      }
    }
    const op = `${method} ${found.template}`;
    if (!this.covered.has(op)) this.covered.set(op, new Set());
    this.covered.get(op).add(key);
    return parsed;
  }

  // Every documented (operation, status) but `default`, and whether a validated response had it.
  coverage() {
    const rows = [];
    for (const o of this.operations) {
      const op = `${o.method} ${o.template}`;
      for (const status of Object.keys(o.op.responses).filter((s) => s !== "default").sort()) {
        rows.push({ op, status, covered: this.covered.get(op)?.has(status) ?? false });
      }
    }
    return rows;
  }
}
