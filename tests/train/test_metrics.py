import math

import numpy as np
import pytest
import torch

from udatune.train.metrics import ConfusionMatrix, scores_from_confusion


def test_miou_matches_hand_computed_confusion_matrix():
    # rows = truth, cols = prediction
    matrix = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    scores = scores_from_confusion(matrix)
    iou0 = 3 / (3 + 1 + 2)  # tp / (row + col - tp)
    iou1 = 4 / (6 + 5 - 4)
    assert scores.per_class_iou[0] == pytest.approx(iou0)
    assert scores.per_class_iou[1] == pytest.approx(iou1)
    assert math.isnan(scores.per_class_iou[2])  # never seen: left out of the mean, not counted as 0
    assert scores.miou == pytest.approx((iou0 + iou1) / 2)
    assert scores.pixel_accuracy == pytest.approx(7 / 10)


def test_confusion_matrix_accumulates_and_skips_ignored_pixels():
    target = torch.tensor([[0, 0, 1, 255], [1, 1, 2, 255]])
    prediction = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 0]])
    cm = ConfusionMatrix(3)
    cm.update(target, prediction)
    cm.update(target, prediction)
    expected = 2 * np.array([[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    np.testing.assert_array_equal(cm.matrix.numpy(), expected)
    assert cm.compute().pixel_accuracy == pytest.approx(4 / 6)


def test_perfect_prediction_scores_one():
    target = torch.randint(0, 4, (2, 8, 8))
    cm = ConfusionMatrix(4)
    cm.update(target, target)
    assert cm.compute().miou == pytest.approx(1.0)
