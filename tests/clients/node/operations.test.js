// What docs/OPERATIONS.md promises operators: /metrics of the ingress and the executor pass
// `promtool check metrics` and hold the documented families, and the JSON-line logs let
// one find a request by id without showing its prompt.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  Stack, chat, getRequest, idOf, metricTypes, metricValue, metricsText, poll, sourceFile,
} from "./helpers.js";

const SECRET_PROMPT = "prompt-text-that-must-not-be-logged-7f3a";
let s, traffic;

before(async () => {
  s = await Stack.start({ env: { REQRUN_RETRY_BASE_MS: "50", REQRUN_RETRY_MAX_MS: "200" } });
  const messages = [{ role: "user", content: SECRET_PROMPT }];
  const send = (extra) => chat(s.base, { model: "m", messages, ...extra });
  // a completion after one retry, a final upstream failure, an async answer, a 400
  traffic = {
    retried: await send({ wait: true, mock: { fault: "503:1", latency_ms: 20 } }),
    failed: await send({ wait: true, mock: { fault: "quota" } }),
    async: await send({ wait: false }),
    invalid: await chat(s.base, { model: "m" }),
  };
  assert.equal(traffic.retried.status, 200, traffic.retried.text);
  assert.equal(traffic.failed.status, 429, traffic.failed.text);
  await getRequest(s.base, traffic.async.json.id, "?wait=10");
});
after(async () => assert.deepEqual(await s?.stop(), []));

