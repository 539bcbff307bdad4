"""A trial with two Ray Train workers trains data-parallel (DDP over gloo on CPU) and reports."""

import pandas as pd
import pytest

from udatune.cli.app import main


@pytest.fixture(autouse=True)
def synthetic_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path_factory.getbasetemp() / "synthetic-cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.slow
def test_a_two_worker_trial_trains_with_ddp_and_reports(tmp_path):
    storage = tmp_path / "sweeps"
    args = [
        "search", "--trials", "1", "--no-baselines", "--space", "randaugment", "--scheduler", "fifo",
        "--workers-per-trial", "2", "--num-cpus", "2", "--max-steps", "4", "--storage", str(storage), "--name", "ddp",
        "--set", "train.eval_every=2", "--set", "train.log_every=1", "--set", "train.batch_size=2",
        "--set", "train.unlabeled_batch_size=2", "--set", "model.width=4",
    ]
    assert main(args) == 0
    frame = pd.read_csv(storage / "ddp" / "results.csv")
    assert len(frame) == 1 and frame.loc[0, "status"] == "done" and frame.loc[0, "step"] == 4
    assert 0 <= frame.loc[0, "val_miou"] <= 1
    # Both workers joined one Train run: rank 0 reported a world of two.
    (progress,) = (storage / "ddp").glob("*-randaugment-*/progress.csv")
    assert set(pd.read_csv(progress)["workers"]) == {2}
