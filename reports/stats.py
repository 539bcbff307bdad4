"""The numbers a report stands on: paired gains, their 95% intervals, and per-method summaries.

Every gain is paired: a trial's mIoU minus the supervised baseline's at the same seed (same
labeled subset) and the same step. Seeds are the unit of replication, so an interval is taken
*across seeds*: per seed one gain, then the mean and a Student-t 95% interval of those. With one
seed there is nothing to estimate a spread from, and the report says so ("n/a (1 seed)")
instead of drawing a fake interval.

For a searched method the per-seed gain is the best trial found at that seed — the number a
search promises, and an optimistic one (the winner of a noisy race on the validation split).
`udatune confirm` re-runs the winners with fresh seeds and scores them on the test split;
`confirmed_gains` turns that into gains that can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from udatune.reports.load import SHARED_WITH
from udatune.tune.results import DEFAULT_UDA, SUPERVISED

FINISHED = ("done", "stopped")


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (scipy's, so no table
    of our own to keep right)."""
    from scipy import stats

    if df < 1:
        raise ValueError(f"degrees of freedom must be ≥ 1, got {df}")
    return float(stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds with its 95% interval (``low``/``high`` NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and not math.isnan(self.low)

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return self.has_interval and (self.low > 0 or self.high < 0)

    def describe(self, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "—"
        mean = f"{self.mean:+.{digits}f}"
        if not self.has_interval:
            return f"{mean} (n/a, 1 seed)"
        return f"{mean} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def mean_interval(values) -> Interval:
    """Mean and Student-t 95% interval of the finite values (one per seed)."""
    clean = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(clean)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(clean) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in clean) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


# --- per-method summaries ----------------------------------------------------------------------


@dataclass(frozen=True)
class MethodSummary:
    """One line of the report's method table."""

    method: str
    searcher: str  # "baseline", "optuna (TPE)", "random", ...
    trials: int  # trials with at least one evaluation
    finished: int  # of those, trials that ended (done or stopped early)
    steps: int  # steps trained in total
    compute_seconds: float  # worker busy time × reserved devices (see `compute_seconds`)
    best_miou: float  # best final val mIoU of the method's trials
    median_miou: float
    gain: Interval  # paired val gain over supervised, per seed the method's best trial
    best: dict | None  # the best trial's row (policy, λ, τ, T, ...)
    consistency_off: int = 0  # trials whose consistency never switched on (they do not count)


SEARCHER_NAMES = {"optuna": "Optuna TPE", "random": "random"}


def compute_seconds(trials: pd.DataFrame, resources: dict) -> pd.Series:
    """Device-seconds per trial: the worker's busy time (training, evaluation, checkpoints)
    times the devices it reserved — GPUs when the trial had any, else CPUs, per worker."""
    busy = trials[["train_seconds", "eval_seconds", "checkpoint_seconds"]].fillna(0.0).sum(axis=1)
    per_worker = float(resources.get("gpus") or 0.0) or float(resources.get("cpus") or 1.0)
    return busy * int(resources.get("workers") or 1) * per_worker


def compute_unit(resources: dict) -> str:
    return "GPU" if float(resources.get("gpus") or 0.0) > 0 else "CPU"


def display_order(trials: pd.DataFrame, space_methods: list[str]) -> list[str]:
    """Baselines first, then the searched methods in the sweep's order, then anything else."""
    present = list(dict.fromkeys(trials["method"]))
    ordered = [m for m in (SUPERVISED, DEFAULT_UDA, *space_methods) if m in present]
    return ordered + [m for m in present if m not in ordered]


def score_column(trials: pd.DataFrame) -> str:
    """Rank by paired gain where the sweep has baselines, else by val mIoU."""
    return "gain" if trials["gain"].notna().any() else "val_miou"


def standing(group: pd.DataFrame) -> pd.DataFrame:
    """The trials that may stand for their method: all but UDA trials whose consistency never
    switched on (``consistency`` = off), which trained as supervised runs with a policy label."""
    if "consistency" not in group.columns:
        return group
    return group[group["consistency"] != "off"]


def consistency_off(group: pd.DataFrame) -> int:
    """How many of the trials never switched their consistency on."""
    return int((group["consistency"] == "off").sum()) if "consistency" in group.columns else 0


def rank_trials(group: pd.DataFrame, column: str, full_budget_first: bool = False) -> pd.DataFrame:
    """The trials with a ``column`` score, best first: the one ranking of trials (the report's
    best configuration, the trials `udatune confirm` re-runs, the exported policy).
    ``full_budget_first``: trials that ran every step before those stopped early, whose score
    is from fewer steps. Trials whose consistency never switched on are left out (`standing`)."""
    scored = standing(group).dropna(subset=[column])
    if full_budget_first:
        scored = scored.assign(_full=scored["status"] == "done")
        return scored.sort_values(["_full", column], ascending=[False, False], kind="stable").drop(columns="_full")
    return scored.sort_values(column, ascending=False, kind="stable")


def best_row(group: pd.DataFrame, column: str) -> dict | None:
    ranked = rank_trials(group, column)
    return None if ranked.empty else ranked.iloc[0].to_dict()


def seed_gains(group: pd.DataFrame) -> pd.Series:
    """Per seed, the best paired gain among the method's trials at that seed (trials whose
    consistency never switched on do not count: `standing`)."""
    scored = standing(group).dropna(subset=["gain"])
    return scored.groupby("seed")["gain"].max()


def method_gain(group: pd.DataFrame) -> Interval:
    """A method's gain — the one definition, used by the report, the search's final table and
    `udatune ls`: per seed the method's best trial minus supervised at that seed, then the mean
    and its 95% interval across seeds."""
    return mean_interval(seed_gains(group))


def ranked_methods(trials: pd.DataFrame) -> list[tuple[str, Interval]]:
    """The non-supervised methods by their gain (`method_gain`), best first; methods without a
    gain yet last, in the order they appear."""
    methods = [m for m in dict.fromkeys(trials["method"]) if m != SUPERVISED]
    gains = [(m, method_gain(trials[trials["method"] == m])) for m in methods]
    return sorted(gains, key=lambda item: -item[1].mean if math.isfinite(item[1].mean) else math.inf)


def own_runs(group: pd.DataFrame) -> pd.DataFrame:
    """The trials a method trained itself: all but a shared first trial (the baseline's run,
    whose steps and compute the baseline has already counted)."""
    return group[group[SHARED_WITH] == ""] if SHARED_WITH in group.columns else group


def best_gain(trials: pd.DataFrame) -> float:
    """The gain of the best method (NaN before any has one)."""
    ranked = ranked_methods(trials)
    return ranked[0][1].mean if ranked else math.nan


def summarise_methods(trials: pd.DataFrame, resources: dict, space_methods: list[str], searchers: dict[str, str]) -> list[MethodSummary]:
    trials = trials.assign(compute=compute_seconds(trials, resources))
    summaries = []
    for method in display_order(trials, space_methods):
        group = trials[trials["method"] == method]
        evaluated = group.dropna(subset=["val_miou"])
        baseline = method in (SUPERVISED, DEFAULT_UDA)
        column = "val_miou" if method == SUPERVISED else score_column(trials)
        summaries.append(MethodSummary(
            method=method,
            searcher="baseline" if baseline else SEARCHER_NAMES.get(searchers.get(method, ""), searchers.get(method, "") or "?"),
            trials=len(evaluated),
            finished=int(evaluated["status"].isin(FINISHED).sum()),
            steps=int(own_runs(group)["step"].fillna(0).sum()),
            compute_seconds=float(group["compute"].sum()),
            best_miou=float(evaluated["val_miou"].max()) if len(evaluated) else math.nan,
            median_miou=float(evaluated["val_miou"].median()) if len(evaluated) else math.nan,
            gain=Interval(math.nan, math.nan, math.nan, 0) if method == SUPERVISED else method_gain(group),
            best=best_row(evaluated, column),
            consistency_off=consistency_off(evaluated),
        ))
    return summaries


def best_so_far(group: pd.DataFrame, x: str | None = None) -> list[tuple[float, float]]:
    """(x, best val mIoU so far) over the method's trials in the order they were created; x is
    the trial count, or the running sum of column ``x`` (e.g. compute)."""
    ordered = group.dropna(subset=["val_miou"])
    points, best, total = [], -math.inf, 0.0
    for count, (_, row) in enumerate(ordered.iterrows(), start=1):
        total += float(row[x]) if x else 1.0
        best = max(best, float(row["val_miou"]))
        points.append((total if x else float(count), best))
    return points


# --- confirmed gains (udatune confirm) ---------------------------------------------------------


@dataclass(frozen=True)
class ConfirmedGain:
    """A re-run configuration: its gain over supervised on fresh seeds, on held-out data."""

    candidate: str  # "c1", "c2", ... in the order the search ranked them
    method: str
    source_trial: str
    split: str  # "test", or "val" when the dataset has no test split
    gain: Interval
    score: Interval  # its own mIoU on that split
    row: dict  # policy, λ, τ, T of the configuration
    default_recipe: bool = False  # the sweep's default UDA recipe
    scores: dict = field(default_factory=dict)  # seed -> its score on that seed

    @property
    def confirmed(self) -> bool:
        """A gain whose 95% interval across the fresh seeds lies above zero."""
        return self.gain.excludes_zero and self.gain.mean > 0


def confirmed_gains(confirm: pd.DataFrame) -> list[ConfirmedGain]:
    """Per re-run configuration, paired gains over the re-run supervised baseline per seed."""
    finished = confirm[confirm["status"].isin(FINISHED)]
    baseline = finished[finished["method"] == SUPERVISED].set_index("seed")["score"]
    out = []
    for candidate, group in finished[finished["method"] != SUPERVISED].groupby("candidate", sort=False):
        paired = group[group["seed"].isin(baseline.index)]
        gains = paired["score"].to_numpy() - baseline.loc[paired["seed"]].to_numpy()
        first = group.iloc[0].to_dict()
        out.append(ConfirmedGain(
            candidate=str(candidate), method=str(first["method"]), source_trial=str(first["source_trial"]),
            split=str(first["split"]), gain=mean_interval(gains), score=mean_interval(group["score"]), row=first,
            default_recipe=bool(first.get("default_recipe", False)),
            scores={int(seed): float(score) for seed, score in zip(group["seed"], group["score"])},
        ))
    return sorted(out, key=lambda c: _candidate_number(c.candidate))


@dataclass(frozen=True)
class Verdict:
    """What the confirmation says a user should train with: the search's top recipe (c1) on
    fresh seeds, against supervised and against the default UDA recipe, both paired per seed."""

    best: ConfirmedGain
    default: ConfirmedGain | None  # None when the default recipe was not re-run
    versus_default: Interval  # best minus default per seed (n = 0 when best is the default)

    @property
    def beats_default(self) -> bool:
        return self.versus_default.excludes_zero and self.versus_default.mean > 0

    def line(self) -> str:
        best, n = self.best, self.best.gain.n
        where = f"{n} fresh seed{'s' if n != 1 else ''}, {best.split} split" + (" (no test split)" if best.split == "val" else "")
        name = f"{best.candidate} ({best.method}{', the default recipe' if best.default_recipe else ''})"
        text = f"Best recipe {name}: {best.gain.describe()} mIoU over supervised on {where}"
        if not best.default_recipe and self.default is not None:
            text += f"; against default UDA: {self.versus_default.describe()}"
        if not best.confirmed:
            return text + ". Not confirmed: its gain over supervised is inside the noise."
        if best.default_recipe:
            return text + ". The search's best is the default recipe: train with it."
        if self.default is None:
            return text + "."
        if self.beats_default:
            return text + ". The search beat the default: train with this recipe."
        if self.versus_default.excludes_zero:
            return text + ". It is worse than the default recipe: train with the default."
        return text + ". The search did not beat the default (the difference is inside the noise): the default recipe is the simpler choice."


def confirmation_verdict(gains: list[ConfirmedGain]) -> Verdict | None:
    """The verdict of a confirmation (None before one has run)."""
    if not gains:
        return None
    best = gains[0]
    default = next((g for g in gains if g.default_recipe), None)
    if default is None or default is best:
        return Verdict(best, default, Interval(math.nan, math.nan, math.nan, 0))
    seeds = sorted(set(best.scores) & set(default.scores))
    return Verdict(best, default, mean_interval([best.scores[s] - default.scores[s] for s in seeds]))


def _candidate_number(candidate: str) -> int:
    digits = "".join(ch for ch in candidate if ch.isdigit())
    return int(digits) if digits else 0
