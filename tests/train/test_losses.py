import math

import pytest
import torch

from udatune.data.base import IGNORE_INDEX
from udatune.train.losses import consistency_loss, rampup_weight, supervised_loss, teacher_targets, tsa_threshold
from udatune.train.teacher import ClassThresholds, per_class_mask_ratio


def _logits(seed: int, shape=(2, 5, 6, 7)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("kind", ["kl", "ce"])
def test_tau_above_every_confidence_gives_zero_unsupervised_loss(kind):
    target = teacher_targets(_logits(0), temperature=0.4)
    thresholds = ClassThresholds(5, tau=float(target.confidence.max()) + 1e-3, adaptive=False)
    keep = thresholds.keep_mask(target.confidence, target.labels)
    student = _logits(1).requires_grad_()
    loss = consistency_loss(student, target.probs, keep, kind)
    assert keep.sum() == 0
    assert loss.item() == 0.0


@pytest.mark.parametrize("kind", ["kl", "ce"])
def test_gradients_flow_only_through_the_student(kind):
    teacher_logits = _logits(0).requires_grad_()
    student = _logits(1).requires_grad_()
    target = teacher_targets(teacher_logits, temperature=0.5)
    keep = torch.ones_like(target.confidence)
    consistency_loss(student, target.probs, keep, kind).backward()
    assert teacher_logits.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kl_is_zero_when_student_matches_sharpened_teacher():
    logits = _logits(2)
    target = teacher_targets(logits, temperature=0.5)
    loss = consistency_loss(logits / 0.5, target.probs, torch.ones_like(target.confidence), "kl")
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_sharpening_raises_the_top_probability():
    logits = _logits(3)
    soft = teacher_targets(logits, temperature=1.0)
    sharp = teacher_targets(logits, temperature=0.4)
    assert torch.all(sharp.probs.max(1).values >= soft.probs.max(1).values - 1e-6)
    # confidence (used against τ) is the un-sharpened probability
    torch.testing.assert_close(sharp.confidence, soft.confidence)


def test_mask_ratio_is_the_share_of_pixels_passing_tau():
    confidence = torch.tensor([[[0.9, 0.5], [0.7, 0.95]]])
    labels = torch.tensor([[[0, 1], [1, 0]]])
    keep = ClassThresholds(2, tau=0.7, adaptive=False).keep_mask(confidence, labels)
    assert keep.mean().item() == pytest.approx(3 / 4)
    ratios = per_class_mask_ratio(keep, labels, 3)
    assert ratios[0].item() == pytest.approx(1.0)
    assert ratios[1].item() == pytest.approx(0.5)
    assert math.isnan(ratios[2].item())


def test_masked_pixels_do_not_change_the_loss():
    target = teacher_targets(_logits(4), temperature=0.4)
    keep = torch.zeros_like(target.confidence)
    keep[:, :3] = 1
    a = _logits(5)
    b = a.clone()
    b[:, :, 3:] = 100 * torch.randn_like(b[:, :, 3:])  # only masked pixels differ
    assert consistency_loss(a, target.probs, keep).item() == pytest.approx(consistency_loss(b, target.probs, keep).item())


def test_class_adaptive_thresholds_lower_the_bar_for_a_lagging_class():
    th = ClassThresholds(2, tau=0.9, adaptive=True, momentum=0.0)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    confidence = torch.tensor([0.95, 0.95, 0.95, 0.95, 0.95, 0.5, 0.5, 0.5])
    th.observe(confidence, labels)
    tau = th.thresholds(torch.device("cpu"))
    assert tau[0].item() == pytest.approx(0.9)  # best-learned class keeps τ
    assert tau[1].item() < 0.9 * 0.5  # β=0.25 -> τ·0.25/1.75
    assert ClassThresholds(2, tau=0.9, adaptive=False).thresholds(torch.device("cpu")).tolist() == pytest.approx([0.9, 0.9])


def test_supervised_loss_ignores_void_and_tsa_drops_confident_pixels():
    logits = torch.zeros(1, 3, 1, 3)
    logits[0, 0, 0, 0] = 10.0  # confident and right
    mask = torch.tensor([[[0, 1, IGNORE_INDEX]]])
    plain, kept_all = supervised_loss(logits, mask)
    assert kept_all.item() == pytest.approx(1.0)
    annealed, kept = supervised_loss(logits, mask, tsa="linear", progress=0.0)
    assert kept.item() == pytest.approx(0.5)  # the confident pixel is above η(0) = 1/3
    assert annealed.item() > plain.item()


def test_tsa_schedules_rise_from_one_over_k_to_one():
    for schedule in ("linear", "log", "exp"):
        start, end = tsa_threshold(schedule, 0.0, 4), tsa_threshold(schedule, 1.0, 4)
        assert end == pytest.approx(1.0, abs=0.01)  # log reaches 1 - e^-5, as in the paper
        assert start <= 0.25 + 0.01
        assert tsa_threshold(schedule, 0.5, 4) > start


def test_rampup_goes_from_near_zero_to_one():
    assert rampup_weight(0, 100) == pytest.approx(math.exp(-5))
    assert rampup_weight(100, 100) == 1.0
    assert rampup_weight(500, 100) == 1.0
    assert rampup_weight(3, 0) == 1.0


def test_ema_teacher_warms_up_then_averages_slowly():
    from torch import nn

    from udatune.train.teacher import EMATeacher

    student = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(student.weight)
    ema = EMATeacher(student, decay=0.99)
    with torch.no_grad():
        student.weight.fill_(1.0)
    ema.update(student)  # first update: effective decay (1+1)/(1+10) ≈ 0.18, not 0.99
    first = ema.model.weight.item()
    assert first == pytest.approx(1 - 2 / 11)
    for _ in range(2000):
        ema.update(student)
    assert ema.model.weight.item() == pytest.approx(1.0, abs=1e-6)
    assert not ema.model.weight.requires_grad


def test_class_balance_weights_favour_rare_classes_and_keep_the_loss_scale():
    from udatune.train.losses import class_balance_weights

    labels = torch.tensor([[[0] * 15 + [1]]])  # 15 pixels of class 0, 1 of class 1
    keep = torch.ones(1, 1, 16)
    keep[0, 0, 0] = 0  # one dropped pixel
    weights = class_balance_weights(labels, keep, num_classes=3)
    assert weights[0, 0, 0] == 0  # dropped pixels stay dropped
    assert weights[0, 0, -1] / weights[0, 0, 1] == pytest.approx(14**0.5)  # 1/sqrt(1) vs 1/sqrt(14)
    assert weights[keep > 0].mean().item() == pytest.approx(1.0)


def _alignment_after(masks: torch.Tensor, teacher_probs: torch.Tensor):
    from udatune.train.teacher import DistributionAlignment

    alignment = DistributionAlignment(num_classes=teacher_probs.shape[1])
    assert alignment.log_ratio(torch.device("cpu")) is None  # nothing observed: no alignment yet
    alignment.observe(masks, teacher_probs, IGNORE_INDEX)
    return alignment


def test_distribution_alignment_lifts_a_class_the_teacher_under_predicts():
    # Labeled pixels: 50% / 25% / 25% (void pixels do not count); the teacher gives class 2
    # (a thin class) 5%.
    masks = torch.tensor([[[0, 1], [2, 0]]] * 2 + [[[IGNORE_INDEX] * 2] * 2])
    logits = torch.log(torch.tensor([0.6, 0.35, 0.05])).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    alignment = _alignment_after(masks, torch.softmax(logits, dim=1))
    raw = teacher_targets(logits, temperature=1.0)
    aligned = teacher_targets(logits, temperature=1.0, log_ratio=alignment.log_ratio(torch.device("cpu")))
    # Aligned probabilities equal the labeled frequencies (0.5, 0.25, 0.25) here.
    assert torch.allclose(aligned.probs[0, :, 0, 0], torch.tensor([0.5, 0.25, 0.25]), atol=1e-3)
    assert aligned.probs[:, 2].mean() > 4 * raw.probs[:, 2].mean()
    assert torch.allclose(aligned.probs.sum(dim=1), torch.ones(2, 2, 2))


def test_distribution_alignment_is_the_identity_when_the_teacher_matches_the_labels():
    masks = torch.tensor([[[0, 1], [1, 1]]])  # 25% / 75%
    logits = torch.log(torch.tensor([0.25, 0.75])).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    alignment = _alignment_after(masks, torch.softmax(logits, dim=1))
    aligned = teacher_targets(logits, 0.5, alignment.log_ratio(torch.device("cpu")))
    plain = teacher_targets(logits, 0.5)
    assert torch.allclose(aligned.probs, plain.probs, atol=1e-3)
    assert torch.equal(aligned.labels, plain.labels)


def test_distribution_alignment_state_round_trips_and_keeps_a_running_mean():
    from udatune.train.teacher import DistributionAlignment

    a = DistributionAlignment(2, momentum=0.5)
    a.observe(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2), IGNORE_INDEX)
    a.observe(torch.ones(1, 2, 2, dtype=torch.long), torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2), IGNORE_INDEX)
    assert torch.allclose(a.labeled, torch.tensor([0.5, 0.5])) and torch.allclose(a.predicted, torch.tensor([0.5, 0.5]))
    b = DistributionAlignment(2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.log_ratio(torch.device("cpu")), a.log_ratio(torch.device("cpu")))


def test_class_histogram_counts_as_bincount_does_without_sizing_from_the_data():
    from udatune.train.losses import class_histogram

    labels = torch.tensor([[0, 2, 2], [3, 0, 2]])
    weights = torch.tensor([[1.0, 0.0, 1.0], [0.5, 1.0, 1.0]])
    assert torch.equal(class_histogram(labels, 5), torch.bincount(labels.flatten(), minlength=5))
    assert torch.equal(class_histogram(labels, 5, weights), torch.bincount(labels.flatten(), weights.flatten(), minlength=5))
    assert class_histogram(labels, 5).dtype == torch.int64 and class_histogram(labels, 5, weights).dtype == torch.float32
