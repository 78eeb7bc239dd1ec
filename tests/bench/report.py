#!/usr/bin/env python3
"""Turns the per-round results of tests/bench/run.sh into latest.json and the table.

usage: report.py ROUNDS_LOG LATEST_JSON < machine-facts.json

ROUNDS_LOG holds one JSON object a line: {"round": n, "case": ..., ...}. Every figure is
the median over the rounds, except the peak RSS figures (the largest peak of any round).
Overheads are paired: per round, ReqRun's (or Portkey's) percentile minus the direct
percentile of the same round, then the median of those differences.
"""
import json
import statistics
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def by_round(rows, case):
    return {r["round"]: r for r in rows if r["case"] == case}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rnd(v, digits):
    return None if v is None else round(v, digits)


def ok_rps(r):
    w = r["r"]
    ok = w["requests"] - w["status_errors"]
    return ok / w["duration_s"] if w["duration_s"] > 0 else 0.0


def main():
    rows = load(sys.argv[1])
    out_path = sys.argv[2]
    meta = json.load(sys.stdin)
    res = {}
    spread = {}  # key -> (min, max) over the rounds, for the table

    def put(key, values, digits, agg=med):
        values = [v for v in values if v is not None]
        res[key] = rnd(agg(values), digits) if values else None
        if values:
            spread[key] = (rnd(min(values), digits), rnd(max(values), digits))

    # serial latency, and the paired overheads
    sd, sw, sp = (by_round(rows, c) for c in ("serial_direct", "serial_wait", "serial_portkey"))
    put("serial_direct_p50_ms", [r["r"]["p50_ms"] for r in sd.values()], 3)
    put("serial_direct_p99_ms", [r["r"]["p99_ms"] for r in sd.values()], 3)
    put("serial_wait_p50_ms", [r["r"]["p50_ms"] for r in sw.values()], 3)
    put("serial_wait_p99_ms", [r["r"]["p99_ms"] for r in sw.values()], 3)
    put("overhead_p50_ms", [sw[n]["r"]["p50_ms"] - sd[n]["r"]["p50_ms"] for n in sw if n in sd], 3)
    put("overhead_p99_ms", [sw[n]["r"]["p99_ms"] - sd[n]["r"]["p99_ms"] for n in sw if n in sd], 3)
    put("serial_wait_errors", [r["r"]["errors"] for r in sw.values()], 0, max)

    # throughput at 64 connections: successful (2xx) answers per second
    for case, key in (("tp_direct", "direct"), ("tp_wait", "wait"), ("tp_accept", "accept"),
                      ("tp_get", "get")):
        rs = by_round(rows, case).values()
        put(f"{key}_rps", [ok_rps(r) for r in rs], 0)
        put(f"{key}_p50_ms", [r["r"]["p50_ms"] for r in rs], 3)
        put(f"{key}_p99_ms", [r["r"]["p99_ms"] for r in rs], 3)
        put(f"{key}_non2xx", [r["r"]["status_errors"] + r["r"]["timeouts"] +
                              r["r"]["connect_errors"] + r["r"]["read_errors"] +
                              r["r"]["write_errors"] for r in rs], 0, max)
    put("wait_not_completed", [r.get("waits_not_completed", 0)
                               for r in by_round(rows, "tp_wait").values()], 0, max)
    # CPU per request at 64 connections, where the lead's profile should start
    for case, key in (("tp_wait", "wait"), ("tp_accept", "accept"), ("tp_get", "get")):
        rs = by_round(rows, case).values()
        for svc in ("ingress", "executor", "nats"):
            put(f"{key}_{svc}_cpu_us_per_req",
                [r[f"{svc}_cpu_s"] * 1e6 / (ok_rps(r) * r["r"]["duration_s"])
                 for r in rs if ok_rps(r) > 0], 1)
    put("accept_backlog_drain_s", [r["after_wrk_s"] for r in by_round(rows, "drain").values()], 1)
    acc, drn = by_round(rows, "tp_accept"), by_round(rows, "drain")
    put("executor_backlog_rps",
        [ok_rps(acc[n]) * acc[n]["r"]["duration_s"] / drn[n]["accept_start_to_idle_s"]
         for n in acc if n in drn], 0)

    # slow upstream at a constant offered rate
    sl = by_round(rows, "slow").values()
    put("slow_success_pct", [r["r"]["success_pct"] for r in sl], 3)
    put("slow_achieved_rps", [r["r"]["achieved_rps"] for r in sl], 1)
    put("slow_sent_rps", [r["r"]["sent_rps"] for r in sl], 1)
    put("slow_p50_ms", [r["r"]["p50_ms"] for r in sl], 1)
    put("slow_p99_ms", [r["r"]["p99_ms"] for r in sl], 1)
    put("slow_max_ms", [r["r"]["max_ms"] for r in sl], 1)
    put("slow_failed", [r["r"]["failed"] + r["r"]["unfinished"] for r in sl], 0, max)
    sdl = by_round(rows, "slow_direct").values()
    put("slow_direct_p50_ms", [r["r"]["p50_ms"] for r in sdl], 1)
    put("slow_direct_p99_ms", [r["r"]["p99_ms"] for r in sdl], 1)
    put("slow_direct_success_pct", [r["r"]["success_pct"] for r in sdl], 3)
    put("ingress_cpu_s", [r["ingress_cpu_s"] for r in sl], 2)
    put("executor_cpu_s", [r["executor_cpu_s"] for r in sl], 2)
    put("nats_cpu_s", [r["nats_cpu_s"] for r in sl], 2)
    put("executor_cpu_cores", [r["executor_cpu_s"] / r["wall_s"] for r in sl], 3)
    put("ingress_cpu_cores", [r["ingress_cpu_s"] / r["wall_s"] for r in sl], 3)
    put("ingress_rss_mb", [r["ingress_hwm_kb"] / 1024 for r in sl], 1, max)
    put("executor_rss_mb", [r["executor_hwm_kb"] / 1024 for r in sl], 1, max)
    put("nats_rss_mb", [r["nats_hwm_kb"] / 1024 for r in sl], 1, max)

    # the peer
    sp_rows, tp_pk = sp, by_round(rows, "tp_portkey")
    if tp_pk and sp_rows:
        put("portkey_rps", [ok_rps(r) for r in tp_pk.values()], 0)
        put("portkey_p99_ms", [r["r"]["p99_ms"] for r in tp_pk.values()], 3)
        put("serial_portkey_p50_ms", [r["r"]["p50_ms"] for r in sp_rows.values()], 3)
        put("portkey_overhead_p50_ms",
            [sp_rows[n]["r"]["p50_ms"] - sd[n]["r"]["p50_ms"] for n in sp_rows if n in sd], 3)
        put("portkey_overhead_p99_ms",
            [sp_rows[n]["r"]["p99_ms"] - sd[n]["r"]["p99_ms"] for n in sp_rows if n in sd], 3)
        put("portkey_cpu_us_per_req",
            [r["portkey_cpu_s"] * 1e6 / (ok_rps(r) * r["r"]["duration_s"])
             for r in tp_pk.values() if ok_rps(r) > 0], 1)
    else:
        for k in ("portkey_rps", "portkey_p99_ms", "serial_portkey_p50_ms",
                  "portkey_overhead_p50_ms", "portkey_overhead_p99_ms", "portkey_cpu_us_per_req"):
            res[k] = None

    latest = dict(res)
    latest.update(meta)
    with open(out_path, "w") as f:
        json.dump(latest, f, indent=1, sort_keys=False)
        f.write("\n")

    # the table: value (median of the rounds), spread, target
    def fmt(v):
        if v is None:
            return "null"
        return f"{v:g}" if isinstance(v, float) else str(v)

    pk = res.get("portkey_rps")
    rows_t = [
        ("overhead_p50_ms", "<= 0.4", lambda v: v <= 0.4),
        ("overhead_p99_ms", "<= 2", lambda v: v <= 2),
        ("serial_direct_p50_ms", "", None),
        ("serial_wait_p50_ms", "", None),
        ("direct_rps", "", None),
        ("wait_rps", f">= 4 x portkey_rps{'' if pk is None else f' = {4 * pk:g}'}",
         (lambda v: v >= 4 * pk) if pk is not None else (lambda v: None)),
        ("accept_rps", ">= 10000", lambda v: v >= 10000),
        ("get_rps", "", None),
        ("slow_success_pct", "= 100", lambda v: v >= 100),
        ("slow_achieved_rps", f"~ {meta['slow_rate']} offered", None),
        ("slow_p50_ms", "", None),
        ("slow_p99_ms", "<= 1700", lambda v: v <= 1700),
        ("slow_direct_p99_ms", "(same load, no ReqRun)", None),
        ("ingress_rss_mb", "<= 128 (max of rounds)", lambda v: v <= 128),
        ("executor_rss_mb", "<= 128 (max of rounds)", lambda v: v <= 128),
        ("ingress_rss_idle_mb", "(idle, after start)", None),
        ("executor_rss_idle_mb", "(idle, after start)", None),
        ("ingress_cpu_s", f"(over {meta['slow_seconds']} s)", None),
        ("executor_cpu_s", f"(over {meta['slow_seconds']} s)", None),
        ("executor_cpu_cores", "< 1", lambda v: v < 1),
        ("portkey_rps", "", None),
        ("portkey_overhead_p50_ms", "", None),
    ]
    lines = [f"ReqRun benchmark ({meta['mode']}, {meta['rounds']} round(s), "
             f"{meta['cpu_model']}, {meta['cores']} cores, commit {meta['git_commit']}, "
             f"{meta['date']})", "",
             "| metric | value | rounds (min–max) | target | met |",
             "|---|---|---|---|---|"]
    for key, target, check in rows_t:
        v = res.get(key, meta.get(key))
        lo_hi = spread.get(key)
        rng = f"{fmt(lo_hi[0])}–{fmt(lo_hi[1])}" if lo_hi and meta["rounds"] > 1 else ""
        ok = None if check is None or v is None else check(v)
        met = "" if check is None else ("n/a" if ok is None else ("yes" if ok else "NO"))
        lines.append(f"| {key} | {fmt(v)} | {rng} | {target} | {met} |")
    if meta.get("portkey_reason"):
        lines.append("")
        lines.append(f"portkey: {meta['portkey_reason']}")
    errs = {k: v for k, v in meta.items() if k.startswith("log_errors_") and v}
    if errs:
        lines.append("")
        lines.append("error lines in the service logs: " +
                     ", ".join(f"{k[len('log_errors_'):]} {v}" for k, v in errs.items()))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
