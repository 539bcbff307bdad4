"""Reading a sweep through the store: the rows the driver wrote, with the same paired gains
whichever copy they come from; damaged copies are skipped, or named when none is left."""

import dataclasses
import math

import pandas as pd
import pytest

from udatune.errors import ConfigError
from udatune.reports.confirm import rank_candidates, recipe_key
from udatune.reports.load import find_sweep, load_sweep, trial_label
from udatune.reports.report import build_report
from udatune.tune import store


def gains(sweep) -> dict[str, float]:
    return dict(zip(sweep.trials["trial_id"], sweep.trials["gain"]))


def test_the_rows_come_from_trials_json_with_their_paired_gains(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))
    assert sweep.source == "trials.json"
    assert len(sweep.trials) == 14 and sweep.trials["trial_id"].is_unique
    g = gains(sweep)
    # paired with supervised at the same seed and the same step (aa5 stopped at step 50)
    assert g["def1"] == pytest.approx(0.03) and g["aa4"] == pytest.approx(0.06) and g["aa5"] == pytest.approx(0.03)
    assert math.isnan(g["sup0"]) and math.isnan(g["ta0"])
    status = dict(zip(sweep.trials["trial_id"], sweep.trials["status"]))
    assert (status["aa4"], status["aa5"], status["ta0"]) == ("done", "stopped", "error")
    assert sweep.last_metrics("aa4")["iou/road"] == pytest.approx(0.70)
    assert sweep.config("aa4")["overrides"]["uda.lambda_u"] == 0.8


def test_the_model_line_names_the_unets_depth_and_depth_4_for_older_sweeps(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))

    def line(model: dict) -> str:
        return dataclasses.replace(sweep, manifest=dataclasses.replace(sweep.manifest, base_config={"model": model})).model_line

    assert line({"name": "unet", "width": 16, "depth": 3}) == "model unet (width 16, depth 3)"
    assert line({"name": "unet", "width": 16}) == "model unet (width 16, depth 4)"


def tables(path):
    """results.csv / results.parquet written by the store from the rows, as at a sweep's end."""
    store.write_rows(str(path), store.read_results(str(path)))


@pytest.mark.parametrize("damage", [b"", b"{\"format\": 1, \"rows\": [", b"[]"])
def test_a_damaged_trials_json_falls_back_to_the_parquet_then_the_csv(sweep_writer, damage):
    path = sweep_writer.finished()
    tables(path)
    expected = load_sweep(str(path)).trials
    (path / "trials.json").write_bytes(damage)
    sweep = load_sweep(str(path))
    assert sweep.source.startswith("results.parquet; skipped damaged") and str(path / "trials.json") in sweep.source
    pd.testing.assert_frame_equal(sweep.trials, expected)
    assert sweep.last_metrics("aa4") == {} and gains(sweep)["aa4"] == pytest.approx(0.06)

    (path / "results.parquet").write_bytes(b"PAR1 cut short")
    sweep = load_sweep(str(path))
    assert sweep.source.startswith("results.csv") and str(path / "results.parquet") in sweep.source
    assert gains(sweep) == pytest.approx(gains_of(expected), nan_ok=True)
    assert list(sweep.trials["status"]) == list(expected["status"])


def gains_of(frame) -> dict[str, float]:
    return dict(zip(frame["trial_id"], frame["gain"]))


def test_every_copy_damaged_is_one_error_naming_the_files(sweep_writer):
    path = sweep_writer.finished()
    tables(path)
    (path / "trials.json").write_text("{ half")
    (path / "results.parquet").write_bytes(b"")
    (path / "results.csv").write_text("trial_id,method\naa4,auto")  # cut short: most columns gone
    with pytest.raises(ConfigError) as err:
        load_sweep(str(path))
    message = str(err.value)
    assert all(str(path / name) in message for name in ("trials.json", "results.parquet", "results.csv"))
    assert "damaged" in message


