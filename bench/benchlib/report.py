"""docs/benchmarks.md and its chart, generated from one results JSON (bench/results/*.json)."""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

# (scenario, measure) -> target, checked by evaluate(); the numbers.
TARGETS_TEXT = {
    "accounts_ratio": "`GET /accounts` at least 80% of nginx's requests/s",
    "accounts_p99": "`GET /accounts` p99 under 5 ms",
    "callbacks_rps": "callbacks at least 25,000/s durable",
    "callbacks_p99": "callbacks p99 under 20 ms at 64 connections",
    "payments_rps": "`POST /payments` with the simulator at least 10,000/s",
    "lifecycle_rps": "full lifecycle at least 5,000 payments/s end to end",
    "ablation_ratio": "group commit at least 10x one commit per request (callbacks)",
    "ablation_ratio_slower_disk": "the same, on a disk with slower flushes (emulated)",
    "rss_idle": "RSS under 50 MB idle",
    "rss_full": "RSS under 400 MB with 1,000,000 payments",
    "startup": "start-up under 1 s with 1,000,000 payments",
}


def _ok(sc: dict | None) -> bool:
    return bool(sc) and "error" not in sc


def evaluate(results: dict) -> list[dict]:
    sc = results.get("scenarios", {})
    rows = []

    def add(key, measured, met, note=""):
        rows.append({"key": key, "target": TARGETS_TEXT[key], "measured": measured,
                     "met": met, "note": note})

    a = sc.get("accounts")
    if _ok(a):
        ratio = a["summary"]["ratio_to_nginx"]
        add("accounts_ratio", f"{ratio:.1%} ({a['summary']['payment_service']['rps']:,.0f} vs "
            f"{a['summary']['nginx']['rps']:,.0f}/s)", ratio >= 0.8)
        p99 = a["summary"]["payment_service"]["p99_ms"]
        one = a["summary"].get("payment_service --threads 1")
        add("accounts_p99", f"{p99:.2f} ms", p99 < 5,
            f"nginx {a['summary']['nginx']['p99_ms']:.2f} ms in the same run"
            + (f"; with --threads 1: {one['p99_ms']:.2f} ms at "
               f"{a['summary']['ratio_to_nginx_one_thread']:.1%} of nginx" if one else ""))
    c = sc.get("callbacks")
    if _ok(c):
        s = c["summary"]["group commit (default)"]
        add("callbacks_rps", f"{s['rps']:,.0f}/s", s["rps"] >= 25000)
        add("callbacks_p99", f"{s['p99_ms']:.2f} ms", s["p99_ms"] < 20)
    p = sc.get("payments")
    if _ok(p):
        s = p["summary"]["payment_service"]
        add("payments_rps", f"{s['rps']:,.0f}/s", s["rps"] >= 10000)
    lc = sc.get("lifecycle")
    if _ok(lc):
        primary = lc["summary"].get("primary", "end to end")
        s = lc["summary"][primary]
        others = [f"{name}: {v['rps']:,.0f}/s" for name, v in lc["summary"].items()
                  if name not in (primary, "primary")]
        add("lifecycle_rps", f"{s['rps']:,.0f} payments/s ({primary} in "
            f"{s['seconds_total']:.2f} s)", s["rps"] >= 5000,
            ("with " + "; ".join(others)) if others else "")
    ab = sc.get("ablation")
    if _ok(ab):
        r = ab["summary"]["ratio"]
        add("ablation_ratio", f"{r:.1f}x", r >= 10,
            "on this machine's disk: " + results.get("machine", {}).get("fsync", "?"))
        slow = ab["summary"].get("ratio_slower_disk")
        if slow is not None:
            add("ablation_ratio_slower_disk", f"{slow:.1f}x", slow >= 10,
                ab["facts"].get("slower_disk", ""))
    m = sc.get("memory")
    if _ok(m):
        s = m["summary"]
        full = s["payments_stored"] >= 1_000_000
        add("rss_idle", f"{s['rss_idle_empty_mb']:.1f} MB", s["rss_idle_empty_mb"] < 50)
        note = "" if full else f"only {s['payments_stored']:,} payments stored (quick run)"
        add("rss_full", f"{s['rss_idle_full_mb']:.1f} MB idle, {s['rss_after_load_mb']:.1f} MB "
            "after load", (s["rss_idle_full_mb"] < 400 and s["rss_after_load_mb"] < 400)
            if full else None, note)
        add("startup", f"{s['startup_ms']:.0f} ms", s["startup_ms"] < 1000 if full else None,
            note)
    return rows


