"""Processes on loopback: free ports, a temporary directory per run, and a registry that stops
every process it started, also when a scenario fails or the run is interrupted.

Each child gets its own process group (so nginx's workers die with their master) and
PR_SET_PDEATHSIG=SIGKILL (so it dies even if this runner is killed with -9).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - glibc is always there on Debian
    _LIBC = None


def _child_setup() -> None:
    # Runs in the child between fork and exec: die with the parent, whatever kills it.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    """A port that was free a moment ago (the caller retries if someone takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Proc:
    """A started child process with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path):
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def rss_kb(self) -> int:
        """VmRSS of the process itself (not of its children), from /proc/PID/status."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"{self.name}: no VmRSS")

    def group_rss_kb(self) -> int:
        """RSS summed over the process group (nginx master + workers)."""
        total = 0
        for pid in group_pids(self.pid):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * _PAGE_KB
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of every live process in this child's process group."""
        return group_cpu_seconds(self.pid)

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the group, wait, then SIGKILL. Returns the exit code (None if it had to be
        killed)."""
        if self.popen.poll() is not None:
            self.signal(signal.SIGKILL)  # stray group members, if any
            return self.popen.returncode
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()
            return None
        finally:
            self.signal(signal.SIGKILL)


def _read_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
    return data[data.rfind(")") + 2:].split()


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _read_stat(int(entry))
        # After comm: state(0) ppid(1) pgrp(2) ...
        if fields is not None and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for pid in group_pids(pgid):
        fields = _read_stat(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of /proc/PID/stat, i.e. 11 and 12 after comm.
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def process_tree(root: int) -> list[int]:
    """`root` and every live descendant of it (by parent pid), e.g. a postmaster and its
    backends and background workers."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _read_stat(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def pid_cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU of one process; with reaped_children, plus that of its children that
    exited and were waited for (cutime, cstime): a postmaster's ended backends."""
    fields = _read_stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLK_TCK


def pid_memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB. PSS divides shared pages among the processes that map
    them, so summing it over a postmaster's processes counts shared_buffers once."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def machine_cpu() -> tuple[float, float]:
    """(busy seconds, total seconds) summed over all cores since boot, from /proc/stat.
    Busy counts user+nice+system+irq+softirq+steal; idle and iowait are not busy."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    values = [int(x) for x in parts[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = user + nice + system + irq + softirq + steal
    return busy / _CLK_TCK, (busy + idle + iowait) / _CLK_TCK


class Context:
    """One benchmark run: a temporary directory and every process started in it."""

    def __init__(self, repo: Path, bin_dir: Path, keep_tmp: bool = False):
        self.repo = repo
        self.bin_dir = bin_dir
        self.keep_tmp = keep_tmp
        self.root = Path(tempfile.mkdtemp(prefix="payment-bench-"))
        self.procs: list[Proc] = []
        self._counter = 0

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def tmpdir(self, name: str) -> Path:
        self._counter += 1
        path = self.root / f"{self._counter:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def spawn(self, name: str, argv: list[str], env: dict | None = None,
              cwd: Path | None = None, stdout_path: Path | None = None,
              group_watchdog: bool = False) -> Proc:
        """Starts a child in its own process group. PR_SET_PDEATHSIG only reaches the child
        itself; for a child that forks workers (nginx), group_watchdog adds a small shell that
        kills the whole group once this runner is gone, even after a kill -9."""
        self._counter += 1
        log_path = self.root / f"{self._counter:02d}-{name}.log"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        err = open(log_path, "wb")
        out = open(stdout_path, "wb") if stdout_path else err
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=full_env, cwd=cwd, start_new_session=True,
                                     preexec_fn=_child_setup)
        finally:
            err.close()
            if stdout_path:
                out.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        if group_watchdog:
            script = (f"while kill -0 {os.getpid()} 2>/dev/null && kill -0 {popen.pid} "
                      f"2>/dev/null; do sleep 1; done; kill -9 -{popen.pid} 2>/dev/null")
            watchdog = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
            self.procs.append(Proc(f"{name} watchdog", watchdog, log_path))
        return proc

    def forget(self, proc: Proc) -> None:
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=5)
            except Exception as e:  # keep stopping the others
                log(f"stopping {proc.name}: {e}")
        self.procs.clear()

    def close(self) -> None:
        self.stop_all()
        if self.keep_tmp:
            log(f"temporary files kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def run_tool(ctx: Context, name: str, argv: list[str], timeout: float,
             env: dict | None = None) -> tuple[int, str, str, float, float]:
    """Runs a load tool to completion. Returns (exit code, stdout, stderr, wall seconds, CPU
    seconds of the tool itself from wait4's rusage)."""
    out_path = ctx.root / f"{name}-{time.monotonic_ns()}.out"
    err_path = out_path.with_suffix(".err")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=full_env, start_new_session=True, preexec_fn=_child_setup)
        proc = Proc(name, popen, err_path)
        ctx.procs.append(proc)
        deadline = started + timeout
        status = None
        rusage = None
        try:
            while True:
                pid, status, rusage = os.wait4(popen.pid, os.WNOHANG)
                if pid != 0:
                    break
                if time.monotonic() > deadline:
                    proc.signal(signal.SIGKILL)
                    _, status, rusage = os.wait4(popen.pid, 0)
                    raise RuntimeError(f"{name} did not finish within {timeout:.0f} s")
                time.sleep(0.005)
        finally:
            ctx.forget(proc)
            popen.returncode = os.waitstatus_to_exitcode(status) if status is not None else -1
        wall = time.monotonic() - started
    cpu = rusage.ru_utime + rusage.ru_stime
    return (popen.returncode, out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"), wall, cpu)
