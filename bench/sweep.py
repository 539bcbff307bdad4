"""The default sweep (`udatune search` with no options, what `make demo` runs), end to end.

Runs the real command in a subprocess — a private local Ray, baselines, both search methods —
and reports, from that one run:

* the wall time of the whole command (Ray start-up and shut-down included);
* the best paired gain over the supervised baseline per method;
* where the reserved CPU time went: the sweep holds ``slots × wall`` (a local Ray started for
  the sweep holds the whole machine), and only time inside training steps counts as useful;
  Ray's start-up, each trial's start-up (trial actor, Train controller, worker group, data and
  model) and tear-down, evaluation and checkpoints are overhead (`udatune.tune.usage`).

    python -m bench.sweep                      # the default demo sweep
    python -m bench.sweep -- --trials 2        # anything after -- goes to `udatune search`
    python -m bench.sweep --section sweep-large --title "..." -- --trials 10   # its own docs section
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.docs import write_section
from bench.processes import ProcessSampler
from udatune.reports.load import with_shared_rows
from udatune.tune import store
from udatune.tune.usage import sweep_usage

OUT = Path(__file__).resolve().parent / "out" / "sweeps"


@dataclass(frozen=True)
class CommandRun:
    wall: float
    code: int
    busy: float  # share of the machine's CPU time that was busy meanwhile (all processes)
    processes: dict  # kind of process -> (count, CPU seconds); see bench/processes.py


def run_sweep_command(name: str, extra: list[str]) -> CommandRun:
    """Run `udatune search` as a user would, watching the CPU time of every process it starts."""
    command = [str(Path(sys.executable).parent / "udatune"), "search", "--name", name, "--storage", str(OUT), *extra]
    print("$", shlex.join(command), flush=True)
    before = cpu_times()
    start = time.time()
    with ProcessSampler() as sampler:
        code = subprocess.run(command).returncode
    wall = time.time() - start
    after = cpu_times()
    busy = math.nan
    if before and after and after[1] > before[1]:
        busy = (after[0] - before[0]) / (after[1] - before[1])
    return CommandRun(wall, code, busy, sampler.by_kind())


def process_table(processes: dict, trials: int, wall: float, slots: float) -> str:
    lines = ["| process kind | processes | CPU seconds | per trial | share of reserved |", "|---|---|---|---|---|"]
    for kind, (count, seconds) in processes.items():
        if seconds < 0.5:
            continue
        lines.append(f"| {kind} | {count} | {seconds:.0f} | {seconds / trials:.1f} | {seconds / (slots * wall):.1%} |")
    return "\n".join(lines)


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as file:
            fields = [float(x) for x in file.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def shared_note(settings: dict) -> str:
    """Says how many searched trials were the default-UDA baseline's run (not run again)."""
    shared = settings.get("shared") or []
    return f", {len(shared)} of them the uda-default baseline's run" if shared else ""


def method_table(frame: pd.DataFrame) -> str:
    """Per method, from the reports' view of the trials (a shared first trial counted for its
    method, as `udatune report` counts it); the time tables below use the runs alone."""
    lines = ["| method | trials | finished / stopped | best val mIoU | best gain | mean gain | best policy |", "|---|---|---|---|---|---|---|"]
    for method, group in frame.groupby("method", sort=False):
        scored = group.dropna(subset=["gain"])
        best = scored.loc[scored["gain"].idxmax()] if len(scored) else group.loc[group["val_miou"].idxmax()]
        gain = f"{best['gain']:+.3f}" if not math.isnan(best["gain"]) else "— (the baseline)"
        mean = f"{scored['gain'].mean():+.3f}" if len(scored) else "—"
        done = f"{(group['status'] == 'done').sum()} / {(group['status'] == 'stopped').sum()}"
        lines.append(f"| {method} | {len(group)} | {done} | {best['val_miou']:.3f} | {gain} | {mean} | {best['policy_summary']} |")
    return "\n".join(lines)


