"""Does UDA lift mIoU? Supervised baseline vs UDA vs oracle, paired by seed.

For each dataset and seed, every method trains on the same labeled subset (split seed =
seed, unless ``--set data.split_seed=N`` holds one subset for every seed, as a confirmation
does), the same step budget and the same training seed:

* ``supervised`` — labeled frames only (the baseline);
* ``uda``        — labeled + unlabeled, the default settings (RandAugment(2, 4), geometric ops on);
* ``uda-strong`` — the same at the UDA paper's magnitude, RandAugment(2, 9);
* ``uda-photo``  — RandAugment(2, 4) with photometric ops only;
* ``oracle``     — supervised with labels on every train frame (the ceiling);
* ``uda-balanced`` — UDA with class-balanced consistency weights (``uda.class_balance``);
* ``uda-aligned`` — UDA with distribution alignment (``uda.align``);
* ``uda-anticollapse`` — UDA with all three options against thin classes collapsing:
  class-adaptive τ, class-balanced consistency and distribution alignment;
* ``uda-ema`` — UDA with a mean teacher (EMA decay 0.99) instead of the model being its own;
* ``uda-cutmix`` — UDA whose strong view is always CutMix (half the frame pasted from another
  unlabeled image, with its teacher prediction) plus one mild photometric op, French et al.'s
  perturbation for segmentation (2020), no geometric ops;
* ``uda-cutmix-ema`` — the same with a mean teacher (EMA decay 0.99), as French et al. ran it;
* ``uda-cutmix-ema-aligned``, ``uda-cutmix-ema-balanced`` — that recipe with distribution
  alignment or class-balanced consistency;
* ``uda-cutmix-ema-aligned-paste`` — with alignment, and a labelled frame's rare-class objects
  pasted on top of half of the strong views (``uda.paste``, train/paste.py).

Results are cached per run under ``bench/out/quality`` so an interrupted benchmark resumes,
and the summary is written to docs/benchmarks.md.

``--models`` runs the same grid for several models (``name`` or ``name:encoder``, e.g.
``deeplabv3plus:resnet18``), one section each (``<tag>-<model>``), sharing ``--jobs``.

    python -m bench.quality --dataset synthetic --seeds 0 1 2 --jobs 2
    python -m bench.quality --dataset camvid --seeds 0 --jobs 2
    python -m bench.quality --methods supervised uda --models deeplabv3plus:resnet18 smp-unet:resnet18 \
        --set model.encoder_weights=none --tag smp --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from udatune.tune.space import load_space

OUT = Path(__file__).resolve().parent / "out" / "quality"
CAMVID = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"

METHODS = {
    "supervised": {"uda.mode": "supervised"},
    "uda": {"uda.mode": "uda"},  # the default UDA settings: RandAugment(2, 4), λ=1, τ=0.8, T=0.4
    "uda-strong": {"uda.mode": "uda", "uda.policy": "randaugment:2,9"},  # the UDA paper's magnitude
    "uda-photo": {"uda.mode": "uda", "uda.policy": "randaugment:2,4:photometric"},
    "oracle": {"uda.mode": "supervised", "data.labeled": "all"},
    # Beyond the paper: the options against thin classes collapsing, alone and together, and a mean teacher.
    "uda-balanced": {"uda.mode": "uda", "uda.class_balance": True},
    "uda-aligned": {"uda.mode": "uda", "uda.align": True},
    "uda-anticollapse": {"uda.mode": "uda", "uda.class_adaptive": True, "uda.class_balance": True, "uda.align": True},
    "uda-ema": {"uda.mode": "uda", "uda.ema_decay": 0.99},
}

# CutMix at magnitude 10 (box area 0.5) in every sub-policy, one photometric op at magnitude 4
# beside it: the policy of the shipped `cutmix` space (search_spaces/cutmix.yaml), its one owner.
CUTMIX_POLICY = load_space("cutmix").policy.policy
METHODS["uda-cutmix"] = {"uda.mode": "uda", "uda.policy": CUTMIX_POLICY}
METHODS["uda-cutmix-ema"] = {**METHODS["uda-cutmix"], "uda.ema_decay": 0.99}
# French et al.'s recipe with one option against thin classes collapsing.
METHODS["uda-cutmix-ema-aligned"] = {**METHODS["uda-cutmix-ema"], "uda.align": True}
METHODS["uda-cutmix-ema-balanced"] = {**METHODS["uda-cutmix-ema"], "uda.class_balance": True}
# ... and, with alignment, the labelled frames' rare-class objects pasted on half of the strong views.
METHODS["uda-cutmix-ema-aligned-paste"] = {**METHODS["uda-cutmix-ema-aligned"], "uda.paste": 0.5}

DATASETS = {
    "synthetic": {"data.dataset": "synthetic"},
    # CamVid at half resolution: 24 labeled frames = the 1/16 split of 367.
    "camvid": {"data.dataset": "camvid", "data.root": str(CAMVID), "data.labeled": "24", "data.image_size": "90x120"},
}


def run_one(dataset: str, method: str, seed: int, extra: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from udatune.data.registry import build_data
    from udatune.train.loop import run_trial

    cfg = run_config(dataset, method, seed, extra)
    start = time.perf_counter()
    result = run_trial(cfg, build_data(cfg.data))
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "miou": result.final["miou"],
        "best_miou": result.best_miou,
        "final": result.final,
        "seconds": time.perf_counter() - start,
        "config": cfg.to_dict(),
    }


def run_config(dataset: str, method: str, seed: int, extra: dict):
    """The trial config of one run: the dataset's, the seed's, the extra settings, the method's."""
    from udatune.config import TrialConfig

    overrides = {**DATASETS[dataset], "train.seed": seed, "data.split_seed": seed, "train.num_workers": 0, "train.device": "cpu"}
    overrides.update(extra)
    overrides.update(METHODS[method])
    return TrialConfig().override(overrides)


