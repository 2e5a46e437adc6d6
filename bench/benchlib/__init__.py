"""The benchmark suite of payment_service: processes, targets, load tools, scenarios, report.

Only Python's standard library is used (Debian's python3), so the suite runs on a fresh machine
after `scripts/install-deps`.
"""
