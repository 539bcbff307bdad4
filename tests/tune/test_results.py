"""A trial's row as the sweep sees it: whether its consistency ever switched on."""

import math

from udatune.reports.stats import method_gain, rank_trials, summarise_methods
from udatune.tune.results import SweepResults


def _sweep(mask_ratios: dict[str, list[float]], mious: dict[str, float]) -> SweepResults:
    results = SweepResults({"uda": {"policy": "randaugment:2,4", "lambda_u": 1.0, "tau": 0.8, "temperature": 0.4}}, max_steps=200)
    results.add("sup", {"method": "supervised", "seed": 0, "overrides": {"uda.mode": "supervised"}, "index": 0})
    for step in (100, 200):
        results.result("sup", {}, {"step": step, "val_miou": 0.40})
    for index, (tid, ratios) in enumerate(mask_ratios.items(), start=1):
        results.add(tid, {"method": "randaugment", "seed": 0, "overrides": {"uda.mode": "uda"}, "index": index})
        for step, ratio in zip((100, 200), ratios):
            results.result(tid, {}, {"step": step, "val_miou": mious[tid], "mask_ratio": ratio})
    for tid in ["sup", *mask_ratios]:
        results.finished(tid, {})
    return results


def test_a_trial_whose_mask_ratio_never_rose_is_labelled_consistency_off():
    results = _sweep({"on": [0.0, 0.3], "off": [0.0, 0.004]}, {"on": 0.45, "off": 0.47})
    assert results.rows["on"].consistency == "on" and results.rows["off"].consistency == "off"
    assert results.rows["sup"].consistency == ""
    frame = results.frame()
    assert list(frame["consistency"]) == ["", "on", "off"]
    assert math.isclose(frame.loc[frame["trial_id"] == "on", "peak_mask_ratio"].item(), 0.3)


def test_a_consistency_off_trial_does_not_stand_for_its_policy():
    # The off trial scored higher (+0.07), but it trained without consistency: the method's
    # gain and best trial come from the trial that ran UDA.
    frame = _sweep({"on": [0.2, 0.3], "off": [0.0, 0.0]}, {"on": 0.45, "off": 0.47}).frame()
    group = frame[frame["method"] == "randaugment"]
    assert math.isclose(method_gain(group).mean, 0.05)
    assert list(rank_trials(group, "gain")["trial_id"]) == ["on"]
    summary = {m.method: m for m in summarise_methods(frame, {}, ["randaugment"], {"randaugment": "optuna"})}
    assert summary["randaugment"].consistency_off == 1 and summary["randaugment"].best["trial_id"] == "on"


def test_the_label_survives_a_restart():
    results = _sweep({"off": [0.0, 0.0]}, {"off": 0.41})
    again = SweepResults.from_state(results.to_state())
    assert again.rows["off"].consistency == "off"
