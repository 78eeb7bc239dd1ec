// The official openai npm SDK, unmodified, pointed at ReqRun: completions, async objects,
// the SDK's own retries of a 503, typed errors with ReqRun's codes, and no retry of what
// ReqRun marks final (x-should-retry: false).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import {
  ID_RE, MESSAGES, Stack, deriveId, http, metricValue, metricsText, mockCalls, poll,
  recordingFetch, writeKeysFile,
} from "./helpers.js";

let s, authBase;
before(async () => {
  s = await Stack.start({ env: { REQRUN_RETRY_BASE_MS: "50", REQRUN_RETRY_MAX_MS: "200" } });
  const keys = writeKeysFile(s.dir, [["acme", "sk-acme-good"]]);
  authBase = (await s.startIngress({ REQRUN_API_KEYS_FILE: keys }, "ingress-auth")).base;
});
after(async () => assert.deepEqual(await s?.stop(), []));

const client = (opts = {}) =>
  new OpenAI({ baseURL: `${s.base}/v1`, apiKey: "dev", maxRetries: 0, ...opts });
const params = (extra = {}) => ({ model: "gpt-4o-mini", messages: MESSAGES, ...extra });

test("wait: true gives a ChatCompletion; withResponse() shows X-ReqRun-Request-Id", async () => {
  const req = params({ wait: true, idempotency_key: "sdk-wait" });
  const { data, response } = await client().chat.completions.create(req).withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(data.choices[0].message.content, "mock reply to: Hello");
  const id = response.headers.get("x-reqrun-request-id");
  assert.equal(id, deriveId("default", "sdk-wait"));
  assert.equal(response.headers.get("x-reqrun-attempts"), "1");
  assert.equal(await mockCalls(s, id), 1);

  // the same key again: the same completion, replayed, no second upstream call
  const again = await client().chat.completions.create(req).withResponse();
  assert.deepEqual(again.data, data);
  assert.equal(again.response.headers.get("x-reqrun-request-id"), id);
  assert.equal(again.response.headers.get("idempotent-replayed"), "true");
  assert.equal(await mockCalls(s, id), 1);
});

test("wait: false returns the chat.completion.async object as a plain result", async () => {
  const req = params({ wait: false, mock: { latency_ms: 1000 } });
  const { data, response } = await client().chat.completions.create(req).withResponse();
  assert.deepEqual(Object.keys(data).sort(), ["created", "id", "object", "status"]);
  assert.equal(data.object, "chat.completion.async");
  assert.match(data.id, ID_RE);
  assert.ok(["queued", "processing"].includes(data.status), data.status);
  assert.ok(Math.abs(data.created - Date.now() / 1000) < 60);
  assert.equal(response.headers.get("x-reqrun-request-id"), data.id);
  assert.equal(response.headers.get("location"), `/v1/requests/${data.id}`);
  const done = await http(s.base, "GET", `/v1/requests/${data.id}?wait=30`);
  assert.equal(done.json.status, "completed");
  assert.equal(done.json.result.choices[0].message.content, "mock reply to: Hello");
});

test("the SDK retries a 503 (NATS down) with its key: one id, one upstream call", async () => {
  const count503 = async () =>
    metricValue(await metricsText(s.base), "reqrun_http_requests_total", {
      route: "chat_completions",
      code: "503",
    }) ?? 0;
  const before503 = await count503();
  await s.stopNats();
  assert.ok(await poll(async () => (await http(s.base, "GET", "/readyz")).status === 503, 10000));
  // NATS comes back once the first answer arrived, before the SDK's retry (Retry-After: 1)
  const { fetch, seen } = recordingFetch(async (r, all) => {
    if (all.length === 1) await s.restartNats();
  });
  const c = client({ maxRetries: 2, fetch });
  const { data, response } = await c.chat.completions
    .create(params({ wait: true }), { headers: { "Idempotency-Key": "sdk-retry" } })
    .withResponse();

  assert.deepEqual(seen.map((x) => x.status), [503, 200]);
  assert.equal(seen[0].headers.get("x-should-retry"), "true");
  assert.equal(seen[0].headers.get("retry-after"), "1");
  const id = response.headers.get("x-reqrun-request-id");
  assert.equal(id, deriveId("default", "sdk-retry"));
  assert.equal(seen[0].headers.get("x-reqrun-request-id"), id);
  assert.equal(data.choices[0].message.content, "mock reply to: Hello");
  assert.equal(await mockCalls(s, id), 1);
  assert.equal(await count503(), before503 + 1, "the ingress did not count the 503");
});

test("errors are typed SDK errors with ReqRun's code; final ones are not retried", async () => {
  const { fetch, seen } = recordingFetch();
  const c = client({ maxRetries: 2, fetch });
  const rejects = async (promise, Type, status, code) => {
    const n = seen.length;
    await assert.rejects(promise, (e) => {
      assert.ok(e instanceof Type, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      return true;
    });
    assert.equal(seen.length, n + 1, `${code}: the SDK sent it ${seen.length - n} times`);
    assert.equal(seen.at(-1).headers.get("x-should-retry"), "false");
  };

  const create = (p) => c.chat.completions.create(p);
  await rejects(create({ model: "m" }), OpenAI.BadRequestError, 400, "missing_required_field");
  const badField = create(params({ reqrun: { max_attempts: 0 } }));
  await rejects(badField, OpenAI.BadRequestError, 400, "invalid_field");

  await create(params({ idempotency_key: "sdk-422" }));
  const reused = create(params({ idempotency_key: "sdk-422", temperature: 0.2 }));
  await rejects(reused, OpenAI.UnprocessableEntityError, 422, "idempotency_key_reused");

  // a 5xx the SDK would retry by default, had ReqRun not marked it final
  const failing = { wait: true, reqrun: { max_attempts: 2 }, mock: { fault: "500:10" } };
  const exhausted = create(params(failing));
  await rejects(exhausted, OpenAI.InternalServerError, 502, "max_attempts_exceeded");

  const wrong = new OpenAI({ baseURL: `${authBase}/v1`, apiKey: "sk-wrong", maxRetries: 2, fetch });
  const unauthorized = wrong.chat.completions.create(params());
  await rejects(unauthorized, OpenAI.AuthenticationError, 401, "invalid_api_key");
  const right = new OpenAI({ baseURL: `${authBase}/v1`, apiKey: "sk-acme-good", maxRetries: 0 });
  const ok = await right.chat.completions.create(params({ wait: true }));
  assert.equal(ok.object, "chat.completion");
});
