"""The real-data study: supervised, default UDA and a search's confirmed best recipe, against the
all-labels oracle, on fresh seeds, with per-class IoU — and whether it clears the floor.

One command, resumable, that writes section ``study-<dataset>`` of docs/benchmarks.md:

1. ``udatune search ... --confirm 1``, run as a user runs it (a subprocess): the search on seed
   0, then its best recipe, the default recipe and supervised re-trained on fresh seeds and
   scored on the test split (on val, with fresh seeds, for a dataset without one: CamVid).
2. The oracle — supervised on every labelled frame — on the same fresh seeds, from the sweep's
   own base config (same model, image size and steps), one cached file per seed.
3. The floor: the confirmed best recipe closes at least 30% of the supervised→oracle gap (the
   mean gain over the mean gap), its paired gain over supervised has a 95% interval above 0,
   and no class that supervised scores above 0.05 IoU falls below half of that.

    python -m bench.study --dataset camvid --steps 2000                     # CPU: hours
    python -m bench.study --dataset camvid --steps 2000 --image-size 360x480 --gpus-per-trial 0.25 --device cuda
    python -m bench.study --dataset synthetic --steps 40 --trials 2 --no-write   # a rehearsal, minutes
    python -m bench.study --dataset camvid --steps 2000 --space randaugment --space cutmix \
        --set uda.ema_decay=0.99 --set uda.align=true   # a search that starts from a known recipe

A sweep of the same name whose confirmation finished is read, not run again; one that stopped
half-way is carried on by the same command (`udatune resume`, then `udatune confirm` for a sweep
that did not record its confirmation), and each invocation's wall time is logged, so a study
that takes longer than one sitting is still timed whole.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.docs import cpu_name, write_section
from bench.quality import CAMVID
from bench.quality import gap_share as share_of_gap

OUT = Path(__file__).resolve().parent / "out" / "study"
UDATUNE = str(Path(sys.executable).parent / "udatune")
SHARE_FLOOR = 0.30  # of the supervised→oracle gap the confirmed recipe must close
COLLAPSE = (0.05, 0.5)  # a class above this IoU for supervised may not fall below this share of it

# What each dataset's search is given, besides the steps (CamVid: half resolution, the 1/16 split).
DATASET_OPTIONS = {
    "synthetic": {},
    "camvid": {"--dataset": "camvid", "--data-root": str(CAMVID), "--labeled": "24", "--image-size": "90x120"},
}


@dataclass(frozen=True)
class Arm:
    """One recipe of the study: its score per seed and its IoU per class and seed."""

    name: str
    scores: dict[int, float]
    classes: dict[int, dict[str, float]]

    def class_means(self) -> dict[str, float]:
        names = next(iter(self.classes.values())).keys() if self.classes else ()
        return {c: _mean([self.classes[s][c] for s in self.classes]) for c in names}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.mean(finite) if finite else math.nan


def paired_gains(arm: Arm, supervised: Arm) -> list[float]:
    """The arm's score minus supervised's, on each seed both ran."""
    return [arm.scores[s] - supervised.scores[s] for s in arm.scores if s in supervised.scores]


def gap_share(arm: Arm, supervised: Arm, oracle: Arm) -> float:
    """The share of the supervised→oracle gap the arm closes, on the seeds all three ran
    (`bench.quality.gap_share`, the one definition the screens and the floor both use)."""
    seeds = [s for s in arm.scores if s in supervised.scores and s in oracle.scores]
    return share_of_gap([arm.scores[s] - supervised.scores[s] for s in seeds], [oracle.scores[s] - supervised.scores[s] for s in seeds])


def collapsed_classes(arm: Arm, supervised: Arm, above: float = COLLAPSE[0], share: float = COLLAPSE[1]) -> list[str]:
    """Classes supervised scores above ``above`` IoU (mean over seeds) on which the arm falls
    below ``share`` of supervised: confirmation bias drowning a thin class."""
    sup, ours = supervised.class_means(), arm.class_means()
    return [c for c, v in sup.items() if v > above and ours.get(c, math.nan) < share * v]


def floor_lines(best: Arm, supervised: Arm, oracle: Arm) -> list[str]:
    """The three conditions of the floor, each with its number and whether it holds."""
    from udatune.reports.stats import mean_interval

    gain = mean_interval(paired_gains(best, supervised))
    share = gap_share(best, supervised, oracle)
    lost = collapsed_classes(best, supervised)
    return [
        f"share of the supervised→oracle gap closed: {share:.0%} (floor {SHARE_FLOOR:.0%}): {'met' if share >= SHARE_FLOOR else 'not met'}"
        if math.isfinite(share) else "share of the gap: the oracle does not beat supervised on average, so there is no gap to close: not met",
        f"paired gain over supervised: {gain.describe()} (floor: interval above 0): {'met' if gain.excludes_zero and gain.mean > 0 else 'not met'}",
        f"classes of supervised above {COLLAPSE[0]} IoU that fell below half of it: {', '.join(lost) or 'none'}: {'not met' if lost else 'met'}",
    ]


BUDGET_GAP = 0.05  # the oracle's lead over supervised that makes a budget able to show a gain


def budget_line(supervised: Arm, oracle: Arm) -> str:
    """The study's premise on its own seeds: at this budget the oracle leads supervised by at
    least 0.05. When it does not, the share of the gap is a share of a small, noisy gap, and the
    paired gain over supervised is the number to read."""
    from udatune.reports.stats import mean_interval

    lead = mean_interval(paired_gains(oracle, supervised))
    verdict = "holds" if lead.mean >= BUDGET_GAP else "below it on these seeds: read the share of the gap with care"
    return f"the budget: the oracle leads supervised by {lead.describe()} (wanted ≥ {BUDGET_GAP}): {verdict}"


def summary_table(arms: list[Arm], supervised: Arm, oracle: Arm) -> str:
    from udatune.reports.stats import mean_interval

    rows = ["| recipe | seeds | mIoU (mean ± std) | gain over supervised [95% CI] | share of the gap closed | per seed |", "|---|---|---|---|---|---|"]
    for arm in arms:
        values = [arm.scores[s] for s in sorted(arm.scores)]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        share = gap_share(arm, supervised, oracle)
        gain = "—" if arm is supervised else mean_interval(paired_gains(arm, supervised)).describe()
        share = "—" if arm in (supervised, oracle) or not math.isfinite(share) else f"{share:.0%}"
        rows.append(f"| {_cell(arm.name)} | {len(values)} | {statistics.mean(values):.3f} ± {std:.3f} | {gain} | {share} | "
                    f"{', '.join(f'{v:.3f}' for v in values)} |")
    return "\n".join(rows)


# The UDA options a search space may switch on besides λ, τ, T and TSA, as the search table names them.
OPTIONS = {"ema_decay": "mean teacher {:g}", "class_adaptive": "class-adaptive τ", "class_balance": "class balance",
           "align": "alignment", "paste": "paste {:g}"}


def trial_options(base_uda: dict, overrides: dict) -> str:
    """The options a trial trained with (the sweep's base, then the trial's own settings), or —."""
    values = {key: overrides.get(f"uda.{key}", base_uda.get(key)) for key in OPTIONS}
    return ", ".join(OPTIONS[k].format(v) for k, v in values.items() if v) or "—"


def _cell(text: str) -> str:
    """Text as a markdown table cell: an AutoAugment policy's sub-policy bars would end it."""
    return text.replace("|", "\\|")


