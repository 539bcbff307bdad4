"""The study's floor (bench/study.py): share of the gap, the paired interval, collapsed classes."""

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.study import (Arm, InvocationLog, budget_line, class_table, collapsed_classes, default_name, default_note, floor_lines, gap_share, relative,
                         summary_table, wall_time)


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
    first = InvocationLog(tmp_path, time.time() - 100).close(finished=False)
    assert wall_time(first) == f"Wall time: {first[0]['seconds']:.0f} s."
    both = InvocationLog(tmp_path, time.time() - 20).close(finished=True)
    assert InvocationLog(tmp_path, time.time() - 5).discard() == both  # read back whole: ran nothing, adds nothing
    assert [e["finished"] for e in both] == [False, True] and json.loads((tmp_path / "invocations.json").read_text()) == both
    total = both[0]["seconds"] + both[1]["seconds"]
    assert 119 <= total <= 125
    assert wall_time(both).startswith(f"Wall time: {total:.0f} s over 2 invocations (stopped and carried on; the last 20 s),")


def test_an_invocation_killed_outright_still_leaves_its_time_to_within_a_heartbeat(tmp_path):
    # A real SIGKILL, as at the end of a session: no finally, no atexit, only the heartbeats it wrote.
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, time; from pathlib import Path; from bench.study import InvocationLog; "
        f"InvocationLog(Path({str(tmp_path)!r}), time.time() - 50, every=0.1); time.sleep(1.0); os.kill(os.getpid(), signal.SIGKILL)")],
        cwd=Path(__file__).resolve().parents[2])
    assert killed.returncode == -signal.SIGKILL
    [entry] = json.loads((tmp_path / "invocations.json").read_text())
    assert entry["ended"] is False and 50.5 <= entry["seconds"] <= 51.5  # its last heartbeat, not its start
    both = InvocationLog(tmp_path, time.time() - 10).close(finished=True)
    assert "1 killed before its end, counted to its last sign of life: a lower bound" in wall_time(both)


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


def test_the_search_table_lists_every_trial_with_what_it_tried_and_its_gain(sweep_writer):
    from bench.study import search_table

    path = sweep_writer.finished()
    sweep_writer.write(path, [
        ("sup0", {"method": "supervised", "seed": 0, "overrides": {"uda.mode": "supervised"}, "index": 0}, {50: 0.45, 100: 0.50}, "TERMINATED", None),
        ("aa0", {"method": "autoaugment", "seed": 0, "index": 1,
                 "overrides": {**sweep_writer.uda('autoaugment:[[["Rotate",0.5,3]],[["Color",0.4,2]]]', 1.0, 0.7, 0.4), "uda.ema_decay": 0.99, "uda.align": True}},
         {50: 0.47, 100: 0.53}, "TERMINATED", None),
        ("aa1", {"method": "autoaugment", "seed": 0, "index": 2, "overrides": sweep_writer.uda('autoaugment:[[["Color",0.2,8]]]', 2.0, 0.9, 0.8)},
         {50: 0.43}, "TERMINATED", None),
    ])
    lines = search_table(str(path)).splitlines()
    assert lines[0].startswith("| trial | method | policy |") and len(lines) == 2 + 3
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)] for line in lines]
    assert all(len(row) == len(cells[0]) for row in cells)  # a policy's own bars are escaped, not cell ends
    supervised, tuned, stopped = (dict(zip(cells[0], row)) for row in cells[2:])
    assert supervised["method"] == "supervised" and supervised["options"] == "—" and supervised["gain over supervised"] == "—"
    assert tuned["options"] == "mean teacher 0.99, alignment" and tuned["λ / τ / T"] == "1 / 0.70 / 0.40"
    assert tuned["gain over supervised"] == "+0.030" and tuned["steps"] == "100"
    # A trial stopped at step 50 is compared with supervised at step 50, not at its end.
    assert stopped["steps"] == "50" and stopped["gain over supervised"] == "-0.020" and stopped["options"] == "—"


def test_a_trials_options_are_the_sweeps_base_then_its_own_settings():
    from bench.study import trial_options

    base = {"ema_decay": 0.99, "align": True, "class_balance": False, "paste": 0.0}
    assert trial_options(base, {}) == "mean teacher 0.99, alignment"
    assert trial_options(base, {"uda.align": False, "uda.ema_decay": 0.0, "uda.paste": 0.5}) == "paste 0.5"
    assert trial_options({}, {}) == "—"


def test_a_trial_that_never_reported_reads_as_dashes_not_an_error(sweep_writer):
    from bench.study import search_table

    path = sweep_writer.finished()  # trial ta0 failed before its first evaluation
    line = next(line for line in search_table(str(path)).splitlines() if line.startswith("| ta0 "))
    assert line.rstrip(" |").endswith("| — | —") and "nan" not in line


def test_a_recipe_named_by_an_autoaugment_policy_keeps_the_tables_columns():
    # The search's best is named by its policy, whose sub-policies are joined by bars.
    best = arm("search's best (cutmix: AA[CutMix1@10 | Contrast.5@4])", [0.52, 0.50, 0.52], {"road": 0.95, "pole": 0.01})
    cells = re.compile(r"(?<!\\)\|")  # a bar that is not escaped ends a cell
    for table in (summary_table([SUPERVISED, best, ORACLE], SUPERVISED, ORACLE), class_table([SUPERVISED, best, ORACLE])):
        header, _, *rows = table.splitlines()
        assert all(len(cells.findall(row)) == len(cells.findall(header)) for row in rows), table


def test_a_study_says_when_its_oracle_leads_by_less_than_the_budget_asks():
    wide = arm("oracle", [0.58, 0.55, 0.60], {"road": 0.95})  # +0.077 on average
    narrow = arm("oracle", [0.53, 0.50, 0.55], {"road": 0.95})  # +0.027
    assert budget_line(SUPERVISED, wide).endswith(": holds")
    assert "+0.027" in budget_line(SUPERVISED, narrow) and "below it on these seeds" in budget_line(SUPERVISED, narrow)


def test_default_uda_names_the_base_settings_it_trained_with():
    assert default_note({"uda": {"ema_decay": 0.0, "align": False}}) == ""
    assert default_note({"uda": {"ema_decay": 0.99, "align": True}}).endswith("base settings: mean teacher 0.99, alignment. ")
