"""Policies: frozen values with a compact round-tripping form, drawing per image as specified."""

from __future__ import annotations

import json
from collections import Counter

import albumentations as A
import numpy as np
import pytest

from udatune.augment import affine
from udatune.augment.ops import GEOMETRIC, MIX, OPS, PHOTOMETRIC, SPACES
from udatune.augment.policy import (
    DEFAULT_AUTOAUGMENT,
    AutoAugment,
    Identity,
    Policy,
    RandAugment,
    StrongView,
    TrivialAugment,
    parse_policy,
)
from udatune.errors import ConfigError

SHAPE = (37, 53, 3)
POLICIES = [
    Identity(),
    RandAugment(2, 9),
    RandAugment(3, 10, "photometric"),
    RandAugment(0, 5),
    TrivialAugment(),
    TrivialAugment("photometric"),
    DEFAULT_AUTOAUGMENT,
    AutoAugment(((("Rotate", 0.5, 3), ("Color", 0.2, 8)), (("CutMix", 1.0, 10), ("Invert", 0.0, 0)))),
]


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, SHAPE, dtype=np.uint8)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.summary())
def test_string_and_json_round_trip(policy, tmp_path):
    assert isinstance(policy, Policy)
    assert parse_policy(policy.to_string()) == policy
    assert parse_policy(policy.to_json()) == policy
    assert parse_policy(json.loads(json.dumps(policy.to_json()))) == policy
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(policy.to_json()))
    assert parse_policy(str(file)) == policy
    assert "\n" not in policy.summary() and policy.summary()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("identity", Identity()),
        ("randaugment:2,9", RandAugment(2, 9)),
        (" RandAugment:2,9:photometric ", RandAugment(2, 9, "photometric")),
        ("trivialaugment", TrivialAugment()),
        ("trivialaugment:photometric", TrivialAugment("photometric")),
        ("autoaugment", DEFAULT_AUTOAUGMENT),
        ('autoaugment:[[["Rotate",0.5,3],["Color",0.2,8]]]', AutoAugment([[["Rotate", 0.5, 3], ["Color", 0.2, 8]]])),
        ({"type": "autoaugment", "subpolicies": [[["Rotate", 0.5, 3], ["Color", 0.2, 8]]]}, AutoAugment(((("Rotate", 0.5, 3), ("Color", 0.2, 8)),))),
        ({"type": "randaugment", "n": 2, "m": 9}, RandAugment(2, 9)),
    ],
)
def test_parse_compact_forms(spec, expected):
    assert parse_policy(spec) == expected


def test_summaries_read_like_table_cells():
    assert RandAugment(2, 9).summary() == "RA(2,9)"
    assert RandAugment(2, 9, "photometric").summary() == "RA(2,9,photometric)"
    assert TrivialAugment().summary() == "TA"
    assert Identity().summary() == "identity"
    assert AutoAugment([[["Rotate", 0.5, 3], ["Color", 0.2, 8]], [["Invert", 1, 0], ["Equalize", 0.25, 1]]]).summary() == (
        "AA[Rotate.5@3+Color.2@8 | Invert1@0+Equalize.25@1]"
    )
    assert DEFAULT_AUTOAUGMENT.summary().endswith("+3 more]")


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ('autoaugment:[[["Rotat",0.5,3],["Color",0.2,8]]]', ["'Rotat'", "Rotate"]),
        ('autoaugment:[[["Rotate",0.5,11]]]', ["Rotate", "11", "0..10"]),
        ('autoaugment:[[["Rotate",0.5,2.5]]]', ["Rotate", "2.5", "0..10"]),
        ('autoaugment:[[["Color",1.5,3]]]', ["Color", "1.5", "[0, 1]"]),
        ('autoaugment:[[["Color",-0.1,3]]]', ["Color", "-0.1"]),
        ('autoaugment:[[["Color",0.5]]]', ["op, probability, magnitude"]),
        ("autoaugment:[]", ["sub-policies"]),
        ("autoaugment:[[", ["JSON"]),
        ("randaugment:2", ["N,M"]),
        ("randaugment:2,11", ["11", "0..10"]),
        ("randaugment:-1,5", ["n=-1"]),
        ("randaugment:2,9:geometric", ["'geometric'", "photometric"]),
        ("trivialaugment:everything", ["'everything'"]),
        ("randomaugment:2,9", ["randomaugment", "randaugment:N,M"]),
        ("identity:3", ["identity"]),
        ({"type": "mixup"}, ["'mixup'", "randaugment"]),
        ({"type": "randaugment", "n": 2, "m": 9, "p": 1}, ["'p'"]),
        ({"type": "randaugment", "n": 2}, ["missing"]),
        ("missing/policy.json", ["missing/policy.json", "does not exist"]),
    ],
)
def test_bad_specs_raise_config_error_naming_the_problem(spec, named):
    with pytest.raises(ConfigError) as err:
        parse_policy(spec)
    for text in named:
        assert text in str(err.value), (text, str(err.value))


