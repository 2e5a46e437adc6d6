"""What the scenarios run against.

A `Target` starts "the service under test" and hands back a `Service` with its URL (host and
port), the processes to watch (CPU, RSS) and a way to stop it. Scenarios only use that interface,
so another store or topology is one more `Target` subclass registered in `TARGETS`:

- PostgreSQL: `start()` would create a database (the opaque `state`), pass
  `--database-url postgresql://...` and watch the postgres processes too;
- several instances behind a load balancer: `start()` would start N services on free ports and
  an nginx `upstream` on `port`, and return all their processes.

The provider simulator (`Sim`) and the static-file baseline (`NginxStatic`) live here as well.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import time
from pathlib import Path

from . import http
from .procs import Context, Proc, free_port, log

# Shared by the simulator and the service of one run; never printed.
CREDENTIALS = {
    "PROVIDER_USERNAME": "bench",
    "PROVIDER_PASSWORD": secrets.token_hex(12),
}


@dataclasses.dataclass
class ServiceOptions:
    """Settings a scenario may ask of any target."""
    durable: bool = True
    time_to_settle_seconds: int = 3600
    settle_grace_seconds: int | None = None
    write_batch_max: int | None = None  # None: the service's default (group commit)
    threads: int | None = None  # None: one per core
    flush_delay_us: int = 0  # > 0: every fsync takes this much longer (libfsync_delay.so)


@dataclasses.dataclass
class Service:
    """A running service under test."""
    name: str
    port: int
    procs: list[Proc]
    state: object  # what start() needs to come back on the same data (a SQLite path here)
    startup_s: float  # process start until GET /healthz answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    def rss_kb(self) -> int:
        return sum(p.rss_kb() for p in self.procs)

    def metrics(self) -> dict[str, float]:
        return http.prometheus_values(self.port)

    def stop(self) -> list[int | None]:
        return [p.stop() for p in self.procs]


class Target:
    """Starts the service under test. Subclasses: one per store/topology."""
    key = "abstract"
    description = ""

    def new_state(self, ctx: Context) -> object:
        """Fresh, empty storage for one service (a database)."""
        raise NotImplementedError

    def start(self, ctx: Context, port: int, provider_url: str, options: ServiceOptions,
              state: object | None = None) -> Service:
        """Starts the service on 127.0.0.1:port and returns once GET /healthz answers 200."""
        raise NotImplementedError

    def database_path(self, service: Service) -> Path | None:
        """The SQLite file, for checks straight from the database (None: not SQLite)."""
        return None


def slow_flush_env(ctx: Context, delay_us: int) -> dict:
    """Environment that makes a process's fsync/fdatasync take `delay_us` longer: a slower
    disk than this machine's, for the ablation (tools/fsync_delay)."""
    return {"LD_PRELOAD": str(ctx.bin("libfsync_delay.so")), "FSYNC_DELAY_US": str(delay_us)}


class SqliteTarget(Target):
    """One payment_service process on a SQLite file (the shipped configuration)."""
    key = "sqlite"
    description = "one payment_service process, SQLite (WAL) on the local disk"

    def new_state(self, ctx: Context) -> Path:
        return ctx.tmpdir("sqlite") / "payment_service.db"

    def start(self, ctx, port, provider_url, options, state=None) -> Service:
        db = state if state is not None else self.new_state(ctx)
        argv = [ctx.bin("payment_service"), "--bind", "127.0.0.1", "--port", str(port),
                "--database-url", f"sqlite:{db}", "--provider-url", provider_url,
                "--database-durable", "true" if options.durable else "false",
                "--time-to-settle-seconds", str(options.time_to_settle_seconds),
                "--log-level", "warn"]
        if options.settle_grace_seconds is not None:
            argv += ["--settle-grace-seconds", str(options.settle_grace_seconds)]
        if options.write_batch_max is not None:
            argv += ["--write-batch-max", str(options.write_batch_max)]
        if options.threads is not None:
            argv += ["--threads", str(options.threads)]
        env = dict(CREDENTIALS)
        if options.flush_delay_us:
            env.update(slow_flush_env(ctx, options.flush_delay_us))
        proc = ctx.spawn("payment_service", argv, env=env)
        try:
            startup = http.wait_until_200(port, "/healthz", proc, timeout=60)
        except Exception:
            proc.stop()
            raise
        return Service("payment_service", port, [proc], db, startup)

    def database_path(self, service):
        return service.state


TARGETS = {t.key: t for t in (SqliteTarget(),)}


