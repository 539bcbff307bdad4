"""Does `torch.compile` make a training step cheaper? Eager against compiled, one run, one machine.

The step is UDA-shaped, as at the demo's size: a no-gradient forward of the unlabeled batch
(the teacher's pass), then a forward and backward of labeled + strong views and a fused AdamW
step, on fixed batches. Compiling pays a one-off cost (the first steps) and, where it pays,
lowers every step after it; both are reported, so a reader sees how many steps a trial needs
before compiling is worth it. udatune does not compile today; this is the measurement that
decides whether it should, per device.

    python -m bench.compile                          # the demo's size, CPU, 1 thread
    python -m bench.compile --device cuda --image-size 360x480 --width 32 --depth 4
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

from bench.docs import write_section
from udatune.config import TrialConfig
from udatune.models.registry import build_model


def make_step(model: nn.Module, run: nn.Module, batches: dict[str, torch.Tensor]):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

    def step() -> None:
        with torch.no_grad():
            run(batches["weak"])
        loss = nn.functional.cross_entropy(run(batches["student"]), batches["labels"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(compiled: bool, args, device: torch.device) -> tuple[float, float]:
    """(seconds of the first two steps, median seconds of a step after them)."""
    torch.manual_seed(0)
    cfg = TrialConfig.from_dict({}, source="bench.compile").override(
        {"model.width": args.width, "model.depth": args.depth, "data.image_size": args.image_size}, source="bench.compile")
    model = build_model(cfg.model, args.classes).to(device, memory_format=torch.channels_last)
    height, width = cfg.data.image_size
    images = lambda n: torch.randn(n, 3, height, width, device=device).contiguous(memory_format=torch.channels_last)
    batches = {"weak": images(args.unlabeled), "student": images(args.labeled + args.unlabeled),
               "labels": torch.randint(0, args.classes, (args.labeled + args.unlabeled, height, width), device=device)}
    step = make_step(model, torch.compile(model) if compiled else model, batches)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    step()
    step()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the demo's trials use 1)")
    parser.add_argument("--image-size", default="32x48")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--labeled", type=int, default=8)
    parser.add_argument("--unlabeled", type=int, default=4)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    eager_first, eager = measure(False, args, device)
    with tempfile.TemporaryDirectory() as cache:
        # A fresh trial process on a fresh machine compiles from nothing; later trials on the
        # same machine find the kernels in inductor's on-disk cache. Both, from a cache of our own.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        cold_first, compiled = measure(True, args, device)
        torch._dynamo.reset()  # forget the in-process graphs: what a new trial process starts with
        warm_first, warm = measure(True, args, device)
    saved = eager - compiled
    pays = (f"after about {(cold_first - eager_first) / saved:.0f} steps from a cold cache, {(warm_first - eager_first) / saved:.0f} from a warm one"
            if saved > 0 else "never: a compiled step is no cheaper")
    body = (
        f"U-Net width {args.width}, depth {args.depth}, {args.image_size}, {args.labeled} labeled + {args.unlabeled} unlabeled "
        f"frames a step, {args.classes} classes, {device.type}, {args.threads} thread(s); median of {args.steps} steps after two "
        "warm-up steps.\n\n"
        "| | first two steps | a step after them |\n|---|---|---|\n"
        f"| eager | {eager_first:.2f} s | {eager * 1000:.1f} ms |\n"
        f"| `torch.compile`, cold cache | {cold_first:.2f} s | {compiled * 1000:.1f} ms |\n"
        f"| `torch.compile`, warm cache (a new process) | {warm_first:.2f} s | {warm * 1000:.1f} ms |\n\n"
        f"Compiled / eager step time: {compiled / eager:.2f}. Compiling pays for itself {pays}.\n"
    )
    print(body)
    if not args.no_write:
        write_section(f"compile-{device.type}", f"torch.compile, {device.type}", ("python -m bench.compile " + shlex.join(sys.argv[1:])).strip(), body)


if __name__ == "__main__":
    main()
