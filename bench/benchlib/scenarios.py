"""The scenarios of issue 3. Each one starts its own processes through a `Target` (targets.py),
warms up, measures `repeat` times, checks correctness, and returns a plain dict:

    {"key", "title", "target", "what", "variants": {name: [run, ...]},
     "summary": {name: medians, ...}, "checks": [...], "facts": {...}, "discarded": [...]}

A run is one load-tool measurement (tools.py) with rps, latency_ms, cpu_pct, foreign_cpu_pct.
To add a scenario: subclass Scenario, implement run(), append it to SCENARIOS. To run the
suite against another store/topology: add a Target; every scenario takes it as a parameter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

from . import checks, http, tools
from .procs import Context, log, run_tool
from .targets import (PG_CLUSTER, NginxStatic, PostgresTarget, ServiceOptions, Sim, Target,
                      restart, start_on_free_port, start_with_sim)


@dataclasses.dataclass
class Config:
    repeat: int = 3
    duration_s: float = 10.0
    warmup_s: float = 3.0
    connections: int = 64
    wrk_threads: int = 2
    loadgen_threads: int = 2
    sim_threads: int = 1
    accounts: int = 10
    callback_payments: int = 5000
    lifecycle_payments: int = 20000
    lifecycle_payments_large: int = 100000  # 0: skip the larger N
    lifecycle_settle_s: int = 2
    slow_flush_us: int = 200  # scenario 5 again with this much added to every fsync (0: skip)
    memory_payments: int = 1_000_000
    foreign_cpu_limit: float = 25.0
    # Scenario 7 (scale, issue 11).
    scale_sizes: tuple[int, ...] = (1, 10_000, 100_000, 1_000_000)
    scale_seed_per_transaction: int = 10_000
    scale_payments: int = 2000  # payments that receive callbacks
    scale_spread: int = 2000  # over this many accounts of the set (all when fewer)
    scale_duration_s: float = 5.0  # per callbacks and POST /accounts measurement
    scale_warmup_s: float = 1.0
    scale_get_requests: int = 30
    scale_get_max_s: float = 10.0
    scale_open_requests: int = 30
    scale_probe_baseline_s: float = 3.0
    quick: bool = False

    @classmethod
    def quick_config(cls) -> "Config":
        return cls(duration_s=1.5, warmup_s=0.5, callback_payments=2000,
                   lifecycle_payments=3000, lifecycle_payments_large=0,
                   memory_payments=30_000, scale_sizes=(1, 2000), scale_duration_s=1.5,
                   scale_warmup_s=0.5, scale_get_requests=10, scale_open_requests=10,
                   scale_probe_baseline_s=1.0, quick=True)


class Bench:
    """What every scenario gets: the run's context, configuration and target."""

    def __init__(self, ctx: Context, config: Config, target: Target):
        self.ctx = ctx
        self.cfg = config
        self.target = target


def _cpu_watch(**procs) -> dict:
    """name -> callable giving the CPU seconds of that process (group), for tools.measured."""
    watch = {}
    for name, p in procs.items():
        if p is None:
            continue
        if hasattr(p, "cpu_watch"):  # a Service: its instances, load balancer and database
            for part, f in p.cpu_watch().items():
                watch[name if part == "service" else part] = f
        else:
            watch[name] = (lambda x=p: x.cpu_seconds())
    return watch


def _open_accounts(port: int, n: int) -> list[int]:
    """Accounts 1..n (the service creates account 1 itself)."""
    existing = http.get_all_accounts(port)
    ids = [a["account_id"] for a in existing]
    while len(ids) < n:
        ids.append(http.post_json(port, "/accounts", expect=(201,))["account_id"])
    return sorted(ids)[:n]


def _metric(values: dict, name: str) -> float:
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def _read_ids(path: Path) -> list[str]:
    return [l for l in path.read_text().split() if l]


class Scenario:
    key = "abstract"
    title = ""
    what = ""
    only_targets: tuple[str, ...] | None = None  # None: every target

    def run(self, b: Bench) -> dict:
        raise NotImplementedError

    def result(self, b: Bench, **fields) -> dict:
        return {"key": self.key, "title": self.title, "what": self.what,
                "target": b.target.key, "facts": {}, "discarded": [], **fields}


