"""`udatune ls`: the sweeps in a storage location, with their state, trials and best gain."""

from __future__ import annotations

import math

import typer
from rich.console import Console
from rich.text import Text

from udatune.cli.app import app

STATE_STYLE = {"running": "cyan", "interrupted": "yellow", "finished": "green"}


@app.command(name="ls")
def list_command(
    storage: str = typer.Option("runs/sweeps", help="Where sweeps are kept: a folder, or a URI (s3://, gs://)."),
) -> None:
    """List the sweeps in a storage: running, interrupted (resume with `udatune resume NAME`) or finished."""
    from udatune.tune.listing import list_sweeps

    sweeps = list_sweeps(storage)
    console = Console()
    if not sweeps:
        console.print(f"No sweeps in {storage} yet; `udatune search` starts one.")
        return
    console.print(sweep_table(sweeps, storage, console))
    for sweep in sweeps:
        if sweep.problem:
            console.print(f"[yellow]{sweep.name}[/]: {sweep.problem}", soft_wrap=True)


def sweep_table(sweeps, storage: str, console: Console):
    from udatune.reports.tables import Column, fitted_table

    columns = [Column("name", whole=True), Column("state"), Column("trials", whole=True, justify="right"),
               Column("running", whole=True, justify="right", drop=2), Column("failed", whole=True, justify="right", drop=3),
               Column("best gain", whole=True, justify="right"), Column("created", whole=True, drop=1)]
    rows = []
    for sweep in sweeps:
        failed = sweep.counts.get("failed", 0) + sweep.counts.get("error", 0)
        running = sweep.counts.get("running", 0) if sweep.state == "running" else 0
        gain = "—" if math.isnan(sweep.best_gain) else f"{sweep.best_gain:+.3f}"
        rows.append([sweep.name, Text(sweep.state, style=STATE_STYLE.get(sweep.state, "dim")), f"{sweep.ended}/{sweep.total}",
                     str(running), str(failed), gain, sweep.created[:16].replace("T", " ")])
    return fitted_table(f"sweeps in {storage}", columns, rows, console)
