"""The sweep's plan without a cluster: baselines first, methods round-robin, state that pickles,
gains paired with the supervised baseline of the same seed at the same step."""

import math

import pytest

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune.results import DEFAULT_UDA, SUPERVISED, SweepResults
from udatune.tune.space import load_space
from udatune.reports.stats import ranked_methods
from udatune.tune.searcher import SweepSearcher
from udatune.tune.settings import SweepSettings, method_order, trials_that_fit
from udatune.tune.sweep import trial_name
from udatune.tune.trainable import TrialResources, trial_config


def settings(**kw) -> SweepSettings:
    base = dict(spaces=(load_space("autoaugment"), load_space("randaugment")), name="t", storage="/tmp/none", trials=5, seeds=(0, 1))
    base.update(kw)
    return SweepSettings(**base)


def test_baselines_come_first_then_methods_round_robin_with_seeds_cycling():
    searcher = SweepSearcher(settings())
    configs = []
    while (config := searcher.suggest(f"t{len(configs)}")) != SweepSearcher.FINISHED:
        configs.append(config)
    assert [(c["method"], c["seed"]) for c in configs] == [
        (SUPERVISED, 0), (DEFAULT_UDA, 0), (SUPERVISED, 1), (DEFAULT_UDA, 1),
        ("autoaugment", 0), ("randaugment", 0), ("autoaugment", 1), ("randaugment", 1), ("autoaugment", 0),
    ]
    assert [c["index"] for c in configs] == list(range(9))
    assert configs[0]["overrides"] == {"uda.mode": "supervised"}
    assert configs[4]["overrides"]["uda.policy"].startswith("autoaugment:")
    assert configs[5]["overrides"]["uda.policy"].startswith("randaugment:")
    assert settings().total_trials == 9


def test_a_trial_config_carries_the_seed_and_overrides():
    base = TrialConfig().override({"train.steps": 50}).to_dict()
    cfg = trial_config(base, {"method": "randaugment", "seed": 3, "overrides": {"uda.tau": 0.6, "uda.policy": "randaugment:1,5"}})
    assert (cfg.train.seed, cfg.train.steps, cfg.uda.tau, cfg.uda.policy) == (3, 50, 0.6, "randaugment:1,5")
    assert trial_config(base, {"method": SUPERVISED, "seed": 0, "overrides": {"uda.mode": "supervised"}}).uda.mode == "supervised"


def test_searcher_state_survives_save_and_restore(tmp_path):
    searcher = SweepSearcher(settings(trials=4))
    for i in range(6):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t4", {"val_miou": 0.3, "training_iteration": 2})
    searcher.save(str(tmp_path / "state.pkl"))
    restored = SweepSearcher(settings(trials=4))
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.handed_out == 6 and restored.owner == searcher.owner
    nxt = [restored.suggest("t6"), restored.suggest("t7"), restored.suggest("t8")]
    assert [n["method"] for n in nxt[:2]] == ["autoaugment", "randaugment"] and nxt[2] == SweepSearcher.FINISHED


def test_the_trial_queued_behind_the_slots_waits_until_the_first_trials_train():
    searcher = SweepSearcher(settings(trials=2, seeds=(0,)), slots=2)
    first = [searcher.suggest("a"), searcher.suggest("b")]
    assert [c["method"] for c in first] == [SUPERVISED, DEFAULT_UDA]  # the baselines take the slots
    assert searcher.suggest("c") is None  # both still starting: nothing queued yet
    searcher.on_trial_result("a", {"val_miou": 0.3, "step": 100})
    assert searcher.suggest("c") is None
    searcher.on_trial_result("b", {"val_miou": 0.3, "step": 100})
    queued = searcher.suggest("c")
    assert queued["method"] == "autoaugment"
    assert searcher.suggest("d") is None  # c has not reported (it waits for a slot)
    searcher.on_trial_complete("a", {"val_miou": 0.35, "step": 1000})
    assert searcher.suggest("d") is None  # c takes a's slot and is starting
    searcher.on_trial_result("c", {"val_miou": 0.2, "step": 100})
    assert searcher.suggest("d")["method"] == "randaugment"
    assert searcher.suggest("e") == SweepSearcher.FINISHED


def test_a_restored_searcher_forgets_which_trials_were_live(tmp_path):
    searcher = SweepSearcher(settings(trials=2, seeds=(0,)), slots=2)
    searcher.suggest("a"), searcher.suggest("b")
    searcher.save(str(tmp_path / "state.pkl"))
    restored = SweepSearcher(settings(trials=2, seeds=(0,)), slots=2)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("c")["method"] == "autoaugment"  # a and b may never report again


def test_a_searcher_saved_before_pacing_existed_restores(tmp_path):
    import pickle

    old = SweepSearcher(settings(trials=2, seeds=(0,)))
    old.suggest("a")
    state = {k: v for k, v in old.__dict__.items() if k not in ("slots", "live")}
    (tmp_path / "state.pkl").write_bytes(pickle.dumps(state))
    restored = SweepSearcher.__new__(SweepSearcher)  # as Tune unpickles an old sweep's searcher
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("b")["method"] == DEFAULT_UDA
    restored.on_trial_result("b", {"val_miou": 0.3, "step": 100})
    restored.on_trial_complete("b", {"val_miou": 0.3, "step": 100})


def test_without_slots_trials_are_handed_out_at_once():
    searcher = SweepSearcher(settings(trials=2, seeds=(0,)))
    assert all(searcher.suggest(t) not in (None, SweepSearcher.FINISHED) for t in "abcd")