def _met(v) -> str:
    return {True: "**met**", False: "**not met**", None: "not evaluated"}[v]


def _fmt_rps(x) -> str:
    return f"{x:,.0f}"


def _cpu_cell(run: dict, name: str) -> str:
    v = run.get("cpu_pct", {}).get(name)
    return "" if v is None else f"{v:.0f}%"


def _runs_table(variants: dict, extra_cols: list[tuple[str, str]] = ()) -> list[str]:
    """One row per repeat and a median row per variant."""
    names = []
    for runs in variants.values():
        for r in runs:
            for k in r.get("cpu_pct", {}):
                if k not in names:
                    names.append(k)
    head = ["variant", "run", "requests/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
            "server CPU us/request"]
    head += [h for h, _ in extra_cols]
    head += [f"CPU {n}" for n in names] + ["CPU others", "requests"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, runs in variants.items():
        for i, r in enumerate(runs, 1):
            row = [variant, str(i), _fmt_rps(r["rps"])]
            row += [f"{r['latency_ms'][k]:.2f}" for k in ("p50", "p90", "p99", "max")]
            row.append(str(r.get("server_cpu_us_per_request", "")))
            row += [str(r.get(k, "")) for _, k in extra_cols]
            row += [_cpu_cell(r, n) for n in names]
            row += [f"{r.get('foreign_cpu_pct', 0):.0f}%", f"{r['requests']:,}"]
            lines.append("| " + " | ".join(row) + " |")
        if runs:
            med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
            row = [f"**{variant}**", "**median**", f"**{_fmt_rps(med(lambda r: r['rps']))}**"]
            row += [f"**{med(lambda r, k=k: r['latency_ms'][k]):.2f}**"
                    for k in ("p50", "p90", "p99", "max")]
            vals = [r["server_cpu_us_per_request"] for r in runs
                    if "server_cpu_us_per_request" in r]
            row.append(f"{statistics.median(vals):g}" if vals else "")
            for _, k in extra_cols:
                vals = [r.get(k) for r in runs if isinstance(r.get(k), (int, float))]
                row.append(f"{statistics.median(vals):g}" if vals else "")
            row += [f"{med(lambda r, n=n: r.get('cpu_pct', {}).get(n, 0)):.0f}%" for n in names]
            row += [f"{med(lambda r: r.get('foreign_cpu_pct', 0)):.0f}%", ""]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _checks(sc: dict) -> list[str]:
    out = []
    for c in sc.get("checks", []):
        mark = "ok" if c["ok"] else "**FAILED**"
        detail = f" ({c['detail']})" if c.get("detail") else ""
        out.append(f"- {mark}: {c['what']}{detail}")
    return out


def summary_rows(results: dict) -> list[tuple]:
    """(scenario, measure, rps, p50, p99, label for the chart, colour) of every headline number."""
    sc = results.get("scenarios", {})
    rows = []

    def add(key, variant, label, chart, colour):
        s = sc.get(key)
        if _ok(s) and variant in s["summary"]:
            v = s["summary"][variant]
            rows.append((s["title"].split(" ", 1)[0].rstrip("."), label, v["rps"], v["p50_ms"],
                         v["p99_ms"], chart, colour))

    add("accounts", "payment_service", "GET /accounts, payment_service", "GET /accounts",
        "#1f77b4")
    add("accounts", "payment_service --threads 1", "GET /accounts, payment_service --threads 1",
        "GET /accounts, 1 thread", "#aec7e8")
    add("accounts", "nginx", "GET /accounts, nginx static file (baseline)",
        "nginx (same bytes)", "#7f7f7f")
    add("accounts", "nginx, alternating with --threads 1",
        "GET /accounts, nginx, alternating with the --threads 1 runs", None, None)
    add("callbacks", "group commit (default)", "callbacks on existing payments",
        "callbacks", "#1f77b4")
    add("payments", "payment_service", "POST /payments via the simulator", "POST /payments",
        "#1f77b4")
    lc = sc.get("lifecycle")
    if _ok(lc):
        primary = lc["summary"].get("primary", "end to end")
        add("lifecycle", primary, f"full lifecycle, payments/s end to end ({primary})",
            "lifecycle (payments/s)", "#1f77b4")
        for name in lc["summary"]:
            if name not in (primary, "primary"):
                add("lifecycle", name, f"full lifecycle, payments/s end to end ({name})",
                    f"lifecycle, {name}", "#aec7e8")
    add("ablation", "group commit (default)", "callbacks, group commit (ablation run)",
        "callbacks group commit", "#2ca02c")
    add("ablation", "one commit per request", "callbacks, one commit per request",
        "callbacks 1 commit/request", "#d62728")
    add("ablation", "group commit, slower disk", "callbacks, group commit, slower disk",
        "group commit, slow flush", "#98df8a")
    add("ablation", "one commit per request, slower disk",
        "callbacks, one commit per request, slower disk", "1 commit/request, slow flush",
        "#ff9896")
    return rows


def chart_targets(results: dict) -> dict:
    """Chart label -> the issue's target in requests/s, where it is one."""
    out = {"callbacks": 25000, "POST /payments": 10000, "lifecycle (payments/s)": 5000}
    a = results.get("scenarios", {}).get("accounts")
    if _ok(a):
        out["GET /accounts"] = 0.8 * a["summary"]["nginx"]["rps"]
    ab = results.get("scenarios", {}).get("ablation")
    if _ok(ab):
        out["callbacks group commit"] = 10 * ab["summary"]["one commit per request"]["rps"]
        if "one commit per request, slower disk" in ab["summary"]:
            out["group commit, slow flush"] = (
                10 * ab["summary"]["one commit per request, slower disk"]["rps"])
    return out


def chart(results: dict, png: Path, work: Path) -> bool:
    rows = summary_rows(results)
    if not rows:
        return False
    data = work / "chart.dat"
    targets = chart_targets(results)
    with open(data, "w") as f:
        for _, _, rps, _, _, label, colour in rows:
            if label is None:  # table only
                continue
            target = targets.get(label)
            f.write(f'"{label}" {rps:.0f} {int(colour[1:], 16)} '
                    f'{"NaN" if target is None else f"{target:.0f}"}\n')
    quick = " (quick run)" if results["config"].get("quick") else ""
    repeats = results["config"]["repeat"]
    script = f"""
set terminal pngcairo noenhanced size 1100,560 font "sans,10"
set output '{png}'
set title "payment_service, {results['machine']['nproc']} cores, load generator on the same machine: medians of {repeats}{quick}"
set style fill solid 0.85 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set format y "%.0f"
set ylabel "requests/s"
set xtics rotate by 25 right nomirror
set tics font "sans,9"
set lmargin 10
set rmargin 4
set bmargin 8
set key top right
plot '{data}' using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \\
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8 notitle, \\
     '' using 0:4:(0.4) with xerrorbars lc rgb "#000000" lw 2 pt 0 title "target (issue 3)"
"""
    (work / "chart.gp").write_text(script)
    done = subprocess.run(["gnuplot", str(work / "chart.gp")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot: {done.stderr}")
    return True


def render(results: dict, png_name: str | None, analysis: str | None) -> str:
    m = results["machine"]
    cfg = results["config"]
    out = ["# Benchmarks", ""]
    out.append("Generated by `scripts/bench` (`bench/run.py`) from "
               f"`bench/results/{results['id']}.json`; do not edit by hand: change `bench/` and "
               "run the suite again." + (" **Quick run: short durations, smoke test only.**"
                                          if cfg.get("quick") else ""))
    out += ["", "## Machine and run", "", "| | |", "|---|---|"]
    for k, v in [("date (UTC)", m["date"]), ("cores (nproc)", m["nproc"]), ("CPU", m["cpu"]),
                 ("kernel", m["kernel"]), ("memory", m["memory"]), ("OS", m["os"]),
                 ("disk (durable commits)", m.get("fsync", "?")),
                 ("commit", m["commit"]), ("build", m["build"]), ("tools", m["tools"]),
                 ("load average at start", m["loadavg"]), ("target", results["target"]),
                 ("repeats", cfg["repeat"]),
                 ("duration / warm-up per measurement", f"{cfg['duration_s']:g} s / "
                                                       f"{cfg['warmup_s']:g} s"),
                 ("connections", cfg["connections"]),
                 ("wall time of the run", f"{results['wall_s']:.0f} s")]:
        out.append(f"| {k} | {v} |")
    out += ["", "## How to run", "", "```sh",
            "scripts/bench            # full suite (~9 min on 2 cores, plus the build): builds "
            "Release, runs every scenario,",
            "                         # writes bench/results/<id>.json and regenerates this "
            "page and benchmarks.png",
            "scripts/bench --quick    # smoke run (~1.5 min): short durations, small data; "
            "writes bench/results/ only",
            "scripts/bench --only accounts,callbacks --repeat 5   # a subset, more repeats",
            "bench/run.py --report-only bench/results/<id>.json  # re-render this page from "
            "a results file",
            "```", "", f"This run: `{results['command']}`", ""]
    out += ["The load generators run on the same 2 cores as the service (as the issue "
            "specifies), so every requests/s figure here is for a machine shared between "
            "the client, the service and (where used) the simulator or nginx. The CPU columns "
            "show how it was shared (percent of one core; 200% is the whole machine). "
            "\"CPU others\" is whatever else ran on the machine meanwhile; a repeat with more "
            f"than {cfg['foreign_cpu_limit']:g}% is measured again (set aside under "
            "\"disturbed\").", ""]

    out += ["## Summary (medians)", "",
            "| scenario | what | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for scen, label, rps, p50, p99, _, _ in summary_rows(results):
        out.append(f"| {scen} | {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")
    sc = results["scenarios"]
    if _ok(sc.get("accounts")):
        out.append(f"| 1 | ratio payment_service / nginx | "
                   f"{sc['accounts']['summary']['ratio_to_nginx']:.3f} | | |")
    if _ok(sc.get("ablation")):
        out.append(f"| 5 | ratio group commit / one commit per request | "
                   f"{sc['ablation']['summary']['ratio']:.1f} | | |")
        if sc["ablation"]["summary"].get("ratio_slower_disk") is not None:
            out.append(f"| 5 | the same ratio, slower disk | "
                       f"{sc['ablation']['summary']['ratio_slower_disk']:.1f} | | |")
    if _ok(sc.get("memory")):
        s = sc["memory"]["summary"]
        out.append(f"| 6 | RSS idle, empty database | {s['rss_idle_empty_mb']:.1f} MB | | |")
        out.append(f"| 6 | RSS idle, {s['payments_stored']:,} payments | "
                   f"{s['rss_idle_full_mb']:.1f} MB | | |")
        out.append(f"| 6 | RSS after GET /payments + callbacks load | "
                   f"{s['rss_after_load_mb']:.1f} MB | | |")
        out.append(f"| 6 | start-up with {s['payments_stored']:,} payments | "
                   f"{s['startup_ms']:.0f} ms | | |")
    out.append("")
    if png_name:
        out += [f"![requests/s per scenario, nginx baseline in grey]({png_name})", ""]

    out += ["## Targets (issue 3)", "", "| target | measured | |", "|---|---|---|"]
    for t in evaluate(results):
        note = f" ({t['note']})" if t["note"] else ""
        out.append(f"| {t['target']} | {t['measured']} | {_met(t['met'])}{note} |")
    failed = [(s["title"], c) for s in sc.values() if "checks" in s
              for c in s["checks"] if not c["ok"]]
    errors = [(s["title"], s["error"]) for s in sc.values() if "error" in s]
    out.append("")
    out.append("Correctness: " + ("every check passed." if not failed and not errors else
                                  f"**{len(failed)} check(s) failed, {len(errors)} scenario(s) "
                                  "did not finish** (see below)."))
    out.append("")
    if analysis:
        out += [analysis.strip(), ""]

    out += ["## Scenarios", ""]
    for key, s in sc.items():
        out += [f"### {s['title']}", ""]
        if "error" in s:
            out += ["**Did not finish:**", "", "```", s["error"].strip()[-2000:], "```", ""]
            continue
        out += [s["what"] + ".", ""]
        extra = []
        if key == "ablation":
            extra = [("rows/commit", "jobs_per_commit")]
        elif key == "callbacks":
            extra = [("rows/commit", "jobs_per_commit")]
        elif key == "lifecycle":
            extra = [("s total", "seconds_total"), ("s sending", "seconds_sending"),
                     ("s after the last answer", "tail_s"), ("sending/s", "send_rps"),
                     ("callbacks given up", "callbacks_gave_up")]
        if s.get("variants"):
            out += _runs_table(s["variants"], extra)
            out.append("")
        if key == "lifecycle":
            out.append("requests/s here is payments per second from the first request until "
                       "the last callback was applied; p50/p99 are the latencies of the "
                       "`POST /payments` answers; \"sending/s\" is the rate while loadgen was "
                       "still sending payments.")
            out.append("")
        if key == "accounts":
            summ = s["summary"]
            line = (f"Ratio payment_service / nginx: median {summ['ratio_to_nginx']:.2f}; "
                    f"per repeat {', '.join(f'{x:.2f}' for x in summ['ratio_per_repeat'])}. "
                    f"Body: {s['facts']['body_bytes']} bytes.")
            if "per_core_ratio" in summ:
                line += (f" Requests per CPU-second of the server process(es): payment_service "
                         f"{summ['payment_service']['rps_per_server_core']:,}, nginx "
                         f"{summ['nginx']['rps_per_server_core']:,} (ratio "
                         f"{summ['per_core_ratio']:.2f}).")
            out.append(line)
            out.append("")
            out += ["<details><summary>nginx.conf of the baseline</summary>", "", "```nginx",
                    s["facts"]["nginx_conf"].strip(), "```", "</details>", ""]
        if key == "ablation":
            summ = s["summary"]
            out.append(f"Ratio group commit / one commit per request: median of requests/s "
                       f"{summ['ratio']:.1f}x; per repeat "
                       f"{', '.join(f'{x:.1f}' for x in summ['ratio_per_repeat'])}.")
            out.append("")
        if key == "memory":
            f = s["facts"]
            out += ["| measure | value |", "|---|---|",
                    f"| RSS idle, empty database | {f['rss_idle_empty_kb'] / 1024:.1f} MB |",
                    f"| fill: {s['summary']['payments_stored']:,} payments | "
                    f"{f['fill_seconds']:.0f} s ({f['fill_rps']:,.0f}/s) |",
                    f"| RSS right after the fill (not restarted) | "
                    f"{f['rss_after_fill_kb'] / 1024:.1f} MB |",
                    f"| database size (file + WAL) | "
                    f"{f.get('database_bytes', 0) / 1e6:,.0f} MB |",
                    "| start-up (process start to /healthz 200), per restart | "
                    + ", ".join(f"{x * 1000:.0f} ms" for x in f["startup_s"]) + " |",
                    "| RSS idle 1 s after start, per restart | "
                    + ", ".join(f"{x / 1024:.1f} MB" for x in f["rss_idle_full_kb"]) + " |",
                    f"| RSS after the load below | {f['rss_after_load_kb'] / 1024:.1f} MB |",
                    ""]
            out += ["| load after restart | requests/s | p50 ms | p99 ms |", "|---|---|---|---|"]
            for name, v in f["load"].items():
                out.append(f"| {name} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} |")
            out.append("")
        if s.get("discarded"):
            out.append(f"Disturbed and measured again: {len(s['discarded'])} run(s) (others "
                       "used " + ", ".join(f"{d['foreign_cpu_pct']:.0f}%" for d in
                                            s["discarded"]) + " of a core).")
            out.append("")
        out += ["Checks:", ""] + _checks(s) + [""]
    return "\n".join(out) + "\n"
