"""Copy-paste of labelled rare-class objects into the strong view (udatune/train/paste.py)."""

import pytest
import torch

from udatune.data.base import IGNORE_INDEX
from udatune.train.paste import LabeledPaste

K = 4
H, W = 10, 10


def _labelled() -> tuple[torch.Tensor, torch.Tensor]:
    """Two labelled frames: class 0 nearly everywhere, class 3 (rare) in a 2x2 square, one
    ignored pixel of each frame inside the square."""
    masks = torch.zeros(2, H, W, dtype=torch.long)
    masks[:, 2:4, 2:4] = 3
    masks[:, 2, 2] = IGNORE_INDEX
    images = torch.full((2, 3, H, W), 5.0)
    return images, masks


def _views(n: int = 2):
    strong = torch.zeros(n, 3, H, W)
    probs = torch.full((n, K, H, W), 1.0 / K)
    keep = torch.zeros(n, H, W)
    return strong, probs, keep


def test_rare_class_pixels_are_pasted_with_their_labels_as_kept_targets():
    images, masks = _labelled()
    strong, probs, keep = _views()
    out, out_probs, out_keep, valid = LabeledPaste(K, probability=1.0)(strong, probs, keep, None, images, masks)
    square = (masks == 3)
    assert square.sum() == 2 * 3  # 4 pixels a frame, one ignored
    assert torch.equal(out[:, 0] == 5.0, square)  # only the rare class's labelled pixels
    assert torch.equal(out_keep.bool(), square)
    assert torch.equal(out_probs.argmax(dim=1)[square], torch.full((6,), 3))
    assert out_probs[:, :, 2:4, 2:4].sum(dim=1).allclose(torch.ones(2, 2, 2))
    assert torch.equal(out_probs[~square[:, None].expand_as(out_probs)], probs[~square[:, None].expand_as(probs)])
    assert valid is None  # no geometry: every pixel stays valid


def test_pasted_pixels_become_valid_where_the_strong_view_had_moved_out_of_frame():
    images, masks = _labelled()
    strong, probs, keep = _views()
    valid = torch.zeros(2, H, W, dtype=torch.bool)
    _, _, _, out_valid = LabeledPaste(K, probability=1.0)(strong, probs, keep, valid, images, masks)
    assert torch.equal(out_valid, masks == 3)


def test_probability_zero_pastes_nothing_and_common_classes_are_never_pasted():
    images, masks = _labelled()
    strong, probs, keep = _views()
    out, out_probs, out_keep, _ = LabeledPaste(K, probability=0.0)(strong, probs, keep, None, images, masks)
    assert torch.equal(out, strong) and torch.equal(out_probs, probs) and torch.equal(out_keep, keep)
    paste = LabeledPaste(K, probability=1.0)
    paste.observe(masks)
    assert paste.rare(torch.device("cpu")).tolist() == [False, True, True, True]  # class 0 covers 94%


def test_more_unlabelled_views_than_labelled_frames_reuse_the_frames_in_turn():
    images, masks = _labelled()
    images[1] = 7.0
    strong, probs, keep = _views(3)
    out, *_ = LabeledPaste(K, probability=1.0)(strong, probs, keep, None, images, masks)
    assert [out[i, 0, 3, 3].item() for i in range(3)] == [5.0, 7.0, 5.0]


def test_the_running_shares_survive_a_checkpoint():
    _, masks = _labelled()
    paste = LabeledPaste(K, probability=0.5)
    paste.observe(masks)
    restored = LabeledPaste(K, probability=0.5)
    restored.load_state_dict(paste.state_dict())
    assert restored.observed and torch.equal(restored.share, paste.share)
    assert restored.share.sum().item() == pytest.approx(1.0)
