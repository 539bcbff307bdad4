"""A trial with two Ray Train workers trains data-parallel (DDP over gloo on CPU) and reports."""

import pandas as pd
import pytest
import torch

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
    # Its checkpoint holds the bare model (no DDP ``module.`` keys): `udatune train --weights` starts from it.
    checkpoints = sorted((storage / "ddp").rglob("trial.pt"))
    assert checkpoints
    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)
    assert state["model"] and not any(key.startswith("module.") for key in state["model"])
    out = tmp_path / "from-ddp"
    # The default synthetic sweep's U-Net is 3 deep; `udatune train` builds 4 unless told.
    assert main(["train", "--weights", str(checkpoints[-1]), "--fast-dev-run", "--mode", "supervised",
                 "--width", "4", "--set", "model.depth=3", "--image-size", "32x48", "--out", str(out)]) == 0
    assert (out / "config.json").is_file()
