"""`udatune search` through the real CLI: validation before anything starts, and one tiny sweep
end to end on a real local Ray."""

import json
import math
import re
import socket

import optuna
import pandas as pd
import pytest

from udatune.augment.policy import parse_policy
from udatune.cli.app import main
from udatune.reports.load import load_sweep


@pytest.fixture(autouse=True)
def synthetic_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path_factory.getbasetemp() / "synthetic-cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bad_space_file_stops_before_anything_starts(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: {family: autoaugment, ops: [Rotate, Spin]}\n")
    storage = tmp_path / "sweeps"
    assert main(["search", "--space", str(bad), "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err.replace("\n", "") and "policy.ops" in err and "Spin" in err
    assert not storage.exists()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_address_is_a_clear_error_and_writes_nothing(tmp_path, capsys, scheme):
    storage = tmp_path / "sweeps"
    address = f"{scheme}127.0.0.1:{free_port()}"
    assert main(["search", "--address", address, "--storage", str(storage), "--name", "x"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert address in err and "no Ray cluster answers" in err
    assert not storage.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--seeds", "zero"], "--seeds"),
        (["--scheduler", "pbt"], "--scheduler"),
        (["--space", "nosuch"], "nosuch"),
        (["--set", "uda.taux=1"], "uda.taux"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial"),
        (["--workers-per-trial", "2", "--gpus-per-trial", "0.5"], "--workers-per-trial 2 with --gpus-per-trial 0.5"),
    ],
)
def test_bad_options_are_rejected(tmp_path, capsys, args, needle):
    assert main(["search", "--storage", str(tmp_path / "s"), *args]) == 2
    assert needle in capsys.readouterr().err


def test_an_existing_sweep_name_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "s" / "taken").mkdir(parents=True)
    (tmp_path / "s" / "taken" / "sweep.json").write_text("{}")
    assert main(["search", "--storage", str(tmp_path / "s"), "--name", "taken"]) == 2
    assert "already exists" in capsys.readouterr().err




@pytest.mark.slow
def test_a_tiny_sweep_on_a_local_ray(confirmed_sweep):
    """2 searched trials (AutoAugment + RandAugment, each the default recipe in its family; the
    RandAugment one is the default-UDA baseline's run of seed 0, so it is not run again) +
    baselines for 2 seeds, 4 steps; then the confirmation of --confirm 1 on a fresh seed (the
    same code as `udatune confirm`), which ends the output with the verdict."""
    assert confirmed_sweep.code == 0, confirmed_sweep.out[-3000:]
    out, storage = confirmed_sweep.out, confirmed_sweep.storage
    assert "methods ranked by gain" in out.replace("\n", " ") and "results:" in out
    # The best recipe and the default recipe (once, whichever trials ran it) re-run with
    # supervised on seed 100, scored on the test split; the output ends with the verdict.
    confirm = load_sweep(str(storage / "tiny")).confirm
    assert set(confirm["seed"]) == {100} and set(confirm["status"]) == {"done"} and set(confirm["split"]) == {"test"}
    candidates = confirm.drop_duplicates("candidate").set_index("candidate")
    assert "baseline" in candidates.index and "c1" in candidates.index and candidates["default_recipe"].sum() == 1
    assert confirm["test_miou"].between(0, 1).all()
    verdict = " ".join(out[out.rindex("Best recipe c1"):].split())
    assert "on 1 fresh seed, test split" in verdict and verdict.endswith("inside the noise.")

    sweep = storage / "tiny"
    frame = pd.read_csv(sweep / "results.csv")
    assert len(frame) == 5 and frame["trial_id"].is_unique  # one row per trial run: RandAugment's is shared
    assert sorted(frame["method"]) == sorted(["supervised", "supervised", "uda-default", "uda-default", "autoaugment"])
    assert "randaugment: 1 trial: the default recipe (the uda-default baseline's run, not trained again)" in " ".join(out.split())
    assert set(frame["status"]) <= {"done", "stopped"}
    assert frame["val_miou"].between(0, 1).all()
    uda = frame[frame["method"] != "supervised"]
    for row in uda.itertuples():
        parse_policy(row.policy)  # the sampled policy, as a valid compact string
        assert row.lambda_u > 0 and 0 <= row.tau <= 1 and row.temperature > 0
    assert frame.set_index("method").loc["autoaugment", "policy"].startswith("autoaugment:")
    baseline = frame[(frame["method"] == "uda-default") & (frame["seed"] == 0)].iloc[0]
    shared = load_sweep(str(sweep)).trials.set_index("method").loc["randaugment"]  # the reports' view
    assert (shared["trial_id"], shared["shared_with"], shared["policy"]) == (baseline["trial_id"], "uda-default", "randaugment:2,4")

    # Gains are paired: each UDA trial against the supervised trial of its own seed, same step.
    histories = {}
    for progress in sweep.glob("*-supervised-s*/progress.csv"):
        p = pd.read_csv(progress)
        seed = int(re.search(r"-supervised-s(\d+)-", progress.parent.name).group(1))
        histories[seed] = dict(zip(p["step"], p["val_miou"]))
    assert set(histories) == {0, 1}
    for row in uda.itertuples():
        assert math.isclose(row.gain, row.val_miou - histories[row.seed][row.step], abs_tol=1e-9)

    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["udatune_version"] and manifest["data_fingerprint"]
    assert manifest["base_config"]["train"]["steps"] == 4 and manifest["settings"]["seeds"] == [0, 1]
    assert (sweep / "ray.log").is_file() and (sweep / "results.parquet").is_file()
    # every trial's Ray Train run kept its checkpoint
    kept = {p.parent.parent.name for p in (sweep / "train").glob("*/checkpoint_*/trial.pt")}
    assert kept == set(frame["trial_id"])

    # Each searched method's real Optuna study, in the sweep folder, as optuna-dashboard opens it:
    # one trial per searched trial, each naming its Tune trial.
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    study = optuna.load_study(study_name="autoaugment", storage=journal)
    assert [t.user_attrs["tune_trial_id"] for t in study.trials] == list(frame[frame["method"] == "autoaugment"]["trial_id"])
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    # RandAugment's study holds the baseline's run as its first trial, told with its score.
    study = optuna.load_study(study_name="randaugment", storage=journal)
    assert [t.user_attrs["tune_trial_id"] for t in study.trials] == [baseline["trial_id"]]
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE and study.trials[0].value == pytest.approx(baseline["val_miou"])
    # TensorBoard: every trial's curves under the sweep folder
    logged = {p.parent.name.rsplit("-", 1)[1] for p in sweep.glob("*/events.out.tfevents.*")}
    assert logged == set(frame["trial_id"])


def test_the_default_sweep_on_synthetic_data_is_small_unless_told_otherwise(tmp_path):
    """The default sweep's synthetic frames are 32x48, with a depth-3 U-Net, 4 unlabeled frames a
    step and 800 steps; an option, a --set or --max-steps naming one wins, and none applies to a
    --config file or to another dataset."""
    from udatune.cli.search_command import base_config

    def small(cfg):
        return cfg.data.image_size, cfg.model.depth, cfg.train.unlabeled_batch_size, cfg.train.steps

    assert small(base_config(None, {}, {}, None, loader_workers=1)) == ((32, 48), 3, 4, 800)
    cfg = base_config(None, {"data.image_size": "64x96"}, {"model.depth": "4", "train.unlabeled_batch_size": "8"}, 300, loader_workers=1)
    assert small(cfg) == ((64, 96), 4, 8, 300)
    assert small(base_config(None, {}, {"train.steps": "500"}, None, loader_workers=1)) == ((32, 48), 3, 4, 500)
    config = tmp_path / "trial.yaml"
    config.write_text("train:\n  steps: 700\n")
    assert small(base_config(config, {}, {}, None, loader_workers=1)) == (None, 4, 8, 700)
    camvid = base_config(None, {"data.dataset": "camvid", "data.root": str(tmp_path)}, {}, None, loader_workers=1)
    assert small(camvid) == (None, 4, 8, 1000)


def test_the_step_budget_is_the_configs_unless_max_steps_says_otherwise(tmp_path, capsys):
    """One budget: a config file's train.steps (or the default sweep's, 800 on synthetic data) is the sweep's;
    --max-steps replaces it. The grace period is checked against it before anything starts."""
    config = tmp_path / "trial.yaml"
    config.write_text("train:\n  steps: 700\n")
    storage = str(tmp_path / "s")
    assert main(["search", "--config", str(config), "--grace-period", "800", "--storage", storage]) == 2
    assert "max steps = 700" in capsys.readouterr().err
    assert main(["search", "--grace-period", "900", "--storage", storage]) == 2
    assert "max steps = 800" in capsys.readouterr().err
    assert main(["search", "--config", str(config), "--max-steps", "900", "--grace-period", "1100", "--storage", storage]) == 2
    assert "max steps = 900" in capsys.readouterr().err
    assert main(["search", "--max-steps", "0", "--storage", storage]) == 2
    assert "--max-steps must be > 0" in capsys.readouterr().err
