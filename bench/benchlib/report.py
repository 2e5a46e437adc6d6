"""docs/benchmarks.md and its chart, generated from one results JSON (bench/results/*.json).

A results file holds every target of the run: results["by_target"][target][scenario]. Files
written before several targets existed (results["scenarios"], results["target"]) are read
through normalize().
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

BASELINE = Path(__file__).resolve().parent.parent / "baseline-sqlite.json"
SQLITE_NOISE = 0.10  # "SQLite unchanged within noise": every figure within +-10% of the baseline

# (scenario, measure) -> target, checked by evaluate(); the issue's numbers.
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


def evaluate(results: dict, target: str = "sqlite") -> list[dict]:
    """Issue 3's targets (set for SQLite), on one target's scenarios."""
    results = normalize(results)
    sc = results["by_target"].get(target, {})
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


def summary_rows(sc: dict) -> list[tuple]:
    """(scenario, measure, rps, p50, p99, label for the chart, colour, scenario key, variant)
    of every headline number of one target's scenarios."""
    rows = []

    def add(key, variant, label, chart, colour):
        s = sc.get(key)
        if _ok(s) and variant in s["summary"]:
            v = s["summary"][variant]
            rows.append((s["title"].split(" ", 1)[0].rstrip("."), label, v["rps"], v["p50_ms"],
                         v["p99_ms"], chart, colour, key, variant))

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


def normalize(results: dict) -> dict:
    """The several-targets shape, also for a results file of one target written before."""
    if "by_target" in results:
        return results
    key, _, description = results.get("target", "sqlite: ").partition(": ")
    out = dict(results)
    out["targets"] = {key: description}
    out["by_target"] = {key: results.get("scenarios", {})}
    return out


def _target_keys(results: dict) -> list[str]:
    return list(normalize(results)["by_target"])


def _headline(sc: dict) -> dict[tuple[str, str], tuple]:
    """(scenario key, variant) -> summary row, for one target."""
    return {(r[7], r[8]): r for r in summary_rows(sc)}


def _fig(results: dict, target: str, key: str, variant: str | None = None):
    """A target's median requests/s of a scenario's headline variant (None if missing)."""
    sc = normalize(results)["by_target"].get(target, {}).get(key)
    if not _ok(sc):
        return None
    if variant is None:
        variant = {"accounts": "payment_service", "callbacks": "group commit (default)",
                   "payments": "payment_service", "ablation": "group commit (default)",
                   "lifecycle": sc["summary"].get("primary")}.get(key)
    v = sc["summary"].get(variant)
    return v["rps"] if isinstance(v, dict) else None


def load_baseline(path: Path = BASELINE) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def sqlite_vs_baseline(results: dict) -> list[dict]:
    """SQLite of this run against the committed baseline (bench/baseline-sqlite.json): one row
    per figure with both medians and their ratio."""
    base = results.get("sqlite_baseline")
    sc = normalize(results)["by_target"].get("sqlite")
    if not base or sc is None:
        return []
    rows = []
    for fig in base["figures"]:
        now = None
        s = sc.get(fig["scenario"])
        if _ok(s) and isinstance(s["summary"].get(fig["variant"]), dict):
            now = s["summary"][fig["variant"]]["rps"]
        rows.append({**fig, "now": now,
                     "ratio": round(now / fig["rps"], 3) if now is not None else None})
    return rows


ISSUE9_TEXT = {
    "pg_callbacks": "callbacks, one instance on PostgreSQL, at least 10,000/s",
    "pg3_callbacks_ratio": "callbacks, three instances at least 0.8 of one instance",
    "pg_payments": "`POST /payments` through the simulator at least 5,000/s",
    "pg_lifecycle": "full lifecycle at least 2,500 payments/s",
    "pg_accounts": "`GET /accounts` (read from the database on every request) at least "
                   "20,000/s",
    "sqlite_unchanged": f"SQLite figures unchanged within noise (every one within "
                        f"±{SQLITE_NOISE:.0%} of the baseline)",
}


