"""The study's floor (bench/study.py): share of the gap, the paired interval, collapsed classes."""

import json
import math
import time
from pathlib import Path

from bench.study import Arm, collapsed_classes, default_name, floor_lines, gap_share, log_invocation, relative, wall_time


def arm(name, scores, classes):
    return Arm(name, dict(enumerate(scores)), {s: dict(classes) for s in range(len(scores))})


SUPERVISED = arm("supervised", [0.50, 0.48, 0.52], {"road": 0.9, "pole": 0.10, "sign": 0.03})
ORACLE = arm("oracle", [0.56, 0.50, 0.58], {"road": 0.95, "pole": 0.2, "sign": 0.1})


def test_the_share_of_the_gap_is_the_mean_gain_over_the_mean_gap():
    best = arm("best", [0.53, 0.49, 0.55], {"road": 0.92, "pole": 0.09, "sign": 0.0})
    # Gains 0.03, 0.01, 0.03 over gaps 0.06, 0.02, 0.06: 0.07 / 0.14. Seed 1's gap of 0.02 does not
    # weigh more than the others, as it would in a mean of per-seed ratios.
    assert round(gap_share(best, SUPERVISED, ORACLE), 6) == 0.5
    behind = arm("oracle", [0.49, 0.47, 0.52], {"road": 0.95, "pole": 0.2, "sign": 0.1})
    assert math.isnan(gap_share(best, SUPERVISED, behind))


def test_a_thin_class_that_supervised_learned_and_the_recipe_lost_is_collapsed():
    lost = arm("best", [0.55, 0.50, 0.57], {"road": 0.95, "pole": 0.04, "sign": 0.0})
    kept = arm("best", [0.55, 0.50, 0.57], {"road": 0.95, "pole": 0.06, "sign": 0.0})
    # sign is below 0.05 for supervised: losing it does not count; pole at 0.04 < half of 0.10 does.
    assert collapsed_classes(lost, SUPERVISED) == ["pole"]
    assert collapsed_classes(kept, SUPERVISED) == []


def test_the_floor_holds_only_when_all_three_conditions_do():
    good = arm("best", [0.535, 0.51, 0.555], {"road": 0.95, "pole": 0.09, "sign": 0.0})
    lines = floor_lines(good, SUPERVISED, ORACLE)
    assert all(line.endswith(": met") for line in lines), lines
    small = arm("best", [0.506, 0.486, 0.526], {"road": 0.95, "pole": 0.09, "sign": 0.0})
    share, gain, classes = floor_lines(small, SUPERVISED, ORACLE)
    assert share.endswith("not met") and "13%" in share
    assert gain.endswith(": met") and classes.endswith(": met")
    noisy = arm("best", [0.58, 0.47, 0.56], {"road": 0.95, "pole": 0.01, "sign": 0.0})
    share, gain, classes = floor_lines(noisy, SUPERVISED, ORACLE)
    assert gain.endswith("not met") and "pole" in classes and classes.endswith("not met")


def test_a_study_carried_on_over_several_invocations_is_timed_by_their_sum(tmp_path):
    started = time.time() - 100
    first = log_invocation(tmp_path, started, finished=False)
    assert wall_time(first) == f"Wall time: {first[0]['seconds']:.0f} s."
    both = log_invocation(tmp_path, time.time() - 20, finished=True)
    assert [e["finished"] for e in both] == [False, True] and json.loads((tmp_path / "invocations.json").read_text()) == both
    total = both[0]["seconds"] + both[1]["seconds"]
    assert 119 <= total <= 125
    assert wall_time(both).startswith(f"Wall time: {total:.0f} s over 2 invocations (stopped and carried on; this one 20 s)")


def test_a_study_at_another_image_size_is_another_sweep_never_one_carried_on():
    assert default_name("camvid", 2000, None) == "study-camvid-2000"
    assert default_name("camvid", 2000, "60x80") == "study-camvid-2000-60x80"
    assert default_name("camvid", 2000, "60x80") != default_name("camvid", 2000, "90x120")
    # Other spaces or base settings: another sweep too (it used to carry on the default study).
    tuned = default_name("camvid", 2000, None, ("randaugment", "cutmix"), ("uda.align=true",))
    assert tuned.startswith("study-camvid-2000-") and tuned != default_name("camvid", 2000, None)
    assert tuned != default_name("camvid", 2000, None, ("randaugment", "cutmix"), ("uda.align=false",))
    assert tuned != default_name("camvid", 2000, None, ("cutmix",), ("uda.align=true",))
    assert tuned == default_name("camvid", 2000, None, ("randaugment", "cutmix"), ("uda.align=true",))


def test_the_docs_name_paths_in_and_beside_the_checkout_relative_to_it():
    checkout = Path(__file__).resolve().parents[2]
    command = f"--data-root {checkout.parent}/shared/datasets/camvid --storage {checkout}/bench/out/study/sweeps"
    assert relative(command) == "--data-root ../shared/datasets/camvid --storage bench/out/study/sweeps"
    assert relative("--data-root /elsewhere/camvid") == "--data-root /elsewhere/camvid"


def test_the_search_is_given_the_studys_spaces_and_settings():
    from argparse import Namespace

    from bench.study import search_command

    args = Namespace(dataset="camvid", image_size=None, steps=2000, trials=4, seeds=[100, 101], gpus_per_trial=0.0,
                     space=["randaugment", "cutmix"], set=["uda.align=true"])
    command = search_command(args, "s", "/tmp/sweeps")
    pairs = list(zip(command, command[1:]))
    assert ("--space", "randaugment") in pairs and ("--space", "cutmix") in pairs and ("--set", "uda.align=true") in pairs
    assert ("--confirm-seeds", "100,101") in pairs
