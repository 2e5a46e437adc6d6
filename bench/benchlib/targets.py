"""What the scenarios run against.

A `Target` starts "the service under test" and hands back a `Service` with its URL (host and
port), the processes to watch (CPU, RSS) and a way to stop it. Scenarios only use that interface,
so another store or topology is one more `Target` subclass registered in `TARGETS`:

- `sqlite`: one process on a SQLite file (the shipped default);
- `postgres`: one process on PostgreSQL; `new_state()` creates a fresh database in the run's
  private cluster (`PgCluster`, scripts/pg-test-cluster: loopback, fsync and synchronous_commit
  on), and the postgres processes are watched too;
- `postgres3`: three processes on free ports and one PostgreSQL database, behind an nginx
  `upstream` (round robin, keep-alive, as scripts/run-cluster) listening on `port`; the
  simulator calls back to `port`, i.e. through nginx.

The provider simulator (`Sim`) and the static-file baseline (`NginxStatic`) live here as well.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Callable

from . import http
from .procs import (Context, Proc, free_port, log, pid_cpu_seconds, pid_memory_kb,
                    process_tree)

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
    extra_args: tuple[str, ...] = ()  # more payment_service flags (the crash test's re-sends)


@dataclasses.dataclass
class Service:
    """A running service under test: one or more payment_service instances (`instances`),
    reached at `port` (the instance itself, or the load balancer in front of them)."""
    name: str
    port: int
    procs: list[Proc]  # everything start() started (instances, load balancer); stop() stops them
    state: object  # what start() needs to come back on the same data (SQLite path, database URL)
    startup_s: float  # process start until GET /healthz answered 200 (through `port`)
    instances: list[Proc] | None = None  # the payment_service processes (None: all of procs)
    instance_ports: list[int] | None = None  # their ports (None: [port])
    # Other processes the service needs, watched but not stopped with it: name -> CPU seconds
    # (e.g. "postgres": the database cluster) and name -> memory in KiB.
    extra_cpu: dict[str, Callable[[], float]] = dataclasses.field(default_factory=dict)
    extra_memory: dict[str, Callable[[], int]] = dataclasses.field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_procs(self) -> list[Proc]:
        return self.instances if self.instances is not None else self.procs

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    def rss_kb(self) -> int:
        """RSS of the payment_service process(es), summed."""
        return sum(p.rss_kb() for p in self.service_procs)

    def cpu_watch(self) -> dict[str, Callable[[], float]]:
        """name -> CPU seconds so far, for tools.measured: "service" is payment_service (all
        instances); a load balancer and the database are separate entries."""
        watch = {"service": lambda: sum(p.cpu_seconds() for p in self.service_procs)}
        for p in self.procs:
            if p not in self.service_procs:
                watch[p.name] = p.cpu_seconds
        watch.update(self.extra_cpu)
        return watch

    def memory_kb(self) -> dict[str, int]:
        """name -> KiB now: payment_service RSS (summed over instances), the load balancer's
        RSS (master + workers), and the extras (the database: see PgCluster.memory_kb)."""
        out = {"service": self.rss_kb()}
        for p in self.procs:
            if p not in self.service_procs:
                out[p.name] = p.group_rss_kb()
        for name, f in self.extra_memory.items():
            out[name] = f()
        return out

    def metrics(self) -> dict[str, float]:
        """GET /metrics of every instance, summed series by series (counters add up)."""
        total: dict[str, float] = {}
        for values in self.metrics_per_instance():
            for k, v in values.items():
                total[k] = total.get(k, 0.0) + v
        return total

    def metrics_per_instance(self) -> list[dict[str, float]]:
        return [http.prometheus_values(port) for port in self.instance_ports or [self.port]]

    def stop(self) -> list[int | None]:
        return [p.stop() for p in self.procs]


class Target:
    """Starts the service under test. Subclasses: one per store/topology."""
    key = "abstract"
    description = ""
    # Does the service process itself flush to disk (so that slowing its fsync slows commits)?
    flushes_in_service = False

    def prepare(self, ctx: Context) -> None:
        """Once per run, before the first scenario (e.g. start a database server)."""

    def after_scenario(self, ctx: Context) -> None:
        """After each scenario, once every process of it is stopped (e.g. drop databases)."""

    def close(self) -> None:
        """Once per run, at the end, also after a failure or Ctrl-C."""

    def new_state(self, ctx: Context) -> object:
        """Fresh, empty storage for one service (a database)."""
        raise NotImplementedError

    def start(self, ctx: Context, port: int, provider_url: str, options: ServiceOptions,
              state: object | None = None) -> Service:
        """Starts the service on 127.0.0.1:port and returns once GET /healthz answers 200."""
        raise NotImplementedError

    def database_url(self, state: object) -> str:
        """The service's DATABASE_URL for `state` (what new_state returned), for tools that
        open the same database (bench/seed/seed_accounts)."""
        raise NotImplementedError

    def database_path(self, service: Service) -> Path | None:
        """The SQLite file, for checks straight from the database (None: not SQLite)."""
        return None

    def database(self, service: Service):
        """A read-only handle for checks straight from the database (checks.SqliteDb or
        checks.PostgresDb), or None."""
        return None

    def database_for_state(self, state: object):
        """The same handle for `state` (what new_state returned), also while no service runs."""
        raise NotImplementedError


def slow_flush_env(ctx: Context, delay_us: int) -> dict:
    """Environment that makes a process's fsync/fdatasync take `delay_us` longer: a slower
    disk than this machine's, for the ablation (tools/fsync_delay)."""
    return {"LD_PRELOAD": str(ctx.bin("libfsync_delay.so")), "FSYNC_DELAY_US": str(delay_us)}


