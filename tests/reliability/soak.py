#!/usr/bin/python3
"""Soak (issue 10): the lifecycle load (payments settled by the simulator's callbacks, with the
crash test's provider faults) at half the measured peak for 10 minutes on each store, with the
service's RSS sampled every few seconds. Passes when the RSS grew by less than the limit after
the warm-up, no request failed (no 5xx, no transport error or timeout; the only non-201 answers
are those the provider's faults cause: 202 for an unknown outcome, 502 for a rejection), and,
once quiescent, everything the client was told and the simulator's /truth agree with the
service, the ledger invariants hold and `payment_service verify` exits 0 (lifecycle.end_checks).

Usually started through scripts/soak. Not in CI: it is long.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lifecycle  # noqa: E402
from lifecycle import REPO, check  # noqa: E402

from benchlib.procs import machine_cpu  # noqa: E402
from benchlib.targets import PG_CLUSTER, ServiceOptions  # noqa: E402

# The full lifecycle's peak, payments/s end to end with 3 callbacks each (docs/benchmarks.md,
# scenario 4, 100,000 payments, full run of 2026-12-02 on this 2-core machine).
PEAK_FROM_BENCHMARKS = {"sqlite": 2767, "postgres": 2513}
# Answers the provider's faults explain; anything else is an error in a soak.
EXPECTED = {"201", "202", "502"}


class Soak(lifecycle.LoadRun):
    name = "soak"

    def __init__(self, store: str, args, seed: int):
        super().__init__(store, args, seed, ServiceOptions(
            time_to_settle_seconds=args.time_to_settle,
            settle_grace_seconds=lifecycle.SETTLE_GRACE_S,
            extra_args=lifecycle.SERVICE_FLAGS))
        self.rate = args.rate or PEAK_FROM_BENCHMARKS[store] / 2
        self.samples: list[tuple[float, int, float]] = []  # (s since start, RSS KiB, machine %)

    def _run(self) -> None:
        a = self.args
        accounts = self.start(["--record-callbacks"] if a.callback_history else [])
        source = ("--rate" if a.rate else
                  f"half the lifecycle peak in docs/benchmarks.md, "
                  f"{PEAK_FROM_BENCHMARKS[self.store]:,}/s")
        self.say(f"seed {self.seed}; {a.duration:g} s at {self.rate:,.0f} payments/s ({source}) "
                 f"from {a.connections} connections; RSS every {a.sample_every:g} s, warm-up "
                 f"{a.warmup:g} s; simulator {' '.join(lifecycle.SIM_FAULTS)}")
        self.load = lifecycle.PaymentLoad(self.svc.port, accounts, self.rate, a.connections,
                                          self.seed, run_id=f"soak{self.seed}")
        asyncio.run(self._drive())
        answered = len(self.load.payments) - len(self.load.unanswered)
        self.say(f"load over: {answered:,} payments answered, {self.load.describe_answers()}")
        truth, waited = lifecycle.wait_for_quiescence(
            self.svc.port, self.sim, self.db, timeout_s=3 * a.time_to_settle + 300)
        self.truth = truth
        self.say(f"quiescent after {waited:.1f} s; simulator counters {truth['counters']}")
        self.checks += self._soak_checks()
        self.checks += lifecycle.end_checks(self.load, self.svc.port, self.sim, self.db,
                                            self.database_url, self.ctx.bin("payment_service"),
                                            truth, a.replay_sample, self.seed,
                                            callback_history=a.callback_history)

    async def _drive(self) -> None:
        a = self.args
        load_task = asyncio.create_task(self.load.run())
        recalc_task = asyncio.create_task(self.load.recalculate_every(1.0, 5))
        t0 = time.monotonic()
        busy0, _ = machine_cpu()
        cpu0 = self._cpu()
        start_busy = busy0
        last = t0
        next_log = t0 + 60
        while time.monotonic() - t0 < a.duration:
            await asyncio.sleep(max(0.0, last + a.sample_every - time.monotonic()))
            now = time.monotonic()
            busy1, _ = machine_cpu()
            machine = 100 * (busy1 - busy0) / max(now - last, 1e-3)
            busy0, last = busy1, now
            self.samples.append((now - t0, self.svc.rss_kb(), machine))
            if now >= next_log:
                next_log += 60
                self.say(f"+{now - t0:5.0f} s: {len(self.load.payments):,} payments, RSS "
                         f"{self.samples[-1][1] / 1024:.1f} MB, machine busy {machine:.0f}% of a "
                         f"core, answers {self.load.describe_answers()}")
        self.load.stop()
        await asyncio.wait_for(asyncio.gather(load_task, recalc_task), timeout=120)
        self.elapsed = time.monotonic() - t0
        # CPU over the load, in % of one core: ours, and everything else on the machine.
        cpu1 = self._cpu()
        busy1, _ = machine_cpu()
        self.cpu_pct = {k: 100 * (cpu1[k] - cpu0[k]) / self.elapsed for k in cpu1}
        machine = 100 * (busy1 - start_busy) / self.elapsed
        self.cpu_pct["others"] = max(0.0, machine - sum(self.cpu_pct.values()))
        self.cpu_pct["machine"] = machine

    def _cpu(self) -> dict[str, float]:
        """CPU seconds so far of the service, the simulator, this client and the database."""
        me = resource.getrusage(resource.RUSAGE_SELF)
        out = {"service": self.svc.procs[0].cpu_seconds(),
               "simulator": self.sim.proc.cpu_seconds(),
               "client": me.ru_utime + me.ru_stime}
        if self.store == "postgres":
            out["postgres"] = PG_CLUSTER.cpu_seconds()
        return out

    def _rss(self) -> dict:
        a = self.args
        after = [s for s in self.samples if s[0] >= a.warmup]
        if not after:
            return {}
        base = after[0][1]
        peak = max(s[1] for s in after)
        xs = [s[0] for s in after]
        ys = [s[1] for s in after]
        slope = statistics.linear_regression(xs, ys).slope if len(after) > 2 else 0.0
        return {"start_mb": self.samples[0][1] / 1024, "warm_mb": base / 1024,
                "end_mb": after[-1][1] / 1024, "max_mb": peak / 1024,
                "growth_mb": (peak - base) / 1024, "slope_mb_per_min": slope * 60 / 1024}

    def _soak_checks(self) -> list[dict]:
        a = self.args
        load = self.load
        rss = self._rss()
        out = [check(f"RSS grew less than {a.rss_limit_mb:g} MB after the {a.warmup:g} s warm-up "
                     "(largest sample minus the first after it)",
                     bool(rss) and rss["growth_mb"] < a.rss_limit_mb,
                     (f"{rss['start_mb']:.1f} MB at start, {rss['warm_mb']:.1f} after the "
                      f"warm-up, {rss['max_mb']:.1f} at most, {rss['end_mb']:.1f} at the end "
                      f"(+{rss['growth_mb']:.1f} MB; trend {rss['slope_mb_per_min']:+.2f} "
                      f"MB/min; {len(self.samples)} samples)") if rss else "no samples")]
        errors = {k: v for k, v in load.answers.items() if k not in EXPECTED}
        out.append(check("no error: every attempt answered 201, 202 or 502 (no 5xx, no 4xx, no "
                         "transport error or timeout)", not errors,
                         load.describe_answers()))
        c = self.truth["counters"]
        first_tries = sum(m["callbacks_sent"] for m in self.truth["movements"]) + c["late_sent"]
        out.append(check("every callback answered at its first attempt (no 5xx, no transport "
                         "error, no timeout)", c["callback_attempts"] == first_tries,
                         f"{c['callback_attempts']:,} attempts for {first_tries:,} callbacks"))
        out.append(check("every recalculation answered 200",
                         load.recalculations > 0 and not load.recalculations_failed,
                         f"{load.recalculations} PATCH /accounts/recalculate"
                         + (f"; failed: {load.recalculations_failed[:5]}"
                            if load.recalculations_failed else "")))
        sent = len(load.payments)
        achieved = sent / self.elapsed
        out.append(check(f"the offered rate held ({self.rate:,.0f} payments/s)",
                         achieved >= 0.95 * self.rate,
                         f"{sent:,} payments in {self.elapsed:.0f} s: {achieved:,.0f}/s; "
                         f"answer latency p50 {self._latency(0.5):.1f} ms, p99 "
                         f"{self._latency(0.99):.1f} ms; CPU % of a core "
                         + ", ".join(f"{k} {v:.0f}" for k, v in self.cpu_pct.items())))
        return out

    def _latency(self, q: float) -> float:
        values = sorted(self.load.latencies)
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else 0.0

    def summary(self, seconds: float) -> dict:
        load = getattr(self, "load", None)
        truth = getattr(self, "truth", None)
        rss = self._rss() if self.samples else {}
        machine = [s[2] for s in self.samples]
        passed = sum(c["ok"] for c in self.checks)
        return {
            "store": self.store,
            "ok": bool(self.checks) and passed == len(self.checks),
            "rate": self.rate,
            "achieved": (len(load.payments) / self.elapsed
                         if load and getattr(self, "elapsed", 0) else 0.0),
            "payments": len(load.payments) if load else 0,
            "callbacks_acknowledged": (sum(m["callbacks_acknowledged"]
                                           for m in truth["movements"]) if truth else 0),
            "rss": rss,
            "machine_busy_pct": statistics.median(machine) if machine else 0.0,
            "cpu_pct": getattr(self, "cpu_pct", {}),
            "p99_ms": self._latency(0.99) if load else 0.0,
            "checks_passed": passed,
            "checks": len(self.checks),
            "seconds": round(seconds, 1),
            "failed": [c for c in self.checks if not c["ok"]],
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default="sqlite,postgres",
                   help="comma-separated: sqlite, postgres (default both, one after the other)")
    p.add_argument("--duration", type=float, default=600.0,
                   help="seconds of load (default 600)")
    p.add_argument("--rate", type=float, default=None,
                   help="payments per second (default: half the lifecycle peak of "
                        "docs/benchmarks.md: " + ", ".join(f"{k} {v / 2:,.0f}" for k, v in
                                                           PEAK_FROM_BENCHMARKS.items()) + ")")
    p.add_argument("--connections", type=int, default=256,
                   help="client connections (default 256: at 1,400 payments/s and 60 ms answers "
                        "on a busy machine, 84 are busy)")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds before the RSS baseline (default 60)")
    p.add_argument("--sample-every", type=float, default=5.0,
                   help="seconds between RSS samples (default 5)")
    p.add_argument("--rss-limit-mb", type=float, default=10.0,
                   help="largest allowed RSS growth after the warm-up (default 10)")
    p.add_argument("--time-to-settle", type=int, default=30,
                   help="time_to_settle_seconds of the service and the simulator (default 30: "
                        "a callback the simulator had to queue near the end of its window still "
                        "has 6 s to be answered)")
    p.add_argument("--no-callback-history", dest="callback_history", action="store_false",
                   help="do not check each acknowledged callback against the history (the "
                        "simulator keeps about 48 bytes per callback, the final /truth is a few "
                        "hundred MB after 10 minutes)")
    p.add_argument("--replay-sample", type=int, default=300,
                   help="answered keys retried at the end (default 300)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--bin-dir", default=str(REPO / "build" / "bin"))
    p.add_argument("--keep-tmp", action="store_true", help="keep logs and databases")
    a = p.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "big")
    stores = [s.strip() for s in a.store.split(",") if s.strip()]
    for s in stores:
        if s not in PEAK_FROM_BENCHMARKS:
            p.error(f"unknown store {s!r}")
    print(f"soak: seed {seed}", flush=True)
    results = [Soak(s, a, seed).run() for s in stores]
    print(f"\nsoak summary (seed {seed})")
    print(f"{'store':9} {'rate/s':>7} {'achieved':>8} {'payments':>10} {'callbacks ack':>13} "
          f"{'RSS warm':>8} {'max':>6} {'end':>6} {'growth':>7} {'p99 ms':>7} {'busy%':>6} "
          f"{'others%':>7} {'checks':>7} {'time':>6}  result")
    for r in results:
        rss = r["rss"] or {"warm_mb": 0, "max_mb": 0, "end_mb": 0, "growth_mb": 0}
        cpu = r["cpu_pct"] or {"machine": 0, "others": 0}
        print(f"{r['store']:9} {r['rate']:7,.0f} {r['achieved']:8,.0f} {r['payments']:10,} "
              f"{r['callbacks_acknowledged']:13,} {rss['warm_mb']:8.1f} {rss['max_mb']:6.1f} "
              f"{rss['end_mb']:6.1f} {rss['growth_mb']:+7.1f} {r['p99_ms']:7.1f} "
              f"{cpu['machine']:6.0f} {cpu['others']:7.0f} {r['checks_passed']:3}/{r['checks']:<3} "
              f"{r['seconds']:5.0f}s  {'PASS' if r['ok'] else 'FAIL'}")
        for c in r["failed"]:
            print(f"  FAILED: {c['what']}: {c['detail']}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
