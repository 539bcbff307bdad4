"""`udatune resume NAME|PATH`: carry on a sweep that was stopped (Ctrl-C, SIGTERM, SIGKILL, a
crash), with the same live table as `udatune search`.

Everything is checked before Ray starts or a file is written: the sweep exists and can be
resumed (udatune/tune/restore.py), its dataset is the one it started with, and the cluster
answers.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from udatune.cli.app import app


@app.command()
def resume(
    sweep: str = typer.Argument(..., metavar="NAME|PATH", help="The sweep: its name in --storage, or its folder."),
    storage: str = typer.Option("runs/sweeps", help="Where sweeps are kept: a folder, or a URI (s3://, gs://)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto, host:port or ray://host:port. Unset: RAY_ADDRESS, else a private local Ray."),
    num_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray (default: all cores)."),
) -> None:
    """Resume an interrupted sweep: finished trials are kept, interrupted ones continue from their last checkpoint."""
    resume_sweep(sweep, storage, address, num_cpus)


def resume_sweep(sweep: str, storage: str, address: str | None, num_cpus: int | None) -> None:
    """What `udatune resume` and `udatune search --resume` do."""
    from udatune.cli.search_command import run_with_view
    from udatune.data.registry import build_data
    from udatune.errors import DataError
    from udatune.tune import restore
    from udatune.tune.cluster import check_reachable, resolve_address
    from udatune.tune.settings import summary_line

    plan = restore.prepare_resume(sweep, storage)
    console = Console()
    if plan.nothing_to_do:
        console.print(f"Sweep {plan.settings.name} at {plan.path} has finished; there is nothing to resume.")
        return
    target = resolve_address(address)
    if target is not None:
        check_reachable(target)
    data = build_data(plan.base.data)  # a dataset that moved or broke fails here, before Ray starts
    if data.fingerprint() != plan.manifest.data_fingerprint:
        raise DataError(
            f"The dataset of sweep {plan.settings.name} changed since it started (fingerprint "
            f"{plan.manifest.data_fingerprint} then, {data.fingerprint()} now); resumed trials would not be "
            "comparable with the finished ones. Restore the data it started with, or start a new sweep."
        )
    console.print(f"[bold]udatune resume[/] {plan.settings.name} ({plan.state}): {summary_line(plan.settings)}")
    run_with_view(
        console, plan.settings, storage, address, num_cpus,
        lambda cluster, listener: restore.resume_sweep(plan, cluster, listener=listener),
    )