def test_constructors_validate_too():
    with pytest.raises(ConfigError, match="Sharpen"):
        AutoAugment([[("Sharpen", 0.5, 5)]])
    with pytest.raises(ConfigError, match="magnitude"):
        RandAugment(2, 12)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_randaugment_draws_n_ops_per_image_at_magnitude_m(n):
    policy = RandAugment(n, 7)
    rng = np.random.default_rng(n)
    for seed in range(20):
        view = policy.apply(_image(seed), rng)
        assert len(view.ops) == n and set(view.ops) <= set(OPS)
    assert all(m == 7 for _, m in policy.draw(rng))


def test_randaugment_draws_uniformly_with_replacement():
    rng = np.random.default_rng(0)
    counts = Counter(name for _ in range(3000) for name, _ in RandAugment(2, 9).draw(rng))
    assert set(counts) == set(SPACES["all"])
    expected = 6000 / len(SPACES["all"])
    assert all(0.75 * expected < c < 1.25 * expected for c in counts.values())
    repeats = sum(a == b for a, b in (tuple(n for n, _ in RandAugment(2, 9).draw(rng)) for _ in range(3000)))
    assert repeats > 0  # with replacement


def test_photometric_restriction_never_moves_pixels():
    rng = np.random.default_rng(1)
    for policy in (RandAugment(3, 10, "photometric"), TrivialAugment("photometric")):
        assert not policy.uses_geometry
        for seed in range(40):
            view = policy.apply(_image(seed), rng)
            assert all(OPS[name].kind == PHOTOMETRIC for name in view.ops)
            np.testing.assert_array_equal(view.affine, [[1, 0, 0], [0, 1, 0]])
            assert not view.box.any()


def test_trivialaugment_draws_one_op_at_a_uniform_magnitude():
    rng = np.random.default_rng(2)
    draws = [TrivialAugment().draw(rng) for _ in range(2000)]
    assert all(len(d) == 1 for d in draws)
    assert Counter(m for (_, m), in draws).keys() == set(range(11))


def test_autoaugment_runs_one_subpolicy_with_its_probabilities():
    policy = AutoAugment([[["Invert", 1.0, 0], ["Posterize", 0.0, 10]], [["Solarize", 1.0, 10], ["Brightness", 1.0, 0]]])
    rng = np.random.default_rng(3)
    image = _image(3)
    seen = Counter()
    for _ in range(100):
        view = policy.apply(image, rng)
        seen[view.ops] += 1
        if view.ops == ("Invert",):
            np.testing.assert_array_equal(view.image, 255 - image)
        else:
            assert view.ops == ("Solarize", "Brightness")
            np.testing.assert_array_equal(view.image, 255 - image)  # threshold 0: everything inverted
    assert set(seen) == {("Invert",), ("Solarize", "Brightness")}


def test_half_probability_applies_about_half_the_time():
    rng = np.random.default_rng(4)
    policy = AutoAugment([[["Invert", 0.5, 0]]])
    applied = sum(len(policy.draw(rng)) for _ in range(2000))
    assert 850 < applied < 1150


