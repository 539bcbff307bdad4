"""The sweep folder, and the one module that reads and writes it.

A sweep folder (``<storage>/<name>/``) holds, besides Tune's and Ray Train's own files, which
nobody outside Ray reads:

* ``sweep.json`` — the `Manifest`: sweep format, versions, settings, base config, data fingerprint;
* ``state.json`` — the driver's `DriverState` (is it running? see driver_state.py);
* ``trials.json`` — every trial's row with its history (`SweepResults.to_state`), rewritten at
  each event: the record that ``ls``, ``report``, ``resume``, ``confirm`` and ``export-policy``
  all read;
* ``results.csv`` / ``results.parquet`` — the same rows as a table, rewritten as trials end: a
  copy for people and pandas, and the fall-back when ``trials.json`` is damaged;
* ``train/<trial id>/outcome.json`` — how a trial's Train run ended (`Outcome`);
* ``optuna.journal`` — one real Optuna study per searched method (`optuna-dashboard` opens it);
* ``confirm/`` — `udatune confirm`'s re-runs: ``confirm.json`` (`Confirmation`) and the same files
  as a sweep.

A reader that finds a file damaged falls back to another copy of the same rows, and says so in
`Rows.source`; with no copy left it raises a `ConfigError` naming the file. Local folders and
URIs pyarrow understands (s3://, gs://) alike; nothing here imports Ray.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import PurePosixPath

from udatune.errors import ConfigError
from udatune.tune.driver_state import DriverState, this_driver
from udatune.tune.results import SweepResults
from udatune.tune.storage import absolute, filesystem_and_path, kind, read_bytes, subfolders, write_bytes

FORMAT = 1  # of the sweep folder; `udatune resume` restores this format only
MANIFEST = "sweep.json"
STATE = "state.json"
TRIALS = "trials.json"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
TRAIN = "train"
OUTCOME = "outcome.json"
CONFIRM = "confirm"
CONFIRM_MANIFEST = "confirm.json"
OPTUNA_JOURNAL = "optuna.journal"
TEXT_COLUMNS = ("trial_id", "method", "policy", "policy_summary", "tsa", "status", "error_file", "reason", "consistency")
# Columns added to the trial table after format 1 (with what an older table stands for):
# sweeps written before them are read as not knowing.
LATER_COLUMNS = {"peak_mask_ratio": float("nan"), "consistency": ""}


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """``sweep.json``: what the sweep asked for, written once when it starts.

    Every field may be missing in a folder written by an older udatune (or by hand); the
    types of those present are checked when it is read, so a reader never meets a string
    where it expects a mapping.
    """

    format: int | None = None
    udatune_version: str = "unknown"
    git_revision: str | None = None
    ray_version: str = ""
    created: str = ""
    name: str = ""
    path: str = ""
    cluster: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    base_config: dict = field(default_factory=dict)
    data_fingerprint: str | None = None

    def __post_init__(self) -> None:
        for name in ("cluster", "settings", "base_config"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping, got {type(getattr(self, name)).__name__}")

    @classmethod
    def from_json(cls, raw: object) -> "Manifest":
        return cls(**_known_fields(cls, raw))

    @property
    def max_steps(self) -> int:
        """The trials' step budget."""
        return int(self.settings.get("max_steps") or self.base_config.get("train", {}).get("steps", 0))

    @property
    def requested_trials(self) -> int:
        """Searched trials that run (a shared first trial is the default-UDA baseline's run) plus,
        when on, a supervised and a default-UDA baseline per seed."""
        settings = self.settings
        baselines = 2 * len(settings.get("seeds", ())) if settings.get("baselines", True) else 0
        return int(settings.get("trials", 0)) - len(settings.get("shared", ())) + baselines


@dataclass(frozen=True)
class Outcome:
    """``train/<trial id>/outcome.json``: how a trial's Train run ended (done, stopped, failed)
    and its last report, so a trial started again after its run ended does not train twice."""

    outcome: str
    metrics: dict

    def __post_init__(self) -> None:
        if self.outcome not in ("done", "stopped", "failed"):
            raise ValueError(f"outcome must be done, stopped or failed, got {self.outcome!r}")


