"""A few plain HTTP/1.1 calls on loopback (http.client: no proxies, no redirects)."""

from __future__ import annotations

import http.client
import json
import time


class HttpError(RuntimeError):
    pass


def request(port: int, method: str, path: str, body: bytes | str | None = None,
            headers: dict | None = None, timeout: float = 30.0,
            host: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def get_json(port: int, path: str, timeout: float = 60.0):
    status, _, data = request(port, "GET", path, timeout=timeout)
    if status != 200:
        raise HttpError(f"GET :{port}{path} answered {status}: {data[:200]!r}")
    return json.loads(data)


def get_all_accounts(port: int, timeout: float = 60.0) -> list:
    """Every account: GET /accounts, then each page its `Link: <...>; rel="next"` names."""
    accounts: list = []
    path: str | None = "/accounts?limit=1000"
    while path:
        status, headers, data = request(port, "GET", path, timeout=timeout)
        if status != 200:
            raise HttpError(f"GET :{port}{path} answered {status}: {data[:200]!r}")
        accounts.extend(json.loads(data))
        link = headers.get("link", "")
        path = link[1:link.index(">")] if link.startswith("<") and 'rel="next"' in link else None
    return accounts


def post_json(port: int, path: str, payload=None, expect=(200, 201)):
    body = json.dumps(payload) if payload is not None else None
    status, _, data = request(port, "POST", path, body=body)
    if status not in expect:
        raise HttpError(f"POST :{port}{path} answered {status}: {data[:200]!r}")
    return json.loads(data) if data else None


def answers_200(port: int, path: str, timeout: float = 1.0) -> bool:
    try:
        status, _, _ = request(port, "GET", path, timeout=timeout)
        return status == 200
    except (OSError, http.client.HTTPException):
        return False


def wait_until_200(port: int, path: str, proc, timeout: float,
                   poll_s: float = 0.002) -> float:
    """Polls until GET path answers 200. Returns the seconds since the process started.
    Raises if the process exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        if answers_200(port, path, timeout=1.0):
            return time.monotonic() - proc.started_at
        if not proc.alive():
            raise HttpError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise HttpError(f"{proc.name}: {path} not 200 after {timeout} s:\n{proc.log_tail()}")
        time.sleep(poll_s)


def prometheus_values(port: int) -> dict[str, float]:
    """GET /metrics as {series: value} (labels kept in the key)."""
    status, _, data = request(port, "GET", "/metrics")
    if status != 200:
        raise HttpError(f"GET /metrics answered {status}")
    values = {}
    for line in data.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            pass
    return values


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def sequential(port: int, method: str, path: str, count: int, max_s: float,
               min_count: int = 3, timeout: float = 600.0) -> dict:
    """`count` requests one after the other on one keep-alive connection, as a client that waits
    for each answer (fewer once `max_s` has passed, but at least `min_count`). Returns every
    latency in ms (in order), the status counts, the size of the first answer's body and its
    headers (lower-case names)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    first_bytes, first_headers = 0, {}
    deadline = time.monotonic() + max_s
    try:
        while len(latencies) < count and (len(latencies) < min_count
                                          or time.monotonic() < deadline):
            t0 = time.perf_counter()
            conn.request(method, path)
            resp = conn.getresponse()
            data = resp.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            if len(latencies) == 1:
                first_bytes = len(data)
                first_headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    return {"latencies_ms": [round(x, 3) for x in latencies], "status_counts": statuses,
            "ok": all(k.startswith("2") for k in statuses), "bytes": first_bytes,
            "headers": first_headers}
