"""bench.quality's cache: a cached run stands only for the exact config it ran."""

import json

from bench.quality import METHODS, cached, run_config


def test_a_cached_run_is_reused_only_for_the_same_config(tmp_path):
    ran = run_config("synthetic", "uda", 0, {"data.image_size": "32x48", "train.steps": 800})
    path = tmp_path / "synthetic-uda-s0.json"
    path.write_text(json.dumps({"miou": 0.4, "config": ran.to_dict()}))
    assert cached(path, ran.to_dict())["miou"] == 0.4
    # Same tag, method and seed, other settings: not this run (it used to be read back as one).
    assert cached(path, run_config("synthetic", "uda", 0, {"data.image_size": "32x32", "train.steps": 800}).to_dict()) is None
    assert cached(path, run_config("synthetic", "supervised", 0, {"data.image_size": "32x48", "train.steps": 800}).to_dict()) is None
    assert cached(tmp_path / "missing.json", ran.to_dict()) is None


def test_a_run_cached_before_a_setting_existed_counts_as_run_with_its_default(tmp_path):
    ran = run_config("synthetic", "uda", 0, {"train.steps": 800})
    older = ran.to_dict()
    del older["uda"]["paste"]  # cached before uda.paste existed: it ran without a paste
    path = tmp_path / "synthetic-uda-s0.json"
    path.write_text(json.dumps({"miou": 0.4, "config": older}))
    assert cached(path, ran.to_dict())["miou"] == 0.4
    assert cached(path, run_config("synthetic", "uda", 0, {"train.steps": 800, "uda.paste": 0.5}).to_dict()) is None
    older["uda"]["retired_knob"] = 1  # a setting udatune no longer has: not this run
    path.write_text(json.dumps({"miou": 0.4, "config": older}))
    assert cached(path, ran.to_dict()) is None


def test_every_method_is_a_valid_run_with_its_own_settings_applied():
    """A method is the dataset's run with its settings on top: a misspelt key or a value the
    config refuses fails here, not an hour into a benchmark."""
    for method, settings in METHODS.items():
        cfg = run_config("synthetic", method, 0, {})
        for key, value in settings.items():
            section, field = key.split(".")
            assert getattr(getattr(cfg, section), field) == value, (method, key)


def test_the_section_says_whether_a_seed_also_redraws_the_labeled_subset():
    """Screens with the split redrawn per seed carry the subset's noise; screens on one split
    (``--set data.split_seed=0``) measure what a confirmation measures. The text must not mix them up."""
    from bench.quality import seeds_sentence

    def record(seed, extra):
        return {"seed": seed, "config": run_config("synthetic", "uda", seed, extra).to_dict()}

    redrawn = [record(s, {}) for s in (0, 1, 2)]
    assert "training seed = split seed" in seeds_sentence([0, 1, 2], redrawn)
    fixed = [record(s, {"data.split_seed": "0"}) for s in (0, 1, 2)]
    assert seeds_sentence([0, 1, 2], fixed) == "training seeds [0, 1, 2] on one labeled subset (split seed 0), as `udatune confirm` varies them."


def test_the_share_of_the_gap_is_a_ratio_of_means_as_the_study_floor_reads_it():
    """Gains +0.00, +0.08 over gaps 0.02, 0.18: a mean of per-seed ratios gives 22%, the ratio of
    the means 0.04 / 0.10 = 40%. The screens' table and the floor must read the same number."""
    from bench.quality import gap_share, summarize

    runs = {"supervised": (0.50, 0.40), "uda": (0.50, 0.48), "oracle": (0.52, 0.58)}
    records = [{"method": m, "seed": s, "miou": v} for m, values in runs.items() for s, v in enumerate(values)]
    assert abs(gap_share([0.0, 0.08], [0.02, 0.18]) - 0.40) < 1e-9
    uda_row = next(line for line in summarize(records, list(runs)).splitlines() if line.startswith("| uda |"))
    assert "| 40% |" in uda_row
    # No lead on average: no gap to close, said so rather than a share.
    behind = [{"method": m, "seed": 0, "miou": v} for m, v in (("supervised", 0.5), ("uda", 0.52), ("oracle", 0.49))]
    assert "n/a: oracle ≤ baseline" in summarize(behind, ["supervised", "uda", "oracle"])
