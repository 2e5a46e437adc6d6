"""Correctness checks run at the end of each scenario: a fast service that is wrong is no result.

Each check is a dict {"what", "ok", "detail"}.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def check(what: str, ok: bool, detail: str = "") -> dict:
    return {"what": what, "ok": bool(ok), "detail": detail}


def all_2xx(runs: list[dict], what: str) -> dict:
    bad = [r for r in runs if not r["ok"]]
    total = sum(r["requests"] for r in runs)
    if not bad:
        return check(f"{what}: every answer 2xx, no transport error", True,
                     f"{total:,} requests")
    first = bad[0]
    detail = first.get("status_counts") or first.get("errors")
    return check(f"{what}: every answer 2xx, no transport error", False,
                 f"{len(bad)} run(s) with failures, e.g. {detail}")


def balances_equal_truth(service_accounts: list[dict], truth: dict) -> dict:
    """Every account the simulator knows has the service's balance and settled balance."""
    ours = {a["account_id"]: (a["balance"], a["settled_balance"]) for a in service_accounts}
    theirs = {a["account_id"]: (a["balance"], a["settled_balance"]) for a in truth["accounts"]}
    diff = [(k, ours.get(k), v) for k, v in theirs.items() if ours.get(k) != v]
    # Accounts without movements are 0 in the service and absent from the truth.
    extra = [(k, v) for k, v in ours.items() if k not in theirs and v != (0, 0)]
    ok = not diff and not extra and truth.get("in_flight", 0) == 0
    detail = (f"{len(theirs)} account(s), {len(truth.get('movements', []))} movement(s), "
              f"in_flight {truth.get('in_flight')}")
    if diff or extra:
        detail += f"; differences (id, service, truth): {diff[:3]} {extra[:3]}"
    return check("service /accounts equal simulator /truth (balance, settled_balance)", ok, detail)


class SqliteDb:
    """Read-only queries on a SQLite file."""
    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)

    def query(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def size_bytes(self) -> int:
        """The database file with its WAL and shared-memory files."""
        return sum(p.stat().st_size for p in self.path.parent.iterdir()
                   if p.name.startswith(self.path.name))


class PostgresDb:
    """Queries on a PostgreSQL database through `psql -At` (the bench uses only the standard
    library). Values come back as int where they are integers, None for NULL."""
    dialect = "postgres"

    def __init__(self, url: str):
        self.url = url

    def query(self, sql: str) -> list[tuple]:
        from .targets import PgCluster

        def value(text: str):
            if text == "":
                return None
            try:
                return int(text)
            except ValueError:
                return text
        return [tuple(value(v) for v in row) for row in PgCluster.query(self.url, sql)]

    def size_bytes(self) -> int:
        return self.query("SELECT pg_database_size(current_database())")[0][0]


# Per dialect: (newest event per account, newest event per payment). SQLite returns the bare
# columns of the row holding MAX(event_id) (one scan of events); PostgreSQL has DISTINCT ON.
_NEWEST_EVENT = {
    "sqlite": ("""
        SELECT a.account_id FROM accounts a JOIN (
          SELECT account_id, balance_after, settled_balance_after, MAX(event_id)
          FROM events GROUP BY account_id) e USING (account_id)
        WHERE a.balance <> e.balance_after OR a.settled_balance <> e.settled_balance_after""",
               """
        SELECT SUM(p.amount_cents IS NOT e.amount_cents OR p.status IS NOT e.status), COUNT(*)
        FROM payments p JOIN (
          SELECT money_movement_id, amount_cents, status, MAX(event_id)
          FROM events WHERE money_movement_id IS NOT NULL AND kind <> 'callback_late'
          GROUP BY money_movement_id) e USING (money_movement_id)"""),
    "postgres": ("""
        SELECT a.account_id FROM accounts a JOIN (
          SELECT DISTINCT ON (account_id) account_id, balance_after, settled_balance_after
          FROM events ORDER BY account_id, event_id DESC) e USING (account_id)
        WHERE a.balance <> e.balance_after OR a.settled_balance <> e.settled_balance_after""",
                 """
        SELECT SUM(CASE WHEN p.amount_cents IS DISTINCT FROM e.amount_cents
                          OR p.status IS DISTINCT FROM e.status THEN 1 ELSE 0 END), COUNT(*)
        FROM payments p JOIN (
          SELECT DISTINCT ON (money_movement_id) money_movement_id, amount_cents, status
          FROM events WHERE money_movement_id IS NOT NULL AND kind <> 'callback_late'
          ORDER BY money_movement_id, event_id DESC) e USING (money_movement_id)"""),
}


def ledger_invariants(db, service_accounts: list[dict] | None = None,
                      per_payment: bool = True) -> list[dict]:
    """docs/decisions.md invariants, straight from the database (SqliteDb read-only, or
    PostgresDb), after the service's writes."""
    if isinstance(db, (str, Path)):
        db = SqliteDb(Path(db))
    per_account_sql, per_payment_sql = _NEWEST_EVENT[db.dialect]
    out = []
    rows = db.query("""
        SELECT a.account_id, a.balance, a.settled_balance,
               COALESCE(SUM(CASE WHEN p.status <> 'rejected' THEN p.amount_cents END), 0),
               COALESCE(SUM(CASE WHEN p.status = 'posted' THEN p.amount_cents END), 0)
        FROM accounts a LEFT JOIN payments p ON p.account_id = a.account_id
        GROUP BY a.account_id""")
    bad = [r for r in rows if r[1] != r[3] or r[2] != r[4]]
    out.append(check("database: account balances = sums of their payments (invariants 1, 2)",
                     not bad, f"{len(rows)} account(s)" + (f"; bad: {bad[:3]}" if bad else "")))
    bad = db.query(per_account_sql)
    out.append(check("database: account balances = newest event's *_after (invariant 4)",
                     not bad, f"bad: {bad[:3]}" if bad else ""))
    if per_payment:
        n_bad, n = db.query(per_payment_sql)[0]
        total = db.query("SELECT COUNT(*) FROM payments")[0][0]
        out.append(check("database: each payment = its newest event (invariant 3)",
                         (n_bad or 0) == 0 and n == total,
                         f"{total:,} payment(s), {n_bad or 0} differ, {total - n} without "
                         "events"))
    bad = db.query("SELECT account_id, settled_balance, negative_since FROM accounts "
                   "WHERE (settled_balance < 0) <> (negative_since IS NOT NULL)")
    out.append(check("database: negative_since set exactly while settled_balance < 0",
                     not bad, f"bad: {bad[:3]}" if bad else ""))
    if service_accounts is not None:
        stored = {r[0]: (r[1], r[2]) for r in rows}
        api = {a["account_id"]: (a["balance"], a["settled_balance"]) for a in service_accounts}
        out.append(check("GET /accounts = accounts table", stored == api,
                         "" if stored == api else f"api {list(api.items())[:3]} "
                                                  f"db {list(stored.items())[:3]}"))
    return out


def count_payments(db) -> int:
    if isinstance(db, (str, Path)):
        db = SqliteDb(Path(db))
    return db.query("SELECT COUNT(*) FROM payments")[0][0]
