"""`udatune train`, `ops` and `preview` through the real CLI entry point."""

import json

import pytest

from udatune.cli.app import main


@pytest.fixture(autouse=True)
def synthetic_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path_factory.getbasetemp() / "synthetic-cache"))


def test_fast_dev_run_writes_metrics_checkpoint_and_result(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--fast-dev-run", "--out", str(out), "--set", "data.image_size=40x56", "--width", "4"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "eval"] == [2, 4]
    assert all("mask_ratio" in r for r in records if r["kind"] == "train")
    assert (out / "checkpoint" / "trial.pt").is_file()
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 4 and 0.0 <= result["val"]["miou"] <= 1.0
    assert json.loads((out / "config.json").read_text())["uda"]["mode"] == "uda"
    assert "mIoU" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--dataset", "camvid", "--data-root", "/nonexistent/camvid"], "/nonexistent/camvid"),
        (["--dataset", "nosuch"], "nosuch"),
        (["--policy", "randaugment:2,99"], "99"),
        (["--policy", "autoaugment:[[[\"Spin\", 0.5, 3]]]"], "Spin"),
        (["--set", "uda.taux=0.3"], "uda.taux"),
        (["--tau", "1.5"], "tau"),
        (["--paste", "2"], "uda.paste"),
        (["--labeled", "many"], "--labeled"),
        (["--image-size", "big"], "image_size"),
        (["--config", "/nonexistent/trial.yaml"], "/nonexistent/trial.yaml"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_code_2(tmp_path, capsys, args, needle):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
    assert not (out / "metrics.jsonl").exists()  # failed before any training started


def test_config_file_with_unknown_key_is_rejected(tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("uda:\n  tau: 0.9\n  lamda_u: 2\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "uda.lamda_u" in err


def test_ops_lists_the_registry(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for name in ("ShearX", "Rotate", "Solarize", "Posterize", "CutOut", "CutMix", "GaussianBlur"):
        assert name in out


def test_preview_writes_an_aligned_grid(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main(["preview", "--policy", "randaugment:2,9", "--frames", "3", "--image-size", "40x56", "--out", str(out)]) == 0
    grid = Image.open(out)
    assert grid.size == (3 * 56, 3 * 40)