def usage_table(frame: pd.DataFrame, wall: float, slots: float, launched: float) -> str:
    usage = sweep_usage(frame, wall, slots)
    first_start = float(frame["started_at"].min()) - launched
    rows = [
        ("training steps (batches included)", usage.train_seconds),
        ("evaluation", usage.eval_seconds),
        ("checkpoints", usage.checkpoint_seconds),
        ("trial set-up in the worker (data, model)", usage.setup_seconds),
        ("Train worker start (process start → train function: Ray Train, imports)", usage.worker_start_seconds),
        ("rest of the time trials held slots (reports, tear-down, steps after a pruned trial's last evaluation)", usage.other_held_seconds),
        ("idle slots (Ray start-up, a slot waiting for the next trial's worker, the end of the sweep)", usage.idle_seconds),
    ]
    lines = ["| reserved time goes to | slot-seconds | share |", "|---|---|---|"]
    for i, (label, seconds) in enumerate(rows):
        share = f"{usage.share(seconds):.1%}"
        lines.append(f"| {label} | {seconds:.0f} | {f'**{share}**' if i == 0 else share} |")
    lines.append(f"| **reserved** ({slots:g} slots × {wall:.0f} s wall) | {usage.reserved_seconds:.0f} | 100% |")
    notes = (
        f"Training was {usage.held_training_share:.1%} of the time trials held their slots (idle slots left out). "
        f"Command start → first trial started: {first_start:.0f} s (validation, data, Ray start-up). "
        f"Per trial, mean: start-up {usage.trial_startup_seconds:.1f} s (Tune starts the trial → its Train worker "
        f"starts; a queued trial waits here for a slot), tear-down {usage.trial_teardown_seconds:.1f} s (last report → Tune sees the end)."
    )
    return "\n".join(lines) + "\n\n" + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=None, help="sweep name (default: bench-<time>)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--section", default="sweep", help="the docs/benchmarks.md section to write (default: sweep)")
    parser.add_argument("--title", default="Sweep: the default `udatune search` (what `make demo` runs)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="-- then options for `udatune search`")
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    name = args.name or time.strftime("bench-%Y%m%d-%H%M%S")
    launched = time.time()
    run = run_sweep_command(name, extra)
    wall, busy = run.wall, run.busy
    if run.code != 0:
        raise SystemExit(f"udatune search exited with {run.code}; nothing written.")
    sweep = OUT / name
    manifest = asdict(store.read_manifest(str(sweep)))  # the sweep's files, read through their owner
    frame = store.read_rows(str(sweep)).table
    settings = manifest["settings"]
    per_worker = settings["resources"]["cpus"]
    slots = manifest["cluster"]["cpus"] / per_worker
    body = (
        f"Sweep `{name}`: {len(frame)} trials run ({settings['trials']} searched{shared_note(settings)} + baselines), "
        f"{settings['max_steps']} steps each, seeds {settings['seeds']}, {settings['scheduler'].upper()}, "
        f"image size {manifest['base_config']['data']['image_size']}, model {manifest['base_config']['model']['name']} "
        f"width {manifest['base_config']['model']['width']}, depth {manifest['base_config']['model'].get('depth', 4)}, local Ray with {manifest['cluster']['cpus']:g} CPUs.\n\n"
        f"**Wall time of the whole command: {wall:.0f} s ({wall / 60:.1f} min).**\n\n"
        "Best paired gain per method (val mIoU minus the supervised baseline's at the same seed and step):\n\n"
        f"{method_table(with_shared_rows(frame, settings))}\n\nWhere the reserved CPU time went (goal: ≥ 85% in training steps):\n\n"
        f"{usage_table(frame, wall, slots, launched)}"
    )
    if not math.isnan(busy):
        body += (
            f"\n\nThe machine's CPUs were busy {busy:.1%} of the command's wall time (all processes, from "
            "/proc/stat). CPU time of the processes the command started, by kind (a Train worker's time "
            "includes its training; bench/processes.py):\n\n"
            f"{process_table(run.processes, len(frame), wall, slots)}"
        )
    print(body)
    if not args.no_write:
        command = shlex.join(["python", "-m", "bench.sweep", *(a for a in sys.argv[1:] if a not in ("--name", args.name))])
        write_section(args.section, args.title, command, body)


if __name__ == "__main__":
    main()
