"""`udatune train`: one trial, locally, no Ray."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer

from udatune.cli.app import app
from udatune.config import TrialConfig, load_config

MODEL_HELP = (
    "unet (udatune's own small U-Net), deeplabv3_mobilenet / deeplabv3_resnet50 (torchvision), or an smp "
    "architecture over --encoder: smp-unet, deeplabv3, deeplabv3plus, fpn, pspnet, unetplusplus, manet, linknet, upernet, segformer."
)
ENCODER_HELP = "smp models: the encoder, any smp encoder (resnet18, mobilenet_v2, efficientnet-b0, ...) or timm model as tu-<name>."
ENCODER_WEIGHTS_HELP = (
    "smp models: imagenet (fetched once into the Hugging Face / torch cache), none (random), "
    "or PATH to a local encoder state dict."
)

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
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    width: Optional[int] = typer.Option(None, help="U-Net base width."),
    weights: Optional[str] = typer.Option(None, help="Local weights file for the whole model to start from."),
    encoder: Optional[str] = typer.Option(None, help=ENCODER_HELP),
    encoder_weights: Optional[str] = typer.Option(None, help=ENCODER_WEIGHTS_HELP),
    encoder_lr_mult: Optional[float] = typer.Option(None, help="The encoder learns at lr × this (0.1 is usual for a pretrained one)."),
    freeze_encoder_steps: Optional[int] = typer.Option(None, help="Keep the encoder frozen for this many first steps."),
    mode: Optional[str] = typer.Option(None, help="uda or supervised."),
    lambda_u: Optional[float] = typer.Option(None, "--lambda-u", "--lambda", help="λ: consistency weight."),
    tau: Optional[float] = typer.Option(None, help="τ: teacher confidence threshold."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="T: sharpening temperature."),
    loss: Optional[str] = typer.Option(None, help="Consistency loss: kl or ce."),
    tsa: Optional[str] = typer.Option(None, help="Training signal annealing: none, linear, log, exp."),
    ema_decay: Optional[float] = typer.Option(None, help="Mean-teacher EMA decay (0 = off)."),
    class_adaptive: Optional[bool] = typer.Option(None, "--class-adaptive/--no-class-adaptive", help="FlexMatch-style per-class τ."),
    paste: Optional[float] = typer.Option(None, help="Probability that a strong view gets a labeled frame's rare-class objects pasted on (0 = off)."),
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
    out: Optional[Path] = typer.Option(None, help="Output folder: metrics.jsonl, config.json, checkpoint (default: a new runs/train/<date>-<time>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --out."),
    fast_dev_run: bool = typer.Option(False, help="A seconds-long smoke run: 4 tiny steps."),
) -> None:
    """Run one UDA (or supervised) trial locally, without Ray."""
    from udatune.cli.progress import TrainProgress
    from udatune.data.registry import build_data
    from udatune.errors import RunFailed, RunInterrupted
    from udatune.outputs import check_output_folder, new_run_folder
    from udatune.models.registry import prepare_model
    from udatune.train.loop import run_trial
    from udatune.train.step import TrialDiverged

    # Everything is checked before data is loaded or a file is written: a typo costs nothing.
    cfg = load_config(config) if config else TrialConfig()
    options = {
        "data.dataset": dataset, "data.root": data_root, "data.labeled": labeled, "data.split_seed": split_seed,
        "data.image_size": image_size, "data.unlabeled_root": unlabeled_root,
        "model.name": model, "model.width": width, "model.weights": weights,
        "model.encoder": encoder, "model.encoder_weights": encoder_weights,
        "train.encoder_lr_mult": encoder_lr_mult, "train.freeze_encoder_steps": freeze_encoder_steps,
        "uda.mode": mode, "uda.lambda_u": lambda_u, "uda.tau": tau, "uda.temperature": temperature,
        "uda.loss": loss, "uda.tsa": tsa, "uda.ema_decay": ema_decay, "uda.class_adaptive": class_adaptive,
        "uda.paste": paste, "uda.policy": policy,
        "train.steps": steps, "train.batch_size": batch_size, "train.unlabeled_batch_size": unlabeled_batch_size,
        "train.lr": lr, "train.eval_every": eval_every, "train.seed": seed, "train.device": device,
        "train.num_workers": workers, "train.evaluate_test": test or None,
    }
    cfg = cfg.override({k: v for k, v in options.items() if v is not None}, source="options")
    cfg = cfg.override(parse_sets(set_), source="--set")
    if fast_dev_run:
        cfg = cfg.override(FAST_DEV_RUN, source="--fast-dev-run")
    preflight(cfg)
    out = out if out is not None else new_run_folder(Path("runs/train"))
    check_output_folder(out, "--out", overwrite=overwrite)
    # An unknown encoder, or pretrained weights that are neither cached nor fetchable, fail
    # here too; the weights' hash goes into config.json.
    cfg = dataclasses.replace(cfg, model=prepare_model(cfg.model))
    data = build_data(cfg.data)
    if cfg.model.weights is not None:  # a weights file that does not fit fails now, not after files are written
        from udatune.models.registry import build_model

        build_model(cfg.model, data.num_classes)

    if overwrite:
        clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    try:
        with TrainProgress(cfg, data, out) as progress:
            result = run_trial(cfg, data, hooks=progress.hook)
            progress.finish(result)
    except TrialDiverged as diverged:
        raise RunFailed(
            f"The loss diverged ({diverged}); training stopped, and what it logged is in {out / 'metrics.jsonl'}. Lower --lr or "
            "--lambda (or raise --temperature) and run again."
        ) from None
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"training stopped by the user; what it logged is in {out / 'metrics.jsonl'} and the last "
            f"evaluation's checkpoint in {out / 'checkpoint'} (start from it with --weights)."
        ) from None


RUN_FILES = ("metrics.jsonl", "config.json", "result.json", "checkpoint")


def clear_run(out: Path) -> None:
    """Remove an earlier run's files from ``out`` (and nothing else a user keeps there)."""
    import shutil

    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def preflight(cfg: TrialConfig) -> None:
    """What the config tree cannot check by itself, because it depends on this machine: the
    device and the weights file (the policy, a policy file's too, is parsed where the config is
    built). Done before any data is loaded."""
    from udatune.errors import ConfigError
    from udatune.train.loop import resolve_device

    resolve_device(cfg.train.device)
    if cfg.model.weights is not None and not Path(cfg.model.weights).expanduser().is_file():
        raise ConfigError(
            f"--weights {cfg.model.weights} does not exist or is not a file; pass a state dict or checkpoint "
            "saved by udatune or torch (nothing is downloaded)."
        )


def parse_sets(items: list[str]) -> dict[str, str]:
    from udatune.errors import ConfigError

    updates = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not of the form section.key=value (e.g. uda.tau=0.9).")
        updates[key.strip()] = value.strip()
    return updates


@app.command("fetch-weights")
def fetch_weights(
    encoder: str = typer.Option("resnet18", help=ENCODER_HELP),
    encoder_weights: str = typer.Option("imagenet", help="The pretrained weights to fetch: imagenet (or another name smp lists for the encoder)."),
) -> None:
    """Fetch an smp encoder's pretrained weights into the local cache once (for offline machines:
    run it where there is network, then share HF_HOME / TORCH_HOME), and print their hash."""
    from udatune.config import ModelConfig
    from udatune.models.encoder_weights import resolve_encoder_weights

    weights = resolve_encoder_weights(ModelConfig(encoder=encoder, encoder_weights=encoder_weights), fetch=True)
    typer.echo(f"{encoder}: {weights.describe()}")
    if weights.sha256:
        typer.echo(f"sha256 {weights.sha256}")
