"""smp models through the real CLI: a fast dev run, and pretrained weights that are neither
cached nor fetchable stopping `train` and `search` before any data is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from udatune.cli.app import main

UDATUNE = Path(sys.executable).parent / "udatune"


@pytest.fixture(autouse=True)
def synthetic_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path_factory.getbasetemp() / "synthetic-cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_fast_dev_run_with_deeplabv3plus_over_resnet18(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--fast-dev-run", "--model", "deeplabv3plus", "--encoder", "resnet18", "--encoder-weights", "none",
            "--set", "data.image_size=40x56", "--out", str(out)]
    assert main(args) == 0
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["name"], model["encoder"], model["encoder_weights"], model["encoder_weights_sha256"]) == (
        "deeplabv3plus", "resnet18", "none", None)
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 4 and 0.0 <= result["val"]["miou"] <= 1.0
    assert (out / "checkpoint" / "trial.pt").is_file()


def offline_env(tmp_path: Path) -> dict[str, str]:
    """Empty weight caches and the Hub switched to offline mode: what an air-gapped node looks like."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"), HF_HUB_OFFLINE="1",
               UDATUNE_CACHE=str(tmp_path / "data-cache"))
    return env


def test_imagenet_offline_without_cache_stops_train_before_data(tmp_path):
    # The data root does not exist: had data been loaded first, that would be the error.
    args = ["train", "--model", "deeplabv3plus", "--encoder", "resnet18", "--encoder-weights", "imagenet",
            "--dataset", "camvid", "--data-root", str(tmp_path / "no-camvid"), "--out", str(tmp_path / "run")]
    done = subprocess.run([str(UDATUNE), *args], env=offline_env(tmp_path), capture_output=True, text=True, timeout=600)
    err = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert "'imagenet' weights of encoder resnet18 are not in the local cache" in err
    assert "udatune fetch-weights --encoder resnet18 --encoder-weights imagenet" in err and "--encoder-weights PATH" in err
    assert "no-camvid" not in err and "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "data-cache").exists()


def test_imagenet_offline_without_cache_stops_search_before_ray(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    storage = tmp_path / "sweeps"
    args = ["search", "--model", "fpn", "--encoder", "resnet18", "--encoder-weights", "imagenet",
            "--dataset", "camvid", "--data-root", str(tmp_path / "no-camvid"), "--storage", str(storage), "--name", "x"]
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not in the local cache" in err and "no-camvid" not in err
    assert not storage.exists()