def cached(path: Path, config: dict) -> dict | None:
    """The cached record at ``path`` if it ran exactly ``config`` (a run with other settings
    under the same tag — another image size, say — is not this run: it is run again).

    The cached config is read back through `TrialConfig` first: a setting added to udatune
    since the run was cached takes its default, which is what the run had (a new option is off
    by default), so adding one does not throw away hours of cached runs. A cached config that
    no longer builds is not this run."""
    from udatune.config import TrialConfig
    from udatune.errors import ConfigError

    if not path.exists():
        return None
    record = json.loads(path.read_text())
    try:
        ran = TrialConfig.from_dict(record.get("config") or {}).to_dict()
    except ConfigError:
        return None
    return record if json.loads(json.dumps(ran)) == json.loads(json.dumps(config)) else None  # as the file holds it


def model_overrides(spec: str | None) -> dict:
    """``name`` or ``name:encoder`` -> config overrides (None: the config's model)."""
    if spec is None:
        return {}
    name, _, encoder = spec.partition(":")
    return {"model.name": name, **({"model.encoder": encoder} if encoder else {})}


def run_all(dataset: str, seeds: list[int], methods: list[str], extra: dict, jobs: int, tag: str, cached_only: bool = False,
            models: list[str | None] = (None,)) -> dict[str | None, list[dict]]:
    """Run (or read from the cache) every model × seed × method; records per model."""
    OUT.mkdir(parents=True, exist_ok=True)
    todo, done = [], {m: [] for m in models}
    for model in models:
        for seed in seeds:
            for method in methods:
                name = tag if model is None else f"{tag}-{model.replace(':', '-')}"
                path = OUT / f"{name}-{method}-s{seed}.json"
                record = cached(path, run_config(dataset, method, seed, {**extra, **model_overrides(model)}).to_dict())
                if record is not None:
                    done[model].append(record)
                elif not cached_only:
                    todo.append((model, method, seed, path))
    threads = max(1, (os.cpu_count() or 2) // jobs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(run_one, dataset, method, seed, {**extra, **model_overrides(model)}, threads): (model, method, seed, path)
            for model, method, seed, path in todo
        }
        for future, (model, method, seed, path) in futures.items():
            record = future.result()
            path.write_text(json.dumps(record, indent=1))
            print(f"{dataset} {model or ''} {method} seed {seed}: mIoU {record['miou']:.3f} ({record['seconds']:.0f}s)", flush=True)
            done[model].append(record)
    return done