def evaluate_pg(results: dict) -> list[dict]:
    """Issue 9's targets: PostgreSQL, one and three instances, and SQLite unchanged."""
    results = normalize(results)
    keys = _target_keys(results)
    rows = []

    def add(key, target, measured, met, note=""):
        rows.append({"key": key, "target": ISSUE9_TEXT[key] + (f" ({target})" if target else ""),
                     "measured": measured, "met": met, "note": note})

    one = _fig(results, "postgres", "callbacks")
    three = _fig(results, "postgres3", "callbacks")
    sqlite_cb = _fig(results, "sqlite", "callbacks")
    if one is not None:
        add("pg_callbacks", "postgres", f"{one:,.0f}/s", one >= 10000,
            f"SQLite {sqlite_cb:,.0f}/s in the same run" if sqlite_cb else "")
    if one is not None and three is not None:
        add("pg3_callbacks_ratio", "postgres3 / postgres", f"{three / one:.2f} ({three:,.0f} vs "
            f"{one:,.0f}/s)", three / one >= 0.8)
    for target in ("postgres", "postgres3"):
        if target not in keys:
            continue
        v = _fig(results, target, "payments")
        if v is not None:
            add("pg_payments", target, f"{v:,.0f}/s", v >= 5000)
        lc = results["by_target"][target].get("lifecycle")
        v = _fig(results, target, "lifecycle")
        if v is not None:
            primary = lc["summary"]["primary"]
            add("pg_lifecycle", target, f"{v:,.0f} payments/s ({primary} in "
                f"{lc['summary'][primary]['seconds_total']:.2f} s)", v >= 2500)
        v = _fig(results, target, "accounts")
        if v is not None:
            add("pg_accounts", target, f"{v:,.0f}/s", v >= 20000)
    cmp = sqlite_vs_baseline(results)
    service_rows = [r for r in cmp if not r.get("reference") and r["ratio"] is not None]
    if service_rows:
        worst = min(service_rows, key=lambda r: r["ratio"])
        best = max(service_rows, key=lambda r: r["ratio"])
        within = all(abs(r["ratio"] - 1) <= SQLITE_NOISE for r in service_rows)
        ref = [r for r in cmp if r.get("reference") and r["ratio"] is not None]
        quick = results["config"].get("quick")
        note = ("quick run: 1.5 s measurements are not comparable with the baseline's 10 s"
                if quick else "")
        if ref:
            note += ("; " if note else "") + ", ".join(
                f"{r['label']}: {r['ratio']:.2f}x (the machine's own speed)" for r in ref)
        add("sqlite_unchanged", "", f"{len(service_rows)} figures, {worst['ratio']:.2f}x "
            f"({worst['label']}) to {best['ratio']:.2f}x ({best['label']})",
            None if quick else within, note)
    return rows


def evaluate_all(results: dict) -> list[dict]:
    out = evaluate(results) if "sqlite" in _target_keys(results) else []
    return out + evaluate_pg(results) + evaluate_scale(results)


