"""The CUDA path, checked and measured in one call (under 8 minutes on one GPU).

1. ``udatune train`` with UDA and every option on (EMA teacher, class-adaptive τ, class balance,
   alignment), U-Net and DeepLabV3-ResNet50, bf16 autocast: finite losses; the checkpoint loads
   back with ``--weights``.
2. Sync audit: ``torch.cuda.set_sync_debug_mode`` over UDA steps that do not log; the list of
   host-device syncs they make must be empty (logging steps may sync: they read the losses).
3. Throughput on the real loaders: supervised and UDA images/s, the UDA/supervised step ratio
   (goal ≤ 2.1x) and the share of wall time the GPU is busy in the UDA step (goal ≥ 90%), with
   ``cudnn.benchmark`` on and off.
4. DDP: two ranks through ``torchrun`` (gloo; on one GPU both ranks share it): the checkpoint holds
   the bare model, and each rank's evaluation of its shard sums to the whole split's scores.
5. Ray: ``udatune search`` with two trials at ``--gpus-per-trial 0.5`` against one trial alone
   (goal ≥ 1.6x aggregate). Needs Ray; steps 1-4 do not.

Without CUDA it rehearses: steps 1 and 4 run tiny on the CPU (the code path, not a measurement),
steps 2, 3 and 5 say they need CUDA, and the report says plainly that it holds no GPU numbers.

    python -m bench.gpu [--json results.json] [--no-doc] [--skip-ray]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

ALL_OPTIONS = ["uda.ema_decay=0.99", "uda.class_adaptive=true", "uda.class_balance=true", "uda.align=true"]
BUDGET_SECONDS = 7 * 60  # steps still to come are skipped past this, so the call ends in time
# Steps 1 and 4 train on the built-in synthetic dataset, generated once (on the CPU) at this size.
SMALL = "64x96" if torch.cuda.is_available() else "32x48"


def cuda() -> bool:
    return torch.cuda.is_available()


# --- 1. udatune train ---------------------------------------------------------------------------


def train_and_reload(work: Path) -> dict:
    """``udatune train`` per model with every UDA option on, then ``--weights`` from its checkpoint."""
    from udatune.cli.app import main
    from udatune.train.loop import native_bf16

    on_gpu = cuda()
    size, steps = SMALL, 40 if on_gpu else 4
    models = ["unet", "deeplabv3_resnet50"]
    result: dict = {"device": "cuda" if on_gpu else "cpu", "image_size": size, "steps": steps,
                    "autocast": ("bf16" if native_bf16() else "fp16 + loss scaling") if on_gpu else "none (CPU)"}
    for name in models:
        out = work / f"train-{name}"
        common = ["--model", name, "--image-size", size, "--device", "cuda" if on_gpu else "cpu",
                  "--batch-size", "4", "--unlabeled-batch-size", "4", "--workers", "2" if on_gpu else "0"]
        sets = [x for s in [*ALL_OPTIONS, "train.log_every=5" if on_gpu else "train.log_every=1"] for x in ("--set", s)]
        tick = time.perf_counter()
        code = main(["train", *common, *sets, "--steps", str(steps), "--eval-every", str(steps // 2), "--out", str(out)])
        seconds = time.perf_counter() - tick
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] if code == 0 else []
        losses = [r["loss"] for r in records if r.get("kind") == "train"]
        evals = [r for r in records if r.get("kind") == "eval"]
        checkpoint = out / "checkpoint" / "trial.pt"
        reload = main(["train", *common, "--weights", str(checkpoint), "--steps", "2", "--eval-every", "2",
                       "--out", str(out / "reloaded")]) if checkpoint.is_file() else None
        result[name] = {
            "exit": code, "seconds": round(seconds, 1), "train_records": len(losses),
            "losses_finite": bool(losses) and all(math.isfinite(x) for x in losses),
            "last_loss": losses[-1] if losses else None, "val_miou": evals[-1]["miou"] if evals else None,
            "reloaded_with_weights": reload == 0,
        }
    result["ok"] = all(result[m]["exit"] == 0 and result[m]["losses_finite"] and result[m]["reloaded_with_weights"] for m in models)
    return result


# --- shared: frames and a trial set up on the device -----------------------------------------


def random_data(height: int, width: int, frames: int = 48, classes: int = 10):
    """Frames for timing: noise images and blocky label maps (the content does not change the cost)."""
    from udatune.data.base import ArrayFrames, SegmentationData

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    blocks = rng.integers(0, classes, (frames, height // 32 + 1, width // 32 + 1)).astype(np.uint8)
    masks = np.ascontiguousarray(blocks.repeat(32, 1).repeat(32, 2)[:, :height, :width])
    names = tuple(f"class{i}" for i in range(classes))
    half = frames // 2
    return SegmentationData(name=f"random-{height}x{width}", classes=names, labeled=ArrayFrames(images[:half], masks[:half]),
                            unlabeled=ArrayFrames(images[half:], None), val=ArrayFrames(images[:8], masks[:8]), test=None)


def trial_config(model: str, batch: int, workers: int, mode: str = "uda", policy: str = "randaugment:2,4"):
    from udatune.config import TrialConfig

    return TrialConfig().override({
        "model.name": model, "model.width": 32, "uda.mode": mode, "uda.policy": policy,
        "uda.ema_decay": 0.99, "uda.class_adaptive": True, "uda.class_balance": True, "uda.align": True,
        "train.batch_size": batch, "train.unlabeled_batch_size": batch, "train.num_workers": workers,
        "train.device": "cuda", "train.steps": 10_000,
    })


def step_runner(cfg, data):
    """A function that runs one step of the real loop (next batch, copy, step, lr) per call."""
    from udatune.data.loader import LabeledSet, UnlabeledSet, WeakAugment, infinite_loader
    from udatune.train.loop import setup_trial
    from udatune.train.step import supervised_step, to_device, uda_step

    setup = setup_trial(cfg, data)
    t = cfg.train
    weak = WeakAugment(crop=t.crop)
    labeled = infinite_loader(LabeledSet(data.labeled, weak), t.batch_size, 0, 0, t.num_workers, True)
    unlabeled = infinite_loader(UnlabeledSet(data.unlabeled, weak, setup.policy), t.unlabeled_batch_size, 1, 0, t.num_workers, True)
    state = {"step": 0, "running": {}}

    def step(detailed: bool = False):
        batch = to_device(next(labeled), setup.device)
        if cfg.uda.mode == "uda":
            metrics = uda_step(setup.ctx, batch, to_device(next(unlabeled), setup.device), state["step"], detailed=detailed)
        else:
            metrics = supervised_step(setup.ctx, batch, state["step"])
        setup.scheduler.step()
        state["step"] += 1
        for key, value in metrics.items():  # what the loop does between logging steps
            state["running"][key] = state["running"].get(key, 0.0) + value
        return metrics

    return step


# --- 2. sync audit --------------------------------------------------------------------------------


def sync_audit(steps: int = 6) -> dict:
    """Every host-device sync made by UDA steps that do not log (and, apart, by one that logs)."""
    if not cuda():
        return {"skipped": "no CUDA"}
    step = step_runner(trial_config("deeplabv3_resnet50", 4, 4, policy="randaugment:3,10"), random_data(256, 512))
    for _ in range(3):  # warm-up: cuDNN's autotuning and the allocator sync on their first calls
        step()
    torch.cuda.synchronize()

    def audited(detailed: bool, n: int) -> list[str]:
        seen: list[str] = []

        def record(message, category, filename, lineno, file=None, line=None):
            frames = [f for f in traceback.extract_stack()[:-1] if "udatune" in f.filename or "bench" in f.filename]
            where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-3:]))
            seen.append(f"{str(message).splitlines()[0][:80]} at {where or f'{filename}:{lineno}'}")

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            previous, warnings.showwarning = warnings.showwarning, record
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for _ in range(n):
                    metrics = step(detailed)
                    if detailed:
                        {k: float(v) for k, v in metrics.items()}  # the log record reads them
            finally:
                torch.cuda.set_sync_debug_mode("default")
                warnings.showwarning = previous
        return seen

    quiet = audited(False, steps)
    logging = audited(True, 1)
    return {"steps_audited": steps, "syncs_outside_logging": quiet, "syncs_in_one_logging_step": len(logging),
            "logging_examples": sorted(set(logging))[:5], "ok": not quiet}


# --- 3. throughput --------------------------------------------------------------------------------


def gpu_busy_share(step, steps: int) -> float:
    """Kernel time / wall time over ``steps`` steps (one stream: kernels do not overlap)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        tick = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall = time.perf_counter() - tick
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.time_range.elapsed_us() for e in kernels)
    return busy_us / 1e6 / wall


