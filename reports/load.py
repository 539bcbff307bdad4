"""Read a sweep from its folder: finished, still running, or interrupted.

A finished sweep has ``results.csv`` (one row per trial, written by `run_sweep` at the end).
A running or interrupted one may not, or its table may be older than what the trials have
reported since (a resumed sweep). Tune's own files are always there, so the trial table is
rebuilt from them whenever ``results.csv`` is missing or stale:

* ``<trial folder>/params.json`` — the trial's config (method, seed, overrides);
* ``<trial folder>/result.json`` — every report, one JSON object per line (val mIoU per step,
  per-class IoU, timings), from which gains are paired exactly as the sweep pairs them;
* ``experiment_state-*.json`` — each trial's status (running, pending, terminated, error).

Rows are built by the sweep's own `SweepResults`, so a rebuilt table has the same columns and
the same paired gains as ``results.csv``. Works on local folders and on URIs pyarrow reads.
Reading a sweep does not import Ray.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from udatune.errors import ConfigError
from udatune.tune.results import ENDED, SweepResults  # noqa: F401  (ENDED: a row that will not change any more)
from udatune.tune.storage import filesystem_and_path, read_bytes
TUNE_STATUS = {  # Tune's trial status -> ours (TERMINATED is done or stopped: decided by step)
    "RUNNING": "running",
    "PENDING": "pending",
    "PAUSED": "pending",
    "ERROR": "error",
}


@dataclass
class TrialFiles:
    """What Tune keeps for one trial."""

    trial_id: str
    folder: str  # the trial folder's name (``003-autoaugment-s0-1a0f6d82``)
    config: dict
    history: list[dict] = field(default_factory=list)  # every report, in order
    mtime: float = 0.0  # newest modification time of the trial's files

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}


@dataclass
class Sweep:
    """A sweep as the reports see it."""

    name: str
    path: str
    manifest: dict
    trials: "object"  # pandas DataFrame, one row per trial (the results.csv columns)
    files: dict[str, TrialFiles]  # trial id -> Tune's files (empty when only results.csv is kept)
    source: str  # where the rows came from, said in the report
    confirm: "object | None" = None  # DataFrame of `udatune confirm` re-runs (see `load_confirm`)

    @property
    def settings(self) -> dict:
        return self.manifest.get("settings", {})

    @property
    def base_config(self) -> dict:
        return self.manifest.get("base_config", {})

    @property
    def model_line(self) -> str:
        """The model the sweep trained, and for an smp model its encoder and encoder weights."""
        model = self.base_config.get("model", {})
        name = model.get("name", "?")
        if name == "unet":
            return f"model unet (width {model.get('width', '?')})"
        if "encoder" not in model or name.startswith("deeplabv3_"):
            return f"model {name}"
        digest = model.get("encoder_weights_sha256")
        return (f"model {name}, encoder {model['encoder']}, weights {model.get('encoder_weights', '?')}"
                + (f" (sha256 {digest[:12]})" if digest else ""))

    @property
    def max_steps(self) -> int:
        return int(self.settings.get("max_steps") or self.base_config.get("train", {}).get("steps", 0))

    @property
    def resources(self) -> dict:
        return self.settings.get("resources", {"workers": 1, "cpus": 1.0, "gpus": 0.0})

    @property
    def space_methods(self) -> list[str]:
        return [s["method"] for s in self.settings.get("spaces", [])]

    @property
    def searchers(self) -> dict[str, str]:
        return {s["method"]: s.get("searcher", "") for s in self.settings.get("spaces", [])}

    def last_metrics(self, trial_id: str) -> dict:
        """The trial's last report (per-class IoU included), or {} when Tune's files are gone."""
        files = self.files.get(trial_id)
        return files.last if files else {}

    def config(self, trial_id: str) -> dict:
        files = self.files.get(trial_id)
        return files.config if files else {}


# --- finding a sweep ------------------------------------------------------------------------------


def resolve_sweep(name: str, storage: str) -> str:
    """NAME in ``storage``, or NAME itself when it is a sweep folder; else a `ConfigError`
    that lists the sweeps there."""
    candidates = [f"{storage.rstrip('/')}/{name}"]
    if "/" in name or "://" in name:
        candidates.insert(0, name if "://" in name else str(Path(name).expanduser().resolve()))
    for path in candidates:
        if _is_file(f"{path}/sweep.json"):
            return path
    known = known_sweeps(storage)
    listing = f"the sweeps there are {', '.join(known)}" if known else "there are no sweeps there yet (`udatune search` starts one)"
    raise ConfigError(f"No sweep named {name!r} in {storage}; {listing}. Pass a sweep name or folder, and --storage if it lives elsewhere.")


def latest_sweep(storage: str) -> str:
    """The most recently created sweep in ``storage`` (by its manifest's ``created`` stamp), so
    `udatune report` right after `udatune search` needs no name."""
    dated = []
    for name in known_sweeps(storage):
        path = f"{storage.rstrip('/')}/{name}"
        created = str(_json(read_bytes(f"{path}/sweep.json"), f"{path}/sweep.json").get("created", ""))
        dated.append((created, name, path))
    if not dated:
        raise ConfigError(f"There are no sweeps in {storage} yet; start one with `udatune search`, or pass --storage where yours live.")
    return max(dated)[2]


def known_sweeps(storage: str) -> list[str]:
    return sorted(info.base_name for info in _list(storage) if info.type == _dir_type() and _is_file(f"{storage.rstrip('/')}/{info.base_name}/sweep.json"))


# --- reading it -----------------------------------------------------------------------------------


def load_sweep(path: str) -> Sweep:
    """The sweep at ``path`` (see `resolve_sweep`) with its trial table."""
    manifest = _json(read_bytes(f"{path}/sweep.json"), f"{path}/sweep.json")
    files = read_trial_files(path)
    base = manifest.get("base_config", {})
    max_steps = int(manifest.get("settings", {}).get("max_steps") or base.get("train", {}).get("steps", 0))
    table_uri = f"{path}/results.csv"
    table_time = _mtime(table_uri)
    table = _read_csv(table_uri) if table_time is not None else None
    newest = max([f.mtime for f in files.values()] + [_mtime(u) or 0.0 for u in _state_files(path)] + [0.0])
    if table is not None and (not files or (table_time >= newest and _covers(table, files))):
        trials, source = table, "results.csv"
    elif files:
        statuses = read_statuses(path)
        trials = rebuild(files, base, max_steps, statuses).frame()
        source = "trial folders (the sweep is running, was interrupted, or results.csv is older than them)"
    else:
        trials, source = None, ""
    if trials is None or len(trials) == 0:
        raise ConfigError(
            f"Sweep {manifest.get('name', path)!r} at {path} has no trials with results yet; "
            "wait until its first evaluation (or check its ray.log if it failed to start)."
        )
    confirm = load_confirm(path, base, max_steps)
    return Sweep(manifest.get("name", Path(path).name), path, manifest, trials, files, source, confirm)


def read_trial_files(path: str) -> dict[str, TrialFiles]:
    """Every trial folder under ``path`` that has Tune's ``params.json``, by trial id."""
    found: dict[str, TrialFiles] = {}
    for info in _list(path):
        if info.type != _dir_type():
            continue
        folder = f"{path}/{info.base_name}"
        params = _info(f"{folder}/params.json")
        if params is None:
            continue
        history, result_time = [], 0.0
        results = _info(f"{folder}/result.json")
        if results is not None:
            history = [json.loads(line) for line in read_bytes(f"{folder}/result.json").decode().splitlines() if line.strip()]
            result_time = _seconds(results.mtime)
        trial_id = history[-1]["trial_id"] if history and "trial_id" in history[-1] else info.base_name.rsplit("-", 1)[-1]
        config = _json(read_bytes(f"{folder}/params.json"), f"{folder}/params.json")
        found[trial_id] = TrialFiles(trial_id, info.base_name, config, history, max(_seconds(params.mtime), result_time))
    return found


def read_statuses(path: str) -> dict[str, dict]:
    """Tune's view of each trial from its newest experiment state: status, start, error file."""
    states = _state_files(path)
    if not states:
        return {}
    state = _json(read_bytes(max(states)), max(states))
    out = {}
    for trial_json, runtime_json in state.get("trial_data", []):
        trial, runtime = json.loads(trial_json), json.loads(runtime_json)
        out[trial["trial_id"]] = {
            "status": trial.get("status", ""),
            "config": trial.get("config", {}),
            "start_time": runtime.get("start_time"),
            "error_file": runtime.get("error_filename") or "",
            "last_result_time": runtime.get("last_result_time"),
        }
    return out


def rebuild(files: dict[str, TrialFiles], base: dict, max_steps: int, statuses: dict[str, dict]) -> SweepResults:
    """The sweep's `SweepResults` replayed from Tune's files, as the live callback built it."""
    results = SweepResults(base, max_steps)
    pending = {tid: s for tid, s in statuses.items() if tid not in files}
    for trial_id, trial in sorted(files.items(), key=lambda item: int(item[1].config.get("index", 0))):
        for report in trial.history:
            results.result(trial_id, trial.config, report)
        row = results.add(trial_id, trial.config)
        status = statuses.get(trial_id, {})
        tune_status = status.get("status") or ("TERMINATED" if row.step >= max_steps else "RUNNING")
        if tune_status == "TERMINATED":
            results.finished(trial_id, trial.config)
        elif tune_status == "ERROR":
            results.finished(trial_id, trial.config, error=True, error_file=status.get("error_file"))
        else:
            row.status = TUNE_STATUS.get(tune_status, "running")
        row.started_at = float(status.get("start_time") or math.nan)
        row.ended_at = float(trial.last.get("timestamp", math.nan)) if row.status in ENDED else math.nan
    for trial_id, status in pending.items():  # created by Tune, not started yet
        row = results.add(trial_id, status["config"])
        row.status = TUNE_STATUS.get(status["status"], "pending")
    return results


# --- files (local or any pyarrow filesystem) --------------------------------------------------------


def _dir_type():
    import pyarrow.fs

    return pyarrow.fs.FileType.Directory


def _list(uri: str) -> list:
    import pyarrow.fs

    try:
        filesystem, path = filesystem_and_path(uri)
        return filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError):
        return []