def _number(value, spec: str) -> str:
    """A number as a cell, or — for a trial that never reported one (failed at start-up)."""
    return format(value, spec) if value is not None and math.isfinite(value) else "—"


def search_table(path: str) -> str:
    """Every trial of the search, in the order they ran: what it tried, how far it got and its
    val gain over supervised at the same step (a trial ASHA stopped is compared where it stopped)."""
    from udatune.reports.load import load_sweep, trial_label
    from udatune.reports.report import knobs, policy_text
    from udatune.tune.results import SUPERVISED

    sweep = load_sweep(path)
    base_uda = sweep.base_config.get("uda", {})
    rows = ["| trial | method | policy | λ / τ / T | TSA | options | steps | status | val mIoU | gain over supervised |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for row in sweep.trials.to_dict("records"):
        supervised = row["method"] == SUPERVISED
        overrides = sweep.config(row["trial_id"]).get("overrides", {})
        gain = row.get("gain", math.nan)
        rows.append(
            f"| {trial_label(row['trial_id'], row.get('shared_with', ''))} | {row['method']} | {_cell(policy_text(row, 40))} | {knobs(row)} "
            f"| {'—' if supervised else row.get('tsa', '')} | {'—' if supervised else trial_options(base_uda, overrides)} "
            f"| {_number(row['step'], '.0f')} | {row['status']} | {_number(row['val_miou'], '.3f')} "
            f"| {'—' if supervised else _number(gain, '+.3f')} |")
    return "\n".join(rows)


def class_table(arms: list[Arm]) -> str:
    names = list(arms[0].class_means())
    rows = ["| recipe | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for arm in arms:
        means = arm.class_means()
        rows.append(f"| {_cell(arm.name)} | " + " | ".join(f"{means.get(c, math.nan):.2f}" for c in names) + " |")
    return "\n".join(rows)


# --- running --------------------------------------------------------------------------------------


def search_command(args, name: str, storage: str) -> list[str]:
    options = dict(DATASET_OPTIONS[args.dataset])
    if args.image_size:
        options["--image-size"] = args.image_size
    command = [UDATUNE, "search", *(part for pair in options.items() for part in pair), "--max-steps", str(args.steps),
               "--trials", str(args.trials), "--confirm", "1", "--confirm-seeds", ",".join(map(str, args.seeds)),
               "--name", name, "--storage", storage]
    if args.gpus_per_trial:
        command += ["--gpus-per-trial", str(args.gpus_per_trial)]
    for space in args.space:
        command += ["--space", space]
    for item in args.set:
        command += ["--set", item]
    return command


def confirm_command(args, name: str, storage: str) -> list[str]:
    """`udatune confirm` as `--confirm 1` runs it, for a sweep whose manifest did not record the
    request (written before udatune kept it), so `udatune resume` finished only its search."""
    command = [UDATUNE, "confirm", name, "--top", "1", "--seeds", ",".join(map(str, args.seeds)), "--storage", storage]
    if args.gpus_per_trial:
        command += ["--gpus-per-trial", str(args.gpus_per_trial)]
    return command


def run_or_exit(command: list[str]) -> None:
    print("$", shlex.join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        sys.exit(f"{shlex.join(command)} failed; run this study's command again to carry on.")


class InvocationLog:
    """This invocation's entry in the study's log (invocations.json), so that a study stopped and
    carried on later (another session, another machine) is timed by the sum of its invocations.
    The entry is written when the invocation starts and rewritten every minute while it runs:
    one killed outright (SIGKILL, the end of a session), which never reaches its end, still
    leaves its time to within a minute, marked unfinished."""

    def __init__(self, folder: Path, started: float, every: float = 60.0):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "invocations.json"
        self.started = started
        self.entries = json.loads(self.path.read_text()) if self.path.exists() else []
        self.entries.append({})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.update(finished=False, ended=False)
        self._beat = threading.Thread(target=self._heartbeat, args=(every,), daemon=True)
        self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            self.update(finished=False, ended=False)

    def update(self, finished: bool, ended: bool) -> list[dict]:
        """Rewrite this invocation's entry and return every entry. `finished`: the study's work
        is done; `ended`: this invocation reached its end (else the time is its last heartbeat)."""
        with self._lock:
            self.entries[-1] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started)),
                                "seconds": round(time.time() - self.started, 1), "finished": finished, "ended": ended, "cpu": cpu_name()}
            self.path.write_text(json.dumps(self.entries, indent=1))
            return list(self.entries)

    def close(self, finished: bool) -> list[dict]:
        """The invocation's end: its last entry, and no more heartbeats."""
        self._stop.set()
        return self.update(finished, ended=True)

    def discard(self) -> list[dict]:
        """Drop this invocation's entry (it ran nothing) and return the others."""
        self._stop.set()
        with self._lock:
            self.entries.pop()
            self.path.write_text(json.dumps(self.entries, indent=1))
            return list(self.entries)


