#!/usr/bin/python3
"""Benchmark suite of payment_service (issue 3). Usually started through `scripts/bench`, which
builds the Release binaries first. Standard library only.

    bench/run.py [--quick] [--repeat N] [--only accounts,callbacks,...]
                 [--target sqlite,postgres,postgres3]
    bench/run.py --report-only bench/results/ID.json

Every scenario runs on each target in turn (scenario by scenario, so the targets see the same
machine conditions). Writes bench/results/ID.json (+ ID.md, ID.png) and, for a full run of every
scenario, docs/benchmarks.md and docs/benchmarks.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from benchlib import report, tools  # noqa: E402
from benchlib.procs import Context, log  # noqa: E402
from benchlib.scenarios import SCENARIOS, Bench, Config  # noqa: E402
from benchlib.targets import PG_CLUSTER, TARGETS  # noqa: E402

RESULTS = REPO / "bench" / "results"
ANALYSIS = REPO / "bench" / "analysis.md"


DEFAULT_TARGETS = ("sqlite", "postgres", "postgres3")
BINARIES = ("payment_service", "payment_provider_sim", "loadgen", "libfsync_delay.so",
            "seed_accounts")


def _sh(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def cmake_build_type(bin_dir: Path) -> str:
    cache = bin_dir.parent / "CMakeCache.txt"
    if cache.exists():
        for line in cache.read_text(errors="replace").splitlines():
            if line.startswith("CMAKE_BUILD_TYPE:"):
                return line.split("=", 1)[1]
    return "?"


def _fs_type(path: Path) -> str:
    best, fs = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if str(path).startswith(parts[1]) and len(parts[1]) > len(best):
            best, fs = parts[1], f"{parts[2]} on {parts[0]}"
    return fs


def machine_facts(build_type: str) -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    os_name = "?"
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    commit = _sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                 "--", "src", "tools"])
    wrk_v = _sh(["wrk", "-v"]).splitlines()[0].split(" Copyright")[0]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": os_name,
        "commit": commit + (" + uncommitted changes in " + ", ".join(
            line.split(maxsplit=1)[-1] for line in dirty.splitlines()) if dirty else ""),
        "build": f"CMAKE_BUILD_TYPE={build_type}",
        "tools": f"{_sh(['nginx', '-v']).replace('nginx version: ', '')}, {wrk_v}, "
                 f"Python {platform.python_version()}",
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1.5 s measurements, small data sets")
    p.add_argument("--repeat", type=int, help="measurements per scenario (default 3)")
    p.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up (default 3)")
    p.add_argument("--only", help="comma-separated scenarios: "
                   + ",".join(s.key for s in SCENARIOS))
    p.add_argument("--target", default=",".join(DEFAULT_TARGETS),
                   help="comma-separated stores/topologies under test, each scenario runs on "
                        "each: " + ", ".join(f"{k} ({t.description})" for k, t in
                                             TARGETS.items())
                        + f" (default {','.join(DEFAULT_TARGETS)})")
    p.add_argument("--accounts", type=int, help="accounts used by the load (default 10)")
    p.add_argument("--callback-payments", type=int,
                   help="payments that receive callbacks in scenarios 2 and 5 (default 5000)")
    p.add_argument("--lifecycle-payments", type=int, help="payments per lifecycle repeat "
                   "(default 20000)")
    p.add_argument("--lifecycle-payments-large", type=int, help="a second, larger lifecycle "
                   "N that shows the weight of the fixed settle tail (default 100000; 0: skip)")
    p.add_argument("--lifecycle-settle", type=int, help="time_to_settle_seconds of the "
                   "lifecycle (default 2)")
    p.add_argument("--slow-flush-us", type=int, help="scenario 5 again with every fsync this "
                   "much slower (default 200; 0: skip)")
    p.add_argument("--memory-payments", type=int, help="payments stored for the memory "
                   "scenario (default 1000000)")
    p.add_argument("--scale-sizes", help="scenario 7 (scale): comma-separated numbers of "
                   "accounts (default 1,10000,100000,1000000; --quick 1,2000); the smallest is "
                   "the reference of the ratios")
    p.add_argument("--scale-duration", type=float, help="scenario 7: seconds per callbacks "
                   "and POST /accounts measurement (default 5)")
    p.add_argument("--loadgen-threads", type=int, help="loadgen threads (default 2)")
    p.add_argument("--wrk-threads", type=int, help="wrk threads (default 2)")
    p.add_argument("--sim-threads", type=int, help="simulator threads (default 1)")
    p.add_argument("--foreign-cpu-limit", type=float,
                   help="re-measure a repeat when other processes used more than this percent "
                        "of a core (default 25)")
    p.add_argument("--docs", dest="docs", action="store_true", default=None,
                   help="write docs/benchmarks.md and .png (default: full runs of every "
                        "scenario only)")
    p.add_argument("--no-docs", dest="docs", action="store_false")
    p.add_argument("--bin-dir", default=str(REPO / "build" / "bin"))
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    p.add_argument("--baseline", default=str(report.BASELINE),
                   help="SQLite figures to compare this run's SQLite with (default "
                        "bench/baseline-sqlite.json; '' for none)")
    p.add_argument("--report-only", metavar="RESULTS_JSON",
                   help="only render docs from an existing results file")
    return p.parse_args(argv)


def make_config(args) -> Config:
    cfg = Config.quick_config() if args.quick else Config()
    overrides = {
        "repeat": args.repeat, "duration_s": args.duration, "warmup_s": args.warmup,
        "accounts": args.accounts, "callback_payments": args.callback_payments,
        "lifecycle_payments": args.lifecycle_payments,
        "lifecycle_payments_large": args.lifecycle_payments_large,
        "lifecycle_settle_s": args.lifecycle_settle, "slow_flush_us": args.slow_flush_us,
        "memory_payments": args.memory_payments,
        "loadgen_threads": args.loadgen_threads, "wrk_threads": args.wrk_threads,
        "sim_threads": args.sim_threads, "foreign_cpu_limit": args.foreign_cpu_limit,
        "scale_duration_s": args.scale_duration,
    }
    if args.scale_sizes:
        sizes = tuple(sorted({int(x.replace("_", "")) for x in args.scale_sizes.split(",")
                              if x.strip()}))
        if not sizes or sizes[0] < 1:
            raise SystemExit("--scale-sizes: positive numbers of accounts, comma-separated")
        overrides["scale_sizes"] = sizes
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def write_outputs(results: dict, docs: bool) -> None:
    """bench/results/ID.json, .md and charts; with `docs`, docs/benchmarks.md and its charts.
    A run of the scale scenario alone (scenario 7, long on its own) replaces only the scale
    section of docs/benchmarks.md and docs/benchmarks-scale.png."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    rid = results["id"]
    (RESULTS / f"{rid}.json").write_text(json.dumps(results, indent=1) + "\n")
    analysis = ANALYSIS.read_text() if (docs and ANALYSIS.exists()) else None
    png = RESULTS / f"{rid}.png"
    scale_png = RESULTS / f"{rid}-scale.png"
    have_chart = report.chart(results, png, RESULTS)
    have_scale = report.scale_chart(results, scale_png, RESULTS)
    md = report.render(results, png.name if have_chart else None, analysis,
                       scale_png.name if have_scale else None)
    (RESULTS / f"{rid}.md").write_text(md)
    log(f"results: {RESULTS / rid}.json, .md" + (", .png" if have_chart else "")
        + (", -scale.png" if have_scale else ""))
    if not docs:
        return
    docs_dir = REPO / "docs"
    if have_scale:
        shutil.copyfile(scale_png, docs_dir / "benchmarks-scale.png")
    if report.only_scale(results):
        page = docs_dir / "benchmarks.md"
        page.write_text(report.splice_scale(
            page.read_text() if page.exists() else "",
            report.scale_section(results, "benchmarks-scale.png" if have_scale else None,
                                 standalone=True)))
        log("wrote the scale section of docs/benchmarks.md and docs/benchmarks-scale.png")
        return
    if have_chart:
        shutil.copyfile(png, docs_dir / "benchmarks.png")
    (docs_dir / "benchmarks.md").write_text(
        report.render(results, "benchmarks.png" if have_chart else None, analysis,
                      "benchmarks-scale.png" if have_scale else None))
    log("wrote docs/benchmarks.md and docs/benchmarks.png")