def service_command(ctx: Context, port: int, database_url: str, provider_url: str,
                    options: ServiceOptions) -> tuple[list[str], dict]:
    """argv and extra environment of one payment_service process."""
    argv = [ctx.bin("payment_service"), "--bind", "127.0.0.1", "--port", str(port),
            "--database-url", database_url, "--provider-url", provider_url,
            "--database-durable", "true" if options.durable else "false",
            "--time-to-settle-seconds", str(options.time_to_settle_seconds),
            "--log-level", "warn"]
    if options.settle_grace_seconds is not None:
        argv += ["--settle-grace-seconds", str(options.settle_grace_seconds)]
    if options.write_batch_max is not None:
        argv += ["--write-batch-max", str(options.write_batch_max)]
    if options.threads is not None:
        argv += ["--threads", str(options.threads)]
    argv += list(options.extra_args)
    env = dict(CREDENTIALS)
    if options.flush_delay_us:
        env.update(slow_flush_env(ctx, options.flush_delay_us))
    return argv, env


class SqliteTarget(Target):
    """One payment_service process on a SQLite file (the shipped configuration)."""
    key = "sqlite"
    description = "one payment_service process, SQLite (WAL) on the local disk"
    flushes_in_service = True

    def new_state(self, ctx: Context) -> Path:
        return ctx.tmpdir("sqlite") / "payment_service.db"

    def database_url(self, state) -> str:
        return f"sqlite:{state}"

    def start(self, ctx, port, provider_url, options, state=None) -> Service:
        db = state if state is not None else self.new_state(ctx)
        argv, env = service_command(ctx, port, self.database_url(db), provider_url, options)
        proc = ctx.spawn("payment_service", argv, env=env)
        try:
            startup = http.wait_until_200(port, "/healthz", proc, timeout=60)
        except Exception:
            proc.stop()
            raise
        return Service("payment_service", port, [proc], db, startup)

    def database_path(self, service):
        return service.state

    def database(self, service):
        return self.database_for_state(service.state)

    def database_for_state(self, state):
        from .checks import SqliteDb
        return SqliteDb(state)




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
              threads: int = 1, extra: list[str] | None = None) -> "Sim":
        """`extra`: more flags (fault rates, --record-acknowledged: see its README)."""
        argv = [ctx.bin("payment_provider_sim"), "--bind", "127.0.0.1", "--port", "0",
                "--callback-port", str(callback_port), "--seed", str(seed),
                "--threads", str(threads), "--log-level", "info"]
        if no_callbacks:
            argv.append("--no-callbacks")
        if callbacks is not None:
            argv += ["--callbacks-min", str(callbacks[0]), "--callbacks-max", str(callbacks[1])]
        argv += extra or []
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
{comment}{user}daemon off;
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
{settings}{temp_paths}{serve}}}
"""

# Client keep-alive without a request cap (the service has none either).
_KEEPALIVE = """\
    keepalive_timeout 120s;
    keepalive_requests 10000000;
