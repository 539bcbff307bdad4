"""`udatune report NAME` in the terminal: rich tables of methods, best configurations and
confirmed gains, with the footnotes that say what each number is."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from udatune.reports.report import Report, duration, knobs, policy_text
from udatune.reports.stats import ConfirmedGain, Interval


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


def methods_table(report: Report) -> Table:
    table = Table(title="methods (validation split; gain = paired with supervised at the same seed and step)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    headers = ("method", "search", "trials", f"compute ({report.unit})", "best mIoU", "median mIoU",
               "gain [95% CI over seeds]", "confirmed (fresh seeds)")
    for header in headers:
        table.add_column(header, no_wrap=header == "method", justify="right" if header in ("trials", "best mIoU", "median mIoU") else "left")
    for m in report.methods:
        gain = Text("baseline", style="dim") if m.method == "supervised" else gain_text(m.gain)
        confirmed = Text("baseline", style="dim") if m.method == "supervised" else verdict(report.confirmed_for(m.method))
        table.add_row(m.method, m.searcher, f"{m.trials}", duration(m.compute_seconds), _num(m.best_miou),
                      _num(m.median_miou), gain, confirmed)
    return table


def best_table(report: Report) -> Table:
    table = Table(title="best configuration per method", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("method", "trial", "seed", "policy", "λ / τ / T", "TSA", "val mIoU", "gain"):
        table.add_column(header, no_wrap=header != "policy", overflow="fold")
    for m in report.methods:
        row = m.best
        if row is None:
            table.add_row(m.method, "—", "", "", "", "", "", "")
            continue
        table.add_row(m.method, str(row["trial_id"]), str(row["seed"]), policy_text(row), knobs(row),
                      "—" if m.method == "supervised" else str(row.get("tsa", "")), _num(row["val_miou"]),
                      "" if m.method == "supervised" else (f"{row['gain']:+.3f}" if math.isfinite(float(row["gain"])) else "…"))
    return table


def confirmed_table(report: Report) -> Table:
    split = report.confirmed[0].split if report.confirmed else "test"
    table = Table(title=f"confirmed: top configurations re-run with fresh seeds, scored on the {split} split",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("#", "method", "from trial", "policy", "λ / τ / T", "seeds", f"{split} mIoU", "gain [95% CI]", ""):
        table.add_column(header, no_wrap=header in ("#", "method"), overflow="fold")
    for c in report.confirmed:
        table.add_row(c.candidate, c.method, c.source_trial, policy_text(c.row), knobs(c.row), str(c.gain.n),
                      _num(c.score.mean), gain_text(c.gain), Text("confirmed" if c.confirmed else "not confirmed",
                                                                style="green" if c.confirmed else "yellow"))
    return table


def render(report: Report) -> Group:
    sweep = report.sweep
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    parts = [
        Text.assemble(("udatune report ", "bold"), (sweep.name, "bold cyan"), f"  {len(sweep.trials)} trials ({counts})"),
        Text(f"{sweep.model_line}; rows from {sweep.source}; folder {sweep.path}", style="dim"),
        methods_table(report),
        best_table(report),
    ]
    if report.confirmed:
        parts.append(confirmed_table(report))
    notes = [
        "gain: per seed the method's best trial minus supervised at that seed; mean and Student-t 95% interval across seeds.",
        f"compute: the workers' busy time (training, evaluation, checkpoints) × reserved {report.unit}s.",
    ]
    if not report.confirmed:
        notes.append(f"Validation gains are the winners of a noisy race; confirm them: udatune confirm {sweep.name} --top 3")
    parts += [Text(n, style="dim") for n in notes]
    return Group(*parts)


def print_report(report: Report, console: Console | None = None) -> None:
    (console or Console()).print(render(report))
