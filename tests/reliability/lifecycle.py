"""The lifecycle load of the crash loop and the soak, and the checks at their end.

A client (`PaymentLoad`) sends `POST /payments` at a paced rate from a number of keep-alive
connections, each payment with its own `Idempotency-Key`, and does what a careful real client
does with an answer it did not get: a transport error, a timeout, a 503 or a 409 "in use" is
retried with the same key and the same body until the service gives a final answer. It records
what the service ACKNOWLEDGED: each 201/202 (id, account, amount, key) and each 502 (a rejection
by the provider, also final). The simulator (`payment_provider_sim --record-callbacks`) sends
each payment's callbacks and records the service's answer to each.

`end_checks` then compares, once everything is quiescent: what the client was told, the
service's API, its database (the ledger invariants, the event history, the idempotency keys),
the simulator's /truth, and `payment_service verify`. Standard library only; the processes,
the PostgreSQL cluster and the database checks come from the benchmark harness (bench/benchlib).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import subprocess
import sys
import time
import traceback
import typing
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "bench"))

from benchlib import checks, http  # noqa: E402
from benchlib.checks import check  # noqa: E402
from benchlib.procs import Context, log  # noqa: E402
from benchlib.targets import TARGETS, ServiceOptions, start_with_sim  # noqa: E402

# A real client's patience with one attempt; the service answers in milliseconds when it is up.
REQUEST_TIMEOUT_S = 10.0
# Backoff between attempts of one payment: doubling, with jitter, capped.
RETRY_INITIAL_S = 0.05
RETRY_MAX_S = 1.0
# Answers after which the client tries again with the same key (and why it is allowed to):
# 503: the service could not take the request now (queue full, database away);
# 409: the key's first request may still be under way (the service says "in use");
# 500: nothing acknowledged either; retried, as a real client would, but also reported: a
# correct service never answers it.
RETRIED = {409, 500, 503}
# Final answers: the payment is acknowledged (201 pending, 202 outcome unknown), or refused by
# the provider (502 with the rejected payment).
ACKNOWLEDGED = {201, 202}
REJECTED = 502

# What a real provider may do (tools/payment_provider_sim/README.md), all at once.
SIM_FAULTS = [
    "--fail-rate", "0.05",             # 503, not recorded: the service re-sends
    "--drop-rate", "0.02",             # recorded, connection closed: outcome unknown (202)
    "--reject-rate", "0.02",           # 400: the payment is rejected (502)
    "--resend-conflict-rate", "0.3",   # 409 to a re-send of a recorded id
    "--late-rate", "0.1",              # one more callback after the deadline (409 expected)
    "--omit-status-rate", "0.1",       # callbacks without status
    "--final-unsettled-rate", "0.1",   # ends failed or returned instead of posted
    "--early-callback-rate", "0.2",    # the first callback races the 201
    "--slow-ms", "5",                  # every answer of the provider a little late
]
# Re-sends after an unknown outcome come quickly, so 202s settle within the run.
SERVICE_FLAGS = ("--provider-retry-initial-ms", "50", "--provider-retry-max-ms", "500")
ACCOUNTS = 5
# The simulator's grace for callbacks after the settle deadline, and the service's.
SETTLE_GRACE_S = 2


class AsyncConnection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (asyncio streams). Any error
    closes it; the next request opens a new one."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict | None = None,
                      timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes]:
        try:
            # asyncio.timeout, not wait_for: no task per request (the soak sends ~1,400/s).
            async with asyncio.timeout(timeout):
                return await self._request(method, path, body, headers or {})
        except BaseException:
            self.close()
            raise

    async def _request(self, method, path, body, headers) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        first, *fields = head[:-4].decode("latin-1").split("\r\n")
        status = int(first.split()[1])
        length, chunked, close = None, False, False
        for line in fields:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readline()
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data = await self.reader.read()
            close = True
        if close:
            self.close()
        return status, data


@dataclasses.dataclass(slots=True)
class Payment:
    """One payment the client wants made, and what became of it."""
    index: int
    key: str
    account_id: int
    amount_cents: int
    merchant_name: str
    attempts: int = 0
    status: int = 0  # the final answer: 201, 202, 502; 0 while unanswered
    money_movement_id: int = 0

    def body(self) -> bytes:
        return json.dumps({"account_id": self.account_id, "amount_cents": self.amount_cents,
                           "merchant_name": self.merchant_name}).encode()


class PaymentLoad:
    """Payments at `rate` per second from `connections` keep-alive connections, until stop().
    Payment i is due at start + i / rate; a connection busy retrying lets the others take the
    next ones, so the offered rate holds while some payments wait for a restarted service."""

    def __init__(self, port: int, accounts: list[int], rate: float, connections: int, seed: int,
                 run_id: str):
        self.port = port
        self.accounts = accounts
        self.rate = rate
        self.connections = connections
        self.seed = seed
        self.run_id = run_id
        self.payments: list[Payment] = []
        self.answers: dict[str, int] = {}  # every answer of every attempt: status or error kind
        self.unexpected: list[str] = []  # answers a correct service never gives
        self.recalculations = 0
        self.recalculations_failed: list[str] = []  # 503 or a transport error (a crash test's)
        self._stopping = False
        self._next = 0
        self._started = 0.0
        self.latencies: list[float] = []  # of the final answers (seconds)
        # With record_attempts: (start, end, answer) of every attempt, monotonic seconds.
        self.record_attempts = False
        self.attempts: list[tuple[float, float, str]] = []

    def payment(self, i: int) -> Payment:
        """Payment i, a pure function of (seed, i): the same seed sends the same payments."""
        rng = random.Random(self.seed * 1_000_003 + i)
        amount = rng.randint(1, 100_000) * rng.choice((-1, 1))
        return Payment(i, f"{self.run_id}-{i}", rng.choice(self.accounts), amount,
                       f"Crash Cafe {i % 97}")

    def count(self, what) -> None:
        self.answers[str(what)] = self.answers.get(str(what), 0) + 1

    async def run(self) -> None:
        self._started = time.monotonic()
        await asyncio.gather(*(self._worker(c) for c in range(self.connections)))

    def stop(self) -> None:
        """No new payment starts; those under way go on until answered."""
        self._stopping = True

    async def _worker(self, c: int) -> None:
        conn = AsyncConnection(self.port)
        rng = random.Random(self.seed * 7919 + c)
        try:
            while not self._stopping:
                i = self._next
                self._next += 1
                due = self._started + i / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._stopping:
                    break
                p = self.payment(i)
                self.payments.append(p)
                await self._until_answered(conn, p, rng)
        finally:
            conn.close()

    async def _until_answered(self, conn: AsyncConnection, p: Payment,
                              rng: random.Random) -> None:
        backoff = RETRY_INITIAL_S
        body = p.body()
        headers = {"Idempotency-Key": p.key}
        t0 = time.monotonic()
        while True:
            p.attempts += 1
            started = time.monotonic()
            try:
                status, data = await conn.request("POST", "/payments", body, headers)
                answer_kind = str(status)
            except asyncio.TimeoutError:
                status, data, answer_kind = None, b"", "timeout"
            except (OSError, ConnectionError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError, IndexError):
                status, data, answer_kind = None, b"", "transport error"
            self.count(answer_kind)
            if self.record_attempts:
                self.attempts.append((started, time.monotonic(), answer_kind))
            if status in ACKNOWLEDGED or status == REJECTED:
                # 201/202: the payment itself; 502: a problem with the rejected `payment`.
                try:
                    answer = json.loads(data)
                    if status == REJECTED:
                        answer = answer["payment"]
                    p.money_movement_id = int(answer["money_movement_id"])
                except (ValueError, KeyError, TypeError):
                    self.unexpected.append(f"{p.key}: {status} without a payment: "
                                           f"{data[:200]!r}")
                    return
                p.status = status
                self.latencies.append(time.monotonic() - t0)
                if (answer.get("account_id"), answer.get("original_amount_cents"),
                        answer.get("merchant_name")) != (p.account_id, p.amount_cents,
                                                         p.merchant_name):
                    self.unexpected.append(f"{p.key}: answered {answer} for {body!r}")
                return
            elif status == 500:
                self.unexpected.append(f"{p.key}: 500 {data[:200]!r}")
            elif status is not None and status not in RETRIED:
                self.unexpected.append(f"{p.key}: {status} {data[:200]!r}")
                return
            await asyncio.sleep(backoff * (0.5 + rng.random()))
            backoff = min(backoff * 2, RETRY_MAX_S)

    async def recalculate_every(self, period_s: float, window_s: int) -> None:
        """PATCH /accounts/recalculate now and then: account_status events in the history.
        Not acknowledged data: a failed one is only counted."""
        conn = AsyncConnection(self.port)
        try:
            while not self._stopping:
                await asyncio.sleep(period_s)
                try:
                    status, data = await conn.request(
                        "PATCH", f"/accounts/recalculate?time_to_delinquency_seconds={window_s}")
                except (OSError, ConnectionError, asyncio.TimeoutError,
                        asyncio.IncompleteReadError, ValueError, IndexError) as e:
                    self.recalculations_failed.append(type(e).__name__)
                    continue
                if status == 200:
                    self.recalculations += 1
                else:
                    self.recalculations_failed.append(str(status))
                    if status != 503:
                        self.unexpected.append(f"recalculate: {status} {data[:200]!r}")
        finally:
            conn.close()

    # What the client was told -------------------------------------------------------------

    @property
    def acknowledged(self) -> list[Payment]:
        return [p for p in self.payments if p.status in ACKNOWLEDGED]

    @property
    def rejected(self) -> list[Payment]:
        return [p for p in self.payments if p.status == REJECTED]

    @property
    def unanswered(self) -> list[Payment]:
        return [p for p in self.payments if p.status == 0]

    def describe_answers(self) -> str:
        return ", ".join(f"{k}: {v:,}" for k, v in sorted(self.answers.items()))


class LoadRun:
    """One store's run of the lifecycle load against the service and the simulator, the part
    the crash loop and the soak share: the processes' start (`start`), and `run`, which runs
    the subclass's `_run`, turns an exception into a failed check, always stops every process
    and drops the databases, prints the checks and returns the subclass's `summary`."""

    name = ""

    def __init__(self, store: str, args, seed: int, options: ServiceOptions):
        self.store = store
        self.args = args
        self.seed = seed
        self.options = options
        self.ctx = Context(REPO, Path(args.bin_dir), keep_tmp=args.keep_tmp)
        self.target = TARGETS[store]
        self.checks: list[dict] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{self.name} {self.store} {elapsed:6.1f}s] {text}", flush=True)

    def run(self) -> dict:
        started = time.monotonic()
        try:
            self.target.prepare(self.ctx)
            self._run()
        except Exception as e:  # a run that could not finish is a failed run, with the reason
            self.checks.append(check("the run finished", False, f"{type(e).__name__}: {e}"))
            self.say(f"FAILED: {e}\n{traceback.format_exc()}")
        finally:
            self.ctx.stop_all()
            try:
                self.target.after_scenario(self.ctx)
            except Exception as e:
                log(f"dropping the databases: {e}")
            self.target.close()
            self.ctx.close()
        for c in self.checks:
            self.say(f"{'ok  ' if c['ok'] else 'FAIL'} {c['what']}: {c['detail']}")
        return self.summary(time.monotonic() - started)

    def _run(self) -> None:
        raise NotImplementedError

    def summary(self, seconds: float) -> dict:
        raise NotImplementedError

    def start(self, sim_extra: list[str]) -> list[int]:
        """Starts the simulator (every fault of SIM_FAULTS, and `sim_extra`) and the service,
        opens accounts up to ACCOUNTS and returns their ids."""
        sim_args = {"seed": self.seed, "callbacks": (2, 5), "threads": 1,
                    "extra": SIM_FAULTS + ["--settle-grace-seconds", str(SETTLE_GRACE_S)]
                    + sim_extra}
        self.sim, self.svc = start_with_sim(self.ctx, self.target, self.options, sim_args)
        self.db = self.target.database(self.svc)
        self.database_url = (f"sqlite:{self.svc.state}" if self.store == "sqlite"
                             else self.svc.state)
        accounts = [1]
        while len(accounts) < ACCOUNTS:
            accounts.append(http.post_json(self.svc.port, "/accounts",
                                           expect=(201,))["account_id"])
        return accounts