def confirmation_done(path: str, seeds: list[int]) -> bool:
    from udatune.tune import store

    frame = store.read_confirmation(path)
    if frame is None:
        return False
    supervised = set(frame.loc[frame["method"] == "supervised", "seed"].astype(int))
    return bool((frame["status"] == "done").all()) and supervised >= set(seeds)


def run_oracle(base: dict, seed: int, device: str, threads: int) -> dict:
    """The oracle at one seed: the sweep's base config, supervised, with every frame labelled."""
    import torch

    torch.set_num_threads(threads)
    from udatune.config import TrialConfig
    from udatune.data.registry import build_data
    from udatune.train.loop import run_trial

    cfg = TrialConfig.from_dict(base, source="sweep base config").override(
        {"uda.mode": "supervised", "data.labeled": "all", "train.seed": seed, "train.num_workers": 0, "train.device": device,
         "train.threads": threads, "train.evaluate_test": True})
    start = time.perf_counter()
    result = run_trial(cfg, build_data(cfg.data))
    return {"seed": seed, "val": result.final, "test": result.test, "seconds": time.perf_counter() - start}


def oracle_path(folder: Path, seed: int) -> Path:
    """One oracle run's cached record."""
    return folder / f"oracle-s{seed}.json"


def oracle_records(folder: Path, base: dict, seeds: list[int], device: str, jobs: int) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {seed: oracle_path(folder, seed) for seed in seeds}
    todo = [seed for seed, path in paths.items() if not path.exists()]
    threads = 1 if device == "cuda" else max(1, len(os.sched_getaffinity(0)) // max(1, jobs))
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {seed: pool.submit(run_oracle, base, seed, device, threads) for seed in todo}
        for seed, future in futures.items():
            record = future.result()
            paths[seed].write_text(json.dumps(record, indent=1))
            print(f"oracle seed {seed}: {record['seconds']:.0f} s", flush=True)
    return [json.loads(paths[seed].read_text()) for seed in seeds]


def confirmation_arms(path: str) -> tuple[Arm, Arm, Arm | None, str]:
    """Supervised, the default recipe and (when it is another) the search's confirmed best,
    from the confirmation's rows; and the split they were scored on."""
    from udatune.tune import store

    frame = store.read_confirmation(path)
    last = store.read_rows(store.confirm_path(path)).last_metrics
    split = str(frame["split"].iloc[0])
    prefix = "test_iou/" if split == "test" else "iou/"

    def arm(name: str, rows) -> Arm:
        scores = {int(r.seed): float(r.score) for r in rows.itertuples()}
        classes = {int(r.seed): {k.removeprefix(prefix): float(v) for k, v in last.get(r.trial_id, {}).items() if k.startswith(prefix)}
                   for r in rows.itertuples()}
        return Arm(name, scores, classes)

    supervised = arm("supervised", frame[frame["method"] == "supervised"])
    default = arm("default UDA", frame[frame["default_recipe"]])
    others = frame[(frame["method"] != "supervised") & ~frame["default_recipe"]]
    best = None
    if len(others):
        first = sorted(others["candidate"].unique(), key=lambda c: int(c[1:]) if c[1:].isdigit() else 0)[0]
        chosen = others[others["candidate"] == first]
        best = arm(f"search's best ({chosen['method'].iloc[0]}: {chosen['policy_summary'].iloc[0]})", chosen)
    return supervised, default, best, split


def oracle_arm(records: list[dict], split: str) -> Arm:
    key = "test" if split == "test" else "val"
    scores = {r["seed"]: float(r[key]["miou"]) for r in records}
    classes = {r["seed"]: {k[4:]: float(v) for k, v in r[key].items() if k.startswith("iou/")} for r in records}
    return Arm("oracle (all labels)", scores, classes)


def wall_time(invocations: list[dict]) -> str:
    """The study's wall time: the sum of its invocations. One that was killed before it ended
    (its entry not marked "ended") counts up to its last heartbeat, so the sum is then a lower
    bound, by at most a minute each, and says so."""
    total = sum(entry["seconds"] for entry in invocations)
    if len(invocations) == 1:
        return f"Wall time: {total:.0f} s."
    machines = sorted({entry.get("cpu", "?") for entry in invocations})
    killed = sum(1 for entry in invocations if not entry.get("ended", True))  # entries before "ended" existed were written at the end
    its = "its" if killed == 1 else "their"
    bound = f"; {killed} killed before {its} end, counted to {its} last sign of life: a lower bound" if killed else ""
    return (f"Wall time: {total:.0f} s over {len(invocations)} invocations (stopped and carried on; "
            f"the last {invocations[-1]['seconds']:.0f} s{bound}), on {'; '.join(machines)}.")


def default_name(dataset: str, steps: int, image_size: str | None, spaces: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """The sweep's name, and so its cache: another budget, image size, set of spaces or base
    setting is another study, never one carried on from the sweep of a different config (the
    spaces and settings as a short digest: the name stays a folder name)."""
    import hashlib

    name = f"study-{dataset}-{steps}" + (f"-{image_size}" if image_size else "")
    if spaces or sets:
        name += "-" + hashlib.sha1(json.dumps([list(spaces), sorted(sets)]).encode()).hexdigest()[:8]
    return name


def default_note(base: dict) -> str:
    """What "default UDA" trained with, when the sweep's base settings changed it."""
    options = trial_options(base.get("uda", {}), {})
    return "" if options == "—" else f"Default UDA is the default recipe on the sweep's base settings: {options}. "


def relative(text: str) -> str:
    """Paths under the checkout, written relative to it, and those beside it (``../shared``, where
    CamVid lives) relative to it too: the docs are read on other machines."""
    checkout = Path(__file__).resolve().parents[1]
    return text.replace(f"{checkout}/", "").replace(f"{checkout.parent}/", "../")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASET_OPTIONS), default="camvid")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=4, help="searched trials (baselines come on top)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102], help="fresh seeds of the confirmation and the oracle")
    parser.add_argument("--image-size", default=None, help="HEIGHTxWIDTH instead of the dataset's default")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0)
    parser.add_argument("--device", default="cpu", help="the oracle runs' device: cpu or cuda")
    parser.add_argument("--jobs", type=int, default=2, help="oracle runs at once")
    parser.add_argument("--space", action="append", default=[], help="a search space for `udatune search --space` (repeat; default: its own)")
    parser.add_argument("--set", action="append", default=[], help="section.key=value for every trial of the search")
    parser.add_argument("--name", default=None, help="sweep name (default: study-<dataset>-<steps>)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    name = args.name or default_name(args.dataset, args.steps, args.image_size, tuple(args.space), tuple(args.set))
    storage = str(OUT / "sweeps")
    path = f"{storage}/{name}"
    command = search_command(args, name, storage)
    log, finished, ran = InvocationLog(OUT / name, time.time()), False, False
    try:
        if not confirmation_done(path, args.seeds):
            ran = True
            if Path(path).exists():  # stopped before: the search and an interrupted confirmation go on
                run_or_exit([UDATUNE, "resume", name, "--storage", storage])
                if not confirmation_done(path, args.seeds):
                    run_or_exit(confirm_command(args, name, storage))
            else:
                run_or_exit(command)
        from udatune.tune import store

        manifest = store.read_manifest(path)  # sweep.json, through its one reader
        base = manifest.base_config
        ran = ran or not all(oracle_path(OUT / name, seed).exists() for seed in args.seeds)
        records = oracle_records(OUT / name, base, args.seeds, args.device, args.jobs)
        finished = True
    finally:
        # A study read back whole (every run cached) ran nothing: it does not add to the time.
        invocations = log.close(finished) if ran or not finished else log.discard()
    supervised, default, best, split = confirmation_arms(path)
    oracle = oracle_arm(records, split)
    arms = [supervised, default, *([best] if best else []), oracle]
    judged = best or default
    body = (
        f"Sweep `{relative(path)}`: `{relative(shlex.join(command[1:]))}`. "
        f"Scores on the {split} split{' (the dataset has no test split: fresh seeds on val)' if split == 'val' else ''}, "
        f"seeds {', '.join(map(str, args.seeds))}; the oracle trains the sweep's base config on every labelled frame. "
        f"{default_note(base)}"
        f"{wall_time(invocations)}\n\n"
        f"{summary_table(arms, supervised, oracle)}\n\nIoU per class (mean over the seeds):\n\n{class_table(arms)}\n\n"
        f"The search (seed {', '.join(map(str, manifest.settings.get('seeds', [0])))}, val), each trial as it ended:\n\n{search_table(path)}\n\n"
        f"The floor, for {judged.name}:\n\n" + "\n".join(f"- {line}" for line in floor_lines(judged, supervised, oracle)) + "\n\n"
        f"And {budget_line(supervised, oracle)}.\n"
    )
    print(body)
    if not args.no_write:
        size = f", {args.image_size}" if args.image_size else ""
        spaces = f", spaces {' + '.join(args.space)}" if args.space else ""
        settings = f", base {' '.join(args.set)}" if args.set else ""
        write_section(name, f"Study: {args.dataset}, {args.steps} steps{size}{spaces}{settings}",
                      "python -m bench.study " + shlex.join(sys.argv[1:]), body)


if __name__ == "__main__":
    main()