class AccountsVsNginx(Scenario):
    key = "accounts"
    title = "1. GET /accounts vs nginx (static file, same bytes)"
    ONE_THREAD = "payment_service --threads 1"
    NGINX_SECOND = "nginx, alternating with --threads 1"

    def run(self, b):
        cfg, ctx = b.cfg, b.ctx
        self.what = (f"wrk -t{cfg.wrk_threads} -c{cfg.connections} -d{round(cfg.duration_s)}s "
                     f"--latency, {cfg.accounts} accounts; nginx with {os.cpu_count()} worker(s) "
                     "serves the same bytes from a file; repeats alternate service and nginx. "
                     "Then the same with the service restarted with --threads 1 (one I/O thread "
                     "instead of one per core): on 2 cores shared with wrk this shows what the "
                     "service does when it does not compete with the client for both cores")
        sim, svc = start_with_sim(ctx, b.target, ServiceOptions(), {"no_callbacks": True})
        accounts = _open_accounts(svc.port, cfg.accounts)
        seed = tools.loadgen(ctx, "payments", svc.port, 16, 1, count=max(200, 20 * cfg.accounts),
                             accounts=accounts)
        status, headers, body = http.request(svc.port, "GET", "/accounts")
        if status != 200:
            raise RuntimeError(f"GET /accounts answered {status}")
        nginx = NginxStatic.start(ctx, body)
        n_status, n_headers, n_body = http.request(nginx.port, "GET", "/accounts")
        discarded = []

        def alternate(label: str, service) -> tuple[list, list]:
            """Warm-up, then `repeat` measurements of `service` alternating with nginx, so both
            see the same machine conditions."""
            watch = _cpu_watch(service=service, nginx=nginx.proc, simulator=sim.proc)

            def one(port, server):
                return lambda i: tools.measured(watch, lambda: tools.wrk(
                    ctx, port, "/accounts", cfg.connections, cfg.wrk_threads, cfg.duration_s),
                    "wrk", server, memory=service.memory_kb if server == "service" else None)

            log(f"accounts: warm-up ({label})")
            for port in (service.port, nginx.port):
                tools.wrk(ctx, port, "/accounts", cfg.connections, cfg.wrk_threads, cfg.warmup_s)
            service_runs, nginx_runs = [], []
            for _ in range(cfg.repeat):
                service_runs += tools.repeated(1, f"GET /accounts {label}",
                                               one(service.port, "service"), cfg.foreign_cpu_limit,
                                               discarded=discarded)
                nginx_runs += tools.repeated(1, "GET /accounts nginx", one(nginx.port, "nginx"),
                                             cfg.foreign_cpu_limit, discarded=discarded)
            return service_runs, nginx_runs

        runs = {}
        runs["payment_service"], runs["nginx"] = alternate("service", svc)
        _, _, body_after = http.request(svc.port, "GET", "/accounts")
        svc = restart(ctx, b.target, svc, sim, ServiceOptions(threads=1))
        _, _, body_one_thread = http.request(svc.port, "GET", "/accounts")
        runs[self.ONE_THREAD], nginx_second = alternate("service --threads 1", svc)
        summary = {k: tools.median_summary(v) for k, v in runs.items()}
        # Each series is compared with the nginx runs it alternated with: the VM's speed drifts.
        summary[self.NGINX_SECOND] = tools.median_summary(nginx_second)
        summary["ratio_to_nginx"] = round(summary["payment_service"]["rps"]
                                          / summary["nginx"]["rps"], 3)
        summary["ratio_per_repeat"] = [round(a["rps"] / n["rps"], 3) for a, n in
                                       zip(runs["payment_service"], runs["nginx"])]
        summary["ratio_to_nginx_one_thread"] = round(summary[self.ONE_THREAD]["rps"]
                                                     / summary[self.NGINX_SECOND]["rps"], 3)
        # Requests per CPU-second of the server itself: the two share the cores with wrk, so
        # this separates "the server is slower" from "the client got more of the machine".
        for variant, proc in (("payment_service", "service"), (self.ONE_THREAD, "service"),
                              ("nginx", "nginx")):
            per_core = [r["rps"] / (r["cpu_pct"][proc] / 100) for r in runs[variant]
                        if r["cpu_pct"].get(proc)]
            summary[variant]["rps_per_server_core"] = round(statistics.median(per_core))
        summary["per_core_ratio"] = round(summary["payment_service"]["rps_per_server_core"]
                                          / summary["nginx"]["rps_per_server_core"], 3)
        result_checks = [
            seed_check(seed),
            checks.check("nginx serves exactly the service's bytes", n_status == 200
                         and n_body == body, f"{len(body)} bytes, Content-Type "
                         f"{headers.get('content-type')} / {n_headers.get('content-type')}"),
            checks.all_2xx(runs["payment_service"], "service"),
            checks.all_2xx(runs[self.ONE_THREAD], "service --threads 1"),
            checks.all_2xx(runs["nginx"] + nginx_second, "nginx"),
            checks.check("GET /accounts unchanged by the read load and the restart",
                         body_after == body and body_one_thread == body),
        ]
        nginx.stop()
        svc.stop()
        sim.stop()
        return self.result(b, variants=runs, summary=summary, checks=result_checks,
                           discarded=discarded,
                           facts={"body_bytes": len(body), "nginx_conf": nginx.conf})


def seed_check(run: dict) -> dict:
    return checks.all_2xx([run], "set-up payments")


def _create_payments(b: Bench, svc, accounts, count, ids_path) -> dict:
    run = tools.loadgen(b.ctx, "payments", svc.port, b.cfg.connections, b.cfg.loadgen_threads,
                        count=count, accounts=accounts, ids_out=ids_path, timeout_s=3600)
    return run


class Callbacks(Scenario):
    """Callbacks on existing payments; also the ablation's building block."""
    key = "callbacks"
    title = "2. Callbacks on existing payments (durable)"

    def prepare(self, b: Bench, svc, sim, label: str) -> tuple[Path, dict, list]:
        accounts = _open_accounts(svc.port, b.cfg.accounts)
        ids = b.ctx.tmpdir(label) / "ids.txt"
        made = _create_payments(b, svc, accounts, b.cfg.callback_payments, ids)
        return ids, made, accounts

    def measure(self, b: Bench, svc, sim, ids: Path, label: str, discarded: list,
                repeat: int) -> list[dict]:
        cfg = b.cfg
        watch = _cpu_watch(service=svc, simulator=sim.proc)

        def one(i):
            before = svc.metrics()
            r = tools.measured(watch, lambda: tools.loadgen(
                b.ctx, "callbacks", svc.port, cfg.connections, cfg.loadgen_threads,
                duration_s=cfg.duration_s, ids_in=ids), "loadgen", memory=svc.memory_kb)
            after = svc.metrics()
            commits = _metric(after, "payment_service_commits_total") - _metric(
                before, "payment_service_commits_total")
            jobs = _metric(after, "payment_service_committed_jobs_total") - _metric(
                before, "payment_service_committed_jobs_total")
            r["commits"] = int(commits)
            r["jobs_per_commit"] = round(jobs / commits, 1) if commits else None
            return r

        return tools.repeated(repeat, label, one, cfg.foreign_cpu_limit, discarded=discarded)

    def verify(self, b: Bench, svc, runs, warm, made, ids, discarded) -> list[dict]:
        metrics = svc.metrics()
        applied = _metric(metrics, "payment_service_callbacks_applied_total")
        answered = sum(int(r["status_counts"].get("201", 0)) for r in runs + [warm] + discarded)
        api_accounts = http.get_all_accounts(svc.port)
        out = [
            seed_check(made),
            checks.check("every created payment has an id", len(_read_ids(ids))
                         == b.cfg.callback_payments, f"{len(_read_ids(ids)):,} ids"),
            checks.all_2xx(runs + [warm], "callbacks"),
            checks.check("callbacks answered 201 = callbacks applied (/metrics)",
                         answered == applied, f"{answered:,} answered, {applied:,.0f} applied"),
        ]
        if svc.instance_ports and len(svc.instance_ports) > 1:
            per = [int(_metric(m, "payment_service_callbacks_applied_total"))
                   for m in svc.metrics_per_instance()]
            out.append(checks.check("every instance applied callbacks (nginx spread the load)",
                                    all(n > 0 for n in per),
                                    "applied per instance: " + ", ".join(f"{n:,}" for n in per)))
        db = b.target.database(svc)
        if db is not None:
            out += checks.ledger_invariants(db, api_accounts)
        return out

    def run(self, b):
        cfg = b.cfg
        self.what = (f"{cfg.callback_payments:,} payments created through the simulator "
                     "(--no-callbacks, time_to_settle 3600 s), then `loadgen callbacks "
                     f"-c {cfg.connections} -t {cfg.loadgen_threads} -d {cfg.duration_s:g}` "
                     "over their ids (statuses alternate pending/posted, amounts vary)")
        sim, svc = start_with_sim(b.ctx, b.target, ServiceOptions(), {"no_callbacks": True})
        ids, made, _ = self.prepare(b, svc, sim, "callbacks")
        log("callbacks: warm-up")
        warm = tools.loadgen(b.ctx, "callbacks", svc.port, cfg.connections, cfg.loadgen_threads,
                             duration_s=cfg.warmup_s, ids_in=ids)
        discarded = []
        runs = self.measure(b, svc, sim, ids, "callbacks", discarded, cfg.repeat)
        result_checks = self.verify(b, svc, runs, warm, made, ids, discarded)
        svc.stop()
        sim.stop()
        return self.result(b, variants={"group commit (default)": runs},
                           summary={"group commit (default)": tools.median_summary(runs)},
                           checks=result_checks, discarded=discarded)


