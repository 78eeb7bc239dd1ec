// Helpers of the client tests: HTTP calls, the mock's counters, Prometheus text, README
// blocks, the OpenAPI spec (ajv), the C error table, ids, keys and signatures.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";
import { ms } from "./stack.js";

export { Stack, poll, ms } from "./stack.js";

// The repository (run.sh sets it: the tests run from a copy in the build tree).
export const SOURCE_DIR = process.env.REQRUN_SOURCE_DIR;
assert.ok(SOURCE_DIR, "REQRUN_SOURCE_DIR is not set: run the tests with run.sh");
export const sourceFile = (rel) => fs.readFileSync(path.join(SOURCE_DIR, rel), "utf8");

export const CHAT = "/v1/chat/completions";
export const ID_RE = /^rr_[a-z2-7]{26}$/;
export const MESSAGES = [{ role: "user", content: "Hello" }];

// One HTTP exchange: {status, headers, text, json}. A body that is not a string is sent
// as JSON.
export async function http(base, method, urlPath, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(ms(60000)) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] ??= "application/json";
  }
  const r = await fetch(base + urlPath, init);
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

export const chat = (base, body, headers) => http(base, "POST", CHAT, { body, headers });
export const getRequest = (base, id, query = "", headers = {}) =>
  http(base, "GET", `/v1/requests/${id}${query}`, { headers });
// The X-ReqRun-Request-Id of an answer.
export const idOf = (res) => res.headers.get("x-reqrun-request-id");

// Upstream calls the mock counted for one request id.
export async function mockCalls(stack, id) {
  const r = await http(stack.mockBase, "GET", "/mock/stats");
  assert.equal(r.status, 200);
  return r.json.calls[id] ?? 0;
}

// A fetch for the SDK's `fetch` option that records every exchange's status and headers.
export function recordingFetch(onResponse) {
  const seen = [];
  const f = async (url, init) => {
    const r = await fetch(url, init);
    seen.push({ status: r.status, headers: r.headers });
    if (onResponse) await onResponse(r, seen);
    return r;
  };
  return { fetch: f, seen };
}

// ---- Prometheus text ----

export const metricsText = async (base) => (await http(base, "GET", "/metrics")).text;

// The value of the sample `name` with exactly these labels, or undefined.
export function metricValue(text, name, labels = {}) {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    const want = Object.entries(labels);
    if (Object.keys(got).length === want.length && want.every(([k, v]) => got[k] === v)) {
      return Number(m[3]);
    }
  }
  return undefined;
}

// Metric family name -> type, from the # TYPE lines.
export function metricTypes(text) {
  const types = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  return types;
}

// ---- README ----

// The code of the ```lang block between <!-- readme-test: name --> and <!-- /readme-test -->.
export function readmeBlock(name) {
  const re = new RegExp(
    `<!-- readme-test: ${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\`\\s*<!-- /readme-test -->`,
  );
  const m = re.exec(sourceFile("README.md"));
  assert.ok(m, `README.md has no <!-- readme-test: ${name} --> block`);
  return m[1];
}

// ---- ids, keys, signatures ----

export const sha256hex = (data) => crypto.createHash("sha256").update(data).digest("hex");

// The id ReqRun derives from (tenant, key): rr_ + 26 chars of base32(SHA-256(tenant 0 key)).
export function deriveId(tenant, key) {
  const digest = crypto.createHash("sha256").update(`${tenant}\0${key}`).digest();
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = "";
  for (const b of digest) bits += b.toString(2).padStart(8, "0");
  let out = "";
  for (let i = 0; i < 26; i++) out += alphabet[parseInt(bits.slice(i * 5, i * 5 + 5), 2)];
  return `rr_${out}`;
}

