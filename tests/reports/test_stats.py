"""Paired gains and their 95% intervals from a sweep with known numbers (see SweepWriter)."""

import math

import pytest

from udatune.reports.load import load_sweep
from udatune.reports.report import build_report
from udatune.reports.stats import mean_interval, t_quantile

HALF_3_SEEDS_SD_01 = 4.303 * 0.01 / math.sqrt(3)  # t(0.975, 2) × sd / √n


def test_t_quantiles_match_the_printed_table_to_3_decimals_and_tend_to_the_normal():
    table = {1: 12.706, 2: 4.303, 3: 3.182, 10: 2.228, 30: 2.042}  # any statistics textbook
    assert {df: round(t_quantile(df), 3) for df in table} == table
    assert t_quantile(31) == pytest.approx(2.0395, abs=2e-4)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_mean_interval_by_hand():
    interval = mean_interval([0.02, 0.03, 0.04])
    assert interval.mean == pytest.approx(0.03) and interval.n == 3
    assert (interval.low, interval.high) == pytest.approx((0.03 - HALF_3_SEEDS_SD_01, 0.03 + HALF_3_SEEDS_SD_01), rel=1e-3)
    assert interval.describe() == "+0.030 [+0.005, +0.055]" and interval.excludes_zero


def test_one_seed_has_no_interval_and_says_so():
    interval = mean_interval([0.05, float("nan")])
    assert interval.n == 1 and not interval.has_interval and math.isnan(interval.low)
    assert interval.describe() == "+0.050 (n/a, 1 seed)"
    assert mean_interval([]).describe() == "—"


def test_method_summaries_have_the_known_gains_and_intervals(sweep_writer):
    report = build_report(load_sweep(str(sweep_writer.finished())))
    methods = {m.method: m for m in report.methods}
    assert list(methods) == ["supervised", "uda-default", "autoaugment", "randaugment", "trivialaugment"]

    default = methods["uda-default"].gain
    assert default.mean == pytest.approx(0.03) and default.high - default.mean == pytest.approx(HALF_3_SEEDS_SD_01, rel=1e-3)

    aa = methods["autoaugment"]
    per_seed_best = [0.03, 0.05, 0.06]
    sd = math.sqrt(sum((g - 0.046667) ** 2 for g in per_seed_best) / 2)
    assert aa.gain.mean == pytest.approx(0.046667, abs=1e-6) and aa.gain.n == 3
    assert aa.gain.high - aa.gain.mean == pytest.approx(4.303 * sd / math.sqrt(3), rel=1e-4)
    assert (aa.trials, aa.finished, aa.best_miou, aa.median_miou) == (6, 6, pytest.approx(0.60), pytest.approx(0.545))  # incl. aa5 at 0.50
    assert aa.best["trial_id"] == "aa4" and aa.searcher == "Optuna TPE"
    assert aa.steps == 5 * 100 + 50
    assert aa.compute_seconds == pytest.approx(5 * 24 + 12)  # (train + eval) × 1 worker × 1 CPU

    assert methods["randaugment"].gain.describe() == "+0.050 (n/a, 1 seed)"
    assert methods["trivialaugment"].trials == 0 and methods["trivialaugment"].gain.n == 0
    assert methods["supervised"].best["trial_id"] == "sup2"


def test_confirmed_gains_are_paired_on_the_fresh_seeds(sweep_writer):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    report = build_report(load_sweep(str(path)))
    c1, c2 = report.confirmed
    assert (c1.candidate, c1.method, c1.source_trial, c1.split) == ("c1", "autoaugment", "aa4", "test")
    assert c1.gain.mean == pytest.approx(0.04) and c1.gain.high - 0.04 == pytest.approx(HALF_3_SEEDS_SD_01, rel=1e-3) and c1.confirmed
    assert c2.gain.mean == pytest.approx(0.01 / 3) and not c2.confirmed
    assert report.confirmed_for("autoaugment") is c1 and report.confirmed_for("uda-default") is None


def _confirmed(candidate, gains, scores, default=False):
    from udatune.reports.stats import ConfirmedGain

    return ConfirmedGain(candidate, "uda-default" if default else "autoaugment", "t", "test", mean_interval(gains),
                         mean_interval(scores), {}, default_recipe=default, scores=dict(zip((100, 101, 102), scores)))


@pytest.mark.parametrize("best, default, words", [
    # the searched recipe beats the default on every seed by a margin
    ((0.05, 0.06, 0.07), (0.01, 0.02, 0.02), "The search beat the default: train with this recipe."),
    # both above supervised, their difference inside the noise
    ((0.05, 0.03, 0.06), (0.04, 0.05, 0.04), "The search did not beat the default (the difference is inside the noise)"),
    # the searched recipe is not above supervised at all
    ((0.05, -0.04, 0.00), (0.04, 0.05, 0.04), "Not confirmed: its gain over supervised is inside the noise."),
    # worse than the default on every seed
    ((0.02, 0.03, 0.02), (0.06, 0.07, 0.07), "It is worse than the default recipe: train with the default."),
])
def test_the_verdict_says_what_to_train_with(best, default, words):
    from udatune.reports.stats import confirmation_verdict

    supervised = (0.50, 0.51, 0.52)
    gains = [_confirmed("c1", best, [s + g for s, g in zip(supervised, best)]),
             _confirmed("c2", default, [s + g for s, g in zip(supervised, default)], default=True)]
    found = confirmation_verdict(gains)
    line = found.line()
    assert line.startswith("Best recipe c1 (autoaugment): ") and "over supervised on 3 fresh seeds, test split" in line
    assert "against default UDA: " in line and line.endswith(words) or words in line
    expected = mean_interval([b - d for b, d in zip(best, default)])
    assert found.versus_default.mean == pytest.approx(expected.mean)


def test_when_the_best_recipe_is_the_default_the_verdict_says_so():
    from udatune.reports.stats import confirmation_verdict

    found = confirmation_verdict([_confirmed("c1", (0.05, 0.06, 0.07), (0.55, 0.57, 0.59), default=True)])
    assert found.line().endswith("The search's best is the default recipe: train with it.")
    assert "against default UDA" not in found.line()
