"""`udatune ls`: the sweeps in a storage location, with their state, trials and best gain."""

from __future__ import annotations

import math

import typer
from rich import box
from rich.console import Console
from rich.table import Table
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
    console.print(sweep_table(sweeps, storage))
    for sweep in sweeps:
        if sweep.problem:
            console.print(f"[yellow]{sweep.name}[/]: {sweep.problem}", soft_wrap=True)


def sweep_table(sweeps, storage: str) -> Table:
    table = Table(title=f"sweeps in {storage}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "state", "trials", "running", "failed", "best gain", "created"):
        table.add_column(column, no_wrap=True, min_width=len(column), justify="left" if column in ("name", "state", "created") else "right")
    for sweep in sweeps:
        failed = sweep.counts.get("failed", 0) + sweep.counts.get("error", 0)
        running = sweep.counts.get("running", 0) if sweep.state == "running" else 0
        gain = "—" if math.isnan(sweep.best_gain) else f"{sweep.best_gain:+.3f}"
        table.add_row(
            sweep.name, Text(sweep.state, style=STATE_STYLE.get(sweep.state, "dim")), f"{sweep.ended}/{sweep.total}",
            str(running), str(failed), gain, sweep.created[:16].replace("T", " "),
        )
    return table
