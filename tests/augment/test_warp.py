"""The aligned warp: what the student sees moved, the teacher's map and labels moved identically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from udatune.augment import affine
from udatune.augment.ops import GEOMETRIC, OPS
from udatune.augment.policy import parse_policy
from udatune.augment.warp import apply_strong_geometry, cutmix, sampling_grid, warp_labels
from udatune.data.base import IGNORE_INDEX

H, W = 37, 53
GEO = [name for name, op in OPS.items() if op.kind == GEOMETRIC]
NO_BOX = torch.zeros(1, 4)


def _theta(matrix: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(affine.as_theta(matrix))[None]


def _smooth_logits(channels: int = 4, seed: int = 0) -> torch.Tensor:
    """Low-frequency logits (wavelengths >= 24 px), so bilinear interpolation error stays small."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(H, dtype=torch.float64)[:, None]
    x = torch.arange(W, dtype=torch.float64)[None, :]
    out = []
    for _ in range(channels):
        fy, fx, phase = (torch.rand(3, generator=g, dtype=torch.float64) * torch.tensor([1 / 24, 1 / 24, 6.28])).tolist()
        out.append(2.0 * torch.cos(2 * math.pi * (fy * y + fx * x) + phase))
    return torch.stack(out)[None].float()


def _pixel_map(name: str, value: float) -> tuple[np.ndarray, np.ndarray]:
    """Input pixel location (from the centre) of every output pixel centre, by the op's definition."""
    dy, dx = np.meshgrid(np.arange(H) + 0.5 - H / 2, np.arange(W) + 0.5 - W / 2, indexing="ij")
    if name == "Rotate":
        c, s = math.cos(math.radians(value)), math.sin(math.radians(value))
        return c * dx - s * dy, s * dx + c * dy
    if name == "ShearX":
        return dx + value * dy, dy
    if name == "ShearY":
        return dx, dy + value * dx
    if name == "TranslateX":
        return dx - value * W, dy
    if name == "TranslateY":
        return dx, dy - value * H
    raise AssertionError(name)


def _random_draws(name: str, count: int = 6):
    rng = np.random.default_rng(GEO.index(name))
    for _ in range(count):
        yield int(rng.integers(1, 11)), int(rng.choice([-1, 1]))


@pytest.mark.parametrize("name", GEO)
def test_matrix_is_the_pixel_space_op_and_valid_is_exactly_in_frame(name):
    """Grid locations equal the op's pixel-space definition (true rotation/shear despite H != W),
    and ``valid`` equals an independently computed in-frame region."""
    op = OPS[name]
    for magnitude, sign in _random_draws(name):
        theta = _theta(op.matrix(magnitude, sign, H, W))
        grid = sampling_grid(theta, H, W)[0].double().numpy()
        x_in, y_in = _pixel_map(name, op.value(magnitude, sign))
        np.testing.assert_allclose(grid[..., 0] * W / 2, x_in, atol=1e-4)
        np.testing.assert_allclose(grid[..., 1] * H / 2, y_in, atol=1e-4)

        _, _, valid = apply_strong_geometry(torch.rand(1, 3, H, W), torch.rand(1, 2, H, W), theta, NO_BOX)
        expected = (np.abs(x_in) <= W / 2) & (np.abs(y_in) <= H / 2)
        ones = F.grid_sample(torch.ones(1, 1, H, W), sampling_grid(theta, H, W), mode="nearest", padding_mode="zeros", align_corners=False)
        edge = (np.abs(np.abs(x_in) - W / 2) < 1e-3) | (np.abs(np.abs(y_in) - H / 2) < 1e-3)
        assert edge.mean() < 0.01
        np.testing.assert_array_equal(valid[0].numpy()[~edge], expected[~edge])
        np.testing.assert_array_equal(valid[0].numpy()[~edge], ones[0, 0].bool().numpy()[~edge])
        assert 0 < expected.sum() <= H * W