function promtool(text) {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

test("promtool check metrics passes on the ingress and the executor", async () => {
  for (const base of [s.base, s.executorBase]) {
    const text = await metricsText(base);
    assert.ok(text.includes("# TYPE "), `${base}/metrics: ${text.slice(0, 200)}`);
    assert.deepEqual(promtool(text), { status: 0, output: "" }, `${base}/metrics`);
  }
  // the check itself can fail
  assert.notEqual(promtool("# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n").status, 0);
});

test("the ingress exports requests by route and code, waits, NATS state", async () => {
  const text = await metricsText(s.base);
  const types = metricTypes(text);
  for (const [name, type] of [
    ["reqrun_http_requests_total", "counter"],
    ["reqrun_submits_total", "counter"],
    ["reqrun_wait_outcomes_total", "counter"],
    ["reqrun_submit_duration_seconds", "histogram"],
    ["reqrun_waiters", "gauge"],
    ["reqrun_nats_reconnects_total", "counter"],
    ["reqrun_nats_connected", "gauge"],
  ]) {
    assert.equal(types.get(name), type, name);
  }
  const req = (code, route = "chat_completions") =>
    metricValue(text, "reqrun_http_requests_total", { route, code });
  assert.equal(req("200"), 2);
  assert.equal(req("429"), 1);
  assert.equal(req("400"), 1);
  assert.ok(req("200", "get_request") >= 1);
  assert.equal(metricValue(text, "reqrun_wait_outcomes_total", { outcome: "completed" }), 2);
  assert.equal(metricValue(text, "reqrun_submit_duration_seconds_count"), 4);
  assert.equal(metricValue(text, "reqrun_nats_connected"), 1);
  assert.equal(metricValue(text, "reqrun_nats_reconnects_total"), 0);
});

test("the executor exports attempts, terminals, retries, latency, consumer state", async () => {
  const text = await metricsText(s.executorBase);
  const types = metricTypes(text);
  for (const [name, type] of [
    ["reqrun_attempts_total", "counter"],
    ["reqrun_records_terminal_total", "counter"],
    ["reqrun_retries_total", "counter"],
    ["reqrun_deliveries_total", "counter"],
    ["reqrun_upstream_duration_seconds", "histogram"],
    ["reqrun_upstream_in_flight", "gauge"],
    ["reqrun_executor_jobs", "gauge"],
    ["reqrun_consumer_pending", "gauge"],
    ["reqrun_consumer_ack_pending", "gauge"],
    ["reqrun_consumer_max_ack_pending", "gauge"],
    ["reqrun_nats_reconnects_total", "counter"],
    ["reqrun_nats_connected", "gauge"],
    ["reqrun_webhook_deliveries_total", "counter"],
  ]) {
    assert.equal(types.get(name), type, name);
  }
  assert.equal(metricValue(text, "reqrun_attempts_total", { outcome: "success" }), 2);
  assert.equal(metricValue(text, "reqrun_attempts_total", { outcome: "retryable" }), 1);
  assert.equal(metricValue(text, "reqrun_attempts_total", { outcome: "final" }), 1);
  assert.equal(metricValue(text, "reqrun_records_terminal_total", { status: "completed" }), 2);
  assert.equal(metricValue(text, "reqrun_records_terminal_total", { status: "failed" }), 1);
  assert.equal(metricValue(text, "reqrun_retries_total", { reason: "upstream_http_503" }), 1);
  assert.equal(metricValue(text, "reqrun_upstream_duration_seconds_count"), 4);
  assert.equal(metricValue(text, "reqrun_upstream_duration_seconds_bucket", { le: "+Inf" }), 4);
  // the retried request waited 20 ms per call: at least one attempt is above 10 ms
  assert.ok(metricValue(text, "reqrun_upstream_duration_seconds_bucket", { le: "0.01" }) < 4);
  assert.equal(metricValue(text, "reqrun_upstream_in_flight"), 0);
  // consumer info is cached for a second, and the last ack may trail the record write
  const drained = async () =>
    metricValue(await metricsText(s.executorBase), "reqrun_consumer_ack_pending") === 0;
  assert.ok(await poll(drained, 5000), "reqrun_consumer_ack_pending did not return to 0");
  assert.equal(metricValue(text, "reqrun_consumer_pending"), 0);
  assert.equal(metricValue(text, "reqrun_consumer_max_ack_pending"), 100000);
  assert.equal(metricValue(text, "reqrun_nats_connected"), 1);
});

test("logs: JSON lines with request_id, tenant, attempt, status, duration; no prompt", () => {
  const id = idOf(traffic.retried);
  const lines = [];
  for (const p of [s.ingress, s.executor]) {
    const text = fs.readFileSync(p.log, "utf8");
    assert.ok(!text.includes(SECRET_PROMPT), `${p.name} logged the prompt`);
    for (const line of text.split("\n").filter(Boolean)) lines.push(JSON.parse(line));
  }
  const done = lines.find((l) => l.request_id === id && l.status === "completed");
  assert.ok(done, `no log line with request_id ${id} and status completed`);
  assert.equal(done.tenant, "default");
  assert.equal(done.attempt, 2);
  assert.ok(done.duration_ms >= 20, `duration_ms ${done.duration_ms}`);
  assert.equal(done.svc, "reqrun-executor");
  assert.match(done.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const failedId = idOf(traffic.failed);
  const failed = lines.find((l) => l.status === "failed" && l.request_id === failedId);
  assert.equal(failed?.code, "insufficient_quota");
});

test("docs/OPERATIONS.md: its metrics are the exported ones, its rules pass promtool", async () => {
  const doc = sourceFile("docs/OPERATIONS.md");
  const exported = new Map([
    ...metricTypes(await metricsText(s.base)),
    ...metricTypes(await metricsText(s.executorBase)),
  ]);
  const tabled = new Set([...doc.matchAll(/^\| `(reqrun_\w+)`/gm)].map((m) => m[1]));
  const undocumented = [...exported.keys()].filter((n) => !tabled.has(n));
  assert.deepEqual(undocumented, [], "exported, not documented");
  assert.deepEqual([...tabled].filter((n) => !exported.has(n)), [], "documented, not exported");

  const rules = /<!-- ops-test: rules -->\s*```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(rules, "OPERATIONS.md has no <!-- ops-test: rules --> block");
  for (const [name] of rules.matchAll(/reqrun_\w+/g)) {
    const family = name.replace(/_(bucket|sum|count)$/, (sfx) =>
      exported.get(name.slice(0, -sfx.length)) === "histogram" ? "" : sfx);
    assert.ok(exported.has(family), `the alert rules use ${name}, which is not exported`);
  }
  const file = path.join(s.dir, "rules.yaml");
  fs.writeFileSync(file, rules);
  const r = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});