def seeds_sentence(seeds: list[int], records: list[dict]) -> str:
    """What a seed varies in these runs: by default the labeled subset too (split seed = seed);
    with ``--set data.split_seed=N`` only the training (the design of `udatune confirm`, whose
    fresh seeds keep the sweep's labeled subset)."""
    splits = sorted({r["config"]["data"]["split_seed"] for r in records})
    if all(r["config"]["data"]["split_seed"] == r["seed"] for r in records):
        return f"seeds {seeds} (training seed = split seed, so each seed's methods share one labeled subset)."
    if len(splits) == 1:
        return f"training seeds {seeds} on one labeled subset (split seed {splits[0]}), as `udatune confirm` varies them."
    return f"seeds {seeds}, split seeds {splits}."


def mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def paired_ci(gains: list[float]) -> str:
    """Mean paired gain with a Student-t 95% interval across seeds (scipy's t quantile)."""
    if len(gains) < 2:
        return "—"
    from scipy import stats

    half = stats.t.ppf(0.975, len(gains) - 1) * statistics.stdev(gains) / math.sqrt(len(gains))
    mean = statistics.mean(gains)
    verdict = "inside the noise" if mean - half <= 0 <= mean + half else ("gain" if mean > 0 else "loss")
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] ({verdict})"


def gap_share(gains: list[float], gaps: list[float]) -> float:
    """The share of the supervised→oracle gap a method closes: its mean paired gain over the mean
    gap, on the same seeds. A ratio of means, as the study's floor reads it: one seed whose gap
    is small cannot blow the share up, as it does in a mean of per-seed ratios. NaN when the
    oracle does not lead on average, since there is then no gap to close."""
    if not gains or len(gains) != len(gaps):
        return math.nan
    gap = statistics.mean(gaps)
    return statistics.mean(gains) / gap if gap > 0 else math.nan


def summarize(records: list[dict], methods: list[str]) -> str:
    by = {(r["method"], r["seed"]): r["miou"] for r in records}
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "| method | seeds | mIoU (mean ± std) | gain over supervised (paired) | paired gain, 95% CI | share of sup→oracle gap closed | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        values = [by[(method, s)] for s in seeds if (method, s) in by]
        gains = [by[(method, s)] - by[("supervised", s)] for s in seeds if (method, s) in by and ("supervised", s) in by]
        share = "—"
        if method not in ("supervised", "oracle"):
            both = [s for s in seeds if all(k in by for k in ((method, s), ("supervised", s), ("oracle", s)))]
            closed = gap_share([by[(method, s)] - by[("supervised", s)] for s in both], [by[("oracle", s)] - by[("supervised", s)] for s in both])
            share = f"{closed:.0%}" if math.isfinite(closed) else ("n/a: oracle ≤ baseline" if both else "—")
        gain = mean_std(gains) if method != "supervised" else "—"
        per_seed = ", ".join(f"{v:.3f}" for v in values)
        ci = paired_ci(gains) if method != "supervised" else "—"
        lines.append(f"| {method} | {len(values)} | {mean_std(values)} | {gain} | {ci} | {share} | {per_seed} |")
    return "\n".join(lines)