def images_per_second(step, steps: int, images_per_step: int) -> tuple[float, float]:
    torch.cuda.synchronize()
    tick = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - tick) / steps
    return images_per_step / seconds, seconds


def throughput(deadline: float) -> dict:
    if not cuda():
        return {"skipped": "no CUDA"}
    workers = max(min(len(os.sched_getaffinity(0)) - 2, 12), 1)
    rows = []
    for model, (h, w), batch in [("unet", (256, 512), 8), ("deeplabv3_resnet50", (512, 1024), 8)]:
        data = random_data(h, w)
        for benchmark in (True, False):
            if time.monotonic() > deadline:
                rows.append({"model": model, "skipped": "time budget"})
                continue
            row = {"model": model, "size": f"{h}x{w}", "batch": f"{batch}+{batch}", "cudnn_benchmark": benchmark}
            for mode in ("supervised", "uda"):
                step = step_runner(trial_config(model, batch, workers, mode=mode), data)
                torch.backends.cudnn.benchmark = benchmark  # setup_trial turns it on for CUDA
                for _ in range(5):
                    step()
                ips, seconds = images_per_second(step, 20, batch if mode == "supervised" else 2 * batch)
                row[f"{mode}_images_per_s"], row[f"{mode}_step_s"] = round(ips, 1), round(seconds, 4)
                if mode == "uda":
                    row["uda_gpu_busy"] = round(gpu_busy_share(step, 8), 3)
                del step
                torch.cuda.empty_cache()
            row["uda_over_supervised_step"] = round(row["uda_step_s"] / row["supervised_step_s"], 2)
            rows.append(row)
    return {"loader_workers": workers, "rows": rows}


