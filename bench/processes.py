"""Server processes for the gateway benchmark: free loopback ports, start and wait until a URL
answers, stop on every exit path, and the CPU time processes have used."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StartFailed(RuntimeError):
    """A server exited or did not answer in time; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(
    name: str,
    command: Sequence[str],
    ready_url: str,
    log: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (output to `log`) until the block ends; ready once `ready_url` answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own commands
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(ready_url):
            if process.poll() is not None:
                raise StartFailed(f"{name} exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise StartFailed(f"{name} did not answer within {timeout_s:.0f} s:\n{_tail(log)}")
            time.sleep(0.2)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from `state` on


def _all_processes() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            found[int(entry.name)] = fields
    return found


def cpu_by_pid(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of `pids` still alive, from /proc."""
    processes = _all_processes()
    return {
        pid: (int(processes[pid][11]) + int(processes[pid][12])) / CLOCK_TICKS
        for pid in pids
        if pid in processes
    }


def reaped_cpu(pid: int) -> float:
    """CPU seconds `pid`'s children used before `pid` reaped them (cutime + cstime), which no
    live process in /proc shows any more; 0 once `pid` is gone."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots (processes started in between count from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def tree(root: int) -> set[int]:
    """`root` and its descendants (uvicorn's worker processes, for instance)."""
    parents = {pid: int(fields[1]) for pid, fields in _all_processes().items()}
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found
