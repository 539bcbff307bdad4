"""`udatune report`, `confirm` and `export-policy` through the real CLI: on a sweep folder with
known numbers (fast), and after one tiny real sweep on a local Ray (slow)."""

import json

import albumentations as A
import numpy as np
import pandas as pd
import pytest

from udatune.augment.policy import parse_policy
from udatune.cli.app import main
from udatune.reports.html import SECTIONS
from udatune.reports.load import load_sweep


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unclipped, so the output can be searched


def test_report_prints_the_known_gains_and_exports_the_trial_table(sweep_writer, tmp_path, capsys):
    path = sweep_writer.finished()
    out = tmp_path / "out"
    args = ["report", "known", "--storage", str(sweep_writer.root), "--csv", str(out / "t.csv"),
            "--parquet", str(out / "t.parquet"), "--html", str(out / "r.html")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "+0.030 [+0.005, +0.055]" in text and "+0.047 [+0.009, +0.085]" in text and "+0.050 (n/a, 1 seed)" in text
    assert "udatune confirm known" in text  # nothing confirmed yet: says how

    expected = load_sweep(str(path)).trials
    pd.testing.assert_frame_equal(pd.read_parquet(out / "t.parquet"), expected)
    assert list(pd.read_csv(out / "t.csv")["trial_id"]) == list(expected["trial_id"])
    page = (out / "r.html").read_text()
    assert all(f'id="{s}"' in page for s in SECTIONS) and "no checkpoint kept" in page


def test_a_confirmed_sweep_marks_its_confirmed_numbers(sweep_writer, capsys):
    sweep_writer.confirmation(sweep_writer.finished())
    assert main(["report", "known", "--storage", str(sweep_writer.root)]) == 0
    text = capsys.readouterr().out
    assert "scored on the test split" in text and "✓ +0.040 [+0.015, +0.065]" in text and "not confirmed" in text


@pytest.mark.parametrize("args, needle", [
    (["report", "nosuch"], "No sweep named 'nosuch'"),
    (["report", "empty"], "no trials with results yet"),
    (["export-policy", "nosuch"], "No sweep named 'nosuch'"),
    (["confirm", "known", "--seeds", "0,100"], "seed 0 was used by the search"),
    (["confirm", "known", "--seeds", "x"], "--seeds"),
    (["confirm", "known", "--top", "0"], "--top"),
    (["report", "known", "--screenshot", "x.png"], "--screenshot needs --html"),
])
def test_bad_input_is_one_paragraph_and_exit_2(sweep_writer, capsys, args, needle):
    sweep_writer.finished()
    sweep_writer.manifest(sweep_writer.root / "empty", "empty")
    assert main([*args, "--storage", str(sweep_writer.root)]) == 2
    err = capsys.readouterr().err
    assert needle in err.replace("\n", " ") and "Traceback" not in err


def test_a_second_confirmation_needs_force(sweep_writer, capsys):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    (path / "confirm" / "confirm.json").write_text("{}")
    assert main(["confirm", "known", "--storage", str(sweep_writer.root)]) == 2
    assert "--force" in capsys.readouterr().err


def test_export_policy_writes_files_that_load(sweep_writer, tmp_path, capsys):
    sweep_writer.finished()
    assert main(["export-policy", "known", "--storage", str(sweep_writer.root), "--out", str(tmp_path / "p")]) == 0
    assert "aa4" in capsys.readouterr().out
    A.load(str(tmp_path / "p" / "albumentations.json"))
    parse_policy(str(tmp_path / "p" / "best_policy.json"))


# --- a real tiny sweep ----------------------------------------------------------------------------



@pytest.mark.slow
def test_a_real_sweep_reports_with_predictions_and_exports_a_loadable_pipeline(confirmed_sweep, tmp_path, capsys, monkeypatch):
    # the sweep of test_search_cli's tiny-sweep test (tests/cli/conftest.py), searched and confirmed
    assert confirmed_sweep.code == 0, confirmed_sweep.out[-3000:]
    tiny_sweep = confirmed_sweep.storage
    monkeypatch.setenv("UDATUNE_CACHE", str(confirmed_sweep.cache))
    capsys.readouterr()
    html = tmp_path / "report.html"
    assert main(["report", "tiny", "--storage", str(tiny_sweep), "--html", str(html), "--predictions", "2"]) == 0
    text = capsys.readouterr().out
    assert "autoaugment" in text and "uda-default" in text and "(n/a, 1 seed)" in text
    page = html.read_text()
    assert page.count('<img class="pred"') == 2 * 4  # 2 frames × input, supervised, best UDA, ground truth

    out = tmp_path / "policy"
    assert main(["export-policy", "tiny", "--storage", str(tiny_sweep), "--out", str(out)]) == 0
    pipeline = A.load(str(out / "albumentations.json"))
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert pipeline(image=image)["image"].shape == image.shape
    settings = json.loads((out / "uda_settings.json").read_text())
    assert parse_policy(str(out / "best_policy.json")).to_string() == settings["uda"]["policy"]


def test_report_without_a_name_reads_the_newest_sweep(sweep_writer, tmp_path, capsys):
    sweep_writer.finished()  # "known", created 2026-01-01
    sweep_writer.manifest(sweep_writer.root / "empty", "empty")
    other = sweep_writer.root / "empty" / "sweep.json"
    manifest = json.loads(other.read_text())
    for created, code in (("2025-06-01T00:00:00+00:00", 0), ("2026-06-01T00:00:00+00:00", 2)):
        manifest["created"] = created
        other.write_text(json.dumps(manifest))
        assert main(["report", "--storage", str(sweep_writer.root)]) == code
    captured = capsys.readouterr()
    assert "+0.030 [+0.005, +0.055]" in captured.out  # first: "known" is the newer one
    assert "no trials with results yet" in captured.err.replace("\n", " ")  # then: "empty" is
    (tmp_path / "none").mkdir()
    assert main(["report", "--storage", str(tmp_path / "none")]) == 2
    assert "no sweeps in" in capsys.readouterr().err.replace("\n", " ")
