"""`udatune resume NAME|PATH`: carry on a sweep that was stopped (Ctrl-C, SIGTERM, SIGKILL, a
crash), with the same live table as `udatune search`, and then its confirmation: the one
`udatune search --confirm K` asked for, if it never started, or one that was interrupted.

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
    """Resume an interrupted sweep: finished trials are kept, interrupted ones continue from their last checkpoint; then its confirmation, if one was interrupted or `search --confirm` asked for one."""
    resume_sweep(sweep, storage, address, num_cpus)


def resume_sweep(sweep: str, storage: str, address: str | None, num_cpus: int | None) -> None:
    """What `udatune resume` and `udatune search --resume` do: the search, if it did not
    finish, then its confirmation, if one was interrupted or `udatune search --confirm` asked
    for one that never started."""
    from udatune.cli.report_commands import resume_confirmation, run_confirmation
    from udatune.cli.search_command import run_with_view
    from udatune.data.registry import build_data
    from udatune.errors import DataError
    from udatune.reports import confirm as confirming
    from udatune.tune import restore
    from udatune.tune.cluster import check_reachable, resolve_address
    from udatune.tune.settings import summary_line

    plan = restore.prepare_resume(sweep, storage)
    confirmation = confirming.progress(plan.path)  # a damaged confirmation stops here, named
    requested = confirming.requested(plan.settings)
    start_confirmation = requested is not None and confirmation == "none"
    console = Console()
    if plan.nothing_to_do and confirmation != "interrupted" and not start_confirmation:
        console.print(f"Sweep {plan.settings.name} at {plan.path} has finished; there is nothing to resume.")
        return
    if start_confirmation and plan.nothing_to_do:
        check_not_confirming(plan.path)
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
    if not plan.nothing_to_do:
        console.print(f"[bold]udatune resume[/] {plan.settings.name} ({plan.state}): {summary_line(plan.settings)}")
        run_with_view(
            console, plan.settings, storage, address, num_cpus,
            lambda cluster, listener: restore.resume_sweep(plan, cluster, listener=listener),
        )
        console.print()
    if confirmation == "interrupted":
        resume_confirmation(plan.path, storage, address, num_cpus, console)
    elif start_confirmation:
        # Asked for by `udatune search --confirm`, never started (or stopped while Ray started,
        # leaving only its confirm.json: --force clears that).
        run_confirmation(plan.path, storage, requested, address, num_cpus, console, force=True)


def check_not_confirming(path: str) -> None:
    """Between a search's end and its confirmation's start, the search's own process (alive,
    its state already "finished") is about to confirm: a second driver would run it twice."""
    from udatune.errors import ConfigError
    from udatune.tune import store
    from udatune.tune.driver_state import driver_alive

    state = store.read_state(path)
    if state is not None and driver_alive(state):
        raise ConfigError(f"Sweep {path} is still running ({state.where}): its search has finished and that process starts "
                          "the confirmation it was asked for next. Wait for it, or stop it first (Ctrl-C, or SIGTERM).")