def self_repeat(b: Bench, label: str, fn, discarded: list) -> list[dict]:
    return tools.repeated(b.cfg.repeat, label, fn, b.cfg.foreign_cpu_limit, discarded=discarded)


class Ablation(Callbacks):
    key = "ablation"
    title = "5. Ablation: group commit vs one commit per request (callbacks, durable)"
    GROUP, ONE = "group commit (default)", "one commit per request"
    GROUP_SLOW, ONE_SLOW = "group commit, slower disk", "one commit per request, slower disk"

    def run(self, b):
        cfg = b.cfg
        variants = {self.GROUP: ServiceOptions(),
                    self.ONE: ServiceOptions(write_batch_max=1)}
        self.what = ("scenario 2 on services sharing one simulator: the default "
                     "(--write-batch-max 1024) and --write-batch-max 1 (a commit and an fsync "
                     "per callback); repeats alternate between them")
        facts = {}
        if cfg.slow_flush_us and not b.target.flushes_in_service:
            facts["slower_disk"] = ("not run: the database server, not payment_service, "
                                    "flushes on this target")
        if cfg.slow_flush_us and b.target.flushes_in_service:
            variants[self.GROUP_SLOW] = ServiceOptions(flush_delay_us=cfg.slow_flush_us)
            variants[self.ONE_SLOW] = ServiceOptions(write_batch_max=1,
                                                     flush_delay_us=cfg.slow_flush_us)
            probe = tools.slow_flush_probe(b.ctx, cfg.slow_flush_us)
            facts["slower_disk"] = (f"every fsync/fdatasync {cfg.slow_flush_us} us longer "
                                    f"(LD_PRELOAD tools/fsync_delay): 4 KiB write + fdatasync "
                                    f"p50 {probe['p50_us']} us, p99 {probe['p99_us']} us")
            self.what += ("; the same pair again with every fsync made "
                          f"{cfg.slow_flush_us} us slower (a disk whose flush costs what "
                          "ENGINEERING.md assumes, one durable commit per request near 3k/s)")
        first_sim, first = start_with_sim(b.ctx, b.target, variants[self.GROUP],
                                          {"no_callbacks": True})
        services = {self.GROUP: first}
        # The simulator sends no callbacks here, so the other services can share it.
        try:
            for name, options in variants.items():
                if name not in services:
                    services[name] = start_on_free_port(b.ctx, b.target, first_sim.url,
                                                        options)
            prepared = {name: self.prepare(b, svc, first_sim, "ablation")
                        for name, svc in services.items()}
            warm = {}
            for name, svc in services.items():
                log(f"ablation: warm-up {name}")
                warm[name] = tools.loadgen(b.ctx, "callbacks", svc.port, cfg.connections,
                                           cfg.loadgen_threads, duration_s=cfg.warmup_s,
                                           ids_in=prepared[name][0])
            runs = {name: [] for name in services}
            discarded = []
            for _ in range(cfg.repeat):  # alternate, so all see the same machine conditions
                for name, svc in services.items():
                    runs[name] += self.measure(b, svc, first_sim, prepared[name][0], name,
                                               discarded, 1)
            result_checks = []
            for name, svc in services.items():
                for c in self.verify(b, svc, runs[name], warm[name], prepared[name][1],
                                     prepared[name][0],
                                     [d for d in discarded if d["label"] == name]):
                    result_checks.append({**c, "what": f"{name}: {c['what']}"})
        finally:
            for svc in services.values():
                svc.stop()
            first_sim.stop()
        summary = {name: tools.median_summary(r) for name, r in runs.items()}
        for name, r in runs.items():
            jpc = [x["jobs_per_commit"] for x in r if x["jobs_per_commit"] is not None]
            summary[name]["jobs_per_commit"] = statistics.median(jpc) if jpc else None
        for key, group, one in (("ratio", self.GROUP, self.ONE),
                                ("ratio_slower_disk", self.GROUP_SLOW, self.ONE_SLOW)):
            if group in runs:
                summary[key] = round(summary[group]["rps"] / summary[one]["rps"], 2)
                summary[key + "_per_repeat"] = [round(g["rps"] / o["rps"], 2)
                                                for g, o in zip(runs[group], runs[one])]
        return self.result(b, variants=runs, summary=summary, checks=result_checks,
                           discarded=discarded, facts=facts)