def test_a_running_sweep_shows_running_and_pending_trials(sweep_writer):
    path = sweep_writer.root / "live"
    sweep_writer.manifest(path, "live")
    sup = {"method": "supervised", "seed": 0, "overrides": {"uda.mode": "supervised"}, "index": 0}
    aa = {"method": "autoaugment", "seed": 0, "overrides": sweep_writer.uda("randaugment:2,9", 1.0, 0.8, 0.4), "index": 1}
    queued = {"method": "autoaugment", "seed": 0, "overrides": {}, "index": 2}
    sweep_writer.write(path, [("s0", sup, {50: 0.45}, "RUNNING", None), ("a0", aa, {50: 0.47}, "RUNNING", None),
                              ("q0", queued, {}, "PENDING", None)])
    sweep = load_sweep(str(path))
    assert dict(zip(sweep.trials["trial_id"], sweep.trials["status"])) == {"s0": "running", "a0": "running", "q0": "pending"}
    assert gains(sweep)["a0"] == pytest.approx(0.02)


def test_unknown_and_empty_sweeps_are_config_errors(sweep_writer):
    sweep_writer.finished("one")
    with pytest.raises(ConfigError, match="No sweep named 'two'.*one"):
        find_sweep("two", str(sweep_writer.root))
    sweep_writer.manifest(sweep_writer.root / "empty", "empty")
    assert find_sweep("empty", str(sweep_writer.root)).endswith("/empty")
    with pytest.raises(ConfigError, match="no trials with results yet"):
        load_sweep(str(sweep_writer.root / "empty"))


def test_confirmation_runs_are_read_with_their_test_scores(sweep_writer):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    confirm = load_sweep(str(path)).confirm
    assert len(confirm) == 9 and set(confirm["split"]) == {"test"}
    row = confirm.set_index("trial_id").loc["cf1"]
    assert (row["candidate"], row["source_trial"], row["seed"], row["score"]) == ("c1", "aa4", 100, pytest.approx(0.54))


def test_a_results_csv_cut_short_is_never_read_as_a_shorter_table(sweep_writer):
    path = sweep_writer.finished()
    tables(path)
    (path / "trials.json").unlink()
    (path / "results.parquet").unlink()
    assert len(load_sweep(str(path)).trials) == 14  # the csv alone, whole
    data = (path / "results.csv").read_bytes()
    (path / "results.csv").write_bytes(data[: len(data) // 2])  # parses: fewer rows, the last one cut
    with pytest.raises(ConfigError, match=f"{path / 'results.csv'}.*cut short"):
        load_sweep(str(path))


def test_a_shared_first_trial_reads_as_the_methods_own_first_row_with_no_compute(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished("shared", shared=("randaugment",))))
    ra = sweep.trials[sweep.trials["method"] == "randaugment"]
    assert list(ra["trial_id"]) == ["def0", "ra0"]  # the baseline's run first, as the method's first trial was
    first = ra.iloc[0]
    assert first["shared_with"] == "uda-default" and first["seed"] == 0 and first["gain"] == pytest.approx(0.02)
    assert first["train_seconds"] == 0 and first["eval_seconds"] == 0
    assert len(sweep.trials[sweep.trials["method"] == "uda-default"]) == 3  # the baseline itself is still there
    assert trial_label("def0", "uda-default") == "def0 (uda-default's run)" and trial_label("ra0") == "ra0"

    methods = {m.method: m for m in build_report(sweep).methods}
    plain = {m.method: m for m in build_report(load_sweep(str(sweep_writer.finished()))).methods}
    assert methods["randaugment"].trials == 2 and methods["randaugment"].best["trial_id"] == "ra0"
    assert methods["randaugment"].steps == plain["randaugment"].steps  # the baseline's steps are not counted twice
    assert methods["randaugment"].compute_seconds == pytest.approx(plain["randaugment"].compute_seconds)
    aa, aa_plain = methods["autoaugment"], plain["autoaugment"]
    assert (aa.trials, aa.steps, aa.best["trial_id"], aa.gain) == (aa_plain.trials, aa_plain.steps, aa_plain.best["trial_id"], aa_plain.gain)
    # Confirmation ranks recipes, not rows: the shared run is one candidate, not two.
    keys = [recipe_key(sweep, c.overrides) for c in rank_candidates(sweep, top=20, with_default=True)]
    assert len(keys) == len(set(keys))


def test_a_sweep_without_shared_methods_has_no_copied_rows(sweep_writer):
    sweep = load_sweep(str(sweep_writer.finished()))
    assert len(sweep.trials) == 14 and set(sweep.trials["shared_with"]) == {""}
