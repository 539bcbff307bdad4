"""`udatune report`, `udatune confirm` and `udatune export-policy`: what a sweep found.

All three read a sweep by name from ``--storage`` (or a sweep folder given as NAME), finished,
running or interrupted; the library does the work (udatune.reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from udatune.cli.app import app

STORAGE_HELP = "Where sweeps are kept: a folder, or a URI (s3://, gs://)."


def _load(name: str | None, storage: str):
    from udatune.reports.load import find_sweep, load_sweep

    return load_sweep(find_sweep(name, storage))


@app.command()
def report(
    name: Optional[str] = typer.Argument(None, help="Sweep name (as given to `udatune search --name`) or a sweep folder; default: the newest sweep in --storage."),
    storage: str = typer.Option("runs/sweeps", help=STORAGE_HELP),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the report as one self-contained HTML file (plots embedded)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Export the per-trial table as CSV."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Export the per-trial table as Parquet."),
    predictions: int = typer.Option(4, help="Sample-prediction rows in the HTML report (0: none; loads two checkpoints)."),
    screenshot: Optional[Path] = typer.Option(None, "--screenshot", help="Also save a PNG of the HTML report (needs --html and a system Chromium)."),
) -> None:
    """Which method and policy lifted mIoU, by how much, and whether it is real."""
    from udatune.errors import ConfigError
    from udatune.reports.report import build_report
    from udatune.reports.terminal import print_report

    from udatune.outputs import check_output_file

    if screenshot is not None and html is None:
        raise ConfigError("--screenshot needs --html: it is a picture of the HTML report.")
    for option, path in (("--html", html), ("--csv", csv), ("--parquet", parquet), ("--screenshot", screenshot)):
        if path is not None:
            check_output_file(path, option)
    console = Console()
    result = build_report(_load(name, storage))
    trials = result.sweep.trials
    for path, write in ((csv, lambda p: trials.to_csv(p, index=False)), (parquet, lambda p: trials.to_parquet(p, index=False))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            console.print(f"trials: {path}")
    if html is not None:
        from udatune.reports.html import build_html

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(build_html(result, predictions=predictions), encoding="utf-8")
        console.print(f"HTML report: {html}")
    if screenshot is not None:
        from udatune.reports.browser import screenshot as take_screenshot

        console.print(f"screenshot: {take_screenshot(html, screenshot)}")
    # Last, so that the report's own last line — the verdict, once confirmed — ends the output.
    print_report(result, console)


@app.command()
def confirm(
    name: str = typer.Argument(..., help="Sweep name or folder."),
    top: int = typer.Option(3, help="How many of the best distinct configurations to re-run (the default UDA recipe is re-run too)."),
    seeds: str = typer.Option(",".join(map(str, (100, 101, 102))), help="Fresh training seeds, comma-separated (none the search used)."),
    storage: str = typer.Option("runs/sweeps", help=STORAGE_HELP),
    force: bool = typer.Option(False, "--force", help="Replace an earlier confirmation of this sweep."),
    max_concurrent: int = typer.Option(0, help="Trials at once; 0 = as many as fit, plus one queued."),
    workers_per_trial: int = typer.Option(1, help="Ray Train workers per trial."),
    cpus_per_trial: float = typer.Option(1.0, help="CPUs per Train worker."),
    gpus_per_trial: float = typer.Option(0.0, help="GPUs per Train worker (fractions allowed)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto, host:port or ray://host:port. Unset: RAY_ADDRESS, else a private local Ray."),
    num_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray (default: all cores)."),
) -> None:
    """Re-run the top configurations, the default UDA recipe and the baseline with fresh seeds; score them on the test split."""
    from udatune.cli.search_command import resume_hint
    from udatune.errors import ConfigError
    from udatune.reports import confirm as confirming
    from udatune.tune.trainable import TrialResources

    seed_list = parse_seeds(seeds, "--seeds")
    sweep = _load(name, storage)
    settings = confirming.ConfirmSettings(top, seed_list, TrialResources(workers_per_trial, cpus_per_trial, gpus_per_trial), max_concurrent)
    settings.check(sweep)
    if confirming.progress(sweep.path) == "interrupted" and not force:
        raise ConfigError(f"The confirmation of sweep {sweep.name!r} was interrupted; carry it on with "
                          f"`{resume_hint(sweep.path, storage)}`, or pass --force to start it again.")
    if confirming.exists(sweep) and not force:
        raise ConfigError(f"Sweep {sweep.name!r} was confirmed before ({confirming.confirm_path(sweep)}); `udatune report {sweep.name}` shows it, or pass --force to run it again.")
    run_confirmation(name, storage, settings, address, num_cpus, Console(), force=force)


def parse_seeds(text: str, option: str) -> tuple[int, ...]:
    from udatune.errors import ConfigError

    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} must be comma-separated integers, e.g. 100,101,102.") from None


def run_confirmation(name: str, storage: str, settings, address: str | None, num_cpus: int | None, console: Console,
                     force: bool = False) -> None:
    """Re-run the sweep's top configurations and its default recipe with the supervised
    baseline on fresh seeds (`udatune confirm`, and `udatune search --confirm K` after its
    search), then print the confirmed table and the verdict. ``settings`` is checked."""
    from udatune.cli.search_command import run_with_view
    from udatune.config import TrialConfig
    from udatune.data.registry import build_data
    from udatune.errors import ConfigError
    from udatune.reports import confirm as confirming
    from udatune.tune import store
    from udatune.tune import sweep as sweeps
    from udatune.tune.cluster import check_reachable, resolve_address
    from udatune.tune.storage import kind

    sweep = _load(name, storage)
    candidates = confirming.rank_candidates(sweep, settings.top, with_default=True)
    if not candidates:
        raise ConfigError(f"Sweep {sweep.name!r} has no UDA trial with a result yet (trials whose consistency never switched on "
                          "do not count); nothing to confirm.")
    target = resolve_address(address)
    if target is not None:
        check_reachable(target)
    data = build_data(TrialConfig.from_dict(sweep.base_config, source=f"{sweep.path}/sweep.json").data)
    if sweep.manifest.data_fingerprint not in (None, data.fingerprint()):
        raise ConfigError(f"The data of sweep {sweep.name!r} has changed since it ran (fingerprint {data.fingerprint()}, "
                          f"was {sweep.manifest.data_fingerprint}); confirmation on other data would not confirm anything.")
    if force and kind(confirming.confirm_path(sweep)) == "dir":  # whatever an earlier one left, even a stub
        confirming.remove(sweep)

    seed_list = settings.seeds
    console.print(f"[bold]udatune confirm[/] {sweep.name}: {len(candidates)} configuration{'s' if len(candidates) != 1 else ''} + supervised × seeds "
                  f"{','.join(map(str, seed_list))} = {(len(candidates) + 1) * len(seed_list)} trials, {sweep.max_steps} steps each, "
                  + ("scored on the test split" if data.has_test else "scored on val: the dataset has no test split, so the fresh seeds keep it apart from the search"))
    for c in candidates:
        origin = f"trial {c.source_trial} (score {c.score:+.4f})" if c.source_trial else "not run by the search"
        console.print(f"  {c.name}: {c.method} {origin}{', the default recipe' if c.default_recipe else ''}")
    sweep_settings = confirming.confirmation_sweep(sweep, candidates, settings)
    base = TrialConfig.from_dict(sweep.base_config, source=f"{sweep.path}/sweep.json")

    def run(cluster, listener):
        store.write_confirm_manifest(sweep.path, confirming.confirm_manifest(sweep, candidates, settings))
        return sweeps.run_sweep(sweep_settings, base, data.fingerprint(), cluster, listener=listener)

    # The same driver as a search: live table, heartbeat, Ctrl-C; `udatune resume` of the sweep
    # carries an interrupted confirmation on (the hint says so).
    run_with_view(console, sweep_settings, storage, address, num_cpus, run, resumed_by=sweep.path)
    print_confirmed(sweep.path, console)


def resume_confirmation(path: str, storage: str, address: str | None, num_cpus: int | None, console: Console) -> None:
    """Carry on the interrupted confirmation of the sweep at ``path`` (`udatune resume`), then
    print the confirmed table and the verdict, as a confirmation run whole does."""
    from udatune.cli.search_command import run_with_view
    from udatune.tune import restore, store
    from udatune.tune.settings import summary_line

    plan = restore.prepare_resume(store.confirm_path(path), path)
    console.print(f"[bold]udatune resume[/] the confirmation of {path.rstrip('/').rsplit('/', 1)[-1]} ({plan.state}): {summary_line(plan.settings)}")
    run_with_view(console, plan.settings, storage, address, num_cpus,
                  lambda cluster, listener: restore.resume_sweep(plan, cluster, listener=listener), resumed_by=path)
    print_confirmed(path, console)


def print_confirmed(path: str, console: Console) -> None:
    """The confirmed table, where the report is, and the verdict line."""
    from udatune.reports.report import build_report
    from udatune.reports.terminal import confirmed_table, verdict_line

    result = build_report(_load(path, "runs/sweeps"))
    if result.confirmed:
        console.print(confirmed_table(result, console))
    console.print(f"the report shows them: udatune report {result.sweep.name}")
    line = verdict_line(result)
    if line is not None:
        console.print(line)


@app.command("export-policy")
def export_policy(
    name: str = typer.Argument(..., help="Sweep name or folder."),
    storage: str = typer.Option("runs/sweeps", help=STORAGE_HELP),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: runs/policies/NAME)."),
) -> None:
    """Write the best policy (JSON, albumentations pipeline) and its UDA settings for reuse."""
    from udatune.outputs import check_writable_folder
    from udatune.reports.export import export_policy as write_files
    from udatune.reports.report import build_report

    if out is not None:
        check_writable_folder(str(out), "--out", "a folder for the exported policy files")
    result = build_report(_load(name, storage))
    exported = write_files(result, out or Path("runs/policies") / result.sweep.name)
    choice = exported.choice
    console = Console()
    console.print(f"[bold]{choice.method}[/] trial {choice.trial_id}: {choice.evidence}")
    for file in exported.paths.values():
        console.print(f"  {file}")
    console.print("[dim]In your code: pipeline = albumentations.load(path); strong = pipeline(image=image)['image'][/]")
