"""`udatune report NAME` in the terminal: rich tables of methods, best configurations and
confirmed gains, with the footnotes that say what each number is."""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.text import Text

from udatune.reports.load import SHARED_WITH, trial_label
from udatune.reports.report import Report, duration, knobs, policy_text
from udatune.reports.stats import ConfirmedGain, Interval
from udatune.reports.tables import Column, fitted_table


def _num(value, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}f}"


def gain_text(interval: Interval) -> Text:
    if interval.n == 0:
        return Text("—", style="dim")
    style = "green" if interval.excludes_zero and interval.mean > 0 else "red" if interval.excludes_zero else ""
    return Text(interval.describe(), style=style)


def verdict(confirmed: ConfirmedGain | None) -> Text:
    if confirmed is None:
        return Text("not run", style="dim")
    mark = "✓" if confirmed.confirmed else "✗"
    return Text(f"{mark} {confirmed.gain.describe()}", style="green" if confirmed.confirmed else "yellow")


def methods_table(report: Report, console: Console):
    title = "methods (validation split; gain = paired with supervised at the same seed and step)"
    columns = [Column("method", whole=True), Column("search", drop=3), Column("trials", whole=True, justify="right", drop=5),
               Column(f"compute ({report.unit})", whole=True, drop=2), Column("best mIoU", whole=True, justify="right"),
               Column("median mIoU", whole=True, justify="right", drop=1), Column("gain [95% CI over seeds]", whole=True),
               Column("confirmed (fresh seeds)", whole=True, drop=4)]
    rows = []
    for m in report.methods:
        gain = Text("baseline", style="dim") if m.method == "supervised" else gain_text(m.gain)
        confirmed = Text("baseline", style="dim") if m.method == "supervised" else verdict(report.confirmed_for(m.method))
        trials = f"{m.trials}" + (f" ({m.consistency_off} off)" if m.consistency_off else "")
        rows.append([m.method, m.searcher, trials, duration(m.compute_seconds), _num(m.best_miou), _num(m.median_miou), gain, confirmed])
    return fitted_table(title, columns, rows, console)


def best_table(report: Report, console: Console):
    columns = [Column("method", whole=True), Column("trial", whole=True, drop=2), Column("seed", whole=True, drop=1), Column("policy", drop=5),
               Column("λ / τ / T", whole=True, drop=3), Column("TSA", drop=4), Column("val mIoU", whole=True), Column("gain", whole=True)]
    rows = []
    for m in report.methods:
        row = m.best
        if row is None:
            rows.append([m.method, "—", "", "", "", "", "", ""])
            continue
        rows.append([m.method, trial_label(row["trial_id"], row.get(SHARED_WITH, "")), str(row["seed"]), policy_text(row), knobs(row),
                     "—" if m.method == "supervised" else str(row.get("tsa", "")), _num(row["val_miou"]),
                     "" if m.method == "supervised" else (f"{row['gain']:+.3f}" if math.isfinite(float(row["gain"])) else "…")])
    return fitted_table("best configuration per method", columns, rows, console)


def confirmed_table(report: Report, console: Console | None = None):
    console = console or Console()
    split = report.confirmed[0].split if report.confirmed else "test"
    columns = [Column("#", whole=True), Column("method", whole=True), Column("from trial", whole=True, drop=2), Column("policy", drop=4),
               Column("λ / τ / T", whole=True, drop=1), Column("seeds", whole=True, drop=3), Column(f"{split} mIoU", whole=True, drop=6),
               Column("gain [95% CI]", whole=True), Column("verdict", whole=True, drop=5)]
    rows = [[c.candidate + (" (default)" if c.default_recipe else ""), c.method, c.source_trial or "—", policy_text(c.row), knobs(c.row),
             str(c.gain.n), _num(c.score.mean), gain_text(c.gain),
             Text("confirmed" if c.confirmed else "not confirmed", style="green" if c.confirmed else "yellow")]
            for c in report.confirmed]
    return fitted_table(f"confirmed: top configurations re-run with fresh seeds, scored on the {split} split", columns, rows, console)


def verdict_line(report: Report) -> Text | None:
    """The one line a user acts on (None before a confirmation has run)."""
    found = report.verdict
    if found is None:
        return None
    good = found.best.confirmed and (found.best.default_recipe or found.beats_default)
    return Text(found.line(), style="bold green" if good else "bold yellow")


def render(report: Report, console: Console) -> Group:
    sweep = report.sweep
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    parts = [
        Text.assemble(("udatune report ", "bold"), (sweep.name, "bold cyan"), f"  {len(sweep.trials)} trials ({counts})"),
        Text(f"{sweep.model_line}; rows from {sweep.source}; folder {sweep.path}", style="dim"),
    ]
    if report.confirmed:  # the confirmed numbers lead: they are the ones to act on
        parts.append(confirmed_table(report, console))
    parts += [methods_table(report, console), best_table(report, console)]
    notes = [
        "gain: per seed the method's best trial minus supervised at that seed; mean and Student-t 95% interval across seeds.",
        f"compute: the workers' busy time (training, evaluation, checkpoints) × reserved {report.unit}s.",
    ]
    if any(m.consistency_off for m in report.methods):
        notes.append("off: UDA trials whose consistency never switched on (no pixel passed τ); they trained as supervised "
                     "runs and do not stand for their policy, so gains and best configurations leave them out.")
    if not report.confirmed:
        notes.append(f"Validation gains are the winners of a noisy race; confirm them: udatune confirm {sweep.name} --top 3")
    parts += [Text(n, style="dim") for n in notes]
    line = verdict_line(report)
    if line is not None:  # the conclusion, last
        parts.append(line)
    return Group(*parts)


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    console.print(render(report, console))
