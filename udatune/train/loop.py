"""The training loop for one trial: a plain function of a frozen config.

No Ray in here: `udatune train` calls `run_trial` directly, and a Ray Train worker calls
the same function with hooks that report to Ray. Hooks receive every record the loop emits
(``kind`` = "train" every ``log_every`` steps, "eval" after each evaluation) and may save a
checkpoint through the function they are handed.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch

from udatune.config import TrialConfig
from udatune.data.base import SegmentationData
from udatune.data.loader import (
    LabeledSet,
    UnlabeledSet,
    WeakAugment,
    eval_loader,
    infinite_loader,
    normalize,
)
from udatune.errors import ConfigError
from udatune.models.registry import build_model, encoder_of, set_encoder_frozen
from udatune.train.checkpoint import load_checkpoint, save_checkpoint
from udatune.train.metrics import ConfusionMatrix
from udatune.train.step import StepContext, TrialDiverged, supervised_step, to_device, uda_step
from udatune.train.paste import LabeledPaste
from udatune.train.teacher import ClassThresholds, DistributionAlignment, EMATeacher

class Hooks(Protocol):
    def __call__(self, record: dict, save: Callable[[Path], None]) -> None: ...


@dataclass
class TrialResult:
    steps: int
    final: dict  # last val record
    best_miou: float
    history: list[dict] = field(default_factory=list)
    test: dict | None = None
    step_seconds: float = 0.0  # wall time inside optimisation steps
    wait_seconds: float = 0.0  # wall time waiting for batches


def run_environment(device: torch.device) -> dict:
    """What decides a seeded run's numbers besides its config: the torch build, the device and
    the number of CPU threads (float sums in another order diverge like another seed)."""
    return {"torch": torch.__version__, "device": str(device), "torch_threads": torch.get_num_threads()}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible here; use --device cpu or auto.")
    return device


def autocast_factory(device: torch.device, amp: bool) -> tuple[Callable[[], object], torch.amp.GradScaler | None]:
    """bf16 autocast where the GPU supports it (no loss scaling needed), else fp16 + scaler;
    full precision on CPU, where autocast buys little and costs determinism."""
    if device.type != "cuda" or not amp:
        return contextlib.nullcontext, None
    if native_bf16():
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def native_bf16() -> bool:
    """Whether the GPU computes in bf16 natively. ``is_bf16_supported()`` alone also counts
    emulation (V100, T4), where bf16 autocast is slower than fp16 with a loss scaler."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no such argument and counts only native support
        return torch.cuda.is_bf16_supported()


def data_parallel_group() -> tuple[int, int]:
    """``(rank, world size)`` of the process group DDP trains in (Ray Train's, torchrun's);
    ``(0, 1)`` in a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks (a collective on the tensor's device)."""
    import torch.distributed as dist

    tensor = tensor.clone()
    dist.all_reduce(tensor)
    return tensor / dist.get_world_size()


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, num_classes: int, device: torch.device, autocast) -> ConfusionMatrix:
    """Scores of ``loader``'s frames; under DDP each rank passes its shard (`eval_loader`) and
    the matrices are summed, so every rank returns the scores of the whole split."""
    if data_parallel_group()[1] > 1:
        # Rank 0's BatchNorm statistics on every rank, the ones its checkpoint holds: each rank's
        # last training forward updated its own, and DDP re-syncs them only at the next one.
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes)
    for batch in loader:
        batch = to_device(batch, device)
        with autocast():
            logits = model(normalize(batch["image"]))
        matrix.update(batch["mask"], logits.argmax(dim=1))
    model.train(was_training)
    matrix.reduce_from_all_processes()
    return matrix


@dataclass
class TrialSetup:
    """Everything built before the first step; the loop and the benchmarks share it."""

    ctx: StepContext
    scheduler: torch.optim.lr_scheduler.LRScheduler
    policy: object
    device: torch.device