"""


def nginx_conf(*, comment: str, prefix: Path, workers: int, settings: str, serve: str,
               user_root: bool = False) -> str:
    """The nginx.conf of one of the run's nginx processes (the static baseline, the postgres3
    load balancer). `comment`: what it is, one "# " line per line. Then what they share: `user
    root;` with `user_root` (started as root, nginx otherwise runs its workers as an unprivileged
    user), in the foreground under the runner, `workers` worker processes, every file under
    `prefix`, 4096 connections a worker over epoll, and an http block without access log holding
    `settings`, the temporary folders under `prefix` and `serve`, in this order (directive lines
    indented as inside the http block)."""
    temp_paths = "".join(f"    {kind}_temp_path {prefix}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return _NGINX_CONF.format(comment="".join(f"# {line}\n" for line in comment.splitlines()),
                              user="user root;\n" if user_root else "", workers=workers,
                              prefix=prefix, settings=settings, temp_paths=temp_paths,
                              serve=serve)


def static_conf(prefix: Path, workers: int, port: int) -> str:
    """NginxStatic's configuration: GET /accounts answered from {prefix}/html/accounts.json."""
    return nginx_conf(
        comment="""\
Baseline: a static file with the same bytes as the service's answer. One worker per core,
no access log, keep-alive without a request cap (the service has none either), the file's
descriptor cached. sendfile off: for a ~2 KB file, read + writev was the fastest of the
variants tried here (sendfile with or without tcp_nopush, open_file_cache on or off).""",
        prefix=prefix, workers=workers,
        settings=f"""\
    sendfile off;
    tcp_nodelay on;
{_KEEPALIVE}    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
""",
        serve=f"""\
    types {{ }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {prefix}/html;
        location = /accounts {{ try_files /accounts.json =404; }}
    }}
""")


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
            conf = static_conf(prefix, workers, port)
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