class Sim:
    """payment_provider_sim on a free port, calling back to `callback_port`."""

    def __init__(self, proc: Proc, port: int):
        self.proc = proc
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, ctx: Context, callback_port: int, no_callbacks: bool = False,
              callbacks: tuple[int, int] | None = None, seed: int = 1,
              threads: int = 1) -> "Sim":
        argv = [ctx.bin("payment_provider_sim"), "--bind", "127.0.0.1", "--port", "0",
                "--callback-port", str(callback_port), "--seed", str(seed),
                "--threads", str(threads), "--log-level", "info"]
        if no_callbacks:
            argv.append("--no-callbacks")
        if callbacks is not None:
            argv += ["--callbacks-min", str(callbacks[0]), "--callbacks-max", str(callbacks[1])]
        proc = ctx.spawn("payment_provider_sim", argv, env=CREDENTIALS)
        deadline = time.monotonic() + 20
        pattern = re.compile(r"listening on http://[0-9.]+:(\d+)")
        while True:
            m = pattern.search(proc.log_path.read_text(errors="replace"))
            if m:
                port = int(m.group(1))
                break
            if not proc.alive() or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"payment_provider_sim did not start:\n{proc.log_tail()}")
            time.sleep(0.01)
        http.wait_until_200(port, "/healthz", proc, timeout=20)
        return cls(proc, port)

    def truth(self) -> dict:
        return http.get_json(self.port, "/truth", timeout=120)

    def stop(self):
        return self.proc.stop()


def _on_a_free_port(target: Target, start, attempts: int):
    """Returns start(port) for the first fresh port that works: a port found free can be taken
    by someone else before the service binds it, so a failed start is retried with a new one."""
    last_error = None
    for _ in range(attempts):
        port = free_port()
        try:
            return start(port)
        except Exception as e:  # most likely the port was taken: try again
            last_error = e
            log(f"service did not start on :{port} ({str(e).splitlines()[0]}); retrying")
    raise RuntimeError(f"could not start {target.key}: {last_error}")


def start_with_sim(ctx: Context, target: Target, options: ServiceOptions,
                   sim_args: dict, state: object | None = None,
                   attempts: int = 4) -> tuple[Sim, Service]:
    """Starts a simulator and the service wired to each other on fresh ports. The service's
    port has to be chosen first (the simulator calls back to it)."""
    def start(port):
        sim = Sim.start(ctx, callback_port=port, **sim_args)
        try:
            return sim, target.start(ctx, port, sim.url, options, state)
        except Exception:
            sim.stop()
            raise
    return _on_a_free_port(target, start, attempts)


def start_on_free_port(ctx: Context, target: Target, provider_url: str,
                       options: ServiceOptions, attempts: int = 4) -> Service:
    """Starts one more service on a fresh port (for a simulator that sends no callbacks, so
    it need not know the port)."""
    return _on_a_free_port(
        target, lambda port: target.start(ctx, port, provider_url, options), attempts)


def restart(ctx: Context, target: Target, service: Service, sim: Sim,
            options: ServiceOptions) -> Service:
    """Stops `service` and starts it again on the same port and data."""
    codes = service.stop()
    if any(c != 0 for c in codes):
        raise RuntimeError(f"{service.name} stopped with {codes}")
    for proc in service.procs:
        ctx.forget(proc)
    return target.start(ctx, service.port, sim.url, options, service.state)


_NGINX_CONF = """\
# Baseline: a static file with the same bytes as the service's answer. One worker per core,
# no access log, keep-alive without a request cap (the service has none either), the file's
# descriptor cached. sendfile off: for a ~2 KB file, read + writev was the fastest of the
# variants tried here (sendfile with or without tcp_nopush, open_file_cache on or off).
daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
    use epoll;
}}
http {{
    access_log off;
    sendfile off;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {prefix}/html;
        location = /accounts {{ try_files /accounts.json =404; }}
    }}
}}
"""


class NginxStatic:
    """nginx on its own prefix and port serving `body` at GET /accounts."""

    def __init__(self, proc: Proc, port: int, conf: str):
        self.proc = proc
        self.port = port
        self.conf = conf

    @classmethod
    def start(cls, ctx: Context, body: bytes, workers: int | None = None) -> "NginxStatic":
        workers = workers or os.cpu_count() or 1
        prefix = ctx.tmpdir("nginx")
        # Workers drop to an unprivileged user when started as root: let them read the file.
        os.chmod(ctx.root, 0o755)
        os.chmod(prefix, 0o755)
        (prefix / "html").mkdir(mode=0o755)
        (prefix / "html" / "accounts.json").write_bytes(body)
        os.chmod(prefix / "html" / "accounts.json", 0o644)
        last = None
        for _ in range(4):
            port = free_port()
            conf = _NGINX_CONF.format(workers=workers, prefix=prefix, port=port)
            (prefix / "nginx.conf").write_text(conf)
            proc = ctx.spawn("nginx", ["nginx", "-p", str(prefix), "-c",
                                       str(prefix / "nginx.conf")], group_watchdog=True)
            try:
                http.wait_until_200(port, "/accounts", proc, timeout=10)
                return cls(proc, port, conf)
            except Exception as e:
                last = e
                proc.stop()
        raise RuntimeError(f"nginx did not start: {last}")

    def stop(self):
        return self.proc.stop()