def setup_trial(
    cfg: TrialConfig,
    data: SegmentationData,
    wrap_model: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> TrialSetup:
    """``wrap_model`` wraps the built model before the optimizer sees it (a Ray Train worker
    passes ``ray.train.torch.prepare_model`` for DDP); the EMA teacher copies the unwrapped one."""
    policy = cfg.uda.parsed_policy
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    # Channels-last on every device: cuDNN's fast kernels want it, and so does oneDNN on a CPU
    # (inputs too, see `normalize`): about 10% off a demo-size UDA step on one core.
    model = build_model(cfg.model, data.num_classes).to(device, memory_format=torch.channels_last)
    if device.type == "cuda":
        # Fixed input sizes (crops, a fixed image size): let cuDNN pick the fastest kernels once.
        torch.backends.cudnn.benchmark = True
    unwrapped = model
    if wrap_model is not None:
        model = wrap_model(model)
    optimizer, scheduler = build_optimizer(cfg, model, encoder_of(unwrapped))
    autocast, scaler = autocast_factory(device, t.amp)
    uda_mode = cfg.uda.mode == "uda"
    # Under DDP the teacher's state is averaged over the ranks at every step (a small collective).
    reduce = average_across_ranks if data_parallel_group()[1] > 1 else None
    ctx = StepContext(
        model=model,
        model_without_ddp=unwrapped,
        optimizer=optimizer,
        uda=cfg.uda,
        num_classes=data.num_classes,
        device=device,
        total_steps=t.steps,
        autocast=autocast,
        scaler=scaler,
        ema=EMATeacher(unwrapped, cfg.uda.ema_decay, reduce=reduce) if (uda_mode and cfg.uda.ema_decay > 0) else None,
        thresholds=ClassThresholds(data.num_classes, cfg.uda.tau, cfg.uda.class_adaptive, reduce=reduce),
        uses_geometry=policy.uses_geometry,
        alignment=DistributionAlignment(data.num_classes, reduce=reduce) if (uda_mode and cfg.uda.align) else None,
        paste=LabeledPaste(data.num_classes, cfg.uda.paste, t.seed, reduce=reduce) if (uda_mode and cfg.uda.paste > 0) else None,
    )
    return TrialSetup(ctx, scheduler, policy, device)


def build_optimizer(
    cfg: TrialConfig, model: torch.nn.Module, encoder: torch.nn.Module | None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with polynomial decay; a model's encoder gets its own group when it needs one.

    The encoder learns at ``lr × encoder_lr_mult`` (a pretrained encoder is usually given a
    tenth of the decoder's rate, so the random decoder does not wreck its features), and at
    zero for the first ``freeze_encoder_steps``. Freezing by learning rate rather than by
    ``requires_grad`` keeps the parameter set that DDP registered unchanged.
    """
    t = cfg.train

    def poly(s: int) -> float:  # the usual schedule for segmentation
        return (1 - min(s, t.steps) / (t.steps + 1)) ** 0.9

    if t.encoder_lr_mult == 1.0 and t.freeze_encoder_steps == 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=_fusable(model))
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
    if encoder is None:
        raise ConfigError(
            f"train.encoder_lr_mult / train.freeze_encoder_steps apply to models with an encoder (smp models, "
            f"torchvision's deeplabv3_*); model {cfg.model.name!r} has none. Leave them at 1.0 / 0."
        )
    in_encoder = {id(p) for p in encoder.parameters()}
    encoder_params = [p for p in model.parameters() if id(p) in in_encoder]
    other_params = [p for p in model.parameters() if id(p) not in in_encoder]
    optimizer = torch.optim.AdamW(
        [{"params": other_params}, {"params": encoder_params, "lr": t.lr * t.encoder_lr_mult}],
        lr=t.lr, weight_decay=t.weight_decay, fused=_fusable(model),
    )
    frozen = t.freeze_encoder_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [poly, lambda s: poly(s) if s >= frozen else 0.0])
    return optimizer, scheduler


def _fusable(model: torch.nn.Module) -> bool:
    """Whether AdamW can update every parameter in one fused kernel: floating-point parameters
    on a CPU or CUDA device. On a CPU the fused step took 2.7 ms against 19 ms for the
    per-parameter loop (U-Net width 8, one thread), about a tenth of a demo-size step."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters())


def run_trial(
    cfg: TrialConfig,
    data: SegmentationData,
    hooks: Hooks | None = None,
    resume: Path | None = None,
    wrap_model: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> TrialResult:
    hooks = hooks or (lambda record, save: None)
    t = cfg.train
    setup = setup_trial(cfg, data, wrap_model)
    ctx, scheduler, policy, device = setup.ctx, setup.scheduler, setup.policy, setup.device
    model, autocast = ctx.model, ctx.autocast
    uda_mode = cfg.uda.mode == "uda"

    start, history, best = 0, [], -math.inf
    if resume is not None:
        state = load_checkpoint(resume, ctx, scheduler)
        start, history, best = state["step"], state["history"], state["best_miou"]

    def save(path: Path) -> None:
        save_checkpoint(path, ctx, scheduler, step, cfg, history, best)

    # A frozen encoder also keeps its BatchNorm statistics; they start updating with its weights.
    set_encoder_frozen(model, start < t.freeze_encoder_steps)

    pin = device.type == "cuda"
    weak = WeakAugment(crop=t.crop)
    labeled_iter = infinite_loader(LabeledSet(data.labeled, weak), t.batch_size, t.seed, start, t.num_workers, pin)
    unlabeled_iter = None
    if uda_mode:
        unlabeled = UnlabeledSet(data.unlabeled, weak, policy)
        unlabeled_iter = infinite_loader(unlabeled, t.unlabeled_batch_size, t.seed + 1, start, t.num_workers, pin)
    shard = data_parallel_group()  # under DDP each rank evaluates every world-th frame
    val_loader = eval_loader(data.val, max(t.batch_size, 16), t.num_workers, pin, shard)

    result = TrialResult(steps=start, final=history[-1] if history else {}, best_miou=best, history=history)
    running: dict[str, torch.Tensor] = {}
    model.train()
    step = start
    # Set-up ends here (data, model, loaders): timers in the hooks start from this record. It
    # also says what a bit-for-bit repeat of this run needs besides its config.
    hooks({"kind": "start", "step": start, **run_environment(device)}, save)
    while step < t.steps:
        tick = time.perf_counter()
        labeled = to_device(next(labeled_iter), device)
        unlabeled_batch = to_device(next(unlabeled_iter), device) if uda_mode else None
        tock = time.perf_counter()
        log_now = (step + 1) % t.log_every == 0 or step + 1 == t.steps
        if uda_mode:
            metrics = uda_step(ctx, labeled, unlabeled_batch, step, detailed=log_now)
        else:
            metrics = supervised_step(ctx, labeled, step)
        scheduler.step()
        step += 1
        if step == t.freeze_encoder_steps:
            set_encoder_frozen(model, False)
        for key, value in metrics.items():
            running[key] = running.get(key, 0.0) + value if not key.startswith("mask_ratio/") else value
        if log_now:
            record = _train_record(running, step, t.log_every, data.classes, scheduler.get_last_lr()[0])
            running = {}
            if not math.isfinite(record["loss"]):
                raise TrialDiverged(f"loss became {record['loss']} by step {step}")
            result.step_seconds += time.perf_counter() - tock
            hooks(record, save)
        else:
            result.step_seconds += time.perf_counter() - tock
        result.wait_seconds += tock - tick
        if step % t.eval_every == 0 or step == t.steps:
            scores = evaluate(ctx.model_without_ddp, val_loader, data.num_classes, device, autocast).compute()
            best = max(best, scores.miou)
            record = {"kind": "eval", "split": "val", "step": step, **scores.as_dict(data.classes), "best_miou": best}
            history.append(record)
            result.final, result.best_miou = record, best
            hooks(record, save)
    result.steps = step
    if t.evaluate_test and data.has_test:
        test_loader = eval_loader(data.test, max(t.batch_size, 16), 0, pin, shard)
        scores = evaluate(ctx.model_without_ddp, test_loader, data.num_classes, device, autocast).compute()
        result.test = {"kind": "eval", "split": "test", "step": step, **scores.as_dict(data.classes)}
        hooks(result.test, save)
    return result


def _train_record(running: dict, step: int, window: int, classes: tuple[str, ...], lr: float) -> dict:
    """Average the running sums over the logging window; per-class mask ratios are the last
    logged step's (they are only computed on logging steps)."""
    record: dict = {"kind": "train", "step": step, "lr": lr}
    n = step - (step - 1) // window * window if step % window else window
    for key, value in running.items():
        value = float(value)
        if key.startswith("mask_ratio/"):
            if not math.isnan(value):  # NaN = the teacher predicted no pixel of this class
                record[f"mask_ratio/{classes[int(key.split('/')[1])]}"] = value
        else:
            record[key] = value / n
    return record