class PgCluster:
    """The run's private PostgreSQL cluster (scripts/pg-test-cluster: initdb into a folder of
    the run, loopback, a free port, fsync on and synchronous_commit on as in production). Shared
    by the PostgreSQL targets: started by the first prepare(), stopped by the last close(), also
    after a failure or Ctrl-C; a watchdog stops it if the runner is killed with -9."""

    def __init__(self):
        self.dir: Path | None = None
        self.admin_url = ""
        self.users = 0
        self.databases = 0
        self.settings: dict[str, str] = {}
        self._watchdog: subprocess.Popen | None = None
        self._script = ""
        self._log_copy: Path | None = None

    def acquire(self, ctx: Context) -> None:
        self.users += 1
        if self.dir is not None:
            return
        # As root the cluster runs as the `postgres` user, who must reach its folder.
        os.chmod(ctx.root, 0o755)
        directory = ctx.root / "postgres"
        self._script = str(ctx.repo / "scripts" / "pg-test-cluster")
        log("postgres: starting a private cluster (scripts/pg-test-cluster)")
        done = subprocess.run([self._script, "start", str(directory)], capture_output=True,
                              text=True, timeout=180)
        if done.returncode != 0:
            subprocess.run([self._script, "stop", str(directory)], capture_output=True,
                           timeout=60)
            raise RuntimeError(f"pg-test-cluster start failed: {done.stderr.strip()[-1500:]}")
        self.dir = directory
        self.admin_url = done.stdout.strip().splitlines()[-1]
        self._log_copy = ctx.root / "postgres.log" if ctx.keep_tmp else None
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"'{self._script}' stop '{directory}'")
        self._watchdog = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
                 "wal_level", "shared_buffers", "max_connections", "checkpoint_timeout",
                 "max_wal_size", "wal_sync_method")
        rows = self.query(self.admin_url, "SELECT name, current_setting(name) FROM "
                          "pg_settings WHERE name IN ("
                          + ", ".join(f"'{n}'" for n in names) + ") ORDER BY name")
        self.settings = {r[0]: r[1] for r in rows}
        log(f"postgres: {self.admin_url.rsplit('@', 1)[-1]}, {self.settings}")

    def release(self) -> None:
        self.users -= 1
        if self.users > 0 or self.dir is None:
            return
        directory, self.dir = self.dir, None
        if self._log_copy is not None:
            try:
                self._log_copy.write_bytes((directory / "postgres.log").read_bytes())
            except OSError:
                pass
        done = subprocess.run([self._script, "stop", str(directory)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            log(f"postgres: stop failed: {done.stderr.strip()[-500:]}")
        if self._watchdog is not None:
            try:
                os.killpg(self._watchdog.pid, 9)
            except ProcessLookupError:
                pass
            self._watchdog.wait()
            self._watchdog = None
        log("postgres: cluster stopped")

    @staticmethod
    def query(url: str, sql: str, timeout: float = 600) -> list[list[str]]:
        """Runs SQL with psql (-At: unaligned, tuples only; tab-separated) and returns the
        rows of the last statement as lists of strings."""
        done = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                               url, "-c", sql], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()[:500]} (SQL: {sql[:200]})")
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def create_database(self) -> tuple[str, str]:
        """A fresh, empty database: (name, URL)."""
        self.databases += 1
        name = f"bench_{self.databases}"
        self.query(self.admin_url, f"CREATE DATABASE {name}")
        return name, self.admin_url.rsplit("/", 1)[0] + "/" + name

    def drop_databases(self, names: list[str]) -> None:
        """Drops databases no longer needed and checkpoints, so that the next measurement does
        not pay for this one's dirty pages."""
        for name in names:
            self.query(self.admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if names:
            self.query(self.admin_url, "CHECKPOINT")

    def crash(self) -> None:
        """Stops the cluster the way a crash does (`pg_ctl stop -m immediate`: no checkpoint,
        crash recovery at the next start), keeping its data; `resume()` starts it again."""
        self._control("crash")

    def resume(self) -> None:
        """Starts the cluster again after `crash()`, on the same port and data."""
        self._control("resume")

    def _control(self, action: str) -> None:
        if self.dir is None:
            raise RuntimeError(f"postgres: {action} without a running cluster")
        done = subprocess.run([self._script, action, str(self.dir)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"pg-test-cluster {action} failed: {done.stderr.strip()[-1500:]}")

    def postmaster_pid(self) -> int | None:
        if self.dir is None:
            return None
        try:
            return int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu_seconds(self) -> float:
        """CPU of the whole cluster: the postmaster, every live child (backends, WAL writer,
        checkpointer, autovacuum...) and the children that ended (the postmaster reaps them)."""
        root = self.postmaster_pid()
        if root is None:
            return 0.0
        return pid_cpu_seconds(root, reaped_children=True) + sum(
            pid_cpu_seconds(pid) for pid in process_tree(root) if pid != root)

    def memory_kb(self) -> int:
        """PSS of the cluster's processes, summed: shared_buffers counted once, not once per
        backend as summed RSS would."""
        root = self.postmaster_pid()
        if root is None:
            return 0
        return sum(pid_memory_kb(pid)[1] for pid in process_tree(root))

    def processes(self) -> int:
        root = self.postmaster_pid()
        return 0 if root is None else len(process_tree(root))


PG_CLUSTER = PgCluster()

def load_balancer_conf(prefix: Path, workers: int, port: int, upstreams: list[int],
                       user_root: bool) -> str:
    """The postgres3 target's load balancer on `port`, in front of the instances on `upstreams`."""
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=0;\n" for p in upstreams)
    return nginx_conf(
        comment="""\
Load balancer of the postgres3 target: round robin over the instances, keep-alive to them (as
scripts/run-cluster and tests/e2e/harness.cpp), one worker per core, no access log.""",
        prefix=prefix, workers=workers, user_root=user_root, settings="",
        serve=f"""\
{_KEEPALIVE}    upstream service {{
{servers}        keepalive 64;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
        }}
    }}
""")


class PostgresTarget(Target):
    """`instances` payment_service processes on one fresh PostgreSQL database of the run's
    cluster; with more than one, nginx round robin in front of them on the service's port."""

    def __init__(self, key: str, instances: int, description: str):
        self.key = key
        self.instances = instances
        self.description = description
        self._databases: list[str] = []
        self.lb_conf = ""

    def prepare(self, ctx):
        PG_CLUSTER.acquire(ctx)

    def after_scenario(self, ctx):
        names, self._databases = self._databases, []
        PG_CLUSTER.drop_databases(names)

    def close(self):
        self._databases = []
        PG_CLUSTER.release()

    def new_state(self, ctx) -> str:
        name, url = PG_CLUSTER.create_database()
        self._databases.append(name)
        return url

    def database_url(self, state) -> str:
        return state

    def _watch(self) -> dict:
        return {"extra_cpu": {"postgres": PG_CLUSTER.cpu_seconds},
                "extra_memory": {"postgres (PSS)": PG_CLUSTER.memory_kb}}

    def start(self, ctx, port, provider_url, options, state=None) -> Service:
        url = state if state is not None else self.new_state(ctx)
        if self.instances == 1:
            argv, env = service_command(ctx, port, url, provider_url, options)
            proc = ctx.spawn("payment_service", argv, env=env)
            try:
                startup = http.wait_until_200(port, "/readyz", proc, timeout=60)
            except Exception:
                proc.stop()
                raise
            return Service("payment_service", port, [proc], url, startup, **self._watch())
        ports: list[int] = []
        while len(ports) < self.instances:
            p = free_port()
            if p != port and p not in ports:
                ports.append(p)
        procs: list[Proc] = []
        try:
            for i, p in enumerate(ports):
                argv, env = service_command(ctx, p, url, provider_url, options)
                procs.append(ctx.spawn(f"payment_service-{i + 1}", argv, env=env))
            for proc, p in zip(procs, ports):
                http.wait_until_200(p, "/readyz", proc, timeout=60)
            prefix = ctx.tmpdir("nginx-lb")
            self.lb_conf = load_balancer_conf(prefix, os.cpu_count() or 1, port, ports,
                                              user_root=os.geteuid() == 0)
            (prefix / "nginx.conf").write_text(self.lb_conf)
            lb = ctx.spawn("nginx-lb", ["nginx", "-p", str(prefix), "-c",
                                     str(prefix / "nginx.conf")], group_watchdog=True)
            procs.append(lb)
            http.wait_until_200(port, "/readyz", lb, timeout=10)
        except Exception:
            for proc in procs:
                proc.stop()
            raise
        startup = time.monotonic() - procs[0].started_at
        return Service(f"{self.instances} x payment_service behind nginx", port, procs, url,
                       startup, instances=procs[:-1], instance_ports=ports, **self._watch())

    def database(self, service):
        return self.database_for_state(service.state)

    def database_for_state(self, state):
        from .checks import PostgresDb
        return PostgresDb(state)


TARGETS = {t.key: t for t in (
    SqliteTarget(),
    PostgresTarget("postgres", 1, "one payment_service process on PostgreSQL (the run's private "
                   "cluster: loopback, fsync on, synchronous_commit on)"),
    PostgresTarget("postgres3", 3, "three payment_service processes on one PostgreSQL database, "
                   "behind nginx (round robin, keep-alive); the simulator calls back through "
                   "nginx"),
)}
