"""Save and restore everything a trial needs to continue exactly where it stopped."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

CHECKPOINT_FILE = "trial.pt"


def save_checkpoint(path: Path, ctx, scheduler, step: int, cfg, history: list[dict], best: float) -> Path:
    """Write ``path/trial.pt`` atomically (temp file + rename), so a kill mid-write never
    leaves a half-written checkpoint behind."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "config": cfg.to_dict(),
        # The bare model's weights, as torchvision's references save them: a DDP wrapper's would
        # carry ``module.`` keys that `udatune train --weights` and single-process resumes reject.
        "model": ctx.model_without_ddp.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": ctx.scaler.state_dict() if ctx.scaler is not None else None,
        "ema": ctx.ema.state_dict() if ctx.ema is not None else None,
        "thresholds": ctx.thresholds.state_dict() if ctx.thresholds is not None else None,
        "alignment": ctx.alignment.state_dict() if ctx.alignment is not None else None,
        "paste": ctx.paste.state_dict() if ctx.paste is not None else None,
        "history": history,
        "best_miou": best,
    }
    target = path / CHECKPOINT_FILE
    tmp = target.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, target)
    return target


def load_checkpoint(path: Path, ctx, scheduler) -> dict:
    file = Path(path)
    if file.is_dir():
        file = file / CHECKPOINT_FILE
    state = torch.load(file, map_location=ctx.device, weights_only=False)
    # Checkpoints of DDP trials written before the unwrapped model was saved carry ``module.``.
    consume_prefix_in_state_dict_if_present(state["model"], "module.")
    ctx.model_without_ddp.load_state_dict(state["model"])
    ctx.optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ctx.scaler is not None and state["scaler"] is not None:
        ctx.scaler.load_state_dict(state["scaler"])
    if ctx.ema is not None and state["ema"] is not None:
        ctx.ema.load_state_dict(state["ema"])
    if ctx.thresholds is not None and state["thresholds"] is not None:
        ctx.thresholds.load_state_dict(state["thresholds"])
    if ctx.alignment is not None and state.get("alignment") is not None:
        ctx.alignment.load_state_dict(state["alignment"])
    if ctx.paste is not None and state.get("paste") is not None:
        ctx.paste.load_state_dict(state["paste"])
    return state
