"""A write probe for the scale scenario (scenarios.Scale): one keep-alive connection sending one
write after the other until SIGTERM, and one line per answered request on stdout:

    START_MONOTONIC_S LATENCY_MS STATUS

START is time.monotonic() (CLOCK_MONOTONIC, the same clock as the bench runner's), so the runner
can tell which writes overlapped a PATCH /accounts/recalculate it timed. A process of its own:
in the runner, reading a large answer would hold the GIL and delay the probe's own timing.

    cd bench && python3 -m benchlib.probe callbacks PORT IDS_FILE   # POST callbacks, ids in turn
    cd bench && python3 -m benchlib.probe accounts PORT [PAUSE_S]   # POST /accounts, PAUSE_S apart
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import sys
import time


def main(argv: list[str]) -> int:
    mode, port = argv[0], int(argv[1])
    ids = []
    pause_s = 0.0
    if mode == "callbacks":
        ids = [int(x) for x in open(argv[2]).read().split() if x]
    elif mode == "accounts":
        pause_s = float(argv[2]) if len(argv) > 2 else 0.0
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    rng = random.Random(7)
    out = sys.stdout
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while not stop:
        if mode == "callbacks":
            # As loadgen's callbacks: ids round-robin, statuses pending then posted per round.
            body = json.dumps({"money_movement_id": ids[i % len(ids)],
                               "amount_cents": rng.choice((-1, 1)) * rng.randint(1, 100000),
                               "status": "pending" if (i // len(ids)) % 2 == 0 else "posted"})
            path = "/money_movement_request_callback"
        else:
            body, path = None, "/accounts"
        headers = {"Content-Type": "application/json"} if body else {}
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            if stop:
                break
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        out.write(f"{t0:.6f} {(time.monotonic() - t0) * 1000:.3f} {status}\n")
        i += 1
        if pause_s:
            time.sleep(pause_s)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
