// Starts a ReqRun stack for the client tests: nats-server, reqrun-mockllm, reqrun-executor
// and reqrun-ingress on free loopback ports, with a temp dir for the store and the logs.
// Every process is started here, tracked by PID and stopped by PID (the same approach as
// tests/support/harness.c); survivors are SIGKILLed when the test process exits.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const NATS_SERVER = "/usr/sbin/nats-server";
const BIN_DIR = process.env.REQRUN_BIN_DIR ?? "";
const SCALE = Math.max(1, Number(process.env.REQRUN_TEST_TIME_SCALE ?? 1) || 1);

// Scales a time limit by REQRUN_TEST_TIME_SCALE, as the C harness does.
export const ms = (n) => Math.round(n * SCALE);

const live = new Set(); // every child still running
function killAll() {
  for (const p of live) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + os.constants.signals[sig]);
  });
}

const usedPorts = new Set();
// A free loopback port, never the same one twice in this process.
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.on("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (!usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
}

// Polls fn() until it returns a truthy value or timeoutMs (scaled) passes; returns the value
// or undefined.
export async function poll(fn, timeoutMs, everyMs = 50) {
  const until = Date.now() + ms(timeoutMs);
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > until) return undefined;
    await sleep(everyMs);
  }
}

async function httpOk(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await r.arrayBuffer();
  return r.status === 200;
}

// One child process with its log file.
class Proc {
  constructor(name, argv, env, dir) {
    this.name = name;
    this.log = path.join(dir, `${name}.log`);
    const fd = fs.openSync(this.log, "a");
    this.child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ["ignore", fd, fd],
    });
    fs.closeSync(fd);
    this.pid = this.child.pid;
    this.exitCode = null; // exit status, 128+signal when killed
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, sig) => {
        live.delete(this);
        this.exitCode = code ?? 128 + os.constants.signals[sig];
        resolve(this.exitCode);
      });
    });
    live.add(this);
  }

  get alive() {
    return this.exitCode === null;
  }

  signal(sig) {
    if (this.alive) process.kill(this.pid, sig);
  }

  // Sends sig and waits for the exit (SIGKILL after timeoutMs); returns the exit status.
  async stop(sig = "SIGTERM", timeoutMs = 15000) {
    if (!this.alive) return this.exitCode;
    this.signal("SIGCONT"); // a paused process cannot handle sig
    this.signal(sig);
    const t = setTimeout(() => this.signal("SIGKILL"), ms(timeoutMs));
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  tail(lines = 30) {
    const text = fs.existsSync(this.log) ? fs.readFileSync(this.log, "utf8") : "";
    return `---- ${this.name} (${this.log}) ----\n${text.split("\n").slice(-lines).join("\n")}`;
  }
}

// Waits until url answers 200 while proc runs; throws with the log tail otherwise.
async function waitReady(proc, url, timeoutMs = 30000) {
  const ok = await poll(async () => proc.alive && (await httpOk(url)), timeoutMs);
  if (!ok) throw new Error(`${proc.name} not ready at ${url}\n${proc.tail()}`);
}

export class Stack {
  // opts.env: for every service; opts.executor / opts.mock: false to leave them out.
  static async start(opts = {}) {
    const s = new Stack();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), "reqrun-clients."));
    s.procs = [];
    s.readyUrls = []; // [proc, base URL] of the services with a /readyz
    s.natsPort = await freePort();
    s.natsUrl = `nats://127.0.0.1:${s.natsPort}`;
    s.mockBase = `http://127.0.0.1:${await freePort()}`;
    s.env = {
      REQRUN_NATS_URL: s.natsUrl,
      REQRUN_MOCK_LISTEN: s.mockBase.slice(7),
      REQRUN_UPSTREAM_URL: `${s.mockBase}/v1`,
      REQRUN_HTTP_THREADS: "64",
      REQRUN_SHUTDOWN_DELAY_S: "0",
      REQRUN_DRAIN_TIMEOUT_S: "2",
      ...opts.env,
    };
    try {
      fs.writeFileSync(
        path.join(s.dir, "nats.conf"),
        `listen: 127.0.0.1:${s.natsPort}\nmax_payload: 8MB\n` +
          `jetstream { store_dir: "${s.dir}/store" }\n`,
      );
      await s.startNats();
      if (opts.mock !== false) {
        s.mock = s.spawn("mockllm", [path.join(BIN_DIR, "reqrun-mockllm")]);
        await waitReady(s.mock, `${s.mockBase}/healthz`, 10000);
      }
      if (opts.executor !== false) await s.startExecutor();
      const ing = await s.startIngress();
      s.ingress = ing.proc;
      s.base = ing.base;
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  spawn(name, argv, env = {}) {
    const p = new Proc(name, argv, { ...this.env, ...env }, this.dir);
    this.procs.push(p);
    return p;
  }

  // nats-server with the stack's conf (same port and store on a restart).
  async startNats() {
    const n = (this.natsRestarts = (this.natsRestarts ?? -1) + 1);
    this.nats = this.spawn(`nats${n || ""}`, [NATS_SERVER, "-c", path.join(this.dir, "nats.conf")]);
    const log = this.nats.log;
    const ready = await poll(
      async () => this.nats.alive && fs.readFileSync(log, "utf8").includes("Server is ready"),
      10000,
    );
    if (!ready) throw new Error(`nats-server did not start\n${this.nats.tail()}`);
  }

  // Stops nats-server (the services see the connection drop at once).
  async stopNats() {
    await this.nats.stop();
  }

  // Starts nats-server again on the same port and store, then waits until every service
  // still running is ready again.
  async restartNats() {
    await this.startNats();
    for (const [proc, base] of this.readyUrls) {
      if (proc.alive) await waitReady(proc, `${base}/readyz`);
    }
  }

  async startExecutor(env = {}) {
    const port = await freePort();
    this.executorBase = `http://127.0.0.1:${port}`;
    this.executor = this.spawn("executor", [path.join(BIN_DIR, "reqrun-executor")], {
      REQRUN_EXECUTOR_LISTEN: `127.0.0.1:${port}`,
      REQRUN_INSTANCE_ID: `clients-executor-${port}`,
      ...env,
    });
    await waitReady(this.executor, `${this.executorBase}/readyz`);
    this.readyUrls.push([this.executor, this.executorBase]);
  }

  // An ingress (the stack's own, or another one on the same NATS); returns {proc, base}.
  async startIngress(env = {}, name = "ingress") {
    const port = await freePort();
    const proc = this.spawn(name, [path.join(BIN_DIR, "reqrun-ingress")], {
      REQRUN_LISTEN: `127.0.0.1:${port}`,
      ...env,
    });
    const base = `http://127.0.0.1:${port}`;
    await waitReady(proc, `${base}/readyz`);
    this.readyUrls.push([proc, base]);
    return { proc, base };
  }

  // Stops every process (services first, nats-server last). Returns what went wrong: the
  // services that did not exit with status 0 (their logs are kept then, else removed).
  async stop() {
    const bad = [];
    const services = this.procs.filter((p) => !p.name.startsWith("nats"));
    // in parallel: each takes a couple of seconds to drain
    const codes = await Promise.all(services.map((p) => p.stop()));
    services.forEach((p, i) => {
      if (codes[i] !== 0) bad.push(`${p.name} exited ${codes[i]}\n${p.tail(20)}`);
    });
    for (const p of this.procs.filter((x) => x.name.startsWith("nats"))) await p.stop();
    if (bad.length === 0 && !process.env.REQRUN_TEST_KEEP) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } else {
      console.error(`stack logs kept in ${this.dir}`);
    }
    return bad;
  }
}