def _info(uri: str):
    import pyarrow.fs

    filesystem, path = filesystem_and_path(uri)
    info = filesystem.get_file_info(path)
    return None if info.type == pyarrow.fs.FileType.NotFound else info


def _is_file(uri: str) -> bool:
    import pyarrow.fs

    info = _info(uri)
    return info is not None and info.type == pyarrow.fs.FileType.File


def _mtime(uri: str) -> float | None:
    info = _info(uri)
    return None if info is None else _seconds(info.mtime)


def _seconds(mtime) -> float:
    return mtime.timestamp() if mtime is not None else 0.0


def _state_files(path: str) -> list[str]:
    return sorted(f"{path}/{i.base_name}" for i in _list(path) if i.base_name.startswith("experiment_state") and i.base_name.endswith(".json"))


def _covers(frame, files: dict[str, TrialFiles]) -> bool:
    """Whether results.csv has a finished row for every trial that Tune has files for."""
    statuses = dict(zip(frame["trial_id"].astype(str), frame["status"]))
    return all(statuses.get(tid) in ENDED or not f.history for tid, f in files.items())


TEXT_COLUMNS = ("trial_id", "method", "policy", "policy_summary", "tsa", "status", "error_file", "reason")


def _read_csv(uri: str):
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(read_bytes(uri)), dtype={c: str for c in TEXT_COLUMNS})
    present = [c for c in TEXT_COLUMNS if c in frame]
    frame[present] = frame[present].fillna("")
    return frame