@pytest.mark.parametrize("name", GEO)
def test_warp_commutes_with_per_pixel_functions(name):
    """warp(softmax(x)) ≈ softmax(warp(x)) on the valid region: the teacher's map follows the student."""
    op = OPS[name]
    logits = _smooth_logits()
    for magnitude, sign in _random_draws(name):
        theta = _theta(op.matrix(magnitude, sign, H, W))
        strong, target, valid = apply_strong_geometry(logits, logits.softmax(1), theta, NO_BOX)
        assert valid.any()
        diff = (target - strong.softmax(1)).abs().amax(1)[valid]
        assert diff.max() < 0.02, (name, magnitude, sign, diff.max())
        # A per-pixel *linear* map commutes exactly, even on a rough image.
        rough = torch.rand(1, 3, H, W)
        mix = torch.tensor([[0.2, 0.5, 0.3], [1.0, -1.0, 0.0]])
        warped, mixed, valid = apply_strong_geometry(rough, torch.einsum("kc,bchw->bkhw", mix, rough), theta, NO_BOX)
        torch.testing.assert_close(mixed, torch.einsum("kc,bchw->bkhw", mix, warped), atol=1e-5, rtol=0)
        assert not warped[:, :, ~valid[0]].any() and not mixed[:, :, ~valid[0]].any()