class Payments(Scenario):
    key = "payments"
    title = "3. POST /payments through the simulator (no callbacks)"

    def run(self, b):
        cfg, ctx = b.cfg, b.ctx
        self.what = (f"`loadgen payments -c {cfg.connections} -t {cfg.loadgen_threads} "
                     f"-d {cfg.duration_s:g}` over {cfg.accounts} accounts; the simulator answers "
                     "201 and sends no callbacks; durable store")
        sim, svc = start_with_sim(ctx, b.target, ServiceOptions(),
                                  {"no_callbacks": True, "threads": cfg.sim_threads})
        accounts = _open_accounts(svc.port, cfg.accounts)
        watch = _cpu_watch(service=svc, simulator=sim.proc)
        log("payments: warm-up")
        warm = tools.loadgen(ctx, "payments", svc.port, cfg.connections, cfg.loadgen_threads,
                             duration_s=cfg.warmup_s, accounts=accounts, seed=1000)
        discarded = []
        runs = self_repeat(b, "POST /payments", lambda i: tools.measured(
            watch, lambda: tools.loadgen(ctx, "payments", svc.port, cfg.connections,
                                         cfg.loadgen_threads, duration_s=cfg.duration_s,
                                         accounts=accounts, seed=1 + i), "loadgen",
            memory=svc.memory_kb), discarded)
        truth = sim.truth()
        api_accounts = http.get_all_accounts(svc.port)
        created = sum(int(r["status_counts"].get("201", 0)) for r in runs + [warm] + discarded)
        result_checks = [
            checks.all_2xx(runs + [warm], "payments"),
            checks.check("payments answered 201 = movements the simulator recorded",
                         created == len(truth["movements"]),
                         f"{created:,} answered, {len(truth['movements']):,} recorded"),
            checks.balances_equal_truth(api_accounts, truth),
        ]
        db = b.target.database(svc)
        if db is not None:
            result_checks += checks.ledger_invariants(db, api_accounts)
        svc.stop()
        sim.stop()
        return self.result(b, variants={"payment_service": runs},
                           summary={"payment_service": tools.median_summary(runs)},
                           checks=result_checks, discarded=discarded)


