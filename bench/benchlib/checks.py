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


def ledger_invariants(db_path: Path, service_accounts: list[dict] | None = None,
                      per_payment: bool = True) -> list[dict]:
    """docs/decisions.md invariants, straight from the SQLite file (read-only)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        out = []
        rows = conn.execute("""
            SELECT a.account_id, a.balance, a.settled_balance,
                   COALESCE(SUM(CASE WHEN p.status <> 'rejected' THEN p.amount_cents END), 0),
                   COALESCE(SUM(CASE WHEN p.status = 'posted' THEN p.amount_cents END), 0)
            FROM accounts a LEFT JOIN payments p ON p.account_id = a.account_id
            GROUP BY a.account_id""").fetchall()
        bad = [r for r in rows if r[1] != r[3] or r[2] != r[4]]
        out.append(check("database: account balances = sums of their payments (invariants 1, 2)",
                         not bad, f"{len(rows)} account(s)" + (f"; bad: {bad[:3]}" if bad else "")))
        # SQLite returns the bare columns of the row holding MAX(event_id): one scan of events.
        bad = conn.execute("""
            SELECT a.account_id FROM accounts a JOIN (
              SELECT account_id, balance_after, settled_balance_after, MAX(event_id)
              FROM events GROUP BY account_id) e USING (account_id)
            WHERE a.balance <> e.balance_after OR a.settled_balance <> e.settled_balance_after
            """).fetchall()
        out.append(check("database: account balances = newest event's *_after (invariant 4)",
                         not bad, f"bad: {bad[:3]}" if bad else ""))
        if per_payment:
            n_bad, n = conn.execute("""
                SELECT SUM(p.amount_cents IS NOT e.amount_cents OR p.status IS NOT e.status),
                       COUNT(*)
                FROM payments p JOIN (
                  SELECT money_movement_id, amount_cents, status, MAX(event_id)
                  FROM events WHERE money_movement_id IS NOT NULL AND kind <> 'callback_late'
                  GROUP BY money_movement_id) e USING (money_movement_id)""").fetchone()
            total = conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
            out.append(check("database: each payment = its newest event (invariant 3)",
                             (n_bad or 0) == 0 and n == total,
                             f"{total:,} payment(s), {n_bad or 0} differ, {total - n} without "
                             "events"))
        if service_accounts is not None:
            db = {r[0]: (r[1], r[2]) for r in rows}
            api = {a["account_id"]: (a["balance"], a["settled_balance"]) for a in service_accounts}
            out.append(check("GET /accounts = accounts table", db == api,
                             "" if db == api else f"api {list(api.items())[:3]} "
                                                  f"db {list(db.items())[:3]}"))
        return out
    finally:
        conn.close()


def count_payments(db_path: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
    finally:
        conn.close()