// Writes a REQRUN_API_KEYS_FILE for [tenant, key, signing secret?] entries; returns its path.
export function writeKeysFile(dir, entries) {
  const file = path.join(dir, "api-keys");
  const lines = entries.map(([tenant, key, secret]) =>
    [tenant, sha256hex(key), secret].filter(Boolean).join(" "),
  );
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

// The X-ReqRun-Timestamp/Nonce/Signature headers of a signed request (DESIGN §6).
export function signHeaders(secret, method, target, body = "", opts = {}) {
  const ts = opts.timestamp ?? new Date().toISOString();
  const nonce = opts.nonce ?? crypto.randomBytes(16).toString("hex");
  const mac = crypto
    .createHmac("sha256", secret)
    .update(`${method}\n${target}\n${ts}\n${nonce}\n${sha256hex(body)}`)
    .digest("hex");
  return { "X-ReqRun-Timestamp": ts, "X-ReqRun-Nonce": nonce, "X-ReqRun-Signature": `v1=${mac}` };
}

// ---- the C error table ----

// code -> {status, type} from libcommon/src/api_error.c's code_table.
export function cErrorTable() {
  const table = new Map();
  const text = sourceFile("libcommon/src/api_error.c");
  for (const m of text.matchAll(/\[RR_E_\w+\]\s*=\s*\{\s*(\d+),\s*"(\w+)",\s*"(\w+)"\s*\}/g)) {
    table.set(m[3], { status: Number(m[1]), type: m[2] });
  }
  return table;
}

// ---- the OpenAPI spec ----

export function loadSpec() {
  return YAML.parse(sourceFile("docs/openapi.yaml"));
}

const pointerEscape = (s) => s.replaceAll("~", "~0").replaceAll("/", "~1");

// Validates real answers against docs/openapi.yaml.
export class Spec {
  constructor(spec = loadSpec()) {
    this.doc = spec;
    // strict: a misspelt keyword in the spec's schemas is an error, not ignored
    this.ajv = new Ajv({ strict: true, allErrors: true, validateSchema: false });
    addFormats(this.ajv);
    // the document's own keywords (not schemas), and OpenAPI's "example"
    this.ajv.addVocabulary(["openapi", "info", "servers", "security", "tags", "paths"]);
    this.ajv.addVocabulary(["components", "example"]);
    this.ajv.addSchema(spec, "openapi");
  }

  resolve(ref) {
    assert.ok(ref.startsWith("#/"), `only local refs: ${ref}`);
    let node = this.doc;
    for (const part of ref.slice(2).split("/")) {
      node = node?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
    }
    assert.ok(node !== undefined, `unresolved ref ${ref}`);
    return node;
  }

  // Validates value against the schema at pointer (in the spec); returns the errors.
  errorsAt(pointer, value) {
    const ref = `openapi${pointer}`;
    const v = this.ajv.getSchema(ref) ?? this.ajv.compile({ $ref: ref });
    return v(value) ? [] : v.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
  }

  // Asserts that value matches components/schemas/<name>.
  assertSchema(name, value) {
    assert.ok(this.doc.components.schemas[name], `no schema ${name} in the spec`);
    const errors = this.errorsAt(`#/components/schemas/${name}`, value);
    assert.deepEqual(errors, [], `${name}: ${JSON.stringify(value)}`);
  }

  // Asserts that a real answer (from http()) of `method pathTemplate` is described by the
  // spec: its status is listed (exactly, as NXX, or by default), every header the response
  // requires is there, every header it lists has a valid value, and the body matches.
  assertResponse(pathTemplate, method, res) {
    const op = this.doc.paths[pathTemplate]?.[method];
    assert.ok(op, `the spec has no ${method} ${pathTemplate}`);
    const status = String(res.status);
    const key = [status, `${status[0]}XX`, "default"].find((k) => op.responses[k]);
    assert.ok(key, `${method} ${pathTemplate}: status ${status} is not in the spec`);
    let pointer = `#/paths/${pointerEscape(pathTemplate)}/${method}/responses/${key}`;
    let resp = op.responses[key];
    while (resp.$ref) {
      pointer = resp.$ref;
      resp = this.resolve(pointer);
    }
    const where = `${method} ${pathTemplate} ${status}`;
    for (const [name, h0] of Object.entries(resp.headers ?? {})) {
      const h = h0.$ref ? this.resolve(h0.$ref) : h0;
      const value = res.headers.get(name);
      if (value === null) {
        assert.ok(!h.required, `${where}: header ${name} is required and missing`);
        continue;
      }
      const hp = h0.$ref ?? `${pointer}/headers/${pointerEscape(name)}`;
      const errors = this.errorsAt(`${hp}/schema`, value);
      assert.deepEqual(errors, [], `${where}: header ${name}: ${value}`);
    }
    const types = Object.keys(resp.content ?? {});
    const contentType = res.headers.get("content-type") ?? "";
    const typeOk = types.some((t) => contentType.startsWith(t));
    assert.ok(typeOk, `${where}: content-type ${contentType}`);
    if (types.includes("application/json")) {
      assert.ok(res.json !== undefined, `${where}: the body is not JSON: ${res.text}`);
      const errors = this.errorsAt(`${pointer}/content/application~1json/schema`, res.json);
      assert.deepEqual(errors, [], `${where}: ${res.text}`);
    }
  }

  // Asserts a ReqRun error answer: the spec's response for it, its strict Error<status>
  // schema, and the expected code.
  assertError(pathTemplate, method, res, status, code) {
    assert.equal(res.status, status, res.text);
    if (pathTemplate) this.assertResponse(pathTemplate, method, res);
    this.assertSchema(`Error${status}`, res.json);
    assert.equal(res.json.error.code, code);
  }

  // code -> {status, type} of the Error<status> schemas.
  errorCodes() {
    const codes = new Map();
    for (const [name, schema] of Object.entries(this.doc.components.schemas)) {
      const m = /^Error(\d{3})$/.exec(name);
      if (!m) continue;
      const props = schema.properties.error.allOf[1].properties;
      assert.equal(props.type.enum.length, 1, `${name}: one error type`);
      for (const code of props.code.enum) {
        assert.ok(!codes.has(code), `${code} is listed twice in the spec`);
        codes.set(code, { status: Number(m[1]), type: props.type.enum[0] });
      }
    }
    return codes;
  }
}