def test_geometric_ops_compose_into_one_matrix_in_drawn_order():
    policy = AutoAugment([[["TranslateX", 1.0, 10], ["Rotate", 1.0, 10]]])
    view = policy.apply(_image(), np.random.default_rng(5))
    h, w = SHAPE[:2]
    candidates = [
        affine.as_theta(affine.compose(affine.translation(0.45 * sx, 0), affine.rotation(30 * sr, h, w)))
        for sx in (1, -1) for sr in (1, -1)
    ]
    assert any(np.allclose(view.affine, c, atol=1e-6) for c in candidates)
    assert view.affine.dtype == np.float32 and view.affine.shape == (2, 3)
    np.testing.assert_array_equal(view.image, _image())  # geometry is not applied in the worker


def test_cutmix_draw_is_a_box_and_leaves_pixels_alone():
    view = AutoAugment([[["CutMix", 1.0, 10]]]).apply(_image(), np.random.default_rng(6))
    y0, x0, y1, x1 = view.box
    assert view.box.dtype == np.float32 and 0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1
    assert (y1 - y0) * (x1 - x0) == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_array_equal(view.image, _image())


@pytest.mark.parametrize("name", list(OPS))
def test_every_op_at_every_magnitude_through_a_policy(name):
    image = _image(7)
    rng = np.random.default_rng(7)
    for magnitude in range(11):
        view = AutoAugment([[[name, 1.0, magnitude]]]).apply(image, rng)
        assert isinstance(view, StrongView) and view.ops == (name,)
        assert view.image.dtype == np.uint8 and view.image.shape == SHAPE
        moved = not np.allclose(view.affine, [[1, 0, 0], [0, 1, 0]])
        assert moved == (OPS[name].kind == GEOMETRIC and magnitude > 0)
        assert bool(view.box.any()) == (OPS[name].kind == MIX and magnitude > 0)
        if magnitude == 0 and OPS[name].has_magnitude:
            np.testing.assert_array_equal(view.image, image)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.summary())
def test_same_seed_same_view(policy):
    a = policy.apply(_image(8), np.random.default_rng(9))
    b = policy.apply(_image(8), np.random.default_rng(9))
    assert a.ops == b.ops
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(a.box, b.box)


def test_uses_geometry():
    assert not Identity().uses_geometry
    assert RandAugment(2, 9).uses_geometry and TrivialAugment().uses_geometry
    assert not RandAugment(0, 9).uses_geometry
    assert not AutoAugment([[["Color", 0.5, 3], ["Rotate", 0.0, 3]]]).uses_geometry
    assert AutoAugment([[["Color", 0.5, 3], ["CutMix", 0.1, 3]]]).uses_geometry


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.summary())
def test_photometric_export_serialises_and_runs(policy):
    pipeline = policy.photometric_pipeline()
    assert isinstance(pipeline, A.BaseCompose)
    spec = json.loads(json.dumps(A.to_dict(pipeline)))
    rebuilt = A.from_dict(spec)
    out = rebuilt(image=_image(10))["image"]
    assert out.dtype == np.uint8 and out.shape == SHAPE
    names = json.dumps(spec)
    assert "Affine" not in names and "Rotate" not in names  # geometry stays with the trainer


def test_photometric_export_matches_apply_for_a_deterministic_policy():
    policy = AutoAugment([[["Posterize", 1.0, 10], ["Solarize", 1.0, 5], ["Rotate", 1.0, 5], ["Color", 1.0, 0]]])
    image = _image(11)
    exported = A.from_dict(A.to_dict(policy.photometric_pipeline()))
    np.testing.assert_array_equal(exported(image=image)["image"], policy.apply(image, np.random.default_rng(0)).image)


def test_randaugment_export_offers_every_op_of_its_space():
    pipeline = RandAugment(2, 9, "photometric").photometric_pipeline()
    (some_of,) = pipeline.transforms
    assert isinstance(some_of, A.SomeOf) and some_of.n == 2 and len(some_of.transforms) == len(SPACES["photometric"])


def test_a_long_inline_autoaugment_policy_is_not_mistaken_for_a_file():
    # Searched policies with many sub-policies are longer than any valid file name.
    subpolicies = [[["Rotate", 0.5, 3], ["Brightness", 0.6, 5]]] * 12
    spec = "autoaugment:" + json.dumps(subpolicies)
    assert len(spec) > 300
    assert parse_policy(spec) == AutoAugment(subpolicies)