class Lifecycle(Scenario):
    key = "lifecycle"
    title = "4. Full lifecycle: payments with 3 callbacks each, until balances equal /truth"

    def run(self, b):
        cfg, ctx = b.cfg, b.ctx
        tts = cfg.lifecycle_settle_s
        sizes = [cfg.lifecycle_payments] + ([cfg.lifecycle_payments_large]
                                            if cfg.lifecycle_payments_large else [])
        self.what = (f"each repeat on a fresh simulator, service and database (durable): "
                     "warm-up payments (10%, at most 2,000), settled; then N payments "
                     f"(`loadgen payments -c {cfg.connections} -t {cfg.loadgen_threads}` over "
                     f"{cfg.accounts} accounts); the simulator ({cfg.sim_threads} thread(s)) "
                     "sends exactly 3 callbacks per payment (--callbacks-min 3 --callbacks-max 3) "
                     f"at random offsets within 0.8 x time_to_settle ({tts} s). Timed from the "
                     "first request until /truth has in_flight 0 and every balance of GET "
                     "/accounts equals /truth. N = "
                     + " and ".join(f"{n:,}" for n in sizes) + "; the largest N is the "
                     "headline figure: the last callbacks arrive up to 0.8 x time_to_settle "
                     "after the last payment was answered whatever the service does, and only "
                     "a run long enough to make that fixed tail small measures throughput "
                     "(the smaller N shows its weight)")
        discarded = []
        truth_checks = []

        def one(n: int, i: int) -> dict:
            warm_n = min(2000, max(500, n // 10))
            sim, svc = start_with_sim(ctx, b.target, ServiceOptions(time_to_settle_seconds=tts),
                                      {"callbacks": (3, 3), "threads": cfg.sim_threads,
                                       "seed": 1 + i})
            try:
                accounts = _open_accounts(svc.port, cfg.accounts)
                state = {"payments": 0}
                warm = self.batch(b, sim, svc, accounts, warm_n, 1000 + i, state)
                truth_checks.extend(warm.pop("checks"))
                tools.wait_for_quiet(cfg.foreign_cpu_limit)
                watch = _cpu_watch(service=svc, simulator=sim.proc)
                r = tools.measured(watch, lambda: self.batch(b, sim, svc, accounts, n, 1 + i,
                                                             state), "loadgen",
                                   memory=svc.memory_kb)
                truth_checks.extend(r.pop("checks"))
                r["warm_up_ok"] = warm["ok"]
            finally:
                svc.stop()
                sim.stop()
            db = b.target.database(svc)
            if db is not None:
                truth_checks.extend(checks.ledger_invariants(db))
            return r

        variants, summary = {}, {}
        for n in sizes:
            name = f"{n:,} payments"
            runs = self_repeat(b, f"lifecycle {name}", lambda i, n=n: one(n, i), discarded)
            variants[name] = runs
            summary[name] = tools.median_summary(runs)
            for k in ("seconds_total", "seconds_sending", "send_rps", "callbacks_per_s",
                      "tail_s"):
                summary[name][k] = statistics.median(r[k] for r in runs)
        summary["primary"] = f"{max(sizes):,} payments"
        all_runs = [r for runs in variants.values() for r in runs]
        result_checks = [checks.all_2xx(all_runs, "payments (measured batches)")]
        result_checks += self.fold(truth_checks)
        return self.result(b, variants=variants, summary=summary,
                           checks=result_checks, discarded=discarded,
                           facts={"payments_per_repeat": sizes[0], "sizes": sizes,
                                  "time_to_settle_s": tts})

    @staticmethod
    def fold(truth_checks: list[dict]) -> list[dict]:
        """One line per kind of check, over every batch (warm-ups and measurements) and every
        database (one per repeat)."""
        out = []
        for what in dict.fromkeys(c["what"] for c in truth_checks):
            same = [c for c in truth_checks if c["what"] == what]
            bad = [c for c in same if not c["ok"]]
            out.append(checks.check(f"{what} (checked {len(same)} times)", not bad,
                                    bad[0]["detail"] if bad else same[-1]["detail"]))
        return out

    def batch(self, b: Bench, sim: Sim, svc, accounts, count: int, seed: int,
              state: dict) -> dict:
        """Sends `count` payments and waits until the simulator has nothing in flight. The end
        is taken as soon as the service's counters show every expected callback applied and
        the next /truth confirms in_flight 0; otherwise (a callback the simulator gave up on)
        when a /truth poll (every 250 ms) shows in_flight 0."""
        cfg = b.cfg
        expected_callbacks = 3 * (state["payments"] + count)
        t0 = time.monotonic()
        r = tools.loadgen(b.ctx, "payments", svc.port, cfg.connections, cfg.loadgen_threads,
                          count=count, accounts=accounts, seed=seed)
        sent = time.monotonic() - t0
        state["payments"] += sum(int(r["status_counts"].get(k, 0)) for k in ("201", "202"))
        deadline = time.monotonic() + 3 * cfg.lifecycle_settle_s + 60
        t_counters = None
        trust_counters = True
        next_truth = time.monotonic() + 0.25
        while True:
            now = time.monotonic()
            if t_counters is None and trust_counters:
                m = svc.metrics()
                seen = _metric(m, "payment_service_callbacks_applied_total") + _metric(
                    m, "payment_service_callbacks_late_total")
                if seen >= expected_callbacks:
                    t_counters = now
            if t_counters is not None or now >= next_truth:
                truth = sim.truth()
                if truth["in_flight"] == 0:
                    t_end = t_counters if t_counters is not None else time.monotonic()
                    break
                next_truth = time.monotonic() + 0.25
                if t_counters is not None:  # counted more than acknowledged: poll /truth only
                    t_counters = None
                    trust_counters = False
            if now > deadline:
                raise RuntimeError(f"lifecycle: in_flight {truth['in_flight']} after the "
                                   f"deadline; counters {truth['counters']}")
            time.sleep(0.01)
        total = t_end - t0
        api_accounts = http.get_all_accounts(svc.port)
        c = truth["counters"]
        r.update({
            "payments": count,
            "seconds_total": round(total, 3),
            "seconds_sending": round(sent, 3),
            "tail_s": round(total - sent, 3),
            "send_rps": r["rps"],
            "rps": round(count / total, 1),
            "callbacks_per_s": round(3 * count / total, 1),
            "callbacks_gave_up": c["callback_gave_up"],
            "checks": [
                checks.balances_equal_truth(api_accounts, truth),
                checks.check("simulator: no callback accepted after its deadline "
                             "(late_answered_other 0)", c["late_answered_other"] == 0, str(c)),
            ],
        })
        return r


class Memory(Scenario):
    key = "memory"
    title = "6. Memory and start-up"

    def run(self, b):
        cfg, ctx = b.cfg, b.ctx
        m = cfg.memory_payments
        self.what = (f"RSS (VmRSS) of the idle service on an empty database; then {m:,} payments "
                     "pumped through the real service and simulator (`loadgen payments`, "
                     "--no-callbacks, DATABASE_DURABLE=false for the fill only); then the "
                     f"service restarted {cfg.repeat} times on that database (durable): start-up "
                     "= process start until GET /healthz answers 200 (on PostgreSQL GET "
                     "/readyz, the database reached; with several instances, from the first "
                     "one's start until nginx answers); RSS 1 s after start (of every "
                     "instance, summed); "
                     "then RSS after a short GET /payments + callbacks load")
        state = b.target.new_state(ctx)
        durable = ServiceOptions()
        sim, svc = start_with_sim(ctx, b.target, durable,
                                  {"no_callbacks": True, "threads": cfg.sim_threads}, state=state)
        time.sleep(1)
        facts = {"rss_idle_empty_kb": svc.rss_kb(), "startup_empty_s": round(svc.startup_s, 4)}
        accounts = _open_accounts(svc.port, cfg.accounts)

        log(f"memory: filling the database with {m:,} payments")
        svc = restart(ctx, b.target, svc, sim, ServiceOptions(durable=False))
        ids = ctx.tmpdir("memory") / "ids.txt"
        t0 = time.monotonic()
        fill = tools.loadgen(ctx, "payments", svc.port, cfg.connections, cfg.loadgen_threads,
                             count=m, accounts=accounts, ids_out=ids, timeout_s=3600)
        facts["fill_seconds"] = round(time.monotonic() - t0, 1)
        facts["fill_rps"] = fill["rps"]
        facts["rss_after_fill_kb"] = svc.rss_kb()

        startups, rss = [], []
        for i in range(cfg.repeat):
            svc = restart(ctx, b.target, svc, sim, durable)
            startups.append(round(svc.startup_s, 4))
            time.sleep(1)
            rss.append(svc.rss_kb())
            log(f"memory: start-up {svc.startup_s * 1000:.0f} ms, idle RSS {rss[-1] / 1024:.1f} MB")
        facts["startup_s"] = startups
        facts["rss_idle_full_kb"] = rss
        facts["memory_idle_full_kb"] = svc.memory_kb()
        db = b.target.database(svc)
        if db is not None:
            facts["database_bytes"] = db.size_bytes()

        load_s = max(1.0, cfg.duration_s / 2)
        log("memory: GET /payments and callbacks load")
        reads = tools.wrk(ctx, svc.port, "/payments?limit=100", cfg.connections,
                          cfg.wrk_threads, load_s)
        reads_account = tools.wrk(ctx, svc.port, f"/payments?account_id={accounts[-1]}&limit=100",
                                  cfg.connections, cfg.wrk_threads, load_s)
        cbs = tools.loadgen(ctx, "callbacks", svc.port, cfg.connections, cfg.loadgen_threads,
                            duration_s=load_s, ids_in=ids)
        time.sleep(0.5)
        facts["rss_after_load_kb"] = svc.rss_kb()
        facts["load"] = {"GET /payments?limit=100": _brief(reads),
                         "GET /payments?account_id=N&limit=100": _brief(reads_account),
                         "callbacks": _brief(cbs)}
        api_accounts = http.get_all_accounts(svc.port)
        result_checks = [
            checks.all_2xx([fill], "fill"),
            checks.check("every filled payment has an id", len(_read_ids(ids)) == m,
                         f"{len(_read_ids(ids)):,} ids"),
            checks.all_2xx([reads, reads_account, cbs], "load after restart"),
        ]
        svc.stop()
        sim.stop()
        if db is not None:
            stored = checks.count_payments(db)
            result_checks.append(checks.check(f"database holds {m:,} payments", stored == m,
                                              f"{stored:,}"))
            result_checks += checks.ledger_invariants(db, api_accounts)
        summary = {
            "rss_idle_empty_mb": round(facts["rss_idle_empty_kb"] / 1024, 1),
            "rss_idle_full_mb": round(statistics.median(rss) / 1024, 1),
            "startup_ms": round(statistics.median(startups) * 1000, 1),
            "rss_after_load_mb": round(facts["rss_after_load_kb"] / 1024, 1),
            "payments_stored": m,
        }
        return self.result(b, variants={}, summary=summary, checks=result_checks, facts=facts)


def _brief(run: dict) -> dict:
    return {"rps": run["rps"], "p50_ms": run["latency_ms"]["p50"],
            "p99_ms": run["latency_ms"]["p99"], "requests": run["requests"]}


def _label(n: int) -> str:
    return "1 account" if n == 1 else f"{n:,} accounts"


def _spread(last_id: int, k: int) -> list[int]:
    """k account ids spread evenly over 1..last_id (all of them when there are fewer)."""
    if last_id <= k:
        return list(range(1, last_id + 1))
    return sorted({1 + (i * (last_id - 1)) // (k - 1) for i in range(k)})


def _latency_summary(latencies: list[float]) -> dict:
    return {"n": len(latencies), "p50": round(statistics.median(latencies), 3),
            "p90": round(http.percentile(latencies, 90), 3),
            "p99": round(http.percentile(latencies, 99), 3), "max": round(max(latencies), 3)}


def _read_probe(path: Path) -> list[tuple[float, float, int]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((float(parts[0]), float(parts[1]), int(parts[2])))
    return out


def _stall(lines: list[tuple[float, float, int]], windows: list[tuple[float, float]],
           baseline: tuple[float, float]) -> dict:
    """Longest latency of the writes that overlapped any window (a recalculate under way),
    and of those that ran wholly inside `baseline` (no recalculate)."""
    during = [lat for t0, lat, _ in lines
              if any(t0 < w1 and t0 + lat / 1000 > w0 for w0, w1 in windows)]
    base = [lat for t0, lat, _ in lines if baseline[0] <= t0 and t0 + lat / 1000 <= baseline[1]]
    return {"during_max_ms": round(max(during), 3) if during else None,
            "during_p50_ms": round(statistics.median(during), 3) if during else None,
            "during_writes": len(during),
            "without_max_ms": round(max(base), 3) if base else None,
            "without_p50_ms": round(statistics.median(base), 3) if base else None,
            "without_writes": len(base)}


class Scale(Scenario):
    """Issue 11: the same measurements at 1, 10,000, 100,000 and 1,000,000 accounts. The
    accounts are opened before the service starts by bench/seed/seed_accounts (the service's own
    ledger and writer, many accounts per commit: the rows POST /accounts writes); what opening
    one account costs at each size is measured through the API."""
    key = "scale"
    title = "7. Scale: the same measurements at 1 to 1,000,000 accounts (issue 11)"
    only_targets = ("sqlite", "postgres")
    PROBE_ACCOUNTS_PAUSE_S = 0.02  # the POST /accounts probe's pause between requests

    def run(self, b):
        cfg, ctx = b.cfg, b.ctx
        sizes = sorted(set(cfg.scale_sizes))
        dur = cfg.scale_duration_s
        self.what = (
            "for each number of accounts (" + ", ".join(f"{n:,}" for n in sizes) + "): a fresh "
            f"database filled by `seed_accounts --per-transaction {cfg.scale_seed_per_transaction}`"
            " (the service's ledger and writer; on PostgreSQL then `VACUUM ANALYZE`, the state "
            "autovacuum reaches, and `CHECKPOINT`; each size's database is dropped after it), "
            "the service and the simulator (201 at once, no callbacks) "
            "started on it; RSS 1 s after start; `GET /accounts` one request after the other "
            "on a keep-alive connection (the first one after start separately; up to "
            f"{cfg.scale_get_requests} requests or {cfg.scale_get_max_s:g} s); "
            f"{cfg.scale_open_requests} single `POST /accounts`, one after the other; "
            f"{cfg.scale_payments:,} payments spread over {cfg.scale_spread:,} accounts of the "
            f"set, then callbacks on them (`loadgen callbacks -c {cfg.connections} "
            f"-t {cfg.loadgen_threads} -d {dur:g}`, {cfg.repeat} repeats); "
            f"`PATCH /accounts/recalculate` {cfg.repeat} times while two write probes run "
            "(callbacks one after the other, and `POST /accounts` every "
            f"{self.PROBE_ACCOUNTS_PAUSE_S * 1000:.0f} ms), the longest latency of a write "
            "that overlapped a recalculate beside the longest of the same probes in the "
            f"{cfg.scale_probe_baseline_s:g} s before it; RSS after that; last `POST /accounts` "
            f"under `wrk -t{cfg.wrk_threads} -c{cfg.connections} -d{round(dur)}s` "
            f"({cfg.repeat} repeats; it opens many accounts, so it runs after the rest). "
            "Ratios are to the smallest size of the same run")
        variants, summary, facts, discarded, result_checks = {}, {}, {"sizes": sizes}, [], []
        for n in sizes:
            res = self.one_size(b, n, discarded)
            # PostgreSQL: drop this size's database and checkpoint, so that the next size does
            # not pay for this one's dirty pages.
            b.target.after_scenario(ctx)
            variants[f"callbacks, {_label(n)}"] = res.pop("callback_runs")
            variants[f"POST /accounts, {_label(n)}"] = res.pop("open_runs")
            result_checks += [dict(c, what=f"{_label(n)}: {c['what']}")
                              for c in res.pop("checks")]
            summary[f"{n:,} accounts"] = res
        self.add_ratios(summary, sizes)
        return self.result(b, variants=variants, summary=summary, checks=result_checks,
                           discarded=discarded, facts=facts)

    @staticmethod
    def add_ratios(summary: dict, sizes: list[int]) -> None:
        base = summary[f"{sizes[0]:,} accounts"]
        for n in sizes:
            s = summary[f"{n:,} accounts"]
            s["callbacks_ratio"] = round(s["callbacks"]["rps"] / base["callbacks"]["rps"], 3)
            s["open_one_ratio"] = round(s["open_one_ms"]["p50"] / base["open_one_ms"]["p50"], 3)
            s["open_rps_ratio"] = round(s["open"]["rps"] / base["open"]["rps"], 3)
            if n > sizes[0]:
                for key in ("rss_start_kb", "rss_after_load_kb"):
                    s[key.replace("_kb", "_per_account_b")] = round(
                        (s[key] - base[key]) * 1024 / (n - sizes[0]), 1)

    def one_size(self, b: Bench, n: int, discarded: list) -> dict:
        cfg, ctx, target = b.cfg, b.ctx, b.target
        out: dict = {"accounts": n}
        checks_out: list[dict] = []
        label = _label(n)

        state = target.new_state(ctx)
        url = target.database_url(state)
        log(f"scale: seeding {label} ({target.key})")
        code, stdout, stderr, wall, _ = run_tool(
            ctx, "seed_accounts", [ctx.bin("seed_accounts"), "--database-url", url,
                                   "--open", str(n - 1), "--per-transaction",
                                   str(cfg.scale_seed_per_transaction)], timeout=3600)
        if code != 0:
            raise RuntimeError(f"seed_accounts failed ({code}): {stderr.strip()[-500:]}")
        seeded = json.loads(stdout.strip().splitlines()[-1])
        out["seed_s"] = round(wall, 2)
        out["seed_per_s"] = round(seeded["opened"] / seeded["seconds"]) if seeded["opened"] else None
        if isinstance(target, PostgresTarget):
            t0 = time.monotonic()
            PG_CLUSTER.query(url, "VACUUM ANALYZE")
            PG_CLUSTER.query(url, "CHECKPOINT")  # the seeding's pages written before measuring
            out["vacuum_analyze_s"] = round(time.monotonic() - t0, 2)
        db = target.database_for_state(state)
        count, max_id = db.query("SELECT COUNT(*), MAX(account_id) FROM accounts")[0]
        checks_out.append(checks.check(f"seed_accounts: {label}, ids 1 to {n:,}",
                                       count == n and max_id == n and seeded["opened"] == n - 1,
                                       f"{count:,} rows, largest id {max_id:,}; {seeded}"))
        log(f"scale: {label} seeded in {wall:.1f} s; starting the service")

        sim, svc = start_with_sim(ctx, target, ServiceOptions(),
                                  {"no_callbacks": True, "threads": cfg.sim_threads}, state=state)
        out["startup_ms"] = round(svc.startup_s * 1000, 1)
        time.sleep(1)
        out["rss_start_kb"] = svc.rss_kb()
        out["memory_start_mb"] = {k: round(v / 1024, 1) for k, v in svc.memory_kb().items()}

        get = http.sequential(svc.port, "GET", "/accounts", cfg.scale_get_requests,
                              cfg.scale_get_max_s)
        lat = get["latencies_ms"]
        out["get_accounts"] = {"first_ms": lat[0], **_latency_summary(lat[1:] or lat),
                               "bytes": get["bytes"],
                               "link": get["headers"].get("link")}
        checks_out.append(checks.check("GET /accounts: every answer 200", get["ok"],
                                       str(get["status_counts"])))
        log(f"scale: {label}: GET /accounts first {lat[0]:.1f} ms, then p50 "
            f"{out['get_accounts']['p50']:.1f} ms, {get['bytes']:,} bytes")

        single = http.sequential(svc.port, "POST", "/accounts", cfg.scale_open_requests, 60,
                                 min_count=cfg.scale_open_requests)
        out["open_one_ms"] = _latency_summary(single["latencies_ms"])
        checks_out.append(checks.check("single POST /accounts: every answer 201",
                                       single["status_counts"] == {
                                           "201": cfg.scale_open_requests},
                                       str(single["status_counts"])))
        log(f"scale: {label}: one POST /accounts p50 {out['open_one_ms']['p50']:.2f} ms")

        spread = _spread(n, cfg.scale_spread)
        ids = ctx.tmpdir("scale") / "ids.txt"
        made = tools.loadgen(ctx, "payments", svc.port, cfg.connections, cfg.loadgen_threads,
                             count=cfg.scale_payments, accounts=spread, ids_out=ids,
                             timeout_s=3600)
        checks_out.append(seed_check(made))
        out["payment_accounts"] = len(spread)
        cb_bench = Bench(ctx, dataclasses.replace(cfg, duration_s=cfg.scale_duration_s), target)
        warm = tools.loadgen(ctx, "callbacks", svc.port, cfg.connections, cfg.loadgen_threads,
                             duration_s=cfg.scale_warmup_s, ids_in=ids)
        cb_runs = Callbacks().measure(cb_bench, svc, sim, ids, f"callbacks, {label}", discarded,
                                      cfg.repeat)
        out["callbacks"] = tools.median_summary(cb_runs)
        jpc = [r["jobs_per_commit"] for r in cb_runs if r.get("jobs_per_commit")]
        out["callbacks"]["jobs_per_commit"] = round(statistics.median(jpc), 1) if jpc else None
        checks_out.append(checks.all_2xx(cb_runs + [warm], "callbacks"))

        probe_201 = self.recalculate(b, svc, ids, out, checks_out)
        time.sleep(0.5)
        out["rss_after_load_kb"] = svc.rss_kb()
        out["memory_after_load_mb"] = {k: round(v / 1024, 1) for k, v in svc.memory_kb().items()}

        watch = _cpu_watch(service=svc, simulator=sim.proc)
        tools.wrk(ctx, svc.port, "/accounts", cfg.connections, cfg.wrk_threads,
                  cfg.scale_warmup_s, method="POST")
        open_runs = tools.repeated(cfg.repeat, f"POST /accounts, {label}", lambda i: tools.measured(
            watch, lambda: tools.wrk(ctx, svc.port, "/accounts", cfg.connections,
                                     cfg.wrk_threads, cfg.scale_duration_s, method="POST"),
            "wrk", memory=svc.memory_kb), cfg.foreign_cpu_limit, discarded=discarded)
        out["open"] = tools.median_summary(open_runs)
        checks_out.append(checks.all_2xx(open_runs, "POST /accounts under wrk"))

        time.sleep(0.5)  # answers still in flight when wrk stopped
        metrics = svc.metrics()
        applied = _metric(metrics, "payment_service_callbacks_applied_total")
        answered = sum(int(r["status_counts"].get("201", 0)) for r in cb_runs + [warm]) + \
            probe_201["callbacks"]
        answered += sum(int(d["status_counts"].get("201", 0)) for d in discarded
                        if d.get("label") == f"callbacks, {label}")
        checks_out.append(checks.check("callbacks answered 201 = callbacks applied (/metrics)",
                                       answered == applied,
                                       f"{answered:,} answered, {applied:,.0f} applied"))
        opened = _metric(metrics, 'payment_service_http_requests_total{route="accounts_create",'
                                  'code="2xx"}')
        svc_stop = svc.stop()
        sim.stop()
        count, max_id = db.query("SELECT COUNT(*), MAX(account_id) FROM accounts")[0]
        out["accounts_at_end"] = count
        checks_out.append(checks.check(
            "accounts in the database = seeded + answered 2xx to POST /accounts (/metrics)",
            count == n + opened, f"{count:,} rows, {n:,} + {opened:,.0f}"))
        checks_out.append(checks.check("service stopped cleanly", all(c == 0 for c in svc_stop),
                                       str(svc_stop)))
        checks_out += checks.ledger_invariants(db)
        t0 = time.monotonic()
        code, vout, verr, _, _ = run_tool(ctx, "verify", [ctx.bin("payment_service"), "verify",
                                                          "--database-url", url], timeout=1800)
        out["verify_s"] = round(time.monotonic() - t0, 1)
        checks_out.append(checks.check("payment_service verify: the history reproduces the "
                                       "tables", code == 0, (vout + verr).strip()[-300:].replace(
                                           str(ctx.root), "$TMP")))
        out["checks"] = checks_out
        out["callback_runs"] = cb_runs
        out["open_runs"] = open_runs
        return out

    def recalculate(self, b: Bench, svc, ids: Path, out: dict, checks_out: list) -> dict:
        """PATCH /accounts/recalculate `repeat` times while the write probes run; returns how
        many writes of each probe were answered 201."""
        cfg, ctx = b.cfg, b.ctx
        # As a module from bench/: run as a script, benchlib/http.py would shadow http.client.
        probe = [sys.executable, "-m", "benchlib.probe"]
        bench_dir = Path(__file__).resolve().parent.parent
        folder = ctx.tmpdir("probes")
        paths = {"callbacks": folder / "callbacks.txt", "accounts": folder / "accounts.txt"}
        procs = {
            "callbacks": ctx.spawn("probe-callbacks", probe + ["callbacks", str(svc.port),
                                                               str(ids)],
                                   cwd=bench_dir, stdout_path=paths["callbacks"]),
            "accounts": ctx.spawn("probe-accounts", probe + ["accounts", str(svc.port),
                                                             str(self.PROBE_ACCOUNTS_PAUSE_S)],
                                  cwd=bench_dir, stdout_path=paths["accounts"]),
        }
        try:
            time.sleep(0.5)  # the probes are connected and running
            base0 = time.monotonic()
            time.sleep(cfg.scale_probe_baseline_s)
            base1 = time.monotonic()
            windows, times, statuses, sizes = [], [], {}, []
            for _ in range(cfg.repeat):
                t0 = time.monotonic()
                status, _, body = http.request(svc.port, "PATCH", "/accounts/recalculate",
                                               timeout=1800)
                t1 = time.monotonic()
                windows.append((t0, t1))
                times.append((t1 - t0) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                sizes.append(len(body))
                time.sleep(0.3)
        finally:
            codes = {k: p.stop() for k, p in procs.items()}
            for p in procs.values():
                ctx.forget(p)
        lines = {k: _read_probe(p) for k, p in paths.items()}
        out["recalculate"] = {"ms": [round(t, 1) for t in times],
                              "p50_ms": round(statistics.median(times), 1),
                              "max_ms": round(max(times), 1), "bytes": sizes[0]}
        out["stall"] = {k: _stall(v, windows, (base0, base1)) for k, v in lines.items()}
        everything = [x for v in lines.values() for x in v]
        out["stall"]["any write"] = _stall(everything, windows, (base0, base1))
        log(f"scale: recalculate p50 {out['recalculate']['p50_ms']:.1f} ms; longest write during "
            f"it {out['stall']['any write']['during_max_ms']} ms, without "
            f"{out['stall']['any write']['without_max_ms']} ms")
        checks_out.append(checks.check("PATCH /accounts/recalculate: every answer 200",
                                       statuses == {"200": cfg.repeat}, str(statuses)))
        bad = {k: sum(1 for _, _, s in v if s != 201) for k, v in lines.items()}
        checks_out.append(checks.check(
            "write probes: every answer 201, probes ended cleanly",
            not any(bad.values()) and all(c == 0 for c in codes.values())
            and all(lines.values()),
            f"requests {({k: len(v) for k, v in lines.items()})}, not 201 {bad}, exit {codes}"))
        return {k: sum(1 for _, _, s in v if s == 201) for k, v in lines.items()}


SCENARIOS = [AccountsVsNginx(), Callbacks(), Payments(), Lifecycle(), Ablation(), Memory(),
             Scale()]