@dataclass(frozen=True)
class Confirmation:
    """``confirm/confirm.json``: what `udatune confirm` re-runs and why, written before the runs.

    ``settings`` are the confirm settings (top, seeds, resources, max_concurrent); each of
    ``candidates`` is a configuration of the search (name, method, source_trial, overrides,
    score, seed). As with the manifest, a missing field reads as its default.
    """

    created: str = ""
    sweep: str = ""
    settings: dict = field(default_factory=dict)
    candidates: tuple[dict, ...] = ()
    trials: int = 0  # runs planned: (candidates + the baseline) × seeds

    def __post_init__(self) -> None:
        if not isinstance(self.settings, dict):
            raise ValueError(f"settings must be a mapping, got {type(self.settings).__name__}")
        if not all(isinstance(c, dict) for c in self.candidates):
            raise ValueError("candidates must be a list of mappings")

    def to_json(self) -> dict:
        return {"created": self.created, "sweep": self.sweep, "settings": self.settings,
                "candidates": [dict(c) for c in self.candidates], "trials": self.trials}

    @classmethod
    def from_json(cls, raw: object) -> "Confirmation":
        known = _known_fields(cls, raw)
        if "candidates" in known:
            if not isinstance(known["candidates"], list):
                raise ValueError(f"candidates must be a list, got {type(known['candidates']).__name__}")
            known["candidates"] = tuple(known["candidates"])
        if "trials" in known:
            known["trials"] = int(known["trials"])
        return cls(**known)