def _json(data: bytes, where: str) -> dict:
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where} is not valid JSON ({err.msg}, line {err.lineno}); the sweep folder is damaged.") from None


# --- the confirmation runs (udatune confirm) ---------------------------------------------------------

CONFIRM_FOLDER = "confirm"


def load_confirm(path: str, base: dict, max_steps: int):
    """The re-runs of `udatune confirm` under ``<sweep>/confirm``, one row per trial with its
    ``score``: test mIoU, or val mIoU when the dataset has no test split. None when there are none."""
    folder = f"{path}/{CONFIRM_FOLDER}"
    files = read_trial_files(folder)
    if not files:
        return None
    frame = rebuild(files, base, max_steps, read_statuses(folder)).frame()
    extra = {
        tid: {
            "candidate": str(f.config.get("candidate", "")),
            "source_trial": str(f.config.get("source_trial", "")),
            "test_miou": float(f.last.get("test_miou", math.nan)),
        }
        for tid, f in files.items()
    }
    for column in ("candidate", "source_trial", "test_miou"):
        frame[column] = [extra.get(tid, {}).get(column, "") for tid in frame["trial_id"]]
    has_test = frame["test_miou"].astype(float).notna()
    frame["split"] = ["test" if t else "val" for t in has_test]
    frame["score"] = frame["test_miou"].astype(float).where(has_test, frame["val_miou"])
    return frame
