"""`udatune search`: a Ray Tune sweep over policies and UDA settings, baselines included.

Parse and validate everything (options, space files, the dataset) before Ray starts; then run
the sweep with a live table while Ray's own output goes to a log file.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import shutil
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from udatune.cli.app import app
from udatune.cli.train_command import ENCODER_HELP, ENCODER_WEIGHTS_HELP, MODEL_HELP
from udatune.config import TrialConfig, load_config
from udatune.tune.results import ENDED, policy_summary

DEFAULT_SPACES = ["autoaugment", "randaugment"]
KNOB_MODES = ("searched", "default")

# The default sweep (`udatune search` with no options, `make demo`): small frames and enough
# steps per trial that UDA shows its gain and Ray's per-trial start-up stays a small share.
SWEEP_DEFAULTS = {
    # The step budget of every trial (the default sweep's; a --config file's train.steps, or
    # --set train.steps=N, or --max-steps, replace it).
    "train.steps": 1000,
    "train.eval_every": 100,
    # Divides eval_every: evaluation time is measured apart from steps. A trial also checks at
    # every log record whether the scheduler has stopped it, so a pruned trial frees its slot
    # within a couple of seconds.
    "train.log_every": 10,
    # train.num_workers: from --cpus-per-trial (TrialResources.loader_workers)
}
# The built-in synthetic data in the default sweep (what `make demo` runs, in 10 minutes on two
# cores): small frames; a U-Net of depth 3, whose bottleneck at 4x6 pixels still sees the whole
# frame (depth 4 adds a 2x3 level that costs as much as any other); 4 unlabeled frames a step
# (a UDA step is then 0.7 of the cost with 8); and 800 steps. Each was screened on 3 seeds for
# keeping UDA's gain (docs/benchmarks.md). Each applies unless an option, a --set or (for the
# steps) --max-steps names its key.
SYNTHETIC_DEFAULTS = {"data.image_size": "32x48", "model.depth": 3, "train.unlabeled_batch_size": 4, "train.steps": 800}
SYNTHETIC_SIZE = SYNTHETIC_DEFAULTS["data.image_size"]


@app.command()
def search(
    space: list[str] = typer.Option([], "--space", help="Search space: a built-in name (autoaugment, randaugment, trivialaugment, cutmix) or a YAML file; repeat to compare methods in one sweep. Default: autoaugment + randaugment."),
    trials: int = typer.Option(4, help="Searched trials in total, shared round-robin by the spaces (baselines come on top)."),
    knobs: str = typer.Option("searched", help="searched: every method searches the same UDA knobs (λ, τ, T, TSA, anti-collapse options); default: hold them at the default recipe and search the policy only."),
    seeds: str = typer.Option("0", help="Training seeds, comma-separated; each gets its own supervised and default-UDA baseline."),
    max_steps: Optional[int] = typer.Option(None, help="Step budget of every trial (baselines included); default: the config's train.steps (in the default sweep 800 on the built-in synthetic data, else 1000)."),
    max_concurrent: int = typer.Option(0, help="Trials at once; 0 = as many as the cluster's CPUs/GPUs fit, plus one queued whose start-up overlaps them."),
    scheduler: str = typer.Option("asha", help="asha (prunes searched trials; baselines always finish) or fifo."),
    grace_period: int = typer.Option(0, help="ASHA: steps before a trial can be stopped (0 = max-steps / 2)."),
    reduction_factor: float = typer.Option(3.0, help="ASHA: keep the best 1/factor at each rung."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Run the supervised and default-UDA baselines."),
    max_failures: int = typer.Option(2, help="Restarts of a trial after a lost worker or node, each from its last checkpoint (per trial, and per Ray Train run)."),
    workers_per_trial: int = typer.Option(1, help="Ray Train workers per trial (data-parallel DDP when > 1)."),
    cpus_per_trial: float = typer.Option(1.0, help="CPUs per Train worker."),
    gpus_per_trial: float = typer.Option(0.0, help="GPUs per Train worker (fractions allowed, e.g. 0.5)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto, host:port or ray://host:port. Unset: RAY_ADDRESS, else a private local Ray."),
    num_cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray (default: all cores)."),
    storage: str = typer.Option("runs/sweeps", help="Where sweeps are kept: a folder, or a URI (s3://, gs://)."),
    name: Optional[str] = typer.Option(None, help="Sweep name (default: sweep-<date>-<time>)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Base trial config (YAML/JSON, sections data, model, uda, train)."),
    dataset: Optional[str] = typer.Option(None, help="synthetic (built in), camvid, cityscapes or folder."),
    data_root: Optional[str] = typer.Option(None, help="Folder of a real dataset."),
    labeled: Optional[str] = typer.Option(None, help="Labeled frames: a count (16), a fraction (0.0625) or 'all'."),
    split_seed: Optional[int] = typer.Option(None, help="Seed that draws the labeled subset (the same for every trial)."),
    image_size: Optional[str] = typer.Option(None, help=f"Resize frames to HEIGHTxWIDTH (synthetic default here: {SYNTHETIC_SIZE})."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    encoder: Optional[str] = typer.Option(None, help=ENCODER_HELP),
    encoder_weights: Optional[str] = typer.Option(None, help=ENCODER_WEIGHTS_HELP + " Fetched once, here, before trials start."),
    set_: list[str] = typer.Option([], "--set", help="Any base setting as section.key=value, e.g. train.eval_every=50."),
    confirm: int = typer.Option(0, "--confirm", help="After the search, re-run its top K recipes, the default UDA recipe and supervised on fresh seeds (--confirm-seeds), score them on the test split and say which recipe to train with; 0: no confirmation (`udatune confirm` does it later)."),
    confirm_seeds: str = typer.Option("100,101,102", help="Fresh training seeds for --confirm, comma-separated (none of --seeds)."),
    resume: bool = typer.Option(False, "--resume", help="Resume the sweep --name in --storage, as `udatune resume NAME` does; the sweep's own settings are used, other options are ignored."),
) -> None:
    """Search augmentation policies and UDA settings with Ray Tune; each trial is a Ray Train job."""
    if resume:
        from udatune.cli.resume_command import resume_sweep
        from udatune.errors import ConfigError

        if not name:
            raise ConfigError("--resume needs --name: the sweep to resume (`udatune ls` lists them).")
        resume_sweep(name, storage, address, num_cpus)
        return
    from udatune.augment.policy import parse_policy
    from udatune.cli.train_command import parse_sets
    from udatune.data.registry import build_data
    from udatune.errors import ConfigError
    from udatune.models.registry import prepare_model
    from udatune.outputs import check_sweep_name, check_writable_folder
    from udatune.tune import store
    from udatune.tune import sweep as sweeps
    from udatune.tune.sample import sampling_note, shared_methods
    from udatune.tune.settings import SweepSettings, default_name, method_shares, summary_line
    from udatune.tune.capacity import check_trial_fits, local_capacity
    from udatune.tune.cluster import check_reachable, resolve_address
    from udatune.tune.space import load_space
    from udatune.tune.storage import absolute
    from udatune.tune.trainable import TrialResources

    # --- parse and validate, before anything starts -------------------------------------------
    resources = TrialResources(workers_per_trial, cpus_per_trial, gpus_per_trial)
    options = {
        "data.dataset": dataset, "data.root": data_root, "data.labeled": labeled, "data.split_seed": split_seed,
        "data.image_size": image_size, "model.name": model, "model.encoder": encoder, "model.encoder_weights": encoder_weights,
    }
    cfg = base_config(config, {k: v for k, v in options.items() if v is not None}, parse_sets(set_), max_steps, resources.loader_workers)
    parse_policy(cfg.uda.policy)
    spaces = tuple(load_space(s) for s in (space or DEFAULT_SPACES))
    if knobs not in KNOB_MODES:
        raise ConfigError(f"--knobs must be one of {', '.join(KNOB_MODES)}, got {knobs!r}.")
    if knobs == "default":
        spaces = tuple(s.policy_only() for s in spaces)
    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r} must be comma-separated integers, e.g. 0,1,2.") from None
    confirming = None
    if confirm < 0:
        raise ConfigError(f"--confirm must be ≥ 0 (0: no confirmation), got {confirm}.")
    if confirm:
        from udatune.cli.report_commands import parse_seeds
        from udatune.reports.confirm import ConfirmSettings

        confirming = ConfirmSettings(confirm, parse_seeds(confirm_seeds, "--confirm-seeds"), resources, max_concurrent)
        confirming.check_seeds(set(seed_list), "--confirm", "--confirm-seeds")
    if name is not None:
        check_sweep_name(name)
    check_writable_folder(storage, "--storage", "the folder where sweeps are kept")
    # Pretrained encoder weights are fetched here, once, not by every trial; their hash goes into
    # the config each trial gets, so every trial loads (and records) the same file.
    cfg = dataclasses.replace(cfg, model=prepare_model(cfg.model))
    spaces = tuple(prepare_space_model(cfg, s) for s in spaces)
    name = name or default_name()
    settings = SweepSettings(
        spaces=spaces, name=name, storage=absolute(storage), trials=trials, seeds=seed_list,
        max_steps=cfg.train.steps, max_concurrent=max_concurrent, scheduler=scheduler.lower(), grace_period=grace_period,
        reduction_factor=reduction_factor, resources=resources,
        baselines=baselines, max_failures=max_failures,
        confirm=confirm, confirm_seeds=confirming.seeds if confirming is not None else (),
    )
    if baselines:  # a method whose first trial is the default-UDA baseline's run takes that run
        settings = dataclasses.replace(settings, shared=shared_methods(spaces, cfg, method_shares(settings)))
    settings.check()
    if store.is_sweep(settings.path):
        raise ConfigError(f"A sweep named {name!r} already exists at {settings.path}; pass another --name (or resume it with `udatune resume {name}`).")
    target = resolve_address(address)
    if target is not None:
        check_reachable(target)
    else:  # a private local Ray offers this machine: a trial that cannot fit fails now, not as a hang
        check_trial_fits(workers_per_trial, cpus_per_trial, gpus_per_trial, local_capacity(num_cpus), "this machine")
    data = build_data(cfg.data)  # a bad dataset fails here, before Ray starts

    # --- run ------------------------------------------------------------------------------------
    console = Console()
    console.print(f"[bold]udatune search[/] {name}: {summary_line(settings)}")
    console.print(f"data: {data.name}, {len(data.labeled)} labeled / {len(data.unlabeled)} unlabeled / {len(data.val)} val, fingerprint {data.fingerprint()}")
    shares = method_shares(settings)
    for s in spaces:
        console.print(f"  space {s.describe()}  [dim]({s.source})[/]")
        console.print(f"    {s.method}: {sampling_note(s, shares[s.method], s.method in settings.shared)}")
    run_with_view(
        console, settings, storage, address, num_cpus,
        lambda cluster, listener: sweeps.run_sweep(settings, cfg, data.fingerprint(), cluster, listener=listener),
    )
    if confirming is not None:
        from udatune.cli.report_commands import run_confirmation

        console.print()
        run_confirmation(settings.path, storage, confirming, address, num_cpus, console)


def base_config(config: Path | None, options: dict, sets: dict[str, str], max_steps: int | None, loader_workers: int) -> TrialConfig:
    """The config every trial of a sweep starts from.

    A --config file, or else the default sweep's settings; then the options given, the --set
    values and --max-steps (one step budget: the config's, unless the option says otherwise);
    last, on the built-in synthetic data of the default sweep, each of its defaults that none
    of those named."""
    from udatune.errors import ConfigError

    if config:
        cfg = load_config(config)
    else:
        cfg = TrialConfig().override({**SWEEP_DEFAULTS, "train.num_workers": loader_workers}, source="sweep defaults")
    cfg = cfg.override(options, source="options")
    cfg = cfg.override(sets, source="--set")
    if max_steps is not None:
        if max_steps <= 0:
            raise ConfigError(f"Invalid sweep setting: --max-steps must be > 0, got {max_steps}.")
        cfg = cfg.override({"train.steps": max_steps}, source="--max-steps")
    if not config and cfg.data.dataset == "synthetic":
        given = set(options) | set(sets) | ({"train.steps"} if max_steps is not None else set())
        cfg = cfg.override({k: v for k, v in SYNTHETIC_DEFAULTS.items() if k not in given}, source="sweep defaults")
    return cfg


def prepare_space_model(base: TrialConfig, space):
    """A space whose ``trial:`` section changes ``model.*`` gets its own weights fetched and hashed
    here too (its trials' gains are still paired with the base model's baselines)."""
    from udatune.models.registry import prepare_model

    if not any(key.startswith("model.") for key in space.trial):
        return space
    # The base's hash is for the base's weights; the space's own are hashed afresh (unless it pins one).
    model = base.override({"model.encoder_weights_sha256": None, **space.trial}, source=f"space {space.method}: trial").model
    prepared = prepare_model(model)
    if prepared.encoder_weights_sha256 is None:
        return space
    return dataclasses.replace(space, trial={**space.trial, "model.encoder_weights_sha256": prepared.encoder_weights_sha256})


def resume_hint(path: str, storage: str) -> str:
    """The command that carries on the sweep at ``path``: by name when it lies in ``storage``
    (the option as the user gave it), else by its folder."""
    from udatune.tune.storage import absolute

    folder, name = path.rstrip("/").rsplit("/", 1)
    if absolute(storage).rstrip("/") == folder:
        return f"udatune resume {name}" + ("" if storage == "runs/sweeps" else f" --storage {shlex.quote(storage)}")
    return f"udatune resume {shlex.quote(path)}"


def run_with_view(console: Console, settings, storage: str, address: str | None, num_cpus: int | None, run,
                  resumed_by: str | None = None) -> None:
    """Start or join Ray, call ``run(cluster, listener)`` under the live table with Ray's own
    output sent to ``ray.log``, then print the final tables (`udatune search` and `resume`).

    A trial that cannot fit on the cluster is refused before ``run`` (a local Ray is also
    checked before Ray starts); Ctrl-C ends with exit code 130 and the command to resume: that
    of the sweep at ``resumed_by`` when given (a confirmation is carried on by resuming its
    sweep), else of this one."""
    from udatune.errors import RunInterrupted
    from udatune.tune.capacity import check_trial_fits, cluster_capacity
    from udatune.tune.cluster import check_shared_storage, ray_cluster, redirect_output

    local_folder = None if "://" in settings.path else Path(settings.path)
    fresh = local_folder is not None and not local_folder.exists()
    log_file = local_folder / "ray.log" if local_folder is not None else Path("runs/logs") / f"{settings.name}.ray.log"
    owner = resumed_by or settings.path
    hint = f"the sweep {owner.rstrip('/').rsplit('/', 1)[-1]} is saved and resumable: {resume_hint(owner, storage)}"
    console.print(f"Ray's output: {log_file}")
    outcome = None
    try:
        with redirect_output(log_file) as display:
            view = SweepView(settings, Console(file=display))
            with ray_cluster(address, num_cpus=num_cpus) as cluster:
                r = settings.resources  # checked again on what Ray found: a local Ray can see fewer cores
                check_trial_fits(r.workers, r.cpus, r.gpus, cluster_capacity(),
                                 "the local Ray" if cluster.local else f"the cluster at {cluster.address}")
                check_shared_storage(settings.storage, cluster.hosts)
                view.cluster = cluster
                with view.live():
                    outcome = run(cluster, view.update)
    except BaseException as stopped:
        started = local_folder is None or (local_folder / "sweep.json").exists()
        if fresh and not started:
            shutil.rmtree(local_folder, ignore_errors=True)  # nothing ran: leave no stub sweep behind
        if isinstance(stopped, KeyboardInterrupt):
            if started:
                raise RunInterrupted(hint) from None
            raise RunInterrupted("stopped while Ray was starting, before any trial ran; run the same command again.") from None
        raise
    view.final(console, outcome)
    if view.cluster is not None and view.cluster.logs:
        console.print(f"[dim]Ray's session logs: {view.cluster.logs}[/]")
    if outcome.interrupted:
        raise RunInterrupted(hint)


class SweepView:
    """The live table (one row per trial) and the overall progress line."""

    def __init__(self, settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.cluster = None
        self.started = time.time()
        self.table: RenderableType = Table()
        self.counts: dict[str, int] = {}
        self.steps = 0
        self._live = None

    def live(self):
        from rich.live import Live

        self._live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2,
                          redirect_stdout=False, redirect_stderr=False, transient=True)
        return self._live

    def update(self, results) -> None:
        # Called by the Tune callback in the driver's main thread; the Live thread only reads
        # the finished table.
        self.table = trial_table(results, self.console)
        self.counts = results.counts()
        self.steps = results.steps_done()

    def render(self):
        total = self.settings.total_trials
        done = sum(self.counts.get(k, 0) for k in ENDED)
        elapsed = time.time() - self.started
        where = ""
        if self.cluster is not None:
            where = f" on {self.cluster.address} ({self.cluster.cpus:g} CPU, {self.cluster.gpus:g} GPU)"
        line = Text.assemble(
            (f"{done}/{total} trials finished", "bold"),
            f" · {self.counts.get('running', 0)} running · {self.steps}/{total * self.settings.max_steps} steps"
            f" · {int(elapsed) // 60}:{int(elapsed) % 60:02d} elapsed{where}",
        )
        return Group(self.table, line)

    def final(self, console: Console, outcome) -> None:
        console.print(trial_table(outcome.results, console))
        for row in outcome.results.ordered():
            if row.status in ("failed", "error"):
                why = row.reason or "see the Ray log"
                where = f" ({row.error_file})" if row.error_file else ""
                console.print(f"[red]trial {row.index} ({row.method}) {row.status}[/]: {why}{where}", soft_wrap=True)
        console.print(ranking_table(outcome.results, console, self.settings.shared, self.settings.seeds))
        console.print(f"results: {outcome.path}/results.csv  ({outcome.seconds:.0f} s)")


def _num(value: float, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _gain(value: float | None) -> Text:
    if value is None or math.isnan(value):
        return Text("…", style="dim")
    return Text(f"{value:+.3f}", style="green" if value > 0 else "red")


# A policy in the search's tables: a short summary, so a row is one or two lines even at 80
# columns (the demo's AutoAugment policies folded over five); `udatune export-policy` writes it whole.
POLICY_CELL = 24

STATUS_STYLE = {"running": "cyan", "done": "green", "stopped": "yellow", "failed": "red", "error": "red", "pending": "dim"}


def trial_table(results, console: Console):
    """One row per trial; at any width every number is whole (see reports/tables.py)."""
    from udatune.reports.tables import Column, fitted_table

    columns = [Column("#", whole=True, justify="right"), Column("method", whole=True), Column("seed", whole=True, justify="right", drop=2),
               Column("policy", drop=3), Column("λ / τ / T", whole=True, drop=1), Column("step", whole=True, justify="right"),
               Column("mIoU", whole=True, justify="right"), Column("gain", whole=True, justify="right"), Column("status")]
    rows = []
    for row in results.ordered():
        rows.append([
            str(row.index), row.method, str(row.seed), "—" if not row.policy else policy_summary(row.policy, POLICY_CELL),
            "—" if math.isnan(row.lambda_u) else f"{row.lambda_u:.2g}/{row.tau:.2f}/{row.temperature:.2f}",
            str(row.step), _num(row.val_miou), _gain(results.gain(row)),
            Text(row.status + (" · consistency off" if row.consistency == "off" else ""), style=STATUS_STYLE.get(row.status, "")),
        ])
    return fitted_table("trials", columns, rows, console)


def ranking_table(results, console: Console, shared: tuple[str, ...] = (), seeds: tuple[int, ...] = (0,)):
    """The methods ranked by their gain as the report defines it (`stats.method_gain`): per
    seed the method's best trial minus supervised, mean and 95% interval across seeds.
    ``shared``: methods whose first trial is the default-UDA baseline's run of the first of
    ``seeds`` (counted for them, as the report counts it)."""
    from udatune.reports.load import with_shared_rows
    from udatune.reports.stats import best_row, ranked_methods, score_column
    from udatune.reports.tables import Column, fitted_table

    frame = with_shared_rows(results.frame(), {"shared": list(shared), "seeds": list(seeds)})
    columns = [Column("rank", whole=True), Column("method", whole=True), Column("trials", whole=True, drop=2),
               Column("gain [95% CI]", whole=True), Column("best mIoU", whole=True, drop=3), Column("best policy", drop=1)]
    rows = []
    for rank, (method, gain) in enumerate(ranked_methods(frame), start=1):
        group = frame[frame["method"] == method]
        best = best_row(group, score_column(frame)) or {}
        policy = best.get("policy")  # NaN where a table read back from CSV had none
        rows.append([str(rank), method, str(len(group)), Text(gain.describe(), style="green" if gain.excludes_zero and gain.mean > 0 else ""),
                     _num(best.get("val_miou", math.nan)), policy_summary(policy, POLICY_CELL) if isinstance(policy, str) and policy else "—"])
    return fitted_table("methods ranked by gain over supervised (paired: same seed, same step; mean over seeds)", columns, rows, console)
