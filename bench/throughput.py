"""Trainer throughput, all ratios measured in one run on one machine.

1. UDA step time / supervised step time, each on fixed, pre-loaded batches (the bound is ~2x:
   a UDA step is a forward-backward over labeled + strong views plus a teacher forward).
2. Trainer images/s (the real loop, loaders included) / bare model forward-backward images/s
   on the same batch: data loading must not be the bottleneck (target >= 0.9).
3. Loader supply with the strongest policy / what the trainer consumes (target >= 2x).

    python -m bench.throughput [--dataset synthetic] [--steps 60]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.docs import write_section
from udatune.config import TrialConfig
from udatune.data.loader import LabeledSet, UnlabeledSet, WeakAugment, infinite_loader
from udatune.data.registry import build_data
from udatune.train.loop import run_trial, setup_trial
from udatune.train.step import supervised_step, to_device, uda_step

STRONGEST = "randaugment:3,10"


def bare_step_seconds(cfg: TrialConfig, data, repeats: int) -> float:
    """Median time of one optimisation step on one batch held on the device."""
    setup = setup_trial(cfg, data)
    weak = WeakAugment(crop=cfg.train.crop)
    labeled = to_device(next(infinite_loader(LabeledSet(data.labeled, weak), cfg.train.batch_size, 0, 0, 0, False)), setup.device)
    unlabeled = None
    if cfg.uda.mode == "uda":
        loader = infinite_loader(UnlabeledSet(data.unlabeled, weak, setup.policy), cfg.train.unlabeled_batch_size, 1, 0, 0, False)
        unlabeled = to_device(next(loader), setup.device)
    times = []
    for i in range(repeats + 3):
        start = time.perf_counter()
        if unlabeled is None:
            supervised_step(setup.ctx, labeled, step=1000)["loss"].item()
        else:
            uda_step(setup.ctx, labeled, unlabeled, step=1000)["loss"].item()
        if i >= 3:  # warm-up steps excluded
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def trainer_step_seconds(cfg: TrialConfig, data, steps: int) -> float:
    """Steady-state seconds per step of the real loop (loading, copies, step), evaluation
    excluded: the difference between a run of ``steps`` and one of ``steps // 4``, so the
    one-off start of the loader workers cancels out."""

    def loop_seconds(n: int) -> float:
        result = run_trial(cfg.override({"train.steps": n, "train.eval_every": 10**9}), data)
        return result.step_seconds + result.wait_seconds

    short = max(steps // 4, 5)
    return (loop_seconds(steps) - loop_seconds(short)) / (steps - short)


def loader_images_per_second(cfg: TrialConfig, data, batches: int) -> float:
    dataset = UnlabeledSet(data.unlabeled, WeakAugment(crop=cfg.train.crop), cfg.uda.parsed_policy)
    loader = infinite_loader(dataset, cfg.train.unlabeled_batch_size, 0, 0, cfg.train.num_workers, False)
    next(loader)  # workers started
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * cfg.train.unlabeled_batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--image-size", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    base = TrialConfig().override(
        {"data.dataset": args.dataset, "data.root": args.data_root, "data.image_size": args.image_size, "train.device": "auto"}
    )
    data = build_data(base.data)
    sup_cfg = base.override({"uda.mode": "supervised"})
    strongest = base.override({"uda.policy": STRONGEST})

    t_sup = bare_step_seconds(sup_cfg, data, args.repeats)
    t_uda = bare_step_seconds(base, data, args.repeats)
    loop_sup = trainer_step_seconds(sup_cfg, data, args.steps)
    loop_uda = trainer_step_seconds(base, data, args.steps)
    loop_strong = trainer_step_seconds(strongest, data, args.steps)
    supply = loader_images_per_second(strongest, data, batches=args.steps)

    b, bu = base.train.batch_size, base.train.unlabeled_batch_size
    consumed = bu / loop_strong
    rows = [
        ("bare supervised step (s)", f"{t_sup:.4f}"),
        ("bare UDA step (s)", f"{t_uda:.4f}"),
        ("**UDA / supervised step time**", f"**{t_uda / t_sup:.2f}x**"),
        ("trainer supervised images/s (loop, loaders on)", f"{b / loop_sup:.1f}"),
        ("bare supervised images/s (same batch)", f"{b / t_sup:.1f}"),
        ("**trainer / bare, supervised**", f"**{t_sup / loop_sup:.2f}**"),
        ("trainer UDA labeled+unlabeled images/s", f"{(b + bu) / loop_uda:.1f}"),
        ("bare UDA labeled+unlabeled images/s", f"{(b + bu) / t_uda:.1f}"),
        ("**trainer / bare, UDA**", f"**{t_uda / loop_uda:.2f}**"),
        (f"loader supply, {STRONGEST}, {base.train.num_workers} worker(s) (unlabeled images/s)", f"{supply:.1f}"),
        (f"trainer consumption with {STRONGEST} (unlabeled images/s)", f"{consumed:.1f}"),
        ("**loader supply / consumption**", f"**{supply / consumed:.2f}x**"),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    print(table)
    if not args.no_write:
        size = "x".join(map(str, data.labeled.load(0)[0].shape[:2]))
        body = (
            f"Dataset `{args.dataset}` at {size}, model `{base.model.name}` width {base.model.width}, "
            f"batch {b} labeled + {bu} unlabeled, default policy `{base.uda.policy}`, {args.steps} loop steps, "
            f"median of {args.repeats} bare steps.\n\n{table}\n"
        )
        write_section(f"throughput-{args.dataset}", f"Throughput ({args.dataset})", f"python -m bench.throughput --dataset {args.dataset}" + (f" --image-size {args.image_size}" if args.image_size else ""), body)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
