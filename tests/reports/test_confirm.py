"""What `udatune confirm` re-runs: the top distinct configurations plus the baseline, on fresh seeds."""

import pytest

from udatune.errors import ConfigError
from udatune.reports.confirm import ConfirmSettings, confirm_plan, confirmation_sweep, progress, rank_candidates, requested
from udatune.reports.load import load_sweep


def test_candidates_are_distinct_and_full_budget_trials_come_first(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))
    ranked = rank_candidates(sweep, 20)
    trials = [c.source_trial for c in ranked]
    assert trials[0] == "aa4" and ranked[0].score == pytest.approx(0.06) and ranked[0].name == "c1"
    assert sum(c.method == "uda-default" for c in ranked) == 1  # three trials, one configuration
    assert trials[-1] == "aa5"  # stopped early: after every trial that ran its full budget
    assert "ta0" not in trials and not any(c.method == "supervised" for c in ranked) and len(ranked) == 8
    assert ranked[0].overrides["uda.policy"].startswith("autoaugment:") and ranked[0].overrides["uda.lambda_u"] == 0.8
    assert [c.source_trial for c in rank_candidates(sweep, 2)] == trials[:2]


def test_the_plan_pairs_every_candidate_with_a_baseline_per_seed(sweep_writer):
    candidates = rank_candidates(load_sweep(str(sweep_writer.finished())), 2)
    plan = confirm_plan(candidates, (100, 101))
    assert [(p["seed"], p["candidate"]) for p in plan] == [
        (100, "baseline"), (100, "c1"), (100, "c2"), (101, "baseline"), (101, "c1"), (101, "c2")]
    assert [p["index"] for p in plan] == list(range(6))
    assert plan[0]["overrides"] == {"uda.mode": "supervised"} and plan[1]["source_trial"] == "aa4"

    # run as a sweep with this fixed plan: handed out in order, then nothing more
    from udatune.tune.searcher import SweepSearcher

    sweep = load_sweep(str(sweep_writer.finished("again")))
    settings = confirmation_sweep(sweep, candidates, ConfirmSettings(top=2, seeds=(100, 101)))
    assert settings.plan == tuple(plan) and settings.total_trials == 6 and settings.evaluate_test
    assert settings.path == f"{sweep.path}/confirm" and settings.scheduler == "fifo"
    settings.check()
    queue = SweepSearcher(settings)
    handed = [queue.suggest(f"t{i}") for i in range(7)]
    assert handed[:6] == plan and handed[6] == SweepSearcher.FINISHED


@pytest.mark.parametrize("settings, needle", [
    (ConfirmSettings(top=0), "--top"),
    (ConfirmSettings(seeds=(1, 100)), "seed 1 was used by the search"),
    (ConfirmSettings(seeds=(100, 100)), "repeats"),
    (ConfirmSettings(seeds=()), "at least one seed"),
])
def test_bad_settings_are_rejected(sweep_writer, settings, needle):
    with pytest.raises(ConfigError, match=needle):
        settings.check(load_sweep(str(sweep_writer.finished())))


def test_the_default_recipe_is_rerun_with_the_top_ones(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))
    ranked = rank_candidates(sweep, 1, with_default=True)
    assert [(c.name, c.method, c.default_recipe) for c in ranked] == [("c1", "autoaugment", False), ("c2", "uda-default", True)]
    assert ranked[1].source_trial == "def2" and ranked[1].overrides == {"uda.mode": "uda"}
    plan = confirm_plan(ranked, (100,))
    assert [p.get("default_recipe", False) for p in plan] == [False, False, True]


def test_one_recipe_run_by_two_trials_is_one_candidate(sweep_writer):
    from udatune.config import TrialConfig
    from udatune.reports.confirm import recipe_key

    sweep = load_sweep(str(sweep_writer.finished()))
    uda = TrialConfig.from_dict(sweep.base_config).uda
    spelled_out = {"uda.mode": "uda", "uda.policy": uda.policy, "uda.lambda_u": uda.lambda_u, "uda.tau": uda.tau}
    assert recipe_key(sweep, spelled_out) == recipe_key(sweep, {"uda.mode": "uda"})
    assert recipe_key(sweep, {**spelled_out, "uda.tau": 0.0}) != recipe_key(sweep, {"uda.mode": "uda"})


def test_confirm_json_is_read_back_as_written_and_old_files_still_read(sweep_writer):
    import json

    from udatune.reports.confirm import confirm_manifest
    from udatune.tune import store

    sweep = load_sweep(str(sweep_writer.finished()))
    assert store.read_confirm_manifest(sweep.path) is None  # never confirmed
    candidates = rank_candidates(sweep, 2)
    written = confirm_manifest(sweep, candidates, ConfirmSettings(top=2, seeds=(100, 101)))
    store.write_confirm_manifest(sweep.path, written)
    read = store.read_confirm_manifest(sweep.path)
    assert read == written and read.trials == 6 and read.sweep == sweep.name
    assert [c["source_trial"] for c in read.candidates] == [c.source_trial for c in candidates]
    assert read.settings["seeds"] == [100, 101] and read.settings["resources"] == {"workers": 1, "cpus": 1.0, "gpus": 0.0}

    # a file written before the record existed (a plain dict, one key more) and an empty one
    file = sweep_writer.root / "known" / "confirm" / "confirm.json"
    file.write_text(json.dumps({"created": "2026-11-01T00:00:00+00:00", "sweep": "known", "settings": {"top": 1},
                                "candidates": [{"name": "c1", "method": "randaugment"}], "trials": 2, "note": "old"}))
    old = store.read_confirm_manifest(sweep.path)
    assert old.created.startswith("2026-11-01") and old.candidates == ({"name": "c1", "method": "randaugment"},) and old.trials == 2
    file.write_text("{}")
    assert store.read_confirm_manifest(sweep.path) == store.Confirmation()

    file.write_text('{"candidates": "c1"}')
    with pytest.raises(ConfigError, match="confirm.json cannot be read"):
        store.read_confirm_manifest(sweep.path)


def test_a_confirmation_stopped_before_its_first_trial_has_nothing_to_carry_on(sweep_writer, driver_writer):
    """`progress`: no confirm folder, or one whose Tune experiment was never created, is "none"
    (resume starts it afresh), unless another process is starting it right now."""
    from udatune.tune import store

    path = str(sweep_writer.finished())
    assert progress(path) == "none"
    confirmation = store.confirm_path(path)
    store.write_manifest(confirmation, store.Manifest(format=store.FORMAT, name=store.CONFIRM, path=confirmation))
    driver_writer.write(confirmation, "running", alive=False)  # killed while Ray started
    assert progress(path) == "none"
    driver_writer.write(confirmation, "running", alive=True)  # another driver, still starting it
    with pytest.raises(ConfigError, match="still running"):
        progress(path)


def test_the_confirmation_a_search_asked_for_runs_on_its_resources():
    from udatune.tune.settings import SweepSettings
    from udatune.tune.space import load_space
    from udatune.tune.trainable import TrialResources

    settings = SweepSettings(spaces=(load_space("randaugment"),), name="s", storage="/tmp", resources=TrialResources(1, 2.0, 0.5),
                             max_concurrent=3, confirm=2, confirm_seeds=(100, 101))
    assert requested(settings) == ConfirmSettings(2, (100, 101), TrialResources(1, 2.0, 0.5), 3)
    assert requested(SweepSettings(spaces=(load_space("randaugment"),), name="s", storage="/tmp")) is None
