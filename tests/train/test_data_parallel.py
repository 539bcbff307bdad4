"""Two DDP ranks (gloo, CPU, two fresh processes) agree with one process.

Each rank evaluates its shard of the val frames and the confusion matrices are summed; the
teacher's state (class thresholds, distribution alignment, EMA BatchNorm buffers) is averaged
over the ranks at every step, so it is the same on both and equals what one process computes
from both ranks' batches.
"""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from udatune.data.base import IGNORE_INDEX, ArrayFrames
from udatune.data.loader import eval_loader
from udatune.train.loop import average_across_ranks, evaluate
from udatune.train.metrics import ConfusionMatrix
from udatune.train.step import to_device
from udatune.train.teacher import ClassThresholds, DistributionAlignment, EMATeacher

K = 4


def val_frames() -> ArrayFrames:
    rng = np.random.default_rng(0)
    masks = rng.integers(0, K, (7, 12, 16)).astype(np.uint8)  # 7 frames: shards of 4 and 3
    masks[:, :2] = IGNORE_INDEX
    return ArrayFrames(rng.integers(0, 256, (7, 12, 16, 3), dtype=np.uint8), masks)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, K, 3, padding=1), nn.BatchNorm2d(K))


def batches(rank: int):
    """Rank ``rank``'s teacher inputs: labels, confidences, label maps, probabilities."""
    g = torch.Generator().manual_seed(10 + rank)
    labels = torch.randint(0, K, (2, 6, 6), generator=g)
    confidence = torch.rand(2, 6, 6, generator=g)
    masks = torch.randint(0, K, (2, 6, 6), generator=g)
    probs = torch.softmax(torch.randn(2, K, 6, 6, generator=g), dim=1)
    return labels, confidence, masks, probs


def teacher_state(rank: int, reduce) -> dict:
    thresholds = ClassThresholds(K, tau=0.5, adaptive=True, momentum=0.5, reduce=reduce)
    alignment = DistributionAlignment(K, momentum=0.5, reduce=reduce)
    labels, confidence, masks, probs = batches(rank) if rank >= 0 else (torch.cat(p) for p in zip(batches(0), batches(1)))
    for _ in range(2):
        thresholds.observe(confidence, labels)
        alignment.observe(masks, probs, IGNORE_INDEX)
    student = model()
    ema = EMATeacher(student, decay=0.9, reduce=reduce)
    torch.manual_seed(20 + max(rank, 0))
    student(torch.randn(3, 3, 8, 8))  # each rank's BatchNorm statistics move on its own batch
    ema.update(student)
    bn = ema.model[1]
    return {"thresholds": thresholds.confident_share, "labeled": alignment.labeled, "predicted": alignment.predicted,
            "bn_mean": bn.running_mean.clone(), "student_bn_mean": student[1].running_mean.clone()}


def rank_main(rank: int, rendezvous: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        frames, net = val_frames(), model()
        shard = eval_loader(frames, 2, 0, False, shard=(rank, 2))
        local = ConfusionMatrix(K)  # what this rank alone counts
        for batch in shard:
            batch = to_device(batch, torch.device("cpu"))
            with torch.no_grad():
                local.update(batch["mask"], net.eval()(batch["image"].float()).argmax(1))
        net.train()
        with torch.no_grad():
            net[1].running_mean += rank * torch.arange(K) * 3.0  # rank 1's BatchNorm statistics drifted; rank 0's are checkpointed
        summed = evaluate(IdentityNormalised(net), shard, K, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False))
        result = {"frames": len(shard.dataset), "local": local.matrix, "summed": summed.matrix,
                  "teacher": teacher_state(rank, average_across_ranks)}
        with open(f"{out}.{rank}", "wb") as file:
            pickle.dump(result, file)
    finally:
        dist.destroy_process_group()


class IdentityNormalised(nn.Module):
    """``evaluate`` normalises its input; undo that, so the same net sees the same floats."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        from udatune.data.loader import imagenet_stats

        mean, std = imagenet_stats(x.device)
        return self.net((x * std + mean) * 255.0)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    # Each rank is this file run as a script: a forked pytest process can hang in torch or gloo
    # (threads that the parent had started do not survive a fork).
    tmp = tmp_path_factory.mktemp("ddp")
    args = [str(tmp / "rendezvous"), str(tmp / "out")]
    procs = [subprocess.Popen([sys.executable, __file__, str(r), *args]) for r in range(2)]
    try:
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0]
    return [pickle.loads((tmp / f"out.{r}").read_bytes()) for r in range(2)]


def single_process_matrix() -> torch.Tensor:
    net, frames = model().eval(), val_frames()
    matrix = ConfusionMatrix(K)
    for batch in eval_loader(frames, 2, 0, False):
        batch = to_device(batch, torch.device("cpu"))
        with torch.no_grad():
            matrix.update(batch["mask"], net(batch["image"].float()).argmax(1))
    return matrix.matrix


def test_each_rank_evaluates_its_own_shard(ranks):
    assert [r["frames"] for r in ranks] == [4, 3]
    assert not torch.equal(ranks[0]["local"], ranks[1]["local"])


def test_per_rank_confusion_counts_sum_to_the_single_process_matrix(ranks):
    whole = single_process_matrix()
    assert whole.sum() == 7 * 10 * 16  # every valid pixel once
    assert torch.equal(ranks[0]["local"] + ranks[1]["local"], whole)
    # ... and the summed matrix is rank 0's model (its BatchNorm statistics) scoring the whole split.
    assert torch.equal(ranks[0]["summed"], whole) and torch.equal(ranks[1]["summed"], whole)


def test_thresholds_and_alignment_are_the_same_on_every_rank_and_match_one_process(ranks):
    one = teacher_state(-1, None)  # one process, both ranks' batches
    for key in ("thresholds", "labeled", "predicted"):
        assert torch.allclose(ranks[0]["teacher"][key], ranks[1]["teacher"][key], atol=0, rtol=0), key
        assert torch.allclose(ranks[0]["teacher"][key], one[key], atol=1e-6), key


def test_ema_batchnorm_buffers_are_averaged_over_the_ranks(ranks):
    a, b = ranks[0]["teacher"], ranks[1]["teacher"]
    assert not torch.allclose(a["student_bn_mean"], b["student_bn_mean"])  # the students did drift apart
    assert torch.equal(a["bn_mean"], b["bn_mean"])
    assert torch.allclose(a["bn_mean"], (a["student_bn_mean"] + b["student_bn_mean"]) / 2, atol=1e-6)


if __name__ == "__main__":
    rank_main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