def main(argv) -> int:
    args = parse_args(argv)
    if args.report_only:
        results = json.loads(Path(args.report_only).read_text())
        write_outputs(results, docs=args.docs is not False)
        return 0

    cfg = make_config(args)
    chosen = SCENARIOS
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = set(keys) - {s.key for s in SCENARIOS}
        if unknown:
            print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        chosen = [s for s in SCENARIOS if s.key in keys]
    docs = args.docs if args.docs is not None else (not cfg.quick and not args.only)
    target_keys = list(dict.fromkeys(k.strip() for k in args.target.split(",") if k.strip()))
    unknown = [k for k in target_keys if k not in TARGETS]
    if unknown or not target_keys:
        print(f"unknown target(s): {', '.join(unknown) or '(none)'}; known: "
              f"{', '.join(TARGETS)}", file=sys.stderr)
        return 2
    targets = [TARGETS[k] for k in target_keys]
    tools_needed = ["wrk", "nginx", "gnuplot"]
    if any(k != "sqlite" for k in target_keys):
        tools_needed.append("psql")
    for tool in tools_needed:
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run scripts/install-deps", file=sys.stderr)
            return 2
    for binary in BINARIES:
        if not (Path(args.bin_dir) / binary).exists():
            print(f"{args.bin_dir}/{binary} is missing: run scripts/bench (it builds)",
                  file=sys.stderr)
            return 2

    # SIGTERM/SIGHUP end the run like Ctrl-C: the finally blocks stop every process.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    rid = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if cfg.quick else "")
    results = {
        "id": rid,
        "command": " ".join(["scripts/bench"] + argv),
        "targets": {t.key: t.description for t in targets},
        "config": dataclasses.asdict(cfg),
        "machine": machine_facts(cmake_build_type(Path(args.bin_dir))),
        "by_target": {t.key: {} for t in targets},
    }
    if args.baseline and "sqlite" in target_keys:
        results["sqlite_baseline"] = report.load_baseline(Path(args.baseline))
    ctx = Context(REPO, Path(args.bin_dir), keep_tmp=args.keep_tmp)
    started = time.monotonic()
    failed = False
    try:
        # Others may rebuild build/ while this runs: measure a private copy of the binaries.
        snapshot = ctx.tmpdir("bin")
        for binary in BINARIES:
            shutil.copy2(Path(args.bin_dir) / binary, snapshot / binary)
        ctx.bin_dir = snapshot
        fsync = tools.fsync_probe(ctx.root)
        results["machine"]["fsync"] = (
            f"4 KiB write + fdatasync in {Path(tempfile.gettempdir())} ({_fs_type(ctx.root)}): "
            f"p50 {fsync['p50_us']} us, p99 {fsync['p99_us']} us")
        for target in targets:
            target.prepared = True
            target.prepare(ctx)
        if PG_CLUSTER.settings:
            results["machine"]["postgres"] = ", ".join(
                f"{k} {v}" for k, v in PG_CLUSTER.settings.items())
        for scenario in chosen:
            for target in targets:
                if scenario.only_targets and target.key not in scenario.only_targets:
                    log(f"=== {scenario.title}: not run on {target.key} (only on "
                        f"{', '.join(scenario.only_targets)})")
                    continue
                log(f"=== {scenario.title} [{target.key}]")
                bench = Bench(ctx, cfg, target)
                t0 = time.monotonic()
                try:
                    res = scenario.run(bench)
                except KeyboardInterrupt:
                    raise
                except Exception:
                    failed = True
                    res = {"key": scenario.key, "title": scenario.title, "target": target.key,
                           "error": traceback.format_exc()}
                    log(f"{scenario.key} [{target.key}] failed:\n{res['error']}")
                finally:
                    ctx.stop_all()  # whatever the scenario left running
                    try:
                        target.after_scenario(ctx)
                    except Exception as e:  # noqa: BLE001 - the next scenario gets a fresh one
                        log(f"{target.key}: clean-up after {scenario.key}: {e}")
                res["wall_s"] = round(time.monotonic() - t0, 1)
                bad = [c for c in res.get("checks", []) if not c["ok"]]
                for c in bad:
                    log(f"CHECK FAILED [{target.key}]: {c['what']}: {c['detail']}")
                failed = failed or bool(bad)
                results["by_target"][target.key][scenario.key] = res
                log(f"{scenario.key} [{target.key}]: done in {res['wall_s']:.0f} s")
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping every process")
        return 130
    finally:
        ctx.stop_all()
        for target in targets:
            if getattr(target, "prepared", False):
                try:
                    target.close()
                except Exception as e:  # noqa: BLE001 - keep cleaning up
                    log(f"{target.key}: close: {e}")
        ctx.close()
    results["wall_s"] = round(time.monotonic() - started, 1)
    if failed and docs:
        log("a scenario failed or a check failed: docs/ left unchanged")
        docs = False
    write_outputs(results, docs)
    for t in report.evaluate_all(results):
        log(f"target: {t['target']}: {t['measured']} -> "
            f"{ {True: 'met', False: 'NOT met', None: 'not evaluated'}[t['met']] }")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