PALETTE = {"sqlite": "#1f77b4", "postgres": "#ff7f0e", "postgres3": "#2ca02c"}
FALLBACK_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def chart(results: dict, png: Path, work: Path) -> bool:
    """Clustered bars: one cluster per headline figure, one bar per target."""
    results = normalize(results)
    keys = _target_keys(results)
    per_target = {t: _headline(results["by_target"][t]) for t in keys}
    labels: dict[tuple, str] = {}
    for t in keys:
        for k, row in per_target[t].items():
            if row[5] is not None and k not in labels:
                labels[k] = row[5]
    if not labels:
        return False
    data = work / "chart.dat"
    with open(data, "w") as f:
        for k in labels:
            values = [per_target[t].get(k) for t in keys]
            f.write(" ".join("?" if v is None else f"{v[2]:.0f}" for v in values) + "\n")
    n = len(keys)
    colours = [PALETTE.get(t, FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)])
               for i, t in enumerate(keys)]
    width = 1.0 / (n + 1)
    xtics = ", ".join(f'"{label}" {j}' for j, label in enumerate(labels.values()))
    offsets = [(i - (n - 1) / 2.0) * width for i in range(n)]
    bars = ", \\\n     ".join(
        f"'{data}' using ($0 + {offsets[i]:.4f}):{i + 1}:({width:.4f}) with boxes "
        f"lc rgb \"{colours[i]}\" title \"{keys[i]}\"" for i in range(n))
    value_labels = ", \\\n     ".join(
        f"'{data}' using ($0 + {offsets[i]:.4f}):{i + 1}:(sprintf(\"%.0f\", ${i + 1})) "
        "with labels left rotate by 90 offset 0,0.3 font \"sans,7\" notitle"
        for i in range(n))
    quick = " (quick run)" if results["config"].get("quick") else ""
    repeats = results["config"]["repeat"]
    script = f"""
set terminal pngcairo noenhanced size 1300,600 font "sans,10"
set output '{png}'
set title "payment_service, {results['machine']['nproc']} cores, load generator on the same machine: medians of {repeats}{quick}"
set datafile missing "?"
set style fill solid 0.85 border -1
set xrange [-0.6:{len(labels) - 0.4}]
set xtics ({xtics})
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set format y "%.0f"
set ylabel "requests/s"
set xtics rotate by 25 right nomirror
set tics font "sans,9"
set lmargin 10
set rmargin 4
set bmargin 8
set key top right
plot {bars}, \\
     {value_labels}
"""
    (work / "chart.gp").write_text(script)
    done = subprocess.run(["gnuplot", str(work / "chart.gp")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot: {done.stderr}")
    return True


def _memory_rows(sc: dict) -> dict[str, tuple[float, str]]:
    m = sc.get("memory")
    if not _ok(m):
        return {}
    s, f = m["summary"], m["facts"]
    out = {
        "RSS of payment_service idle, empty database (MB)": (s["rss_idle_empty_mb"], "MB"),
        f"RSS of payment_service idle, {s['payments_stored']:,} payments (MB)":
            (s["rss_idle_full_mb"], "MB"),
        "RSS of payment_service after GET /payments + callbacks load (MB)":
            (s["rss_after_load_mb"], "MB"),
        f"start-up with {s['payments_stored']:,} payments (ms)": (s["startup_ms"], "ms"),
    }
    for name, kb in f.get("memory_idle_full_kb", {}).items():
        if name != "service":
            out[f"{name} idle, {s['payments_stored']:,} payments (MB)"] = (round(kb / 1024, 1),
                                                                            "MB")
    if f.get("database_bytes"):
        out["database size (MB)"] = (round(f["database_bytes"] / 1e6), "MB")
    return out


def _cpu_split(summary: dict) -> str:
    cpu = summary.get("cpu_pct", {})
    parts = [f"{k} {v:.0f}%" for k, v in cpu.items() if k != "bench runner"]
    if "foreign_cpu_pct" in summary:
        parts.append(f"others {summary['foreign_cpu_pct']:.0f}%")
    return ", ".join(parts)


def side_by_side(results: dict) -> list[str]:
    """A table per scenario: each target's median and its ratio to SQLite of the same run."""
    results = normalize(results)
    keys = _target_keys(results)
    by = results["by_target"]
    has_sqlite = "sqlite" in keys
    head = ["measure"]
    for t in keys:
        head += [f"{t} requests/s", f"{t} p99 ms"] + (
            [f"{t} / sqlite"] if has_sqlite and t != "sqlite" else [])
    out = []
    scenario_keys = list(dict.fromkeys(k for t in keys for k in by[t]))
    for skey in scenario_keys:
        if skey == "scale":  # its own section (scale_section): a table per target
            continue
        title = next(by[t][skey]["title"] for t in keys if skey in by[t])
        out += [f"### {title}", ""]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        rows = {t: _headline(by[t]) for t in keys}
        measures = list(dict.fromkeys(k for t in keys for k in rows[t] if k[0] == skey))
        for m in measures:
            label = next(rows[t][m][1] for t in keys if m in rows[t])
            cells = [label]
            base = rows.get("sqlite", {}).get(m)
            for t in keys:
                r = rows[t].get(m)
                cells += [_fmt_rps(r[2]) if r else "", f"{r[4]:.2f}" if r else ""]
                if has_sqlite and t != "sqlite":
                    cells.append(f"{r[2] / base[2]:.2f}x" if r and base else "")
            out.append("| " + " | ".join(cells) + " |")
        if skey == "memory":
            mem = {t: _memory_rows(by[t]) for t in keys}
            for label in dict.fromkeys(k for t in keys for k in mem[t]):
                cells = [label]
                base = mem.get("sqlite", {}).get(label)
                for t in keys:
                    v = mem[t].get(label)
                    cells += [f"{v[0]:,g}" if v else "", ""]
                    if has_sqlite and t != "sqlite":
                        cells.append(f"{v[0] / base[0]:.2f}x" if v and base and base[0] else "")
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
        for t in keys:
            s = by[t].get(skey)
            if not _ok(s):
                if s is not None:
                    out.append(f"- {t}: **did not finish** (see below)")
                continue
            for variant, v in s["summary"].items():
                if isinstance(v, dict) and v.get("cpu_pct") and (skey, variant) in rows[t]:
                    mem = v.get("memory_mb")
                    out.append(f"- {t}, {variant}: CPU (% of a core) {_cpu_split(v)}"
                               + (f"; memory after the load (MB) "
                                  + ", ".join(f"{k} {x:g}" for k, x in mem.items())
                                  if mem else ""))
                    break
        out.append("")
    return out


def _targets_table(rows: list[dict]) -> list[str]:
    out = ["| target | measured | |", "|---|---|---|"]
    for t in rows:
        note = f" ({t['note']})" if t["note"] else ""
        out.append(f"| {t['target']} | {t['measured']} | {_met(t['met'])}{note} |")
    return out


def _scenario_details(key: str, s: dict) -> list[str]:
    out = []
    if "error" in s:
        return ["**Did not finish:**", "", "```", s["error"].strip()[-2000:], "```", ""]
    out += [s["what"] + ".", ""]
    extra = []
    if key in ("ablation", "callbacks", "scale"):
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
                   f"{', '.join(f'{x:.1f}' for x in summ['ratio_per_repeat'])}."
                   + (f" Slower disk: {s['facts']['slower_disk']}."
                      if "ratio_slower_disk" not in summ and s["facts"].get("slower_disk")
                      else ""))
        out.append("")
    if key == "memory":
        f = s["facts"]
        out += ["| measure | value |", "|---|---|",
                f"| RSS idle, empty database | {f['rss_idle_empty_kb'] / 1024:.1f} MB |",
                f"| fill: {s['summary']['payments_stored']:,} payments | "
                f"{f['fill_seconds']:.0f} s ({f['fill_rps']:,.0f}/s) |",
                f"| RSS right after the fill (not restarted) | "
                f"{f['rss_after_fill_kb'] / 1024:.1f} MB |",
                f"| database size | {f.get('database_bytes', 0) / 1e6:,.0f} MB |",
                "| start-up (process start until it answers), per restart | "
                + ", ".join(f"{x * 1000:.0f} ms" for x in f["startup_s"]) + " |",
                "| RSS idle 1 s after start, per restart | "
                + ", ".join(f"{x / 1024:.1f} MB" for x in f["rss_idle_full_kb"]) + " |",
                f"| RSS after the load below | {f['rss_after_load_kb'] / 1024:.1f} MB |"]
        for name, kb in f.get("memory_idle_full_kb", {}).items():
            if name != "service":
                out.append(f"| {name}, idle after the last restart | {kb / 1024:.1f} MB |")
        out.append("")
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
    return out


def render(results: dict, png_name: str | None, analysis: str | None,
           scale_png: str | None = None) -> str:
    results = normalize(results)
    m = results["machine"]
    cfg = results["config"]
    keys = _target_keys(results)
    by = results["by_target"]
    out = ["# Benchmarks", ""]
    out.append("Generated by `scripts/bench` (`bench/run.py`) from "
               f"`bench/results/{results['id']}.json`; do not edit by hand: change `bench/` and "
               "run the suite again." + (" **Quick run: short durations, smoke test only.**"
                                          if cfg.get("quick") else ""))
    out += ["", "## Machine and run", "", "| | |", "|---|---|"]
    facts = [("date (UTC)", m["date"]), ("cores (nproc)", m["nproc"]), ("CPU", m["cpu"]),
             ("kernel", m["kernel"]), ("memory", m["memory"]), ("OS", m["os"]),
             ("disk (durable commits)", m.get("fsync", "?")),
             ("commit", m["commit"]), ("build", m["build"]), ("tools", m["tools"]),
             ("load average at start", m["loadavg"])]
    facts += [(f"target `{k}`", d) for k, d in results["targets"].items()]
    if m.get("postgres"):
        facts.append(("PostgreSQL (the run's private cluster)", m["postgres"]))
    facts += [("repeats", cfg["repeat"]),
              ("duration / warm-up per measurement", f"{cfg['duration_s']:g} s / "
                                                    f"{cfg['warmup_s']:g} s"),
              ("connections", cfg["connections"]),
              ("wall time of the run", f"{results['wall_s']:.0f} s")]
    for k, v in facts:
        out.append(f"| {k} | {v} |")
    out += ["", "## How to run", "", "```sh",
            "scripts/bench            # full suite on sqlite, postgres and postgres3 (~25 min on "
            "2 cores, plus the build):",
            "                         # builds Release, runs every scenario on each target, "
            "writes bench/results/<id>.json",
            "                         # and regenerates this page and benchmarks.png",
            "scripts/bench --target sqlite          # SQLite only (~9 min)",
            "scripts/bench --quick    # smoke run: short durations, small data; writes "
            "bench/results/ only",
            "scripts/bench --only accounts,callbacks --repeat 5   # a subset, more repeats",
            "scripts/bench --only scale --docs      # scenario 7 alone (1 to 1,000,000 accounts, "
            "sqlite and postgres):",
            "                         # replaces only its section of this page and "
            "benchmarks-scale.png",
            "bench/run.py --report-only bench/results/<id>.json  # re-render this page from "
            "a results file",
            "```", "", f"This run: `{results['command']}`", ""]
    out += ["The load generators run on the same 2 cores as the service (as the issues "
            "specify), so every requests/s figure here is for a machine shared between "
            "the client, the service and (where used) the simulator, nginx and PostgreSQL. The "
            "CPU columns show how it was shared (percent of one core; 200% is the whole "
            "machine; \"postgres\" is every process of the cluster, \"nginx-lb\" the load "
            "balancer of postgres3). \"CPU others\" is whatever else ran on the machine "
            f"meanwhile; a repeat with more than {cfg['foreign_cpu_limit']:g}% is measured "
            "again (set aside under \"disturbed\"). Every scenario runs on each target in turn "
            "before the next scenario starts, so the targets see the same machine.", ""]

    if len(keys) > 1 or "sqlite" not in keys:
        out += ["## Side by side (medians" + ("; ratio to SQLite of the same run)"
                                             if "sqlite" in keys else ")"), ""]
        out += side_by_side(results)
    else:
        out += ["## Summary (medians)", "",
                "| scenario | what | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
        for row in summary_rows(by["sqlite"]):
            scen, label, rps, p50, p99 = row[:5]
            out.append(f"| {scen} | {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")
        out.append("")
    for t in keys:
        sc = by[t]
        ratios = []
        if _ok(sc.get("accounts")):
            ratios.append(f"payment_service / nginx (GET /accounts) "
                          f"{sc['accounts']['summary']['ratio_to_nginx']:.3f}")
        if _ok(sc.get("ablation")):
            ratios.append(f"group commit / one commit per request "
                          f"{sc['ablation']['summary']['ratio']:.1f}")
            if sc["ablation"]["summary"].get("ratio_slower_disk") is not None:
                ratios.append(f"the same on a slower disk "
                              f"{sc['ablation']['summary']['ratio_slower_disk']:.1f}")
        if ratios:
            out.append(f"Ratios within `{t}`: " + "; ".join(ratios) + ".")
            out.append("")
    if png_name:
        out += [f"![requests/s per scenario and target]({png_name})", ""]

    pg_rows = evaluate_pg(results)
    if pg_rows:
        out += ["## Targets (issue 9: PostgreSQL, several instances)", ""]
        out += _targets_table(pg_rows)
        out.append("")
        cmp = sqlite_vs_baseline(results)
        if cmp:
            base = results["sqlite_baseline"]
            out += [f"SQLite in this run against the baseline: {base['source']}.", "",
                    "| figure | baseline requests/s | this run | ratio |", "|---|---|---|---|"]
            for r in cmp:
                now = "" if r["now"] is None else _fmt_rps(r["now"])
                ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
                label = r["label"] + (" (reference: not the service)" if r.get("reference")
                                      else "")
                out.append(f"| {label} | {_fmt_rps(r['rps'])} | {now} | {ratio} |")
            out.append("")
    if "sqlite" in keys:
        out += ["## Targets (issue 3: SQLite)", ""]
        out += _targets_table(evaluate(results))
        out.append("")
    out += scale_section(results, scale_png)
    failed = [(t, s["title"], c) for t in keys for s in by[t].values() if "checks" in s
              for c in s["checks"] if not c["ok"]]
    errors = [(t, s["title"]) for t in keys for s in by[t].values() if "error" in s]
    out.append("Correctness: " + ("every check passed on every target." if not failed and
                                  not errors else
                                  f"**{len(failed)} check(s) failed, {len(errors)} scenario run(s) "
                                  "did not finish** (see below)."))
    out.append("")
    if analysis:
        out += [analysis.strip(), ""]

    out += ["## Scenarios", ""]
    scenario_keys = list(dict.fromkeys(k for t in keys for k in by[t]))
    for skey in scenario_keys:
        title = next(by[t][skey]["title"] for t in keys if skey in by[t])
        out += [f"### {title}", ""]
        for t in keys:
            s = by[t].get(skey)
            if s is None:
                continue
            if len(keys) > 1:
                out += [f"#### {t}", ""]
            out += _scenario_details(skey, s)
    return "\n".join(out) + "\n"


# ---- Scenario 7: scale (issue 11) ----

SCALE_BEGIN = "<!-- scale:begin (bench/run.py --only scale --docs replaces this section) -->"
SCALE_END = "<!-- scale:end -->"
SCALE_OPEN_SAME = 1.2  # "as fast as at 1 account": the single-request median within 20%


def _scale(results: dict, target: str) -> dict | None:
    s = normalize(results)["by_target"].get(target, {}).get("scale")
    return s if _ok(s) else None


def _scale_targets(results: dict) -> list[str]:
    return [t for t in _target_keys(results) if _scale(results, t)]


def _size(s: dict, n: int) -> dict | None:
    return s["summary"].get(f"{n:,} accounts")


def only_scale(results: dict) -> bool:
    """True when the run measured the scale scenario and nothing else."""
    by = normalize(results)["by_target"]
    keys = {k for sc in by.values() for k in sc}
    return keys == {"scale"}


def evaluate_scale(results: dict) -> list[dict]:
    """Issue 11's targets, per target that ran the scale scenario."""
    rows = []

    def add(target, text, measured, met, note=""):
        rows.append({"key": "scale", "target": f"{text} ({target})", "measured": measured,
                     "met": met, "note": note})

    for t in _scale_targets(results):
        s = _scale(results, t)
        sizes = s["facts"]["sizes"]
        base_n = sizes[0]
        base = _size(s, base_n)
        ref = _accounts(base_n) + ("" if base_n == 1 else " (no 1-account run)")
        for n in (100_000, 1_000_000):
            v = _size(s, n)
            text = f"callbacks at {n:,} accounts at least 0.8 of {ref}"
            if v is None:
                add(t, text, "not measured in this run", None)
                continue
            add(t, text, f"{v['callbacks_ratio']:.2f} ({v['callbacks']['rps']:,.0f} vs "
                f"{base['callbacks']['rps']:,.0f}/s)", v["callbacks_ratio"] >= 0.8)
        v = _size(s, 1_000_000)
        text = f"opening an account at 1,000,000 accounts as fast as at {ref}"
        if v is None:
            add(t, text, "not measured in this run", None)
            add(t, "no write waits more than 20 ms behind recalculate at 1,000,000 accounts",
                "not measured in this run", None)
            add(t, "at most 100 bytes of RSS per account beyond the idle figure (at 1,000,000 "
                "accounts)", "not measured in this run", None)
        else:
            add(t, text, f"{v['open_one_ms']['p50']:.2f} vs {base['open_one_ms']['p50']:.2f} ms "
                f"({v['open_one_ratio']:.2f}x)", v["open_one_ratio"] <= SCALE_OPEN_SAME,
                f"median of {v['open_one_ms']['n']} single requests, met within "
                f"{SCALE_OPEN_SAME - 1:.0%}; under load {v['open']['rps']:,.0f} vs "
                f"{base['open']['rps']:,.0f}/s ({v['open_rps_ratio']:.2f}x)")
            stall = v["stall"]["any write"]
            add(t, "no write waits more than 20 ms behind recalculate at 1,000,000 accounts",
                f"longest write during recalculate {stall['during_max_ms']:.1f} ms "
                f"(without: {stall['without_max_ms']:.1f} ms)",
                stall["during_max_ms"] is not None and stall["during_max_ms"] <= 20,
                f"recalculate {v['recalculate']['p50_ms']:,.0f} ms")
            add(t, "at most 100 bytes of RSS per account beyond the idle figure (at 1,000,000 "
                "accounts)", f"{v['rss_start_per_account_b']:,.0f} B after start, "
                f"{v['rss_after_load_per_account_b']:,.0f} B after the load",
                v["rss_start_per_account_b"] <= 100 and v["rss_after_load_per_account_b"] <= 100,
                f"RSS {base['rss_start_kb'] / 1024:.1f} MB at {ref}, "
                f"{v['rss_start_kb'] / 1024:.1f} MB at 1,000,000")
    return rows


def scale_chart(results: dict, png: Path, work: Path) -> bool:
    """Callbacks/s against accounts (log x), one line per target, with each target's 0.8 x
    the smallest size's figure dashed."""
    results = normalize(results)
    targets = _scale_targets(results)
    if not targets:
        return False
    sizes = sorted({n for t in targets for n in _scale(results, t)["facts"]["sizes"]})
    data = work / "scale.dat"
    with open(data, "w") as f:
        for n in sizes:
            cells = []
            for t in targets:
                v = _size(_scale(results, t), n)
                cells.append("?" if v is None else f"{v['callbacks']['rps']:.0f}")
            f.write(f"{n} " + " ".join(cells) + "\n")
    colours = [PALETTE.get(t, FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)])
               for i, t in enumerate(targets)]
    plots = []
    for i, t in enumerate(targets):
        s = _scale(results, t)
        base = _size(s, s["facts"]["sizes"][0])["callbacks"]["rps"]
        plots.append(f"'{data}' using 1:{i + 2} with linespoints lw 2 pt 7 ps 1.2 "
                     f"lc rgb \"{colours[i]}\" title \"{t}\"")
        # Values above the first target's points, below the second's: they may be close.
        plots.append(f"'{data}' using 1:{i + 2}:(sprintf(\"%.0f\", ${i + 2})) with labels "
                     f"offset 0,{1 if i % 2 == 0 else -1} font \"sans,8\" "
                     f"tc rgb \"{colours[i]}\" notitle")
        plots.append(f"{0.8 * base:.1f} with lines dt 2 lw 1 lc rgb \"{colours[i]}\" "
                     f"title \"{t}: 0.8 x {_accounts(s['facts']['sizes'][0])}\"")
    xtics = ", ".join(f'"{n:,}" {n}' for n in sizes)
    quick = " (quick run)" if results["config"].get("quick") else ""
    script = f"""
set terminal pngcairo noenhanced size 900,520 font "sans,10"
set output '{png}'
set title "Callbacks/s against the number of accounts (median of {results['config']['repeat']}, {results['machine']['nproc']} cores shared with the load generator){quick}"
set datafile missing "?"
set logscale x
set xrange [{sizes[0] / 2:g}:{sizes[-1] * 2:g}]
set xtics ({xtics})
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set grid ytics
set format y "%.0f"
set xlabel "accounts (log scale)"
set ylabel "callbacks/s"
set key bottom left
plot {", ".join(plots)}
"""
    (work / "scale.gp").write_text(script)
    done = subprocess.run(["gnuplot", str(work / "scale.gp")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot: {done.stderr}")
    return True


def _accounts(n: int) -> str:
    return "1 account" if n == 1 else f"{n:,} accounts"


def _ms(x) -> str:
    return "" if x is None else (f"{x:,.1f}" if x >= 10 else f"{x:.2f}")


def _ratio(x) -> str:
    return f" ({x:.2f}x)"


def scale_tables(s: dict) -> list[str]:
    """Two tables for one target: throughput and latency; recalculate and memory."""
    sizes = s["facts"]["sizes"]
    ref = f"{sizes[0]:,}"
    out = [f"Ratios (x) are to {_accounts(sizes[0])} of the same run.", "",
           "| accounts | seeding | start-up ms | open one account, p50 / p99 ms | POST /accounts/s "
           "(wrk) | callbacks/s | callbacks p99 ms | rows/commit | GET /accounts: first, p50, "
           "p99 ms | GET /accounts bytes |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        v = _size(s, n)
        if v is None:
            continue
        seed = f"{v['seed_s']:.1f} s" + (f" ({v['seed_per_s']:,}/s)" if v.get("seed_per_s")
                                          else "")
        if v.get("vacuum_analyze_s") is not None:
            seed += f" + VACUUM ANALYZE, CHECKPOINT {v['vacuum_analyze_s']:.1f} s"
        g = v["get_accounts"]
        out.append(
            f"| {n:,} | {seed} | {v['startup_ms']:,.0f} | {_ms(v['open_one_ms']['p50'])} / "
            f"{_ms(v['open_one_ms']['p99'])}{_ratio(v['open_one_ratio'])} | "
            f"{v['open']['rps']:,.0f}{_ratio(v['open_rps_ratio'])} | "
            f"**{v['callbacks']['rps']:,.0f}**{_ratio(v['callbacks_ratio'])} | "
            f"{_ms(v['callbacks']['p99_ms'])} | {v['callbacks'].get('jobs_per_commit') or ''} | "
            f"{_ms(g['first_ms'])}, {_ms(g['p50'])}, {_ms(g['p99'])} ({g['n']} requests) | "
            f"{g['bytes']:,}" + (" (Link)" if g.get("link") else "") + " |")
    out += ["", "| accounts | recalculate p50 / max ms | recalculate answer bytes | longest "
            "callback during recalculate / without ms | longest POST /accounts during / without "
            "ms | RSS after start MB | RSS after the load MB | RSS per account beyond "
            f"{ref}: after start / after the load | accounts at the end |",
            "|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        v = _size(s, n)
        if v is None:
            continue
        r, st = v["recalculate"], v["stall"]
        per = (f"{v['rss_start_per_account_b']:,.0f} B / {v['rss_after_load_per_account_b']:,.0f}"
               " B" if "rss_start_per_account_b" in v else "")

        def stall(k):
            x = st[k]
            return (f"{_ms(x['during_max_ms'])} ({x['during_writes']:,} writes) / "
                    f"{_ms(x['without_max_ms'])} ({x['without_writes']:,})")
        out.append(f"| {n:,} | {_ms(r['p50_ms'])} / {_ms(r['max_ms'])} | {r['bytes']:,} | "
                   f"{stall('callbacks')} | {stall('accounts')} | "
                   f"{v['rss_start_kb'] / 1024:.1f} | {v['rss_after_load_kb'] / 1024:.1f} | "
                   f"{per} | {v['accounts_at_end']:,} |")
    mem = [(n, _size(s, n)) for n in sizes if _size(s, n)]
    extra = [f"{n:,}: " + ", ".join(f"{k} {x:g}" for k, x in v["memory_after_load_mb"].items()
                                     if k != "service") for n, v in mem
             if len(v["memory_after_load_mb"]) > 1]
    if extra:
        out += ["", "Other processes after the load (MB): " + "; ".join(extra) + "."]
    return out + [""]


def scale_section(results: dict, png_name: str | None, standalone: bool = False) -> list[str]:
    """The scale section of docs/benchmarks.md: issue 11's targets, the chart, a table per
    target. `standalone`: spliced into a page generated by another run, so it says where it
    comes from and carries its own details and checks."""
    results = normalize(results)
    targets = _scale_targets(results)
    failed = [t for t in _target_keys(results)
              if "scale" in results["by_target"][t] and t not in targets]
    if not targets and not failed:
        return []
    sizes = sorted({n for t in targets for n in _scale(results, t)["facts"]["sizes"]})
    out = [SCALE_BEGIN, "## Scale: " + (f"{sizes[0]:,} to {sizes[-1]:,} accounts" if sizes
                                        else "accounts") + " (issue 11)", ""]
    if standalone:
        m = results["machine"]
        out += [f"From `bench/results/{results['id']}.json`: `{results['command']}`, commit "
                f"{m['commit']}, {m['date']} UTC, {m['nproc']} cores, load average at start "
                f"{m['loadavg']}, wall time {results['wall_s']:.0f} s"
                + (" (**quick run**)" if results["config"].get("quick") else "")
                + ". The rest of this page may come from another run.", ""]
    any_scale = next((results["by_target"][t]["scale"] for t in targets), None)
    if any_scale:
        out += [any_scale["what"] + ".", ""]
    rows = evaluate_scale(results)
    if rows:
        out += _targets_table(rows) + [""]
    if png_name:
        out += [f"![callbacks/s against accounts]({png_name})", ""]
    for t in targets:
        out += [f"### Scale on {t}", ""] + scale_tables(_scale(results, t))
    for t in failed:
        out += [f"- {t}: **did not finish** (see below)", ""]
    if standalone:
        for t in _target_keys(results):
            s = results["by_target"][t].get("scale")
            if s is not None:
                out += [f"### Scale on {t}: every run and check", ""] + _scenario_details(
                    "scale", s)
    return out + [SCALE_END, ""]


def splice_scale(page: str, section: list[str]) -> str:
    """`page` with its scale section replaced by `section` (inserted before "## Scenarios", or
    at the end, when it has none)."""
    text = "\n".join(section).rstrip("\n") + "\n\n"
    if SCALE_BEGIN in page and SCALE_END in page:
        head, rest = page.split(SCALE_BEGIN, 1)
        tail = rest.split(SCALE_END, 1)[1].lstrip("\n")
        return head + text + tail
    marker = "\n## Scenarios\n"
    if marker in page:
        head, tail = page.split(marker, 1)
        return head.rstrip("\n") + "\n\n" + text + marker.lstrip("\n") + tail
    return (page.rstrip("\n") + "\n\n" if page else "") + text.rstrip("\n") + "\n"
