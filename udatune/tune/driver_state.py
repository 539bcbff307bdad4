"""Is a sweep running, interrupted or finished? What the driver's ``<sweep>/state.json`` means
(the store, store.py, reads and writes the file).

The driver writes ``running`` when the sweep starts (with its host, pid and the process's start
time), refreshes a heartbeat while it runs, and writes ``finished`` or ``interrupted`` when it
ends — also after Ctrl-C or SIGTERM. A driver killed with SIGKILL writes nothing more, so a
reader does not trust ``running`` as written: on the driver's own host the process must still
be alive (same pid *and* start time, so a reused pid does not count); seen from another host,
the heartbeat must be recent. Otherwise the sweep was interrupted.

No Ray here: `udatune ls` reads these files without starting anything.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

HEARTBEAT_S = 30.0  # how often a running driver refreshes its heartbeat
STALE_AFTER_S = 4 * HEARTBEAT_S  # a heartbeat older than this: the driver is gone
STATES = ("running", "interrupted", "finished")


@dataclass(frozen=True)
class DriverState:
    state: str  # running | interrupted | finished, as the driver last wrote it
    host: str
    pid: int
    pid_started: str  # the process's start time (/proc ticks), "" where unknown
    heartbeat: float  # wall clock of the last write

    @property
    def where(self) -> str:
        return f"pid {self.pid} on {self.host}"


def this_driver(state: str) -> DriverState:
    pid = os.getpid()
    return DriverState(state, socket.gethostname(), pid, process_started(pid), time.time())


def effective_state(state: DriverState | None, now: float | None = None) -> str:
    """running / interrupted / finished as it is now, or "unknown" without a state file."""
    if state is None:
        return "unknown"
    if state.state != "running":
        return state.state
    return "running" if driver_alive(state, now) else "interrupted"


def driver_alive(state: DriverState, now: float | None = None) -> bool:
    if state.host != socket.gethostname():
        return (now or time.time()) - state.heartbeat < STALE_AFTER_S
    started = process_started(state.pid)
    if started == "gone":
        return False
    return not started or not state.pid_started or started == state.pid_started


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "gone" when there is no such
    process, "" when this system cannot tell (then only the pid is compared)."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            # fields[0] is field 3 of stat(5), the state (Z: dead, not yet reaped); 19 is 22, the start time
            return "gone" if fields[0] in ("Z", "X") else fields[19]
        except FileNotFoundError:
            return "gone"
        except (OSError, IndexError):
            return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass
    return ""
