"""The sweep's results as they arrive: one row per trial, gains paired with the baseline.

`SweepResults` is fed by Tune callback events (in the driver) and read by whoever shows them —
the CLI's live table — and, at the end, turned into a pandas DataFrame (``results.csv``).

The gain of a trial is its val mIoU minus the supervised baseline's val mIoU **at the same
step and seed**: baselines train on the same labeled subset, seed and step budget, so every
gain is paired — also for a trial the scheduler stopped early.

A trial *fails* when its training cannot go on (the loss diverged, its data is unusable): its
last report carries a ``failure`` reason, and the row ends ``failed`` with that ``reason``.
An ``error`` is something else — the trial's process or node crashed — and a resumed sweep
runs such a trial again.

Rows that ended by themselves (``done``, ``stopped``, ``failed``) are final: later events for
them are ignored, so a resumed sweep writes them byte for byte as before (`to_state` /
`from_state` carry every row across a restart).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

SUPERVISED = "supervised"  # baseline: labeled frames only
DEFAULT_UDA = "uda-default"  # baseline: UDA with the default settings of the trial config
BASELINES = (SUPERVISED, DEFAULT_UDA)

FINAL = ("done", "stopped", "failed")  # ended by themselves: never run again
ENDED = (*FINAL, "error")
FAILURE = "failure"  # the key of a trial's last report when its training failed
# A UDA trial whose mask ratio (share of unlabeled pixels passing τ) never reached this in any
# report trained, in effect, without consistency: its score says nothing about its policy.
CONSISTENCY_ON_ABOVE = 0.01
STATE_FORMAT = 1  # of `SweepResults.to_state` (kept in trials.json: see store.py)

COLUMNS = [
    "trial_id", "method", "seed", "policy", "policy_summary", "lambda_u", "tau", "temperature", "tsa",
    "model", "encoder", "encoder_weights", "encoder_weights_sha256", "encoder_lr_mult",
    "step", "val_miou", "best_miou", "gain", "status", "loss", "loss_unsup", "mask_ratio", "peak_mask_ratio", "consistency",
    "setup_seconds", "train_seconds", "eval_seconds", "checkpoint_seconds",
    "started_at", "process_started_at", "worker_started_at", "reported_at", "ended_at", "error_file", "reason",
]


@dataclass(frozen=True)
class TrialRow:
    """One trial as the sweep saw it; `SweepResults` replaces it as events arrive."""

    trial_id: str
    index: int
    method: str
    seed: int
    policy: str
    lambda_u: float
    tau: float
    temperature: float
    tsa: str
    # The model each trial trained (a space's trial: section may change it), and which encoder
    # weights it started from; the hash is the one the driver recorded and the trial verified.
    model: str = ""
    encoder: str = ""
    encoder_weights: str = ""
    encoder_weights_sha256: str = ""
    encoder_lr_mult: float = 1.0
    status: str = "pending"  # pending | running | done | stopped | failed | error
    step: int = 0
    val_miou: float = math.nan
    best_miou: float = math.nan
    last: dict = field(default_factory=dict)  # the last reported metrics
    peak_mask_ratio: float = math.nan  # the highest mask ratio of any report
    history: dict[int, float] = field(default_factory=dict)  # step -> val mIoU
    started_at: float = math.nan  # wall clock (driver) when Tune started the trial
    ended_at: float = math.nan  # ... and when it ended
    error_file: str = ""  # Tune's error file of a trial that errored
    reason: str = ""  # why it failed or errored, in one line
    config: dict = field(default_factory=dict)  # the trial's Tune config: method, seed, overrides, ...

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def consistency(self) -> str:
        """``on``, ``off`` (a UDA trial whose consistency never switched on: see
        `CONSISTENCY_ON_ABOVE`), or ``""`` (supervised, or nothing reported yet)."""
        if self.method == SUPERVISED or math.isnan(self.peak_mask_ratio):
            return ""
        return "on" if self.peak_mask_ratio > CONSISTENCY_ON_ABOVE else "off"

    @property
    def policy_summary(self) -> str:
        if self.method == SUPERVISED:
            return "—"
        return policy_summary(self.policy)


def policy_summary(policy: str, width: int = 48) -> str:
    from udatune.augment.policy import parse_policy

    try:
        text = parse_policy(policy).summary()
    except Exception:  # a row must never break the table; show the raw string instead
        text = policy
    return text if len(text) <= width else text[: width - 1] + "…"


class SweepResults:
    """Rows by trial id, in the order trials were created."""

    def __init__(self, base_config: dict, max_steps: int) -> None:
        self.base = base_config
        self.max_steps = max_steps
        self.rows: dict[str, TrialRow] = {}

    # --- fed by the Tune callback ---------------------------------------------------------------

    def add(self, trial_id: str, config: dict) -> TrialRow:
        if trial_id not in self.rows:
            self.rows[trial_id] = self._row(trial_id, config)
        return self.rows[trial_id]

    def started(self, trial_id: str, config: dict) -> None:
        row = self.add(trial_id, config)
        if row.final:
            return
        self._set(row, status="running", error_file="", reason="", started_at=time.time())

    def result(self, trial_id: str, config: dict, metrics: dict) -> None:
        row = self.add(trial_id, config)
        if row.final:
            return
        if metrics.get(FAILURE):
            self._set(row, status="failed", reason=str(metrics[FAILURE]))
            return
        if "val_miou" not in metrics:
            self._set(row, status="running")
            return
        step = int(metrics.get("step", row.step))
        val_miou = float(metrics["val_miou"])
        peak = row.peak_mask_ratio
        if "mask_ratio" in metrics and math.isfinite(float(metrics["mask_ratio"])):
            ratio = float(metrics["mask_ratio"])
            peak = ratio if math.isnan(peak) else max(peak, ratio)
        self._set(
            row, status="running", step=step, val_miou=val_miou, best_miou=float(metrics.get("best_miou", val_miou)),
            history={**row.history, step: val_miou}, last=dict(metrics), peak_mask_ratio=peak,
        )

    def finished(self, trial_id: str, config: dict, error: bool = False, error_file: str | None = None, reason: str = "") -> None:
        row = self.add(trial_id, config)
        if row.final and not math.isnan(row.ended_at):
            return
        ended_at = time.time()
        if row.status == "failed":
            self._set(row, ended_at=ended_at)
        elif error:
            self._set(row, ended_at=ended_at, status="error", error_file=error_file or "", reason=reason or row.reason)
        else:
            self._set(row, ended_at=ended_at, status="done" if row.step >= self.max_steps else "stopped")

    def keep_only(self, trial_ids: set[str]) -> None:
        """Drop rows of trials the experiment does not know (see `ResultsCallback`)."""
        self.rows = {tid: row for tid, row in self.rows.items() if tid in trial_ids}

    # --- read by the table and the summary ------------------------------------------------------

    def gain(self, row: TrialRow) -> float | None:
        """val mIoU minus the supervised baseline's at the same step and seed (None until the
        baseline has reached that step; None for a failed trial, whose scores do not count)."""
        if row.method == SUPERVISED or row.status == "failed" or math.isnan(row.val_miou):
            return None
        for other in self.rows.values():
            if other.method == SUPERVISED and other.seed == row.seed and row.step in other.history:
                return row.val_miou - other.history[row.step]
        return None

    def ordered(self) -> list[TrialRow]:
        return sorted(self.rows.values(), key=lambda r: r.index)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    def steps_done(self) -> int:
        return sum(row.step for row in self.rows.values())

    def frame(self):
        """One row per trial (pandas DataFrame), with the gain over the paired baseline."""
        import pandas as pd

        records = []
        for row in self.ordered():
            last = row.last
            gain = self.gain(row)
            records.append({
                "trial_id": row.trial_id, "method": row.method, "seed": row.seed, "policy": row.policy,
                "policy_summary": row.policy_summary, "lambda_u": row.lambda_u, "tau": row.tau,
                "temperature": row.temperature, "tsa": row.tsa, "model": row.model, "encoder": row.encoder,
                "encoder_weights": row.encoder_weights, "encoder_weights_sha256": row.encoder_weights_sha256,
                "encoder_lr_mult": row.encoder_lr_mult, "step": row.step, "val_miou": row.val_miou,
                "best_miou": row.best_miou, "gain": math.nan if gain is None else gain, "status": row.status,
                "loss": last.get("loss", math.nan), "loss_unsup": last.get("loss_unsup", math.nan),
                "mask_ratio": last.get("mask_ratio", math.nan), "peak_mask_ratio": row.peak_mask_ratio,
                "consistency": row.consistency,
                "setup_seconds": last.get("setup_seconds", 0.0),
                "train_seconds": last.get("train_seconds", 0.0), "eval_seconds": last.get("eval_seconds", 0.0),
                "checkpoint_seconds": last.get("checkpoint_seconds", 0.0),
                "started_at": row.started_at, "process_started_at": last.get("process_started", math.nan),
                "worker_started_at": last.get("worker_started", math.nan),
                # float: Tune's timestamp is an int, and a column of ints and NaNs (a pending
                # row) would print a finished row's line differently from one of ints alone.
                "reported_at": float(last.get("timestamp", math.nan)), "ended_at": row.ended_at, "error_file": row.error_file,
                "reason": row.reason,
            })
        return pd.DataFrame.from_records(records, columns=COLUMNS)

    # --- across restarts ------------------------------------------------------------------------

    def to_state(self) -> dict:
        """Everything needed to rebuild these rows exactly (JSON-ready; NaN stays NaN)."""
        rows = []
        for row in self.ordered():
            state = dataclasses.asdict(row)
            state["history"] = [[step, miou] for step, miou in row.history.items()]
            state["last"] = {k: v for k, v in row.last.items() if isinstance(v, (int, float, str, bool)) or v is None}
            rows.append(state)
        return {"format": STATE_FORMAT, "base": self.base, "max_steps": self.max_steps, "rows": rows}

    @classmethod
    def from_state(cls, state: dict) -> "SweepResults":
        results = cls(state["base"], int(state["max_steps"]))
        for raw in state["rows"]:
            row = TrialRow(**{**raw, "history": {int(step): float(miou) for step, miou in raw["history"]}})
            results.rows[row.trial_id] = row
        return results

    # --- internals ----------------------------------------------------------------------------

    def _set(self, row: TrialRow, **changes) -> None:
        """Replace a trial's row by a copy with ``changes`` (rows are immutable values)."""
        self.rows[row.trial_id] = dataclasses.replace(row, **changes)

    def _row(self, trial_id: str, config: dict) -> TrialRow:
        from udatune.models.registry import takes_encoder

        sections = {name: dict(self.base.get(name, {})) for name in ("uda", "model", "train")}
        for key, value in config.get("overrides", {}).items():
            section, _, name = key.partition(".")
            if section in sections:
                sections[section][name] = value
        uda, model = sections["uda"], sections["model"]
        smp = takes_encoder(str(model.get("name", "")))
        supervised = uda.get("mode") == "supervised"
        return TrialRow(
            trial_id=trial_id,
            index=int(config.get("index", len(self.rows))),
            method=str(config.get("method", "?")),
            seed=int(config.get("seed", 0)),
            policy="" if supervised else str(uda.get("policy", "")),
            lambda_u=math.nan if supervised else float(uda.get("lambda_u", math.nan)),
            tau=math.nan if supervised else float(uda.get("tau", math.nan)),
            temperature=math.nan if supervised else float(uda.get("temperature", math.nan)),
            tsa=str(uda.get("tsa", "none")),
            model=str(model.get("name", "")),
            encoder=str(model.get("encoder", "")) if smp else "",
            encoder_weights=str(model.get("encoder_weights", "")) if smp else "",
            encoder_weights_sha256=str(model.get("encoder_weights_sha256") or "") if smp else "",
            encoder_lr_mult=float(sections["train"].get("encoder_lr_mult", 1.0)),
            config=dict(config),
        )

