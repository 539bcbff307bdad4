"""A sweep of an smp model on a real local Ray: the driver hashes the encoder weights once and
the trial loads and records that same file (baselines take the same path; left out for time)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import torch

from udatune.cli.app import main
from udatune.config import ModelConfig
from udatune.models import build_model


@pytest.fixture(autouse=True)
def synthetic_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path_factory.getbasetemp() / "synthetic-cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.slow
def test_an_smp_sweep_records_the_encoder_weights_of_every_trial(tmp_path, capsys):
    encoder = "tu-mobilenetv3_small_050"
    weights = tmp_path / "encoder.pt"
    model = build_model(ModelConfig(name="deeplabv3plus", encoder=encoder, encoder_weights="none"), 10)
    torch.save(model.encoder.state_dict(), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    space = tmp_path / "ra.yaml"
    space.write_text(
        "method: ra-enc\nsearcher: random\npolicy: {family: randaugment, n: 2, m: 4}\n"
        "encoder_lr_mult: {low: 0.05, high: 0.5, log: true}\n"
    )
    storage = tmp_path / "sweeps"
    args = [
        "search", "--space", str(space), "--trials", "1", "--seeds", "0", "--max-steps", "2", "--scheduler", "fifo", "--no-baselines",
        "--num-cpus", "2", "--storage", str(storage), "--name", "smp",
        "--model", "deeplabv3plus", "--encoder", encoder, "--encoder-weights", str(weights),
        "--set", "train.eval_every=2", "--set", "train.log_every=1", "--set", "train.batch_size=2",
        "--set", "train.unlabeled_batch_size=2", "--set", "uda.rampup_steps=1",
    ]
    assert main(args) == 0, capsys.readouterr().err

    sweep = storage / "smp"
    base = json.loads((sweep / "sweep.json").read_text())["base_config"]["model"]
    assert (base["name"], base["encoder"], base["encoder_weights_sha256"]) == ("deeplabv3plus", encoder, digest)
    frame = pd.read_csv(sweep / "results.csv")
    assert list(frame["method"]) == ["ra-enc"]
    assert set(frame["status"]) == {"done"} and frame["val_miou"].between(0, 1).all()
    assert set(frame["model"]) == {"deeplabv3plus"} and set(frame["encoder"]) == {encoder}
    assert set(frame["encoder_weights"]) == {str(weights)} and set(frame["encoder_weights_sha256"]) == {digest}
    searched = frame.set_index("method").loc["ra-enc"]
    assert 0.05 <= searched["encoder_lr_mult"] <= 0.5

    # The report says which model, encoder and weights the sweep trained.
    capsys.readouterr()
    assert main(["report", str(sweep), "--predictions", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"model deeplabv3plus, encoder {encoder}, weights" in out and f"(sha256 {digest[:12]})" in out