class Stored(typing.NamedTuple):
    """A payment as GET /payments shows it (the fields the checks read: a soak lists a
    million of them)."""
    account_id: int
    original_amount_cents: int
    merchant_name: str
    amount_cents: int
    status: str


def list_payments(port: int) -> dict[int, Stored]:
    """GET /payments, every page: money_movement_id -> Stored."""
    out, cursor = {}, None
    while True:
        path = "/payments?limit=1000" + (f"&cursor={urllib.parse.quote(cursor)}"
                                         if cursor else "")
        page = http.get_json(port, path)
        for p in page["data"]:
            out[p["money_movement_id"]] = Stored(p["account_id"], p["original_amount_cents"],
                                                 p["merchant_name"], p["amount_cents"],
                                                 p["status"])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def wait_for_quiescence(port: int, sim, db, timeout_s: float) -> tuple[dict, float]:
    """Waits until no payment is `submitting`, the simulator has no script in flight, and every
    settle deadline (and the late callbacks after it) has passed. Returns the last /truth and
    the seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while True:
        waiting = http.get_json(port, "/payments?status=submitting&limit=1")["data"]
        # The summary, not /truth: that is over 100 MB after a soak.
        in_flight = http.get_json(sim.port, "/truth/summary")["in_flight"]
        if not waiting and in_flight == 0:
            last = db.query("SELECT MAX(settle_deadline) FROM payments")[0][0] or 0
            if time.time() * 1000 > last + 100:
                waited = time.monotonic() - t0
                truth = sim.truth()
                if truth["in_flight"] == 0:
                    return truth, waited
        if time.monotonic() > deadline:
            raise RuntimeError(f"not quiescent after {timeout_s:.0f} s: submitting "
                               f"{len(waiting)}, simulator in_flight {in_flight}")
        time.sleep(0.5)


def _subsequence(needle: list, haystack: list) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def end_checks(load: PaymentLoad, port: int, sim, db, database_url: str, service_bin: str,
               truth: dict, replay_sample: int, seed: int,
               callback_history: bool = True) -> list[dict]:
    """Everything that must hold once the run is quiescent (see the module comment).
    `callback_history`: the simulator ran with --record-callbacks, so each acknowledged
    callback (not only the last of each payment) is looked for in the service's history, and a
    payment with a callback given up may be in any state its callbacks leave possible."""
    out: list[dict] = []
    acked = load.acknowledged
    rejected = load.rejected
    answered = acked + rejected

    out.append(check("client: every payment got a final answer (201/202/502)",
                     not load.unanswered, f"{len(load.unanswered)} unanswered, first "
                     f"{load.unanswered[0].key if load.unanswered else ''}"))
    out.append(check("client: no answer a correct service never gives",
                     not load.unexpected, "; ".join(load.unexpected[:3])))
    ids = [p.money_movement_id for p in answered]
    out.append(check("client: one money_movement_id per Idempotency-Key (ids unique)",
                     len(set(ids)) == len(ids), f"{len(ids):,} ids, {len(set(ids)):,} distinct"))

    # The service's API: every acknowledged payment, as it stands now.
    api = list_payments(port)
    lost = [p for p in acked if p.money_movement_id not in api]
    wrong = [p for p in acked if p.money_movement_id in api and (
        api[p.money_movement_id][:3] != (p.account_id, p.amount_cents, p.merchant_name))]
    out.append(check("every acknowledged payment (201/202) exists with its account, amount and "
                     "merchant", not lost and not wrong,
                     f"{len(acked):,} acknowledged; lost {[p.key for p in lost[:3]]} wrong "
                     f"{[(p.key, api[p.money_movement_id]) for p in wrong[:2]]}"))
    not_rejected = [p for p in rejected if p.money_movement_id not in api
                    or api[p.money_movement_id].status != "rejected"]
    out.append(check("every payment answered 502 is stored as rejected", not not_rejected,
                     f"{len(rejected):,} answered 502"
                     + (f"; not so: {[p.key for p in not_rejected[:3]]}" if not_rejected else "")))
    extra = sorted(set(api) - set(ids))
    out.append(check("the service holds no payment the client was not answered for",
                     not extra and len(api) == len(answered),
                     f"{len(api):,} payments stored, {len(answered):,} answered"
                     + (f"; extra ids {extra[:3]}" if extra else "")))

    # Idempotency keys in the database: each of ours names the payment it was answered with.
    rows = db.query(f"SELECT key, money_movement_id FROM idempotency_keys "
                    f"WHERE key LIKE '{load.run_id}-%'")
    stored = {r[0]: r[1] for r in rows}
    mismatched = [p.key for p in answered if stored.get(p.key) != p.money_movement_id]
    out.append(check("database: each Idempotency-Key names the one payment it was answered with",
                     not mismatched and len(stored) == len(answered),
                     f"{len(stored):,} keys stored" + (f"; differ: {mismatched[:3]}"
                                                       if mismatched else "")))

    # Retrying a sample of keys now replays the same payment and creates none.
    sample = random.Random(seed).sample(answered, min(replay_sample, len(answered)))
    differ = []
    for p in sample:
        status, _, data = http.request(port, "POST", "/payments", p.body(),
                                       {"Idempotency-Key": p.key})
        try:
            again = json.loads(data)
            again = (again["payment"] if status == REJECTED else again)["money_movement_id"]
        except (ValueError, KeyError, TypeError):
            again = None
        # The first answer again; for a 202 (the outcome was unknown) the payment as it is now.
        allowed = (201, 202, 502) if p.status == 202 else (p.status,)
        if status not in allowed or again != p.money_movement_id:
            differ.append((p.key, status, again, p.money_movement_id))
    count_after = checks.count_payments(db)
    out.append(check(f"a retry of {len(sample)} answered keys replays the same payment",
                     not differ and count_after == len(answered),
                     f"payments after the retries {count_after:,}"
                     + (f"; differ (key, status, id, expected): {differ[:3]}" if differ else "")))

    # The simulator's truth: every payment it recorded, as the service reports it. With the
    # callback history (--record-callbacks), a payment one of whose callbacks was given up may be
    # in any state those callbacks leave possible; otherwise it must be exactly the truth.
    movements = {m["money_movement_id"]: m for m in truth["movements"]}
    history = _applied_history(db) if callback_history else {}
    missing = [i for i in movements if i not in api]
    unknown = [i for i, p in api.items() if i not in movements and p.status != "rejected"]
    differ, not_applied, ambiguous = [], [], 0
    requested = {p.money_movement_id: p.amount_cents for p in answered}
    expected: dict[int, tuple[int, str]] = {}  # the state each payment must have
    for i, m in movements.items():
        if i not in api:
            continue
        stored = api[i]
        state = (stored.amount_cents, stored.status)
        if stored.account_id != m["account_id"]:
            differ.append((i, "account", m["account_id"], stored.account_id))
        if not callback_history:
            expected[i] = (m["amount_cents"], m["status"])
            if state != expected[i]:
                differ.append((i, expected[i], state))
            continue
        if "callbacks" not in m:
            raise RuntimeError("the simulator was not started with --record-callbacks")
        outcomes = possible_outcomes(requested.get(i, stored.original_amount_cents),
                                     m["callbacks"])
        if outcomes[0][0] != (m["amount_cents"], m["status"]):  # the two readings must agree
            differ.append((i, "the callback list says", outcomes[0][0], "/truth",
                           (m["amount_cents"], m["status"])))
        if len(outcomes) > 1:
            ambiguous += 1
        matching = [applied for final, applied in outcomes if final == state]
        if not matching:
            differ.append((i, [final for final, _ in outcomes], state))
        elif not any(_subsequence(applied, history.get(i, [])) for applied in matching):
            not_applied.append((i, matching[0], history.get(i, [])))
        expected[i] = state if matching else outcomes[0][0]
    detail = (f"{len(movements):,} movements"
              + (f", {ambiguous} with a callback given up, each in a state its callbacks "
                 "leave possible" if ambiguous else "")
              + (f"; missing {missing[:3]}" if missing else "")
              + (f"; differ (id, truth, service) {differ[:3]}" if differ else "")
              + (f"; unknown to the provider {unknown[:3]}" if unknown else ""))
    out.append(check("every payment equals the simulator's truth (amount, status, account)",
                     not missing and not differ and not unknown, detail))
    acknowledged = sum(m["callbacks_acknowledged"] for m in movements.values())
    if callback_history:
        out.append(check(
            "every acknowledged callback is applied (in the payment's history, in order)",
            not not_applied, f"{acknowledged:,} callbacks acknowledged, "
            f"{sum(len(v) for v in history.values()):,} applied events"
            + (f"; not found (id, applied, history): {not_applied[:2]}" if not_applied else "")))
    c = truth["counters"]
    # A callback given up is one the simulator never saw answered 201 within its window (20% of
    # time_to_settle after the last one's moment): the service may still have applied it (a
    # COMMIT whose outcome it could not learn is answered 503; a kill -9 after the commit leaves
    # no answer). With the callback history the checks above allow for it; without, /truth
    # cannot say what the payment must be.
    gave_up_ok = callback_history or c["callback_gave_up"] == 0
    out.append(check("simulator: no callback accepted after its deadline"
                     + ("" if callback_history else ", none given up"),
                     gave_up_ok and c["late_answered_other"] == 0,
                     f"late accepted {c['late_answered_other']}, late answered 409 "
                     f"{c['late_answered_409']}, given up {c['callback_gave_up']}"
                     + ("" if gave_up_ok else "; with callbacks given up the comparisons with "
                        "/truth are not conclusive: run the simulator with --record-callbacks")))

    api_accounts = http.get_all_accounts(port)
    if ambiguous == 0:
        out.append(checks.balances_equal_truth(api_accounts, truth))
    else:
        # /truth's balances assume no given-up callback was applied: sum the states instead.
        sums: dict[int, list[int]] = {}
        for i, (amount, status) in expected.items():
            b = sums.setdefault(movements[i]["account_id"], [0, 0])
            b[0] += amount if status != "rejected" else 0
            b[1] += amount if status == "posted" else 0
        ours = {a["account_id"]: [a["balance"], a["settled_balance"]] for a in api_accounts}
        bad = [(k, ours.get(k), v) for k, v in sums.items() if ours.get(k) != v]
        bad += [(k, v, None) for k, v in ours.items() if k not in sums and v != [0, 0]]
        out.append(check("service /accounts equal simulator /truth (balance, settled_balance; "
                         f"the {ambiguous} payments with a callback given up in the state the "
                         "service has)", not bad and truth["in_flight"] == 0,
                         f"{len(sums)} account(s)" + (f"; differ (id, service, expected) "
                                                      f"{bad[:3]}" if bad else "")))
    out += checks.ledger_invariants(db, api_accounts)
    out.append(verify(service_bin, database_url))
    return out


def possible_outcomes(amount_cents: int,
                      callbacks: list[dict]) -> list[tuple[tuple[int, str], list]]:
    """Every state a payment of `amount_cents` may end in after its callbacks (the simulator's
    list, in order),
    with the callbacks applied to reach it: each acknowledged one (201) was applied, each refused
    one (another answer) was not, each given up one (no answer) may have been. Returns
    [((amount, status), [(amount, status after), ...])], the first without any given-up one
    (what /truth says). A callback without status keeps the previous one; before any, the
    payment the provider accepted is `pending`."""
    open_ones = [k for k, c in enumerate(callbacks) if c["answer"] is None]
    outcomes = []
    for mask in range(1 << min(len(open_ones), 10)):  # 10 given up in one payment: 1,024 ways
        chosen = {open_ones[b] for b in range(len(open_ones)) if mask >> b & 1}
        amount, status, applied = amount_cents, "pending", []
        for k, c in enumerate(callbacks):
            if c["answer"] == 201 or k in chosen:
                amount, status = c["amount_cents"], c.get("status", status)
                applied.append((amount, status))
        outcomes.append(((amount, status), applied))
    return outcomes


def _applied_history(db) -> dict[int, list[tuple[int, str]]]:
    """The service's `callback_applied` events per payment, oldest first: (amount, status)."""
    history: dict[int, list] = {}
    for mid, amount, status in db.query(
            "SELECT money_movement_id, amount_cents, status FROM events "
            "WHERE kind = 'callback_applied' ORDER BY money_movement_id, event_id"):
        history.setdefault(mid, []).append((amount, status))
    return history


def verify(service_bin: str, database_url: str) -> dict:
    """`payment_service verify` on the database: exit 0 required."""
    done = subprocess.run([service_bin, "verify", "--database-url", database_url],
                          capture_output=True, text=True, timeout=600)
    text = (done.stdout + done.stderr).strip().splitlines()
    return check("payment_service verify exits 0", done.returncode == 0,
                 f"exit {done.returncode}: {text[-1] if text else ''}")