def _known_fields(record: type, raw: object) -> dict:
    """The keys of a JSON object that are fields of ``record`` (others, from another udatune
    version or a hand edit, are ignored)."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return {k: v for k, v in raw.items() if k in record.__dataclass_fields__}


@dataclass(frozen=True)
class Rows:
    """The trial rows as a reader gets them, and which file they came from."""

    results: SweepResults | None  # None when only a table was readable (no histories, no configs)
    source: str  # the file read, and any damaged one skipped
    loaded_table: object = None  # the table as read from a copy; None: built from ``results`` when asked

    @cached_property
    def table(self):
        """pandas DataFrame, one row per trial (the results.csv columns); built on first use, so
        a reader that needs only counts (`udatune ls`) does not summarise every policy."""
        return self.loaded_table if self.loaded_table is not None else self.results.frame()

    @property
    def configs(self) -> dict[str, dict]:
        """Trial id -> its Tune config (method, seed, overrides, ...), where known."""
        return {tid: row.config for tid, row in self.results.rows.items()} if self.results else {}

    @property
    def last_metrics(self) -> dict[str, dict]:
        """Trial id -> its last report (per-class IoU, timings, test scores), where known."""
        return {tid: row.last for tid, row in self.results.rows.items()} if self.results else {}


# --- finding sweeps ---------------------------------------------------------------------------------


def is_sweep(path: str) -> bool:
    """Whether a sweep lives at this path (its manifest is there)."""
    return kind(f"{path}/{MANIFEST}") == "file"


def sweeps_in(storage: str) -> list[str]:
    """The folders of the sweeps directly inside ``storage`` (by name)."""
    root = absolute(storage).rstrip("/")
    return [f"{root}/{name}" for name in subfolders(root) if is_sweep(f"{root}/{name}")]


def locate(target: str, storage: str) -> str:
    """The folder of the sweep ``target`` names: a folder, or a name inside ``storage`` (or a
    folder in the working directory)."""
    storage = absolute(storage).rstrip("/")
    as_path = "/" in target or "://" in target or target.startswith(("~", "."))
    path = absolute(target).rstrip("/") if as_path else f"{storage}/{target}"
    if not as_path and kind(path) == "missing" and kind(absolute(target)) == "dir":
        path = absolute(target)
    found = kind(path)
    if found == "missing" and as_path:
        raise ConfigError(f"{target}: no such folder. Pass a sweep's folder (<storage>/<name>) or its name; `udatune ls` lists the sweeps in a storage.")
    if found == "missing":
        names = [PurePosixPath(p).name for p in sweeps_in(storage)]
        there = f"the sweeps there are {', '.join(names)}" if names else "there are no sweeps there (`udatune search` starts one)"
        raise ConfigError(
            f"No sweep named {target!r} in {storage}; {there}. Pass a sweep's name (and --storage where it lives) "
            "or its folder; `udatune ls --storage STORAGE` lists them."
        )
    if found != "dir":
        raise ConfigError(f"{target} is a file, not a sweep folder; pass the folder `udatune search` created (<storage>/<name>).")
    if not is_sweep(path):
        raise ConfigError(
            f"{path} is not a udatune sweep: it has no {MANIFEST}. Pass the folder `udatune search` created "
            "(<storage>/<name>); `udatune ls --storage STORAGE` lists the sweeps in a storage."
        )
    return path


def latest(storage: str) -> str:
    """The most recently created sweep in ``storage`` (by its manifest's ``created``), so
    `udatune report` right after `udatune search` needs no name."""
    dated = [(read_manifest(path).created, path) for path in sweeps_in(storage)]
    if not dated:
        raise ConfigError(f"There are no sweeps in {storage} yet; start one with `udatune search`, or pass --storage where yours live.")
    return max(dated)[1]


# --- the manifest and the driver's state ------------------------------------------------------------


def write_manifest(path: str, manifest: Manifest) -> None:
    write_bytes(f"{path}/{MANIFEST}", json.dumps(asdict(manifest), indent=2, default=str).encode())


def read_manifest(path: str) -> Manifest:
    uri = f"{path}/{MANIFEST}"
    try:
        return Manifest.from_json(json.loads(read_bytes(uri)))
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(f"{uri} cannot be read ({err}); the sweep folder is damaged.") from None


def write_state(path: str, state: str) -> None:
    """``running``, ``interrupted`` or ``finished``, stamped with this driver (see driver_state.py)."""
    write_bytes(f"{path}/{STATE}", json.dumps(asdict(this_driver(state)), indent=2).encode())


def read_state(path: str) -> DriverState | None:
    """The state as written, or None when there is none (or it cannot be read: a driver killed
    mid-write leaves nothing half-written, see `write_bytes`, but a hand edit might)."""
    uri = f"{path}/{STATE}"
    if kind(uri) != "file":
        return None
    try:
        return DriverState(**json.loads(read_bytes(uri)))
    except (ValueError, TypeError):
        return None


# --- trial rows ---------------------------------------------------------------------------------


def write_rows(path: str, results: SweepResults, tables: bool = True) -> None:
    """``trials.json`` (every row, for readers and a resume), and with ``tables`` the
    ``results.csv`` / ``results.parquet`` copies. Rows that ended are final, so their lines
    never change."""
    write_bytes(f"{path}/{TRIALS}", json.dumps(results.to_state()).encode())
    if not tables:
        return
    frame = results.frame()
    write_bytes(f"{path}/{RESULTS_CSV}", frame.to_csv(index=False).encode())
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(f"{path}/{RESULTS_PARQUET}", buffer.getvalue())


def read_results(path: str) -> SweepResults | None:
    """The rows of ``trials.json``, or None when the sweep has none yet; a damaged file is a
    `ConfigError` naming it (a resume must not go on from a guess)."""
    uri = f"{path}/{TRIALS}"
    if kind(uri) != "file":
        return None
    try:
        return SweepResults.from_state(json.loads(read_bytes(uri)))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ConfigError(f"{uri} cannot be read ({type(err).__name__}: {err}); the sweep folder is damaged.") from None


def read_rows(path: str) -> Rows | None:
    """The trial rows from the first readable copy — ``trials.json``, ``results.parquet``,
    ``results.csv`` — or None when the sweep has none yet. A damaged copy is skipped (and named
    in `Rows.source`); when every copy there is damaged, a `ConfigError` names them."""
    damaged: list[str] = []
    for name, read in ((TRIALS, _rows_from_trials), (RESULTS_PARQUET, _rows_from_parquet), (RESULTS_CSV, _rows_from_csv)):
        uri = f"{path}/{name}"
        if kind(uri) != "file":
            continue
        try:
            results, table = read(uri)
        except Exception as err:  # noqa: BLE001  (any parser's complaint means: this copy is damaged)
            damaged.append(f"{uri} ({type(err).__name__}: {' '.join(str(err).split())[:120]})")
            continue
        skipped = f"; skipped damaged {', '.join(damaged)}" if damaged else ""
        return Rows(results, name + skipped, table)
    if damaged:
        raise ConfigError(f"The trial rows of {path} cannot be read: {'; '.join(damaged)}. The sweep folder is damaged.")
    return None


def _rows_from_trials(uri: str):
    return SweepResults.from_state(json.loads(read_bytes(uri))), None


def _rows_from_parquet(uri: str):
    import pandas as pd

    return None, _checked(pd.read_parquet(io.BytesIO(read_bytes(uri))))


def _rows_from_csv(uri: str):
    import pandas as pd

    data = read_bytes(uri)
    if not data.endswith(b"\n"):  # pandas ends every table with one; a file cut short does not
        raise ValueError("cut short: it does not end with a complete line")
    frame = pd.read_csv(io.BytesIO(data), dtype={c: str for c in TEXT_COLUMNS})
    present = [c for c in TEXT_COLUMNS if c in frame]
    frame[present] = frame[present].fillna("")
    return None, _checked(frame)


def _checked(frame):
    """A table that lacks the columns every reader needs is a damaged one (e.g. cut short)."""
    from udatune.tune.results import COLUMNS

    for column, unknown in LATER_COLUMNS.items():
        if column not in frame.columns:
            frame = frame.assign(**{column: unknown})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing columns {', '.join(missing[:4])}{'…' if len(missing) > 4 else ''}")
    return frame


# --- outcomes of Train runs ---------------------------------------------------------------------


def outcome_uri(train_storage: str, trial_id: str) -> str:
    return f"{train_storage}/{trial_id}/{OUTCOME}"


def write_outcome(uri: str, outcome: Outcome) -> None:
    write_bytes(uri, json.dumps(asdict(outcome), default=str).encode())


def read_outcome(uri: str) -> Outcome | None:
    """How the trial's Train run ended, or None while it has not."""
    if kind(uri) != "file":
        return None
    return Outcome(**json.loads(read_bytes(uri)))


def checkpoint_uri(path: str, trial_id: str, train_folder: str = TRAIN) -> str | None:
    """The newest ``trial.pt`` (udatune's checkpoint, see train/checkpoint.py) that the trial's
    Ray Train run kept under ``<sweep>/train/<trial id>/checkpoint_*/``, or None."""
    run = f"{path}/{train_folder}/{trial_id}"
    for name in reversed([n for n in subfolders(run) if n.startswith("checkpoint_")]):
        if kind(f"{run}/{name}/trial.pt") == "file":
            return f"{run}/{name}/trial.pt"
    return None


# --- Optuna studies ------------------------------------------------------------------------------


def optuna_journal(path: str) -> str | None:
    """The journal file that keeps the sweep's Optuna studies (one per searched method, named
    after it): ``optuna-dashboard <sweep>/optuna.journal`` shows them. None for a sweep on an
    object store, whose studies stay in the driver's memory (a journal needs a file system with
    locks)."""
    return None if "://" in path else f"{absolute(path)}/{OPTUNA_JOURNAL}"


def optuna_storage(path: str):
    """An Optuna storage on the sweep's journal (None where there is none, see `optuna_journal`)."""
    journal = optuna_journal(path)
    if journal is None:
        return None
    from pathlib import Path

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(journal))


