"""Read a sweep for the reports: finished, still running, or interrupted.

Everything comes from the sweep store (udatune/tune/store.py): the manifest, the trial rows
that the driver rewrites at every event (so a running or interrupted sweep reads as current as
a finished one), and `udatune confirm`'s re-runs. Nothing here parses Tune's own files, and
reading a sweep does not import Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from udatune.errors import ConfigError
from udatune.tune import store
from udatune.tune.results import DEFAULT_UDA

SHARED_WITH = "shared_with"  # column: for a shared first trial, the baseline whose run it is ("" otherwise)
COMPUTE_COLUMNS = ("train_seconds", "eval_seconds", "checkpoint_seconds")


@dataclass(frozen=True)
class Sweep:
    """A sweep as the reports see it."""

    name: str
    path: str
    manifest: store.Manifest
    trials: "object"  # pandas DataFrame, one row per trial (the results.csv columns)
    rows: store.Rows  # where the table came from, with each trial's config and last report
    confirm: "object | None" = None  # DataFrame of `udatune confirm` re-runs (see `store.read_confirmation`)

    @property
    def source(self) -> str:
        """Which file the rows came from (said in the report)."""
        return self.rows.source

    @property
    def settings(self) -> dict:
        return self.manifest.settings

    @property
    def base_config(self) -> dict:
        return self.manifest.base_config

    @property
    def model_line(self) -> str:
        """The model the sweep trained, and for an smp model its encoder and encoder weights."""
        model = self.base_config.get("model", {})
        name = model.get("name", "?")
        if name == "unet":
            # A sweep from before model.depth existed trained depth 4.
            return f"model unet (width {model.get('width', '?')}, depth {model.get('depth', 4)})"
        if "encoder" not in model or name.startswith("deeplabv3_"):
            return f"model {name}"
        digest = model.get("encoder_weights_sha256")
        return (f"model {name}, encoder {model['encoder']}, weights {model.get('encoder_weights', '?')}"
                + (f" (sha256 {digest[:12]})" if digest else ""))

    @property
    def max_steps(self) -> int:
        return self.manifest.max_steps

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
        """The trial's last report (per-class IoU included), or {} when only a table was readable."""
        return self.rows.last_metrics.get(trial_id, {})

    def config(self, trial_id: str) -> dict:
        return self.rows.configs.get(trial_id, {})


def find_sweep(name: str | None, storage: str) -> str:
    """The folder of sweep NAME (or folder) in ``storage``; without a name, the newest there."""
    return store.locate(name, storage) if name else store.latest(storage)


def load_sweep(path: str) -> Sweep:
    """The sweep at ``path`` (see `find_sweep`) with its trial table."""
    manifest = store.read_manifest(path)
    rows = store.read_rows(path)
    if rows is None or len(rows.table) == 0:
        raise ConfigError(
            f"Sweep {manifest.name or path!r} at {path} has no trials with results yet; "
            "wait until its first evaluation (or check its ray.log if it failed to start)."
        )
    name = manifest.name or path.rstrip("/").rsplit("/", 1)[-1]
    return Sweep(name, path, manifest, with_shared_rows(rows.table, manifest.settings), rows, store.read_confirmation(path))


def with_shared_rows(trials, settings: dict):
    """The trial table with each shared method's first trial as a row of the method: a copy of
    the default-UDA baseline's row of the first seed (the run that trial would have repeated),
    marked in `SHARED_WITH` and with its compute at 0 (the baseline spent it, once). The
    method's tables, best and curves then count its first trial, as for any other method."""
    import pandas as pd

    trials = trials.assign(**{SHARED_WITH: ""})
    seeds = settings.get("seeds") or [0]
    source = trials[(trials["method"] == DEFAULT_UDA) & (trials["seed"] == seeds[0])]
    if source.empty or not settings.get("shared"):
        return trials
    zeroed = {c: 0.0 for c in COMPUTE_COLUMNS if c in trials.columns}
    copies = [source.iloc[[0]].assign(method=method, **{SHARED_WITH: DEFAULT_UDA}, **zeroed) for method in settings["shared"]]
    after = trials.index.get_loc(source.index[0]) + 1  # rows run in creation order: the copies go where the run was made
    return pd.concat([trials.iloc[:after], *copies, trials.iloc[after:]], ignore_index=True)


def trial_label(trial_id: str, shared_with: str = "") -> str:
    """A trial's id as the tables show it, saying when the row is a baseline's run, shared."""
    return f"{trial_id} ({shared_with}'s run)" if shared_with else str(trial_id)
