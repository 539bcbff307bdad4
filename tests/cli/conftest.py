"""Fixtures for tests that run udatune and Ray as real processes, and kill them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest


class Processes:
    """Starts processes in their own session and, at teardown, kills each one with everything
    it started — also what outlived it (Ray's agents stay in the session of the driver that
    started them) — and every process that names this test's Ray folder. Nothing else: other
    Rays on the machine are left alone."""

    def __init__(self, ray_tmp: Path) -> None:
        self.ray_tmp = ray_tmp
        self.started: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=str(self.ray_tmp), **extra)
        return env

    def start(self, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.started.append(process)
        return process

    def udatune(self, args: list[str], log: Path, **env: str) -> subprocess.Popen:
        return self.start([sys.executable, "-c", "from udatune.cli.app import run; run()", *args], log, self.env(**env))

    def kill_tree(self, pid: int) -> None:
        """SIGKILL a process and all its descendants (a Ray node: its raylet and workers)."""
        for victim in [pid, *descendants(pid)]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_leftovers(self) -> None:
        """SIGKILL every process that names this test's Ray folder: what a killed driver's Ray
        left running (its workers may still write a checkpoint for a few seconds)."""
        marker = str(self.ray_tmp)
        for pid in all_pids():
            if pid != os.getpid() and marker in cmdline(pid):
                self.kill_tree(pid)

    def cleanup(self) -> None:
        for process in self.started:
            self.kill_tree(process.pid)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.kill_leftovers()
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for other in all_pids():
        try:
            ppid = int(Path(f"/proc/{other}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(other)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


@pytest.fixture
def processes():
    # A short folder: Ray's socket paths under it must stay below the 107-character limit.
    ray_tmp = Path(tempfile.mkdtemp(prefix="udt-", dir="/tmp"))
    keeper = Processes(ray_tmp)
    try:
        yield keeper
    finally:
        keeper.cleanup()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture
def wait_until() -> Callable:
    def wait(condition: Callable[[], object], timeout: float, what: str, every: float = 0.2, process: subprocess.Popen | None = None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = condition()
            if value:
                return value
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the process ended (code {process.returncode}) while waiting for {what}")
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    return wait


@pytest.fixture
def synthetic_cache(tmp_path_factory, monkeypatch) -> Path:
    """One synthetic dataset for every test of the session, and no RAY_ADDRESS leaking in."""
    cache = tmp_path_factory.getbasetemp() / "synthetic-cache"
    monkeypatch.setenv("UDATUNE_CACHE", str(cache))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return cache


# One tiny real sweep, searched and confirmed, shared by the search and the report tests (each
# real sweep costs a Ray start and a trial start per trial: about a minute and a half here).
CONFIRMED_SWEEP_ARGS = [
    "search", "--trials", "2", "--seeds", "0,1", "--name", "tiny", "--confirm", "1", "--confirm-seeds", "100",
    "--max-steps", "4", "--grace-period", "2", "--num-cpus", "2",
    "--set", "train.eval_every=2", "--set", "train.log_every=1", "--set", "train.batch_size=2",
    "--set", "train.unlabeled_batch_size=2", "--set", "model.width=4", "--set", "uda.rampup_steps=2",
    "--set", "uda.tau=0",  # in 4 steps no pixel passes a higher τ: consistency would never switch on
]


class ConfirmedSweep:
    """`udatune search --trials 2 --seeds 0,1 --confirm 1` as run once: where it is, its exit
    code and what it printed."""

    def __init__(self, storage: Path, cache: Path, code: int, out: str) -> None:
        self.storage, self.cache, self.code, self.out = storage, cache, code, out

    @property
    def path(self) -> Path:
        return self.storage / "tiny"


@pytest.fixture(scope="session")
def confirmed_sweep(tmp_path_factory) -> ConfirmedSweep:
    import contextlib
    import io

    from udatune.cli.app import main

    storage = tmp_path_factory.mktemp("confirmed-sweeps")
    cache = tmp_path_factory.getbasetemp() / "synthetic-cache"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("UDATUNE_CACHE", str(cache))
        patch.delenv("RAY_ADDRESS", raising=False)
        code = main([*CONFIRMED_SWEEP_ARGS, "--storage", str(storage)])
    return ConfirmedSweep(storage, cache, code, printed.getvalue())
