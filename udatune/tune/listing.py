"""The sweeps in a storage location, each with its state, trial counts and best gain.

Read through the sweep store (store.py) — the manifest (what it asked for), the driver's state
(is it alive: driver_state.py) and the trial rows — so listing starts no Ray and works on a
sweep that runs right now on another machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from udatune.errors import ConfigError, UdatuneError
from udatune.tune import store
from udatune.tune.driver_state import DriverState, driver_alive, effective_state
from udatune.tune.results import ENDED
from udatune.tune.storage import absolute, kind


@dataclass(frozen=True)
class SweepSummary:
    name: str
    path: str
    state: str  # running | interrupted | finished | unknown | unreadable
    created: str
    total: int  # trials asked for (searched + baselines)
    counts: dict[str, int] = field(default_factory=dict)  # status -> trials
    best_gain: float = math.nan  # the best method's gain, as the report defines it
    problem: str = ""  # why it is unreadable (names the file)

    @property
    def ended(self) -> int:
        return sum(self.counts.get(status, 0) for status in ENDED)


def list_sweeps(storage: str) -> list[SweepSummary]:
    """Every sweep directly inside ``storage``, oldest first."""
    if kind(absolute(storage)) != "dir":
        raise ConfigError(f"--storage {storage}: no such folder. Pass the folder (or URI) your sweeps were started with, e.g. runs/sweeps.")
    found = [summarize(path) for path in store.sweeps_in(storage)]
    return sorted(found, key=lambda s: (s.created, s.name))


def summarize(path: str) -> SweepSummary:
    from udatune.reports.stats import best_gain

    name = path.rstrip("/").rsplit("/", 1)[-1]
    try:
        manifest = store.read_manifest(path)
        total = manifest.requested_trials
    except UdatuneError as err:
        return SweepSummary(name, path, "unreadable", "", 0, problem=str(err))
    try:
        rows = store.read_rows(path)
    except UdatuneError as err:
        return SweepSummary(name, path, "unreadable", manifest.created, total, problem=str(err))
    return SweepSummary(
        name=name,
        path=path,
        state=with_confirmation(path, manifest, store.read_state(path)),
        created=manifest.created,
        total=total,
        counts=counts(rows),
        best_gain=best_gain(gains(rows)) if rows is not None else math.nan,
    )


def with_confirmation(path: str, manifest: store.Manifest, driver: DriverState | None) -> str:
    """The search's state, but a finished search is only as finished as its confirmation:
    running or interrupted while that is; and when `udatune search --confirm` asked for one
    that has not started, running while the search's own process lives (it starts it next),
    else interrupted (`udatune resume` runs it)."""
    state = effective_state(driver)
    if state != "finished":
        return state
    confirmation = store.confirm_path(path)
    if store.is_sweep(confirmation):
        return effective_state(store.read_state(confirmation))
    if not manifest.settings.get("confirm"):
        return state
    return "running" if driver_alive(driver) else "interrupted"


def counts(rows: store.Rows | None) -> dict[str, int]:
    if rows is None:
        return {}
    return rows.results.counts() if rows.results is not None else rows.table["status"].value_counts().to_dict()


def gains(rows: store.Rows):
    """Method, seed and paired gain per trial: all the gain needs, without building the full
    table (which summarises every policy: slow to import and parse for a listing)."""
    import pandas as pd

    if rows.results is None:
        return rows.table
    results = rows.results
    records = [{"method": r.method, "seed": r.seed, "gain": g if (g := results.gain(r)) is not None else math.nan} for r in results.ordered()]
    return pd.DataFrame.from_records(records, columns=["method", "seed", "gain"])
