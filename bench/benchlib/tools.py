"""Load tools (wrk, loadgen) and the CPU bookkeeping around one measurement."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .procs import Context, log, machine_cpu, run_tool
from .targets import slow_flush_env

WRK_SCRIPT = Path(__file__).resolve().parent.parent / "wrk" / "summary.lua"


class ToolError(RuntimeError):
    pass


def wrk(ctx: Context, port: int, path: str, connections: int, threads: int,
        duration_s: float, method: str = "GET") -> dict:
    """wrk --latency against http://127.0.0.1:port/path; one summary dict. Another `method`
    than GET sends that method without a body (e.g. POST /accounts)."""
    seconds = max(1, round(duration_s))
    script = WRK_SCRIPT
    if method != "GET":
        script = ctx.root / f"wrk-{method.lower()}.lua"
        if not script.exists():
            script.write_text(f'wrk.method = "{method}"\n' + WRK_SCRIPT.read_text())
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"]
    code, out, err, wall, cpu = run_tool(ctx, "wrk", argv, timeout=seconds + 60)
    line = next((l for l in out.splitlines() if l.startswith("WRK_JSON ")), None)
    if code != 0 or line is None:
        raise ToolError(f"wrk failed ({code}): {err.strip()[:500]} {out.strip()[:500]}")
    data = json.loads(line[len("WRK_JSON "):])
    run_s = data["duration_us"] / 1e6
    errors = data["errors"]
    lat = data["latency_us"]
    return {
        "tool": "wrk",
        "argv": " ".join(argv[:-1]).replace(str(ctx.root), "$TMP")
                + f" http://127.0.0.1:PORT{path}",
        "requests": data["requests"],
        "seconds": round(run_s, 3),
        "rps": round(data["requests"] / run_s, 1),
        "latency_ms": {k: round(lat[k] / 1000, 3) for k in ("p50", "p90", "p99", "max")},
        "errors": errors,
        "non_2xx": errors["status"],
        "ok": all(v == 0 for v in errors.values()) and data["requests"] > 0,
        "tool_cpu_s": round(cpu, 3),
        "tool_wall_s": round(wall, 3),
        "text": out.split("WRK_JSON")[0].strip(),
    }


def loadgen(ctx: Context, mode: str, port: int, connections: int, threads: int,
            count: int | None = None, duration_s: float | None = None,
            accounts: list[int] | None = None, ids_in: Path | None = None,
            ids_out: Path | None = None, seed: int = 1, timeout_s: float = 600) -> dict:
    argv = [ctx.bin("loadgen"), mode, "--port", str(port), "-c", str(connections),
            "-t", str(threads), "--seed", str(seed)]
    if count is not None:
        argv += ["-n", str(count)]
    if duration_s is not None:
        argv += ["-d", f"{duration_s:g}"]
    if accounts:
        argv += ["--accounts", ",".join(str(a) for a in accounts)]
    if ids_in is not None:
        argv += ["--ids-in", str(ids_in)]
    if ids_out is not None:
        argv += ["--ids-out", str(ids_out)]
    code, out, err, wall, cpu = run_tool(ctx, "loadgen", argv, timeout=timeout_s)
    line = next((l for l in out.splitlines() if l.startswith("{")), None)
    if code != 0 or line is None:
        raise ToolError(f"loadgen failed ({code}): {err.strip()[:500]}")
    data = json.loads(line)
    counts = data["status_counts"]
    shown = [a.replace(str(ctx.root), "$TMP") for a in argv[1:]]
    shown[shown.index("--port") + 1] = "PORT"
    return {
        "tool": "loadgen",
        "argv": "loadgen " + " ".join(shown),
        "requests": data["requests"],
        "seconds": data["seconds"],
        "rps": data["rps"],
        "latency_ms": {k: data["latency_ms"][k] for k in ("p50", "p90", "p99", "max")},
        "status_counts": counts,
        "ok": data["requests"] > 0 and all(k.isdigit() and 200 <= int(k) < 300 for k in counts),
        "tool_cpu_s": round(cpu, 3),
        "tool_wall_s": round(wall, 3),
        "stderr": err.strip()[:500],
    }


def measured(watch: dict[str, Callable[[], float]], fn: Callable[[], dict],
             tool_name: str = "load tool", server: str = "service",
             memory: Callable[[], dict[str, int]] | None = None) -> dict:
    """Runs fn() (one load-tool run returning a dict with tool_cpu_s) and adds the CPU used by
    each watched process, by the tool, by this runner, and by everything else on the machine
    ("foreign": other users' builds and tests disturb a measurement on a 2-core machine).
    Percentages are of one core (200% = both cores of a 2-core machine). `memory`, if given,
    is read right after the load (KiB per process or group) into memory_mb."""
    before = {name: f() for name, f in watch.items()}
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    busy0, _ = machine_cpu()
    t0 = time.monotonic()
    result = fn()
    wall = time.monotonic() - t0
    busy1, _ = machine_cpu()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    after = {name: f() for name, f in watch.items()}
    if memory is not None:
        result["memory_mb"] = {k: round(v / 1024, 1) for k, v in memory().items()}
    cpu = {name: 100 * (after[name] - before[name]) / wall for name in watch}
    cpu[tool_name] = 100 * result["tool_cpu_s"] / wall
    runner = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
    cpu["bench runner"] = 100 * runner / wall
    busy = 100 * (busy1 - busy0) / wall
    result["cpu_pct"] = {k: round(v, 1) for k, v in cpu.items()}
    result["machine_busy_pct"] = round(busy, 1)
    result["machine_capacity_pct"] = 100 * (os.cpu_count() or 1)
    result["foreign_cpu_pct"] = round(max(0.0, busy - sum(cpu.values())), 1)
    # CPU time of the server under test (`server`, one of `watch`) per request it answered:
    # what a request costs, independent of how the machine was shared with the client.
    if server in watch and result.get("requests"):
        spent = after[server] - before[server]
        result["server_cpu_us_per_request"] = round(1e6 * spent / result["requests"], 1)
    return result


def wait_for_quiet(limit_pct: float, max_wait_s: float = 90.0, window_s: float = 0.5) -> float:
    """Waits until the machine's busy CPU over `window_s` is below limit_pct (% of one core;
    our own processes are idle between measurements). Returns the last busy level seen."""
    deadline = time.monotonic() + max_wait_s
    announced = False
    while True:
        b0, _ = machine_cpu()
        time.sleep(window_s)
        b1, _ = machine_cpu()
        busy = 100 * (b1 - b0) / window_s
        if busy < limit_pct or time.monotonic() > deadline:
            if announced:
                log(f"machine quiet again ({busy:.0f}% of a core busy)")
            return busy
        if not announced:
            log(f"waiting for other processes to finish ({busy:.0f}% of a core busy)")
            announced = True


def repeated(n: int, label: str, fn: Callable[[int], dict], foreign_limit: float,
             retries: int = 3, discarded: list | None = None) -> list[dict]:
    """n measurements, each started once the machine is quiet; one disturbed by foreign CPU
    load above foreign_limit (% of a core) anyway is set aside (kept in `discarded`) and
    measured again, at most `retries` times in all."""
    results = []
    left = retries
    i = 0
    while len(results) < n:
        wait_for_quiet(foreign_limit)
        r = fn(i)
        i += 1
        tag = f"{label} #{len(results) + 1}"
        log(f"{tag}: {r.get('rps', 0):,.0f}/s p50 {r['latency_ms']['p50']} ms "
            f"p99 {r['latency_ms']['p99']} ms cpu {r['cpu_pct']} foreign {r['foreign_cpu_pct']}%")
        if r["foreign_cpu_pct"] > foreign_limit and left > 0:
            left -= 1
            log(f"{tag}: disturbed by other processes ({r['foreign_cpu_pct']}% of a core); "
                "measuring again")
            if discarded is not None:
                discarded.append({"label": label, **r})
            continue
        results.append(r)
    return results


def median_summary(runs: list[dict]) -> dict:
    """Medians over repeats of throughput, latency and CPU."""
    def med(values):
        return round(statistics.median(values), 3)
    out = {
        "rps": med([r["rps"] for r in runs]),
        "p50_ms": med([r["latency_ms"]["p50"] for r in runs]),
        "p90_ms": med([r["latency_ms"]["p90"] for r in runs]),
        "p99_ms": med([r["latency_ms"]["p99"] for r in runs]),
        "max_ms": med([r["latency_ms"]["max"] for r in runs]),
        "repeats": len(runs),
    }
    if runs and all("memory_mb" in r for r in runs):
        out["memory_mb"] = {k: round(statistics.median(r["memory_mb"].get(k, 0) for r in runs), 1)
                            for k in runs[0]["memory_mb"]}
    per_req = [r["server_cpu_us_per_request"] for r in runs if "server_cpu_us_per_request" in r]
    if per_req:
        out["server_cpu_us_per_request"] = round(statistics.median(per_req), 1)
    if all("cpu_pct" in r for r in runs):
        keys = runs[0]["cpu_pct"].keys()
        out["cpu_pct"] = {k: round(statistics.median(r["cpu_pct"].get(k, 0) for r in runs), 1)
                          for k in keys}
        out["foreign_cpu_pct"] = round(statistics.median(r["foreign_cpu_pct"] for r in runs), 1)
        out["machine_busy_pct"] = round(statistics.median(r["machine_busy_pct"] for r in runs), 1)
    return out


def fsync_probe(directory: Path, writes: int = 300) -> dict:
    """Latency of a 4 KiB write + fdatasync on the file system of the databases: what one
    durable commit costs at least. A fast (cached) virtual disk makes one commit per request
    cheap, and so narrows the gap that group commit can open."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    lat = []
    try:
        for i in range(writes):
            os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    return {"p50_us": round(lat[len(lat) // 2] * 1e6), "p99_us": round(lat[int(len(lat) * 0.99)]
                                                                       * 1e6)}


def slow_flush_probe(ctx: Context, delay_us: int) -> dict:
    """fsync_probe in a child process that runs with the slow-flush shim, as the service does."""
    code = ("import json, sys; from pathlib import Path; from benchlib.tools import fsync_probe; "
            "print(json.dumps(fsync_probe(Path(sys.argv[1]))))")
    env = {**os.environ, **slow_flush_env(ctx, delay_us),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", code, str(ctx.root)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)