# --- 4. DDP through torchrun ----------------------------------------------------------------------


def ddp_config(device: str):
    from udatune.config import TrialConfig

    return TrialConfig().override({
        "model.width": 8, "data.image_size": SMALL, "train.steps": 6, "train.eval_every": 3, "train.log_every": 1,
        "train.batch_size": 2, "train.unlabeled_batch_size": 2, "train.num_workers": 0, "train.device": device,
        "uda.rampup_steps": 2, **{s.split("=")[0]: s.split("=")[1] for s in ALL_OPTIONS},
    })


def ddp_worker(out: str) -> None:
    """One rank under torchrun: a DDP trial; rank 0 saves the checkpoint at each evaluation."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from udatune.data.registry import build_data
    from udatune.train.loop import run_trial

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    device = "cuda:0" if cuda() else "cpu"
    cfg = ddp_config(device).override({"train.seed": rank})
    evals = []

    def hook(record, save):
        if record["kind"] == "eval":
            evals.append({"step": record["step"], "miou": record["miou"], "pixel_accuracy": record["pixel_accuracy"]})
            if rank == 0:
                save(Path(out) / "checkpoint")

    run_trial(cfg, build_data(cfg.data), hooks=hook, wrap_model=lambda m: DistributedDataParallel(m))
    Path(out, f"rank{rank}.json").write_text(json.dumps(evals))
    dist.destroy_process_group()


def ddp(work: Path) -> dict:
    from udatune.data.loader import eval_loader
    from udatune.data.registry import build_data
    from udatune.models.registry import build_model, load_weights
    from udatune.train.loop import autocast_factory, evaluate

    device = "cuda:0" if cuda() else "cpu"
    cfg = ddp_config(device)
    data = build_data(cfg.data)  # generated once here, not by both ranks at once
    out = work / "ddp"
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "bench.gpu", "--ddp-worker", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[1])
    if run.returncode != 0:
        return {"ok": False, "device": device, "error": run.stderr.strip().splitlines()[-5:]}
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    state = torch.load(out / "checkpoint" / "trial.pt", map_location="cpu", weights_only=False)
    model = build_model(cfg.model, data.num_classes)
    load_weights(model, out / "checkpoint" / "trial.pt", data.num_classes)  # raises if it does not fit
    model = model.to(device)
    autocast, _ = autocast_factory(torch.device(device), cfg.train.amp)
    whole = evaluate(model, eval_loader(data.val, 16, 0, False), data.num_classes, torch.device(device), autocast).compute()
    tolerance = 1e-3 if cuda() else 1e-9
    return {
        "device": device, "backend": "gloo",
        "module_keys_in_checkpoint": sum(k.startswith("module.") for k in state["model"]),
        "ranks_agree": ranks[0] == ranks[1],
        "rank_miou": ranks[0][-1]["miou"], "single_process_miou": whole.miou,
        "ok": ranks[0] == ranks[1] and abs(ranks[0][-1]["miou"] - whole.miou) <= tolerance
        and not any(k.startswith("module.") for k in state["model"]),
        "not_shown_here": "NCCL, ranks on separate GPUs, and the speed-up of data parallelism need several GPUs",
    }


# --- 5. Ray: two trials on one GPU ----------------------------------------------------------------


def ray_sharing(work: Path) -> dict:
    if not cuda():
        return {"skipped": "no CUDA"}
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"skipped": "Ray is not installed here"}
    import pandas as pd

    from udatune.cli.app import main

    runs = {}
    for name, trials, gpus in [("alone", 1, 1.0), ("shared", 2, 0.5)]:
        args = ["search", "--trials", str(trials), "--no-baselines", "--space", "randaugment", "--scheduler", "fifo",
                "--gpus-per-trial", str(gpus), "--cpus-per-trial", "4", "--max-steps", "300", "--storage", str(work / "sweeps"),
                "--name", name, "--set", "train.eval_every=300", "--set", "model.width=32", "--image-size", "128x256"]
        tick = time.perf_counter()
        code = main(args)
        frame = pd.read_csv(work / "sweeps" / name / "results.csv") if code == 0 else None
        runs[name] = {"exit": code, "wall_s": round(time.perf_counter() - tick, 1),
                      "steps": int(frame["step"].sum()) if frame is not None else 0,
                      "train_s": float(frame["train_seconds"].max()) if frame is not None else float("nan")}
    alone, shared = runs["alone"], runs["shared"]
    gain = (shared["steps"] / shared["train_s"]) / (alone["steps"] / alone["train_s"]) if alone["steps"] else float("nan")
    return {**runs, "aggregate_speedup": round(gain, 2), "ok": gain >= 1.6}


# --- report ---------------------------------------------------------------------------------------


def guarded(name: str, fn, *args) -> dict:
    tick = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as err:  # a bench reports what broke and goes on to the next step
        result = {"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc().splitlines()[-6:]}
    result["seconds"] = round(time.perf_counter() - tick, 1)
    print(f"[bench.gpu] {name}: {json.dumps(result, default=str)}", flush=True)
    return result


def report(results: dict) -> str:
    lines = []
    if not results["cuda"]:
        lines += ["**No CUDA on this machine: this is the CPU rehearsal, not a measurement. GPU numbers are still to",
                  "come**: steps 1 and 4 ran tiny on the CPU to prove the script's path; steps 2, 3 and 5 need CUDA.", ""]
    lines += ["```json", json.dumps({k: v for k, v in results.items()}, indent=2, default=str), "```"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument("--no-doc", action="store_true", help="Do not write the GPU section of docs/benchmarks.md.")
    parser.add_argument("--skip-ray", action="store_true", help="Steps 1-4 only.")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp_worker:
        ddp_worker(args.ddp_worker)
        return
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="udatune-gpu-bench-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("UDATUNE_CACHE", str(work / "cache"))
        results: dict = {"cuda": cuda(), "device": torch.cuda.get_device_name(0) if cuda() else "none",
                         "torch": torch.__version__, "torch_cuda": torch.version.cuda}
        results["1_train"] = guarded("1 train", train_and_reload, work)
        results["2_sync_audit"] = guarded("2 sync audit", sync_audit)
        results["3_throughput"] = guarded("3 throughput", throughput, start + BUDGET_SECONDS - 150)
        results["4_ddp"] = guarded("4 ddp", ddp, work)
        if args.skip_ray:
            results["5_ray"] = {"skipped": "--skip-ray"}
        elif cuda() and time.monotonic() - start > BUDGET_SECONDS - 120:
            results["5_ray"] = {"skipped": "time budget"}
        else:
            results["5_ray"] = guarded("5 ray", ray_sharing, work)
    results["total_seconds"] = round(time.monotonic() - start, 1)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if not args.no_doc:
        from bench.docs import write_section

        title = "GPU: the CUDA path" if results["cuda"] else "GPU: the CUDA path (CPU rehearsal; GPU numbers still to come)"
        write_section("gpu", title, "python -m bench.gpu", text)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