def per_class_table(records: list[dict], methods: list[str]) -> str:
    """Mean IoU per class and method: where UDA's gains and losses come from."""
    classes = [k[4:] for k in records[0]["final"] if k.startswith("iou/")]
    header = "| method | " + " | ".join(classes) + " |\n|---|" + "---|" * len(classes)
    rows = []
    for method in methods:
        finals = [r["final"] for r in records if r["method"] == method]
        if not finals:
            continue
        cells = []
        for c in classes:
            values = [f[f"iou/{c}"] for f in finals if not math.isnan(f[f"iou/{c}"])]
            cells.append(f"{statistics.mean(values):.2f}" if values else "—")
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return header + "\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["supervised", "uda", "uda-photo", "oracle"], choices=list(METHODS))
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides section.key=value for every run")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (threads are split between them)")
    parser.add_argument("--tag", default=None, help="cache/section name (default: the dataset)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--cached-only", action="store_true", help="summarise the runs already cached; run nothing")
    parser.add_argument("--models", nargs="+", default=None, help="models as name or name:encoder (e.g. deeplabv3plus:resnet18); one section each")
    args = parser.parse_args()
    if args.dataset == "camvid" and not CAMVID.is_dir():
        raise SystemExit(f"CamVid not found at {CAMVID}; skipping.")
    extra = dict(item.split("=", 1) for item in args.set)
    tag = args.tag or args.dataset
    start = time.perf_counter()
    models = args.models or [None]
    by_model = run_all(args.dataset, args.seeds, args.methods, extra, args.jobs, tag, args.cached_only, models)
    command = f"python -m bench.quality --dataset {args.dataset} --seeds {' '.join(map(str, args.seeds))} --jobs {args.jobs}"
    if args.methods != parser.get_default("methods"):
        command += " --methods " + " ".join(args.methods)
    if args.models:
        command += " --models " + " ".join(args.models)
    if args.set:
        command += " --set " + " ".join(args.set)
    if args.tag:
        command += f" --tag {args.tag}"
    for model, records in by_model.items():
        if not records:
            continue
        table = summarize(records, args.methods) + "\n\nPer-class IoU (mean over the seeds above):\n\n" + per_class_table(records, args.methods)
        print(table)
        if args.no_write:
            continue
        cfg = records[0]["config"]
        m = cfg["model"]
        if m["name"] in ("unet",):
            what = f"Model `{m['name']}` width {m['width']}, depth {m.get('depth', 4)}"
        elif m["name"].startswith("deeplabv3_"):
            what = f"Model `{m['name']}` (torchvision)"
        else:
            what = f"Model `{m['name']}` (smp) with encoder `{m['encoder']}`, encoder weights `{m['encoder_weights']}`"
        per_step = ", ".join(
            f"{method} {statistics.mean(r['seconds'] / r['config']['train']['steps'] for r in records if r['method'] == method):.2f} s/step"
            for method in args.methods if any(r["method"] == method for r in records)
        )
        sample = (
            f"{what}, {cfg['train']['steps']} steps, batch "
            f"{cfg['train']['batch_size']} labeled + {cfg['train']['unlabeled_batch_size']} unlabeled, image size "
            f"{cfg['data']['image_size'] or 'native'}, λ={cfg['uda']['lambda_u']}, τ={cfg['uda']['tau']}, T={cfg['uda']['temperature']}, "
            f"labeled={cfg['data']['labeled']}, {seeds_sentence(args.seeds, records)} "
            f"Strong-view policy per method: "
            + ", ".join(f"{m} `{next(r['config']['uda']['policy'] for r in records if r['method'] == m)}`" for m in args.methods if m.startswith("uda") and any(r["method"] == m for r in records))
            + f". mIoU is the final validation mIoU. Wall time per run, divided by its steps (set-up and evaluation included, "
            f"{args.jobs} runs in parallel): {per_step}. "
            + ("Summarised from cached runs." if args.cached_only else f"Wall time of this invocation: {time.perf_counter() - start:.0f} s.")
        )
        name = tag if model is None else f"{tag}-{model.replace(':', '-')}"
        write_section = __import__("bench.docs", fromlist=["write_section"]).write_section
        write_section(f"quality-{name}", f"Quality: {name}", command, sample + "\n\n" + table)


if __name__ == "__main__":
    main()
