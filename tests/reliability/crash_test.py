#!/usr/bin/python3
"""Crash loop (issue 10): the lifecycle load with provider faults against the real service,
`kill -9` of the service at seeded random moments (restarted each time on the same port and
data), and on PostgreSQL also the database stopped like a crash (`pg_ctl stop -m immediate`)
and started again while the service keeps running. Afterwards, once quiescent, everything the
client and the simulator were told is checked against the service's API, its database, the
simulator's /truth and `payment_service verify` (lifecycle.end_checks).

Usually started through scripts/crash-test. The seed fixes the schedule (each moment and
downtime), the payments sent and the simulator's scripts and faults; the run prints it, and
`--seed N` runs the same schedule again (the interleaving with the machine's timing differs).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lifecycle  # noqa: E402
from lifecycle import REPO  # noqa: E402

from benchlib import http  # noqa: E402
from benchlib.targets import PG_CLUSTER, ServiceOptions  # noqa: E402

# The longest a payment may wait for its answer while the database is away: 5 s to resolve a
# commit whose connection was lost (kCommitResolveLimit in src/store/postgres) and 1 s of slack.
OUTAGE_ANSWER_LIMIT_S = 6.0
# time_to_settle_seconds by store. The simulator retries a callback until that long after the
# payment was accepted, and its callbacks go out within the first 80%: a callback due at the end
# still has 20% of it to reach a service that is down. A database outage keeps the service from
# applying callbacks for the outage plus the restart of PostgreSQL and, for a COMMIT lost with
# it, the resolution of its outcome (up to 5 s): 30 s leave 6 s for that; a kill -9 of the service
# costs it well under a second, so 15 s (3 s) suffice on SQLite and drain sooner.
TIME_TO_SETTLE_S = {"sqlite": 15, "postgres": 30}


@dataclasses.dataclass
class Event:
    at_s: float  # seconds after the load started
    kind: str  # "kill": kill -9 of the service; "db": the database stopped like a crash
    down_s: float  # how long it stays down before it is started again


def schedule(seed: int, duration_s: float, kills: int, db_kills: int,
             min_gap_s: float) -> list[Event]:
    """Seeded moments in [2 s, duration - 3 s], at least min_gap_s apart: uniform over all
    such schedules (n uniform points in the range shortened by the gaps, sorted, each moved up
    by the gaps before it)."""
    rng = random.Random(seed)
    kinds = ["kill"] * kills + ["db"] * db_kills
    rng.shuffle(kinds)
    lo, hi = 2.0, duration_s - 3.0
    room = (hi - lo) - (len(kinds) - 1) * min_gap_s
    if room <= 0:
        raise SystemExit(f"{len(kinds)} events do not fit {min_gap_s:g} s apart in "
                         f"{duration_s:g} s: use a longer --duration")
    times = [lo + t + i * min_gap_s
             for i, t in enumerate(sorted(rng.uniform(0, room) for _ in kinds))]
    return [Event(round(t, 3), k, round(rng.uniform(0.0, 0.5) if k == "kill"
                                        else rng.uniform(0.2, 1.0), 3))
            for t, k in zip(times, kinds)]


class Run(lifecycle.LoadRun):
    """One store's crash loop."""

    name = "crash-test"

    def __init__(self, store: str, args, seed: int):
        self.time_to_settle = args.time_to_settle or TIME_TO_SETTLE_S[store]
        super().__init__(store, args, seed, ServiceOptions(
            time_to_settle_seconds=self.time_to_settle,
            settle_grace_seconds=lifecycle.SETTLE_GRACE_S,
            extra_args=lifecycle.SERVICE_FLAGS + tuple(args.service_arg)))
        self.kills_done = 0
        self.db_kills_done = 0
        self.restart_s: list[float] = []
        self.outages: list[dict] = []
        self.event_starts: list[float] = []  # monotonic

    def _run(self) -> None:
        a = self.args
        events = schedule(self.seed, a.duration, a.kills, a.db_kills if self.store != "sqlite"
                          else 0, a.min_gap)
        accounts = self.start(["--record-callbacks"])
        self.say(f"seed {self.seed}; {a.duration:g} s of load at {a.rate:g} payments/s from "
                 f"{a.connections} connections over accounts {accounts}; time_to_settle "
                 f"{self.time_to_settle} s; simulator {' '.join(lifecycle.SIM_FAULTS)}")
        for n, e in enumerate(events, 1):
            what = ("kill -9 of the service" if e.kind == "kill"
                    else "database stopped (pg_ctl stop -m immediate)")
            self.say(f"schedule {n:2}/{len(events)}: +{e.at_s:7.3f} s {what}, down "
                     f"{e.down_s:.3f} s")
        self.load = lifecycle.PaymentLoad(self.svc.port, accounts, a.rate, a.connections,
                                          self.seed, run_id=f"crash{self.seed}")
        self.load.record_attempts = True
        asyncio.run(self._drive(events))
        self.say(f"load over: {len(self.load.payments):,} payments, answers "
                 f"{self.load.describe_answers()}")

        truth, waited = lifecycle.wait_for_quiescence(
            self.svc.port, self.sim, self.db, timeout_s=3 * self.time_to_settle + 60)
        self.drain_s = waited
        self.say(f"quiescent after {waited:.1f} s; simulator counters {truth['counters']}")
        self.truth = truth
        if a.keep_tmp:  # every payment attempt (start, end, answer) and outage, for analysis
            (self.ctx.root / "attempts.json").write_text(json.dumps(
                {"attempts": self.load.attempts, "outages": self.outages}))
        self.checks += self._schedule_checks(events)
        self.checks += lifecycle.end_checks(self.load, self.svc.port, self.sim, self.db,
                                            self.database_url, self.ctx.bin("payment_service"),
                                            truth, a.replay_sample, self.seed)

    async def _drive(self, events: list[Event]) -> None:
        load_task = asyncio.create_task(self.load.run())
        recalc_task = asyncio.create_task(self.load.recalculate_every(1.0, 5))
        t0 = time.monotonic()
        free_from = t0
        for n, e in enumerate(events, 1):
            # At its moment, but not sooner than 1 s after the previous event was over (a
            # database outage lasts longer than it was down: the start and the recovery).
            await asyncio.sleep(max(0.0, t0 + e.at_s - time.monotonic(),
                                    free_from + 1.0 - time.monotonic()))
            self.event_starts.append(time.monotonic())
            if e.kind == "kill":
                await self._kill_and_restart(n, len(events), e, time.monotonic() - t0)
            else:
                await self._database_outage(n, len(events), e, time.monotonic() - t0)
            free_from = time.monotonic()
        await asyncio.sleep(max(0.0, t0 + self.args.duration - time.monotonic()))
        self.load.stop()
        # Payments under way go on until answered (a restarted service may hold a key "in
        # use" for its lease, 10 s by default).
        try:
            await asyncio.wait_for(asyncio.gather(load_task, recalc_task), timeout=120)
        except asyncio.TimeoutError:
            waiting = self.load.unanswered
            raise RuntimeError(f"{len(waiting)} payment(s) still unanswered 120 s after the "
                               f"load stopped (first {[p.key for p in waiting[:3]]}); answers "
                               f"{self.load.describe_answers()}") from None

    async def _kill_and_restart(self, n: int, total: int, e: Event, at: float) -> None:
        old = self.svc
        pid = old.procs[0].pid
        for p in old.procs:
            p.signal(signal.SIGKILL)
        await asyncio.to_thread(lambda: [p.popen.wait() for p in old.procs])
        for p in old.procs:
            self.ctx.forget(p)
        killed = time.monotonic()
        self.kills_done += 1
        await asyncio.sleep(e.down_s)
        # Started from this (the main) thread, blocking the load for the restart's fraction of
        # a second: a child dies with the thread that started it (PR_SET_PDEATHSIG, see
        # benchlib.procs), and asyncio.to_thread's threads end with the event loop.
        self.svc = self.target.start(self.ctx, old.port, self.sim.url, self.options, old.state)
        back = time.monotonic() - killed
        self.restart_s.append(back)
        self.say(f"kill {n:2}/{total} at +{at:.3f} s: pid {pid} killed (-9), answers so far "
                 f"{self.load.describe_answers()}; serving again after {back:.3f} s (pid "
                 f"{self.svc.procs[0].pid})")

    async def _database_outage(self, n: int, total: int, e: Event, at: float) -> None:
        pid = self.svc.procs[0].pid
        await asyncio.to_thread(PG_CLUSTER.crash)
        stopped = time.monotonic()
        self.db_kills_done += 1
        readyz_503 = await asyncio.to_thread(self._readyz_becomes, False, 5.0)
        await asyncio.sleep(max(0.0, stopped + e.down_s - time.monotonic()))
        await asyncio.to_thread(PG_CLUSTER.resume)
        resumed = time.monotonic()
        ready = await asyncio.to_thread(self._readyz_becomes, True, 60.0)
        recovered = time.monotonic() - resumed
        same = self.svc.procs[0].alive() and self.svc.procs[0].pid == pid
        outage = {"n": n, "readyz_503": readyz_503, "ready_again": ready,
                  "recovery_s": recovered, "same_process": same, "stopped": stopped,
                  "resumed": resumed}
        self.outages.append(outage)
        self.say(f"database stop {n:2}/{total} at +{at:.3f} s: /readyz "
                 f"{'503' if readyz_503 else 'NOT 503'} while down; started again after "
                 f"{resumed - stopped:.3f} s, service {'ready' if ready else 'NOT READY'} "
                 f"{recovered:.3f} s later ({'same process' if same else 'NOT the same process'})")

    def _outage_answers(self, outage: dict) -> tuple[dict[str, int], float]:
        """The answers of the payment attempts under way while the database was away (started
        before it stopped and answered after, or started while it was away), and the longest
        any of them waited after the stop (seconds). An attempt still under way when the next
        event began (a kill -9 cuts it) is left out."""
        stopped, resumed = outage["stopped"], outage["resumed"]
        later = [t for t in self.event_starts if t > stopped]
        cut = later[0] if later else float("inf")
        during: dict[str, int] = {}
        slowest = 0.0
        for start, end, kind in self.load.attempts:
            if start < resumed and end > stopped and end < cut:
                during[kind] = during.get(kind, 0) + 1
                slowest = max(slowest, end - max(start, stopped))
        return during, slowest

    def _readyz_becomes(self, ok: bool, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                status, _, _ = http.request(self.svc.port, "GET", "/readyz", timeout=2.0)
                if (status == 200) == ok:
                    return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def _schedule_checks(self, events: list[Event]) -> list[dict]:
        c = lifecycle.check
        kills = sum(e.kind == "kill" for e in events)
        out = [c(f"{kills} kill -9 of the service, each restarted",
                 self.kills_done == kills and len(self.restart_s) == kills,
                 f"restarts took {min(self.restart_s, default=0):.2f}-"
                 f"{max(self.restart_s, default=0):.2f} s")]
        dbs = sum(e.kind == "db" for e in events)
        if dbs:
            bad = [o["n"] for o in self.outages if not (o["readyz_503"] and o["ready_again"]
                                                        and o["same_process"])]
            answers: dict[str, int] = {}
            slowest = 0.0
            for o in self.outages:
                during, longest = self._outage_answers(o)
                self.say(f"database stop {o['n']}: payment attempts under way while it was away: "
                         f"{during or 'none'}, the longest took {longest:.3f} s")
                for k, v in during.items():
                    answers[k] = answers.get(k, 0) + v
                slowest = max(slowest, longest)
            recovery = [o["recovery_s"] for o in self.outages] or [0.0]
            out.append(c(f"{dbs} database stops: /readyz 503 while down, ready again by itself "
                         "(same process)", self.db_kills_done == dbs and not bad,
                         f"ready again {min(recovery):.2f}-{max(recovery):.2f} s after the "
                         "database started" + (f"; not so: stops {bad}" if bad else "")))
            # A write queued behind a COMMIT the database did not answer waits while the
            # service learns that commit's outcome (pg_xact_status, at most 5 s: the PostgreSQL
            # store's kCommitResolveLimit); every other one is refused with 503 at once.
            out.append(c("payments under way while the database was away were answered (503, "
                         f"or after it returned) within {OUTAGE_ANSWER_LIMIT_S:g} s, none left "
                         "without an answer", answers.get("503", 0) > 0
                         and not {"timeout", "transport error"} & set(answers)
                         and slowest < OUTAGE_ANSWER_LIMIT_S,
                         f"answers {answers}, the longest took {slowest:.3f} s"))
        return out

    def summary(self, seconds: float) -> dict:
        load = getattr(self, "load", None)
        truth = getattr(self, "truth", None)
        passed = sum(c["ok"] for c in self.checks)
        return {
            "store": self.store,
            "seed": self.seed,
            "ok": bool(self.checks) and passed == len(self.checks),
            "kills": self.kills_done,
            "db_kills": self.db_kills_done,
            "payments_acknowledged": len(load.acknowledged) if load else 0,
            "answered_202": sum(p.status == 202 for p in load.payments) if load else 0,
            "rejected_502": len(load.rejected) if load else 0,
            "attempts_retried": (sum(p.attempts - 1 for p in load.payments) if load else 0),
            "callbacks_acknowledged": (sum(m["callbacks_acknowledged"]
                                           for m in truth["movements"]) if truth else 0),
            "checks_passed": passed,
            "checks": len(self.checks),
            "seconds": round(seconds, 1),
            "drain_s": round(getattr(self, "drain_s", 0.0), 1),
            "failed": [c for c in self.checks if not c["ok"]],
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="sqlite,postgres",
                   help="comma-separated: sqlite, postgres (default both)")
    p.add_argument("--seed", type=int, default=None,
                   help="reproduces a run's schedule, payments and simulator scripts "
                        "(default: a new one, printed)")
    p.add_argument("--duration", type=float, default=75.0,
                   help="seconds of load with kills (default 75)")
    p.add_argument("--kills", type=int, default=12, help="kill -9 of the service (default 12)")
    p.add_argument("--db-kills", type=int, default=4,
                   help="PostgreSQL only: database stops like a crash (default 4)")
    p.add_argument("--min-gap", type=float, default=3.0,
                   help="seconds between two scheduled events at least (default 3)")
    p.add_argument("--rate", type=float, default=200.0, help="payments per second (default 200)")
    p.add_argument("--connections", type=int, default=32,
                   help="client connections (default 32)")
    p.add_argument("--time-to-settle", type=int, default=None,
                   help="time_to_settle_seconds of the service and the simulator (default 15 "
                        "on SQLite, 30 on PostgreSQL: a callback due at the end of its window "
                        "still has 20%% of it to reach a restarted service)")
    p.add_argument("--replay-sample", type=int, default=300,
                   help="answered keys retried at the end (default 300)")
    p.add_argument("--service-arg", action="append", default=[],
                   help="one more payment_service argument (repeat for each), e.g. "
                        "--service-arg=--database-wal-checkpoint-pages=64")
    p.add_argument("--bin-dir", default=str(REPO / "build" / "bin"))
    p.add_argument("--keep-tmp", action="store_true", help="keep logs and databases")
    a = p.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "big")
    stores = [s.strip() for s in a.store.split(",") if s.strip()]
    for s in stores:
        if s not in ("sqlite", "postgres"):
            p.error(f"unknown store {s!r}")
    print(f"crash-test: seed {seed} (scripts/crash-test --seed {seed} runs this schedule again)",
          flush=True)
    results = [Run(s, a, seed).run() for s in stores]
    print("\ncrash-test summary (seed %d)" % seed)
    print(f"{'store':9} {'kills':>5} {'db kills':>8} {'payments ack':>12} {'(202)':>6} "
          f"{'502':>5} {'retries':>7} {'callbacks ack':>13} {'checks':>7} {'time':>7}  result")
    for r in results:
        print(f"{r['store']:9} {r['kills']:5} {r['db_kills']:8} {r['payments_acknowledged']:12,} "
              f"{r['answered_202']:6,} {r['rejected_502']:5,} {r['attempts_retried']:7,} "
              f"{r['callbacks_acknowledged']:13,} {r['checks_passed']:3}/{r['checks']:<3} "
              f"{r['seconds']:6.0f}s  {'PASS' if r['ok'] else 'FAIL'}")
        for c in r["failed"]:
            print(f"  FAILED: {c['what']}: {c['detail']}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
