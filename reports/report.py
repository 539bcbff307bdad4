"""A report's content, computed once and shown by the terminal and the HTML renderers.

`build_report` needs only the trial tables (fast). The slower pieces — parameter importance and
the sample predictions, which load checkpoints — are computed by the HTML renderer alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from udatune.reports.load import Sweep
from udatune.reports.stats import (
    ConfirmedGain,
    MethodSummary,
    Verdict,
    best_row,
    compute_unit,
    confirmation_verdict,
    confirmed_gains,
    display_order,
    score_column,
    summarise_methods,
)
from udatune.tune.results import SUPERVISED


@dataclass
class Report:
    sweep: Sweep
    methods: list[MethodSummary]
    confirmed: list[ConfirmedGain]  # empty until `udatune confirm` has run
    order: list[str]  # methods, in the order tables and charts show them
    unit: str  # "CPU" or "GPU": what compute is counted in

    @property
    def counts(self) -> dict[str, int]:
        return self.sweep.trials["status"].value_counts().to_dict()

    @property
    def verdict(self) -> Verdict | None:
        """What the confirmation says to train with (None before one has run)."""
        return confirmation_verdict(self.confirmed)

    def confirmed_for(self, method: str) -> ConfirmedGain | None:
        """The method's best re-run configuration (by mean confirmed gain), if any."""
        mine = [c for c in self.confirmed if c.method == method and math.isfinite(c.gain.mean)]
        return max(mine, key=lambda c: c.gain.mean) if mine else None

    def best_uda(self) -> dict | None:
        """The best non-supervised trial of the search (by paired val gain)."""
        trials = self.sweep.trials
        return best_row(trials[trials["method"] != SUPERVISED], score_column(trials))

    def baseline_for(self, row: dict) -> dict | None:
        """The supervised trial paired with ``row`` (same seed)."""
        trials = self.sweep.trials
        match = trials[(trials["method"] == SUPERVISED) & (trials["seed"] == row["seed"])]
        return None if match.empty else match.iloc[0].to_dict()


def build_report(sweep: Sweep) -> Report:
    trials = sweep.trials
    return Report(
        sweep=sweep,
        methods=summarise_methods(trials, sweep.resources, sweep.space_methods, sweep.searchers),
        confirmed=confirmed_gains(sweep.confirm) if sweep.confirm is not None else [],
        order=display_order(trials, sweep.space_methods),
        unit=compute_unit(sweep.resources),
    )


def duration(seconds: float) -> str:
    """Human compute time: 42 s, 3.5 min, 2.1 h."""
    if not math.isfinite(seconds):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def knobs(row: dict | None) -> str:
    """λ / τ / T of a trial row, or — for supervised."""
    if not row or row.get("method") == SUPERVISED or not math.isfinite(float(row.get("lambda_u", math.nan))):
        return "—"
    return f"{row['lambda_u']:.3g} / {row['tau']:.2f} / {row['temperature']:.2f}"


def policy_text(row: dict | None, width: int = 60) -> str:
    from udatune.tune.results import policy_summary

    if not row or row.get("method") == SUPERVISED or not row.get("policy"):
        return "—"
    return policy_summary(str(row["policy"]), width)