def test_identity_leaves_everything_unchanged():
    x, t = torch.rand(2, 3, H, W), torch.rand(2, 5, H, W)
    theta = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]]).repeat(2, 1, 1)
    strong, target, valid = apply_strong_geometry(x, t, theta, torch.zeros(2, 4))
    torch.testing.assert_close(strong, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(target, t, atol=1e-5, rtol=0)
    assert valid.all()


def _labels(seed: int = 0, classes: int = 7) -> torch.Tensor:
    return torch.randint(0, classes, (1, H, W), generator=torch.Generator().manual_seed(seed))


def test_rotating_labels_by_90_degrees_is_rot90_of_the_centre_square():
    """W - H is even, so a 90° turn about the centre maps pixel centres onto pixel centres."""
    mask = _labels()
    mask[0, 0, 0] = IGNORE_INDEX  # ignore stays ignore
    _, warped = warp_labels(torch.rand(1, 3, H, W), mask, _theta(affine.rotation(90, H, W)))
    side = (W - H) // 2
    expected = np.full((H, W), IGNORE_INDEX)
    expected[:, side:side + H] = np.rot90(mask[0, :, side:side + H].numpy())
    np.testing.assert_array_equal(warped[0].numpy(), expected)
    assert warped.dtype == mask.dtype


@pytest.mark.parametrize(("dx", "dy"), [(5, 0), (-7, 0), (0, 3), (0, -11), (4, -2)])
def test_whole_pixel_translation_is_an_integer_shift(dx, dy):
    mask = _labels(1)
    image = torch.rand(1, 3, H, W)
    theta = _theta(affine.translation(dx / W, dy / H))
    warped_image, warped = warp_labels(image, mask, theta)
    expected = np.full((H, W), IGNORE_INDEX)
    expected_image = np.zeros((3, H, W), dtype=np.float32)
    ys, xs = slice(max(dy, 0), H + min(dy, 0)), slice(max(dx, 0), W + min(dx, 0))
    src_ys, src_xs = slice(max(-dy, 0), H - max(dy, 0)), slice(max(-dx, 0), W - max(dx, 0))
    expected[ys, xs] = mask[0].numpy()[src_ys, src_xs]
    expected_image[:, ys, xs] = image[0].numpy()[:, src_ys, src_xs]
    np.testing.assert_array_equal(warped[0].numpy(), expected)
    np.testing.assert_allclose(warped_image[0].numpy(), expected_image, atol=1e-5)


def test_composed_matrix_equals_warping_op_by_op():
    """affine.compose(a, b) is 'a, then b' — checked exactly on labels with pixel-exact ops."""
    mask = _labels(2)
    image = torch.rand(1, 3, H, W)
    first, second = affine.translation(6 / W, -2 / H), affine.rotation(90, H, W)
    _, once = warp_labels(image, mask, _theta(affine.compose(first, second)))
    _, step = warp_labels(image, mask, _theta(first))
    _, twice = warp_labels(image, step, _theta(second))
    kept = twice != IGNORE_INDEX
    assert kept.float().mean() > 0.5
    np.testing.assert_array_equal(once[kept].numpy(), twice[kept].numpy())
    # One composed warp never loses more than two: pixels the first step pushed out of frame
    # and the second brings back are still there.
    assert (once != IGNORE_INDEX).sum() > kept.sum()


@pytest.mark.parametrize("name", GEO)
def test_warped_labels_hold_only_valid_ids_or_ignore(name):
    mask = _labels(3, classes=5).to(torch.uint8)
    for magnitude, sign in _random_draws(name):
        _, warped = warp_labels(torch.rand(1, 3, H, W), mask, _theta(OPS[name].matrix(magnitude, sign, H, W)))
        assert set(warped.unique().tolist()) <= set(range(5)) | {IGNORE_INDEX}
        assert (warped == IGNORE_INDEX).any() or name.startswith("Shear")


def test_batched_warp_uses_each_rows_own_matrix():
    policy = parse_policy("randaugment:3,10")
    rng = np.random.default_rng(0)
    views = [policy.apply(np.zeros((H, W, 3), np.uint8), rng) for _ in range(6)]
    theta = torch.from_numpy(np.stack([v.affine for v in views]))
    x, t = torch.rand(6, 3, H, W), torch.rand(6, 4, H, W)
    strong, target, valid = apply_strong_geometry(x, t, theta, torch.zeros(6, 4))
    for i in range(6):
        s_i, t_i, v_i = apply_strong_geometry(x[i:i + 1], t[i:i + 1], theta[i:i + 1], NO_BOX)
        torch.testing.assert_close(strong[i:i + 1], s_i)
        torch.testing.assert_close(target[i:i + 1], t_i)
        assert torch.equal(valid[i:i + 1], v_i)


def test_cutmix_pastes_the_partners_box_into_image_and_target_alike():
    x, t = torch.rand(3, 3, H, W), torch.rand(3, 4, H, W)
    # Box edges on pixel edges: rows 2..5 and columns 3..8 are inside.
    box = torch.tensor([[2 / H, 3 / W, 6 / H, 9 / W], [0, 0, 0, 0], [0.5, 0.5, 1.0, 1.0]])
    identity = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).repeat(3, 1, 1)
    strong, target, valid = apply_strong_geometry(x, t, identity, box)
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[2:6, 3:9] = True
    for mixed, source in ((strong, x), (target, t)):
        torch.testing.assert_close(mixed[0][:, inside], source[1][:, inside], atol=1e-5, rtol=0)  # partner of 0 is 1
        torch.testing.assert_close(mixed[0][:, ~inside], source[0][:, ~inside], atol=1e-5, rtol=0)
        torch.testing.assert_close(mixed[1], source[1], atol=1e-5, rtol=0)  # no box, untouched
        lower_right = torch.zeros(H, W, dtype=torch.bool)
        lower_right[19:, 27:] = True  # centres >= 0.5
        torch.testing.assert_close(mixed[2][:, lower_right], source[0][:, lower_right], atol=1e-5, rtol=0)  # wraps to 0
    assert valid.all()


def test_cutmix_happens_before_the_warp_with_the_same_matrix():
    x, t = torch.rand(2, 3, H, W), torch.rand(2, 4, H, W)
    box = torch.tensor([[0.1, 0.2, 0.6, 0.7], [0.3, 0.0, 0.9, 0.5]])
    theta = torch.from_numpy(np.stack([affine.as_theta(affine.rotation(20, H, W)), affine.as_theta(affine.shear_x(0.2, H, W))]))
    strong, target, valid = apply_strong_geometry(x, t, theta, box)
    mixed_x, mixed_t = cutmix(x, t, box)
    strong2, target2, valid2 = apply_strong_geometry(mixed_x, mixed_t, theta, torch.zeros(2, 4))
    torch.testing.assert_close(strong, strong2)
    torch.testing.assert_close(target, target2)
    assert torch.equal(valid, valid2)
