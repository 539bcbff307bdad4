"""`udatune train`: one trial, locally, no Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from udatune.cli.app import app
from udatune.config import TrialConfig, load_config

FAST_DEV_RUN = {
    "train.steps": 4,
    "train.eval_every": 2,
    "train.log_every": 1,
    "train.batch_size": 2,
    "train.unlabeled_batch_size": 2,
    "train.num_workers": 0,
}


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML/JSON file with sections data, model, uda, train."),
    dataset: Optional[str] = typer.Option(None, help="synthetic (built in), camvid, cityscapes or folder."),
    data_root: Optional[str] = typer.Option(None, help="Folder of a real dataset."),
    labeled: Optional[str] = typer.Option(None, help="Labeled frames: a count (16), a fraction (0.0625) or 'all'."),
    split_seed: Optional[int] = typer.Option(None, help="Seed that draws the labeled subset."),
    image_size: Optional[str] = typer.Option(None, help="Resize frames to HEIGHTxWIDTH, e.g. 90x120."),
    unlabeled_root: Optional[str] = typer.Option(None, help="Extra folder of unlabeled images."),
    model: Optional[str] = typer.Option(None, help="unet, deeplabv3_mobilenet or deeplabv3_resnet50."),
    width: Optional[int] = typer.Option(None, help="U-Net base width."),
    weights: Optional[str] = typer.Option(None, help="Local weights file to start from."),
    mode: Optional[str] = typer.Option(None, help="uda or supervised."),
    lambda_u: Optional[float] = typer.Option(None, "--lambda-u", "--lambda", help="λ: consistency weight."),
    tau: Optional[float] = typer.Option(None, help="τ: teacher confidence threshold."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="T: sharpening temperature."),
    loss: Optional[str] = typer.Option(None, help="Consistency loss: kl or ce."),
    tsa: Optional[str] = typer.Option(None, help="Training signal annealing: none, linear, log, exp."),
    ema_decay: Optional[float] = typer.Option(None, help="Mean-teacher EMA decay (0 = off)."),
    class_adaptive: Optional[bool] = typer.Option(None, "--class-adaptive/--no-class-adaptive", help="FlexMatch-style per-class τ."),
    policy: Optional[str] = typer.Option(None, help="Strong augmentation, e.g. randaugment:2,9 or a policy JSON file."),
    steps: Optional[int] = typer.Option(None, help="Optimisation steps."),
    batch_size: Optional[int] = typer.Option(None, help="Labeled frames per step."),
    unlabeled_batch_size: Optional[int] = typer.Option(None, help="Unlabeled frames per step."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (AdamW)."),
    eval_every: Optional[int] = typer.Option(None, help="Steps between validation runs."),
    seed: Optional[int] = typer.Option(None, help="Training seed."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    workers: Optional[int] = typer.Option(None, help="Loader worker processes."),
    test: bool = typer.Option(False, "--test", help="Also evaluate the test split at the end."),
    set_: list[str] = typer.Option([], "--set", help="Any setting as section.key=value, e.g. uda.rampup_steps=100."),
    out: Path = typer.Option(Path("runs/train"), help="Output folder: metrics.jsonl, config.json, checkpoint."),
    fast_dev_run: bool = typer.Option(False, help="A seconds-long smoke run: 4 tiny steps."),
) -> None:
    """Run one UDA (or supervised) trial locally, without Ray."""
    from udatune.cli.progress import TrainProgress
    from udatune.data.registry import build_data
    from udatune.train.loop import check_config, run_trial

    cfg = load_config(config) if config else TrialConfig()
    options = {
        "data.dataset": dataset, "data.root": data_root, "data.labeled": labeled, "data.split_seed": split_seed,
        "data.image_size": image_size, "data.unlabeled_root": unlabeled_root,
        "model.name": model, "model.width": width, "model.weights": weights,
        "uda.mode": mode, "uda.lambda_u": lambda_u, "uda.tau": tau, "uda.temperature": temperature,
        "uda.loss": loss, "uda.tsa": tsa, "uda.ema_decay": ema_decay, "uda.class_adaptive": class_adaptive,
        "uda.policy": policy,
        "train.steps": steps, "train.batch_size": batch_size, "train.unlabeled_batch_size": unlabeled_batch_size,
        "train.lr": lr, "train.eval_every": eval_every, "train.seed": seed, "train.device": device,
        "train.num_workers": workers, "train.evaluate_test": test or None,
    }
    cfg = cfg.override({k: v for k, v in options.items() if v is not None}, source="options")
    cfg = cfg.override(parse_sets(set_), source="--set")
    if fast_dev_run:
        cfg = cfg.override(FAST_DEV_RUN, source="--fast-dev-run")
    check_config(cfg)
    from udatune.augment.policy import parse_policy

    parse_policy(cfg.uda.policy)  # a bad policy fails here, before data is loaded
    data = build_data(cfg.data)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    with TrainProgress(cfg, data, out) as progress:
        result = run_trial(cfg, data, hooks=progress.hook)
        progress.finish(result)


def parse_sets(items: list[str]) -> dict[str, str]:
    from udatune.errors import ConfigError

    updates = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not of the form section.key=value (e.g. uda.tau=0.9).")
        updates[key.strip()] = value.strip()
    return updates