def read_studies(path: str) -> dict:
    """Method -> its Optuna study, as kept in the sweep's journal (empty when there is none)."""
    journal = optuna_journal(path)
    if journal is None or kind(journal) != "file":
        return {}
    import optuna

    storage = optuna_storage(path)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage) for s in optuna.get_all_study_summaries(storage)}


# --- confirmation -------------------------------------------------------------------------------


def confirm_path(path: str) -> str:
    """Where `udatune confirm` keeps its re-runs: a sweep folder of their own, inside the sweep."""
    return f"{path}/{CONFIRM}"


def is_confirmed(path: str) -> bool:
    return kind(f"{confirm_path(path)}/{CONFIRM_MANIFEST}") == "file"


def write_confirm_manifest(path: str, confirmation: Confirmation) -> None:
    write_bytes(f"{confirm_path(path)}/{CONFIRM_MANIFEST}", json.dumps(confirmation.to_json(), indent=2, default=str).encode())


def read_confirm_manifest(path: str) -> Confirmation | None:
    """What the sweep's confirmation re-runs, or None when it was never confirmed; a damaged
    file is a `ConfigError` naming it."""
    uri = f"{confirm_path(path)}/{CONFIRM_MANIFEST}"
    if kind(uri) != "file":
        return None
    try:
        return Confirmation.from_json(json.loads(read_bytes(uri)))
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(f"{uri} cannot be read ({err}); delete the sweep's confirm folder or run `udatune confirm --force`.") from None


def remove_confirmation(path: str) -> None:
    filesystem, folder = filesystem_and_path(confirm_path(path))
    filesystem.delete_dir(folder)


def read_confirmation(path: str):
    """The re-runs as one row per trial with ``candidate``, ``source_trial``, ``test_miou``,
    ``split`` and ``score`` (test mIoU, or val mIoU when the dataset has no test split); None
    when there are none."""
    rows = read_rows(confirm_path(path))
    if rows is None or len(rows.table) == 0:
        return None
    frame = rows.table.copy()
    configs, last = rows.configs, rows.last_metrics
    frame["candidate"] = [str(configs.get(t, {}).get("candidate", "")) for t in frame["trial_id"]]
    frame["source_trial"] = [str(configs.get(t, {}).get("source_trial", "")) for t in frame["trial_id"]]
    frame["default_recipe"] = [bool(configs.get(t, {}).get("default_recipe", False)) for t in frame["trial_id"]]
    frame["test_miou"] = [float(last.get(t, {}).get("test_miou", math.nan)) for t in frame["trial_id"]]
    has_test = frame["test_miou"].notna()
    frame["split"] = ["test" if t else "val" for t in has_test]
    frame["score"] = frame["test_miou"].where(has_test, frame["val_miou"])
    return frame
