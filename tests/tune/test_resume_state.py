"""What a resume relies on, without a cluster: rows that survive a restart byte for byte, final
rows that later events cannot change, failed trials with their reason, the driver's liveness,
and a sweep's settings read back from its manifest."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import time
from dataclasses import asdict, replace

import pytest

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.reports.stats import best_gain
from udatune.tune.cluster import Cluster
from udatune.tune.driver_state import DriverState, effective_state, process_started
from udatune.tune.restore import settings_from_manifest, space_from_dict
from udatune.tune.results import FAILURE, SUPERVISED, SweepResults
from udatune.tune.space import builtin_spaces, load_space
from udatune.tune.store import Manifest, read_results, read_state, write_rows, write_state
from udatune.tune.settings import SweepSettings
from udatune.tune.sweep import sigterm_stops_tune, write_manifest
from udatune.tune.trainable import TrialResources

SUP = {"method": SUPERVISED, "seed": 0, "index": 0, "overrides": {"uda.mode": "supervised"}}
RA = {"method": "randaugment", "seed": 0, "index": 1, "overrides": {"uda.policy": "randaugment:2,9", "uda.lambda_u": 2.0}}
BLOWUP = {"method": "blowup", "seed": 0, "index": 2, "overrides": {"uda.policy": "randaugment:1,5"}}
CRASH = {"method": "randaugment", "seed": 0, "index": 3, "overrides": {"uda.policy": "randaugment:1,1"}}


def a_sweep() -> SweepResults:
    results = SweepResults(TrialConfig().to_dict(), max_steps=4)
    for tid, config in (("sup", SUP), ("ra", RA), ("nan", BLOWUP), ("crash", CRASH)):
        results.started(tid, config)
    for step, (sup, ra) in zip((2, 4), ((0.20, 0.25), (0.30, 0.40))):
        results.result("sup", SUP, {"step": step, "val_miou": sup, "best_miou": sup, "loss": 0.5, "timestamp": 1_700_000_000 + step, "config": SUP})
        results.result("ra", RA, {"step": step, "val_miou": ra, "best_miou": ra, "loss": 0.4, "train_seconds": 1.5 * step})
    results.result("nan", BLOWUP, {"step": 2, "val_miou": 0.1, "best_miou": 0.1})
    results.result("nan", BLOWUP, {"step": 2, "val_miou": math.nan, "best_miou": 0.1, FAILURE: "diverged: loss became nan by step 3"})
    results.finished("sup", SUP)
    results.finished("ra", RA)
    results.finished("nan", BLOWUP)
    results.finished("crash", CRASH, error=True, error_file="/x/error.txt", reason="RayActorError: the actor died")
    return results


def test_rows_survive_a_restart_byte_for_byte(tmp_path):
    results = a_sweep()
    write_rows(str(tmp_path), results)
    restored = read_results(str(tmp_path))
    assert restored.frame().to_csv(index=False) == results.frame().to_csv(index=False)
    assert restored.rows["ra"].history == {2: 0.25, 4: 0.40} and restored.gain(restored.rows["ra"]) == pytest.approx(0.10)
    assert "config" not in restored.rows["sup"].last  # only scalars are kept


def test_rows_that_ended_by_themselves_are_final():
    results = a_sweep()
    before = results.frame().to_csv(index=False)
    # A lagging Tune state after a SIGKILL runs such trials again: their events change nothing.
    for tid, config in (("sup", SUP), ("ra", RA), ("nan", BLOWUP)):
        results.started(tid, config)
        results.result(tid, config, {"step": 4, "val_miou": 0.9, "best_miou": 0.9})
        results.finished(tid, config)
    assert results.frame().to_csv(index=False) == before
    # A trial that errored (a crash) is run again on resume, and its row with it.
    results.started("crash", CRASH)
    assert (results.rows["crash"].status, results.rows["crash"].reason, results.rows["crash"].error_file) == ("running", "", "")


def test_a_failed_trial_keeps_its_reason_and_counts_no_gain():
    results = a_sweep()
    row = results.rows["nan"]
    assert row.status == "failed" and row.reason == "diverged: loss became nan by step 3"
    assert results.gain(row) is None and row.val_miou == 0.1  # the last real evaluation stays
    frame = results.frame().set_index("trial_id")
    assert frame.loc["nan", "reason"] == row.reason and frame.loc["crash", "reason"] == "RayActorError: the actor died"
    assert results.counts() == {"done": 2, "failed": 1, "error": 1}
    assert best_gain(results.frame()) == pytest.approx(0.10)


def test_the_driver_state_tells_running_from_interrupted(tmp_path, driver_writer):
    assert effective_state(None) == "unknown"
    write_state(str(tmp_path), "running")
    mine = read_state(str(tmp_path))
    assert (mine.pid, mine.host) == (os.getpid(), socket.gethostname()) and effective_state(mine) == "running"
    assert effective_state(replace(mine, pid=driver_writer.dead_pid())) == "interrupted"  # SIGKILLed driver
    assert effective_state(replace(mine, pid_started=str(int(process_started(os.getpid())) + 1))) == "interrupted"  # pid reused
    elsewhere = DriverState("running", "another-host", 1, "", time.time())
    assert effective_state(elsewhere) == "running"
    assert effective_state(replace(elsewhere, heartbeat=time.time() - 3600)) == "interrupted"  # its heartbeat stopped
    write_state(str(tmp_path), "finished")
    assert effective_state(read_state(str(tmp_path))) == "finished"


@pytest.mark.parametrize("name", builtin_spaces())
def test_a_space_comes_back_from_the_manifest(name):
    space = load_space(name)
    assert space_from_dict(json.loads(json.dumps(asdict(space)))) == space


def test_settings_come_back_from_the_manifest(tmp_path):
    settings = SweepSettings(
        spaces=(load_space("autoaugment"), load_space("randaugment")), name="s", storage=str(tmp_path), trials=5, seeds=(0, 2),
        max_steps=40, scheduler="fifo", resources=TrialResources(2, 0.5, 0.0), max_failures=3, shared=("randaugment",),
        confirm=2, confirm_seeds=(100, 101),  # `udatune search --confirm 2`: what resume must still run
    )
    write_manifest(settings, TrialConfig(), "fingerprint", Cluster("local", True, 2.0, 0.0, ""), max_concurrent=3)
    manifest = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert manifest["format"] == 1 and manifest["base_config"]["train"]["steps"] == 40
    # `udatune ls` counts the trials that run: 5 searched, 1 of them shared, + 2 baselines × 2 seeds.
    assert Manifest.from_json(manifest).requested_trials == settings.total_trials == 5 - 1 + 4
    moved = tmp_path / "elsewhere" / "renamed"  # a sweep folder may be moved before it is resumed
    restored = settings_from_manifest(str(moved), Manifest.from_json(manifest))
    assert restored == replace(settings, name="renamed", storage=str(moved.parent))

    # A hand-edited sweep.json naming a method the sweep does not search: one clear error naming the file.
    manifest["settings"]["shared"] = ["nosuch"]
    with pytest.raises(ConfigError, match=r"sweep\.json does not describe.*'nosuch' is not a searched method"):
        settings_from_manifest(str(moved), Manifest.from_json(manifest))
    manifest["settings"]["shared"] = ["randaugment"]
    # ... or confirming on a seed the search used (its pairs would not be fresh):
    manifest["settings"]["confirm_seeds"] = [100, 2]
    with pytest.raises(ConfigError, match=r"sweep\.json does not describe.*--confirm-seeds: seed 2 was used by the search"):
        settings_from_manifest(str(moved), Manifest.from_json(manifest))
    # A sweep written before the request was kept asks for no confirmation.
    for key in ("confirm", "confirm_seeds"):
        del manifest["settings"][key]
    assert settings_from_manifest(str(moved), Manifest.from_json(manifest)).confirm == 0


def test_sigterm_stops_a_sweep_the_way_ctrl_c_does():
    """Tune listens to SIGINT and SIGUSR1; while a sweep runs, SIGTERM reaches the same handler."""
    received = []
    before = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))  # as Tune installs it
    try:
        with sigterm_stops_tune():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # let the interpreter run the handlers
        assert received == [signal.SIGUSR1]
        assert signal.getsignal(signal.SIGTERM) == before  # put back afterwards
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_fixed_plan_comes_back_from_the_manifest(tmp_path):
    """A confirmation is a sweep with a fixed plan: `udatune resume` must restore the plan."""
    plan = ({"method": SUPERVISED, "seed": 100, "overrides": {"uda.mode": "supervised"}, "candidate": "baseline", "index": 0},
            {"method": "randaugment", "seed": 100, "overrides": {"uda.policy": "randaugment:2,9"}, "candidate": "c1", "index": 1})
    settings = SweepSettings(spaces=(), name="confirm", storage=str(tmp_path), trials=0, seeds=(100,), max_steps=40,
                             scheduler="fifo", baselines=False, plan=plan, evaluate_test=True)
    settings.check()
    write_manifest(settings, TrialConfig(), "fingerprint", Cluster("local", True, 2.0, 0.0, ""), max_concurrent=3)
    manifest = Manifest.from_json(json.loads((tmp_path / "confirm" / "sweep.json").read_text()))
    assert settings_from_manifest(str(tmp_path / "confirm"), manifest) == settings


def test_a_finished_rows_line_does_not_change_when_a_pending_trial_starts_reporting():
    """results.csv lines of ended trials are final: also their number formats, whatever the
    other rows hold (a pending row has no timestamp yet; Tune's timestamps are ints)."""
    results = SweepResults(TrialConfig().to_dict(), max_steps=4)
    results.result("sup", SUP, {"step": 4, "val_miou": 0.3, "timestamp": 1_700_000_004})
    results.finished("sup", SUP)
    results.add("ra", RA)  # created by Tune, not started
    before = results.frame().to_csv(index=False).splitlines()[1]
    results.result("ra", RA, {"step": 2, "val_miou": 0.2, "timestamp": 1_700_000_010})
    assert results.frame().to_csv(index=False).splitlines()[1] == before
