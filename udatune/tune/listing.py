"""The sweeps in a storage location, each with its state, trial counts and best gain.

Read from each sweep's own files — ``sweep.json`` (what it asked for), ``state.json`` (is its
driver alive: driver_state.py) and ``trials.json`` (its rows) — so listing starts no Ray and
works on a sweep that runs right now on another machine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from udatune.errors import ConfigError
from udatune.tune.driver_state import effective_state, read_state
from udatune.tune.results import ENDED, TRIALS_FILE, SweepResults
from udatune.tune.storage import absolute, kind, read_bytes, subfolders


@dataclass(frozen=True)
class SweepSummary:
    name: str
    path: str
    state: str  # running | interrupted | finished | unknown | unreadable
    created: str
    total: int  # trials asked for (searched + baselines)
    counts: dict[str, int] = field(default_factory=dict)  # status -> trials
    best_gain: float = math.nan

    @property
    def ended(self) -> int:
        return sum(self.counts.get(status, 0) for status in ENDED)


def list_sweeps(storage: str) -> list[SweepSummary]:
    """Every sweep directly inside ``storage``, oldest first."""
    root = absolute(storage).rstrip("/")
    if kind(root) != "dir":
        raise ConfigError(f"--storage {storage}: no such folder. Pass the folder (or URI) your sweeps were started with, e.g. runs/sweeps.")
    found = [summarize(f"{root}/{name}") for name in subfolders(root) if kind(f"{root}/{name}/sweep.json") == "file"]
    return sorted(found, key=lambda s: (s.created, s.name))


def summarize(path: str) -> SweepSummary:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    try:
        manifest = json.loads(read_bytes(f"{path}/sweep.json"))
        total = requested_trials(manifest.get("settings", {}))
    except (ValueError, TypeError, AttributeError, OSError):
        return SweepSummary(name, path, "unreadable", "", 0)
    results = trials_of(path)
    return SweepSummary(
        name=name,
        path=path,
        state=effective_state(read_state(path)),
        created=str(manifest.get("created", "")),
        total=total,
        counts=results.counts() if results else {},
        best_gain=results.best_gain() if results else math.nan,
    )


def requested_trials(settings: dict) -> int:
    """Searched trials plus, when on, a supervised and a default-UDA baseline per seed."""
    return int(settings.get("trials", 0)) + (2 * len(settings.get("seeds", ())) if settings.get("baselines", True) else 0)


def trials_of(path: str) -> SweepResults | None:
    uri = f"{path}/{TRIALS_FILE}"
    if kind(uri) != "file":
        return None
    try:
        return SweepResults.from_state(json.loads(read_bytes(uri)))
    except (ValueError, TypeError, KeyError):
        return None
