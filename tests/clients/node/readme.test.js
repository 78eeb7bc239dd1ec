// The README's examples, run as written (only the address changes) against a fresh stack:
// the Node block with the real openai SDK, and each command of the curl block.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { ID_RE, Stack, deriveId, ms, readmeBlock } from "./helpers.js";

const run = promisify(execFile);
const README_BASE = "http://127.0.0.1:8080";

// A fresh stack for one example (the examples share the key order-42).
async function withStack(fn) {
  const s = await Stack.start();
  try {
    await fn(s);
  } finally {
    assert.deepEqual(await s.stop(), []);
  }
}

test("the README's Node example prints the request id and the completion", () =>
  withStack(async (s) => {
    const code = readmeBlock("node");
    assert.ok(code.includes(README_BASE), `the example no longer uses ${README_BASE}`);
    // next to node_modules, so that `import OpenAI from "openai"` resolves
    const file = path.join(import.meta.dirname, "readme-example.mjs");
    fs.writeFileSync(file, code.replaceAll(README_BASE, s.base));
    try {
      const { stdout } = await run(process.execPath, [file], { timeout: ms(60000) });
      assert.equal(stdout.trim(), `${deriveId("default", "order-42")} mock reply to: Hello`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }));

test("the README's curl commands answer as the README says", () =>
  withStack(async (s) => {
    // commands: comment lines dropped, backslash continuations joined
    const commands = readmeBlock("curl")
      .replace(/\\\n\s*/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    assert.equal(commands.length, 3, commands.join("\n"));
    let lastId;
    const answers = [];
    for (const cmd of commands) {
      assert.ok(cmd.includes(README_BASE), cmd);
      let line = cmd.replaceAll(README_BASE, s.base);
      if (line.includes("rr_…")) line = line.replaceAll("rr_…", lastId);
      const { stdout } = await run("sh", ["-c", line], { timeout: ms(60000) });
      const answer = JSON.parse(stdout);
      answers.push(answer);
      if (typeof answer.id === "string" && ID_RE.test(answer.id)) lastId = answer.id;
    }
    const [completion, accepted, record] = answers;
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.choices[0].message.content, "mock reply to: Hello");
    assert.equal(accepted.object, "chat.completion.async");
    assert.equal(accepted.id, deriveId("default", "order-42"));
    assert.equal(record.id, accepted.id);
    assert.ok(["queued", "processing", "completed"].includes(record.status), record.status);
  }));
