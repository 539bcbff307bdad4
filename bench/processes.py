"""CPU time used by each kind of process while a command runs (Linux, from /proc).

A background thread reads every process's CPU time (user + system) and command line twice a
second and keeps the last reading per process; at the end the readings are summed by kind:
Ray names its actor processes ``ray::ClassName`` (a Train worker is ``ray::RayTrainWorker``,
a Train controller ``ray::TrainController``), its daemons by their executables. A process
that exits between two readings loses at most its last half second, so short-lived processes
are slightly under-counted.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def kind_of(cmdline: str) -> str:
    """A short name for the kind of process behind a command line."""
    if cmdline.startswith("ray::"):
        name = re.split(r"[.\s]", cmdline[5:], maxsplit=1)[0]
        return f"ray::{name}" if name else "ray::?"
    program = " ".join(cmdline.split()[:3])  # the executable, and the script an interpreter runs
    for daemon in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "runtime_env"):
        if daemon in program:
            return daemon
    if "udatune" in program and "search" in program:
        return "udatune search (driver)"
    return "other"


class ProcessSampler:
    """``with ProcessSampler() as s: ...`` then ``s.by_kind()``: CPU seconds per kind of
    process started after the sampler (the machine's older processes are left out)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.readings: dict[int, tuple[str, float]] = {}
        self.old: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ProcessSampler":
        self.old = set(self._pids())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _pids(self) -> list[int]:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for pid in self._pids():
            if pid in self.old:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
            previous = self.readings.get(pid)
            label = kind_of(cmdline) if cmdline else (previous[0] if previous else "other")
            if previous and label in ("other", "ray::IDLE"):
                label = previous[0] if previous[0] not in ("other", "ray::IDLE") else label
            self.readings[pid] = (label, seconds)

    def by_kind(self) -> dict[str, tuple[int, float]]:
        """kind -> (processes, CPU seconds), most CPU first."""
        totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
        for label, seconds in self.readings.values():
            totals[label][0] += 1
            totals[label][1] += seconds
        return dict(sorted(((k, (n, s)) for k, (n, s) in totals.items()), key=lambda item: -item[1][1]))