def test_method_order_and_fitting():
    assert method_order(settings(trials=3, seeds=(5,))) == [("autoaugment", 5), ("randaugment", 5), ("autoaugment", 5)]
    assert trials_that_fit(TrialResources(1, 1.0, 0.0), cpus=2, gpus=0) == 2
    assert trials_that_fit(TrialResources(2, 1.0, 0.0), cpus=2, gpus=0) == 1
    assert trials_that_fit(TrialResources(1, 1.0, 0.5), cpus=16, gpus=1) == 2
    assert trials_that_fit(TrialResources(1, 4.0, 0.0), cpus=2, gpus=0) == 0


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"trials": -1}, "--trials"),
        ({"seeds": ()}, "--seeds"),
        ({"max_steps": 0}, "--max-steps"),
        ({"scheduler": "pbt"}, "--scheduler"),
        ({"reduction_factor": 1.0}, "--reduction-factor"),
        ({"grace_period": 10_000}, "--grace-period"),
        ({"resources": TrialResources(0, 1.0, 0.0)}, "--workers-per-trial"),
        ({"resources": TrialResources(2, 1.0, 0.5)}, "--gpus-per-trial 0.5"),
        ({"resources": TrialResources(2, 1.0, 1.5)}, "whole GPUs"),
        ({"spaces": (load_space("autoaugment"), load_space("autoaugment"))}, "'autoaugment'"),
    ],
)
def test_bad_sweep_settings_are_rejected(kw, words):
    with pytest.raises(ConfigError, match="Invalid sweep setting|share the method name") as err:
        settings(**kw).check()
    assert words in str(err.value)


def test_gains_are_paired_by_seed_and_step():
    results = SweepResults(TrialConfig().to_dict(), max_steps=4)
    sup0 = {"method": SUPERVISED, "seed": 0, "index": 0, "overrides": {"uda.mode": "supervised"}}
    sup1 = {"method": SUPERVISED, "seed": 1, "index": 1, "overrides": {"uda.mode": "supervised"}}
    aa = {"method": "autoaugment", "seed": 1, "index": 2,
          "overrides": {"uda.policy": "randaugment:1,5", "uda.lambda_u": 2.0, "uda.tau": 0.7, "uda.temperature": 0.5}}
    for step, (m0, m1) in zip((2, 4), ((0.20, 0.30), (0.25, 0.40))):
        results.result("s0", sup0, {"val_miou": m0, "step": step})
        results.result("s1", sup1, {"val_miou": m1, "step": step})
    results.result("a", aa, {"val_miou": 0.35, "step": 2})
    results.finished("a", aa)  # stopped early at step 2: compared with seed 1's baseline at step 2
    row = results.rows["a"]
    assert row.status == "stopped" and math.isclose(results.gain(row), 0.35 - 0.30)
    assert (row.lambda_u, row.tau, row.temperature, row.policy) == (2.0, 0.7, 0.5, "randaugment:1,5")
    frame = results.frame()
    assert list(frame["trial_id"]) == ["s0", "s1", "a"]
    assert math.isnan(frame.loc[0, "gain"]) and math.isnan(frame.loc[0, "lambda_u"])
    ranking = ranked_methods(frame)
    assert [method for method, _ in ranking] == ["autoaugment"] and math.isclose(ranking[0][1].mean, 0.05)


def test_a_row_handed_out_is_a_snapshot_that_later_events_do_not_change():
    import dataclasses

    results = SweepResults(TrialConfig().to_dict(), max_steps=4)
    sup = {"method": SUPERVISED, "seed": 0, "index": 0, "overrides": {"uda.mode": "supervised"}}
    results.result("s0", sup, {"val_miou": 0.2, "step": 2})
    seen = results.rows["s0"]  # e.g. what the live table drew
    results.result("s0", sup, {"val_miou": 0.3, "step": 4})
    results.finished("s0", sup)
    assert (seen.status, seen.step, seen.history) == ("running", 2, {2: 0.2})
    now = results.rows["s0"]
    assert (now.status, now.step, now.val_miou, now.history) == ("done", 4, 0.3, {2: 0.2, 4: 0.3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        now.status = "error"


@pytest.mark.parametrize("model, recorded", [("fpn", True), ("deeplabv3plus", True), ("unet", False), ("deeplabv3_resnet50", False)])
def test_a_row_records_the_encoder_only_of_a_model_built_over_one(model, recorded):
    base = TrialConfig().override({"model.name": model, "model.encoder": "resnet34", "model.encoder_weights": "none"}).to_dict()
    results = SweepResults(base, max_steps=4)
    row = results.add("t", {"method": "randaugment", "seed": 0, "index": 0, "overrides": {"model.encoder_weights_sha256": "ab12"}})
    expected = ("resnet34", "none", "ab12") if recorded else ("", "", "")
    assert (row.model, row.encoder, row.encoder_weights, row.encoder_weights_sha256) == (model, *expected)


def test_trial_names_sort_by_order():
    class Trial:
        trial_id = "abc_00003"
        config = {"index": 3, "method": "randaugment", "seed": 1}

    assert trial_name(Trial()) == "003-randaugment-s1-abc_00003"


@pytest.mark.parametrize("resources", [TrialResources(1, 1.0, 0.5), TrialResources(2, 1.0, 1.0), TrialResources(2, 1.0, 0.0)])
def test_fractional_gpus_are_fine_for_single_worker_trials_and_whole_gpus_for_ddp(resources):
    settings(resources=resources).check()


@pytest.mark.parametrize("cpus, loaders", [(1.0, 0), (1.5, 0), (2.0, 1), (4.0, 3)])
def test_a_trial_gets_a_loader_process_per_cpu_beyond_the_one_that_trains(cpus, loaders):
    assert TrialResources(1, cpus, 0.0).loader_workers == loaders
