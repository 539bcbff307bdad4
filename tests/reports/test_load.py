"""Reading a sweep: from results.csv when it is current, else rebuilt from Tune's trial folders
(a running or interrupted sweep), with the same paired gains either way."""

import math
import os
import time

import pytest

from udatune.errors import ConfigError
from udatune.reports.load import load_sweep, resolve_sweep


def gains(sweep) -> dict[str, float]:
    return dict(zip(sweep.trials["trial_id"], sweep.trials["gain"]))


def test_a_sweep_without_results_csv_is_rebuilt_from_its_trial_folders(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))
    assert sweep.source.startswith("trial folders")
    assert len(sweep.trials) == 14 and sweep.trials["trial_id"].is_unique
    g = gains(sweep)
    # paired with supervised at the same seed and the same step (aa5 stopped at step 50)
    assert g["def1"] == pytest.approx(0.03) and g["aa4"] == pytest.approx(0.06) and g["aa5"] == pytest.approx(0.03)
    assert math.isnan(g["sup0"]) and math.isnan(g["ta0"])
    status = dict(zip(sweep.trials["trial_id"], sweep.trials["status"]))
    assert (status["aa4"], status["aa5"], status["ta0"]) == ("done", "stopped", "error")
    assert sweep.last_metrics("aa4")["iou/road"] == pytest.approx(0.70)


def test_results_csv_is_used_while_current_and_ignored_once_trials_report_again(sweep_writer):
    path = sweep_writer.finished()
    rebuilt = load_sweep(str(path)).trials
    rebuilt.assign(gain=rebuilt["gain"] + 1.0).to_csv(path / "results.csv", index=False)  # marked, to see which is read
    fresh = load_sweep(str(path))
    assert fresh.source == "results.csv" and gains(fresh)["def1"] == pytest.approx(1.03)

    later = time.time() + 5  # a resumed sweep: a trial reports after the table was written
    os.utime(next(path.glob("*-aa4/result.json")), (later, later))
    stale = load_sweep(str(path))
    assert stale.source.startswith("trial folders") and gains(stale)["def1"] == pytest.approx(0.03)


def test_a_running_sweep_shows_running_and_pending_trials(sweep_writer):
    path = sweep_writer.root / "live"
    sweep_writer.manifest(path, "live")
    sup = {"method": "supervised", "seed": 0, "overrides": {"uda.mode": "supervised"}, "index": 0}
    aa = {"method": "autoaugment", "seed": 0, "overrides": sweep_writer.uda("randaugment:2,9", 1.0, 0.8, 0.4), "index": 1}
    queued = {"method": "autoaugment", "seed": 0, "overrides": {}, "index": 2}
    sweep_writer.trial(path, "s0", sup, {50: 0.45})
    sweep_writer.trial(path, "a0", aa, {50: 0.47})
    sweep_writer.state(path, {"s0": ("RUNNING", sup), "a0": ("RUNNING", aa), "q0": ("PENDING", queued)})
    sweep = load_sweep(str(path))
    assert dict(zip(sweep.trials["trial_id"], sweep.trials["status"])) == {"s0": "running", "a0": "running", "q0": "pending"}
    assert gains(sweep)["a0"] == pytest.approx(0.02)


def test_unknown_and_empty_sweeps_are_config_errors(sweep_writer):
    sweep_writer.finished("one")
    with pytest.raises(ConfigError, match="No sweep named 'two'.*one"):
        resolve_sweep("two", str(sweep_writer.root))
    sweep_writer.manifest(sweep_writer.root / "empty", "empty")
    assert resolve_sweep("empty", str(sweep_writer.root)).endswith("/empty")
    with pytest.raises(ConfigError, match="no trials with results yet"):
        load_sweep(str(sweep_writer.root / "empty"))


def test_confirmation_runs_are_read_with_their_test_scores(sweep_writer):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    confirm = load_sweep(str(path)).confirm
    assert len(confirm) == 9 and set(confirm["split"]) == {"test"}
    row = confirm.set_index("trial_id").loc["cf1"]
    assert (row["candidate"], row["source_trial"], row["seed"], row["score"]) == ("c1", "aa4", 100, pytest.approx(0.54))
