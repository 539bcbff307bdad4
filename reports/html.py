"""`udatune report NAME --html PATH`: the whole report as one self-contained HTML file.

Charts are inline SVG (plots.py) and pictures PNG data URIs (predictions.py), so the file can be
mailed or attached to an issue and opens anywhere. A short script at the end makes the trial
table sortable and marks the page as rendered (``<html data-report="ready">``), which the
headless-browser test checks.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from udatune.reports import plots
from udatune.reports.importance import Importance, label, param_importances
from udatune.reports.load import SHARED_WITH, trial_label
from udatune.reports.predictions import Predictions, sample_predictions
from udatune.reports.report import Report, duration, knobs, policy_text
from udatune.reports.stats import Interval, best_so_far, compute_seconds
from udatune.tune.results import BASELINES, SUPERVISED
from udatune.tune.store import read_studies

SECTIONS = {  # id -> heading, in page order
    "methods": "Methods",
    "confirmed": "Confirmed gains",
    "best-so-far": "Best so far",
    "gains": "Distribution of gains",
    "per-class": "Per-class IoU: best configuration against the baseline",
    "importance": "Parameter importance",
    "predictions": "Sample predictions",
    "trials": "All trials",
}

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.dim{color:#888}.good{color:#1a7f37;font-weight:600}.bad{color:#b35900}.verdict{font-size:15px;max-width:900px}.note{color:#555;font-size:12px;max-width:900px}
.charts{display:flex;flex-wrap:wrap;gap:12px}table.sortable th{cursor:pointer}
img.pred{image-rendering:pixelated;display:block}
"""

SCRIPT = """
(function () {
  function key(cell) {  // numeric cells sort by value, "—" last; others by text
    var text = cell.textContent.trim();
    if (!cell.classList.contains("num")) return text;
    var value = parseFloat(text);
    return isNaN(value) ? -Infinity : value;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var down = th.getAttribute("data-sort") !== "down";
        rows.sort(function (a, b) {
          var x = key(a.cells[column]), y = key(b.cells[column]);
          return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1);
        });
        th.setAttribute("data-sort", down ? "down" : "up");
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var missing = %s.filter(function (id) { return !document.getElementById(id); });
  document.documentElement.setAttribute("data-report", missing.length ? "missing " + missing.join(",") : "ready");
})();
"""


# --- small pieces -----------------------------------------------------------------------------------


def _num(value, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(value) else f"{value:.{digits}f}"


def _gain(interval: Interval) -> str:
    css = "good" if interval.excludes_zero and interval.mean > 0 else "bad" if interval.excludes_zero else ""
    return f'<span class="{css}">{escape(interval.describe())}</span>'


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), css: str = "") -> str:
    """An HTML table; cells are HTML already (escape text before passing it)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(section_id: str, *content: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(SECTIONS[section_id])}</h2>{"".join(content)}</section>'


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


# --- sections ---------------------------------------------------------------------------------------


def methods_section(report: Report) -> str:
    rows = []
    for m in report.methods:
        baseline = m.method == SUPERVISED
        confirmed = report.confirmed_for(m.method)
        if baseline:
            verdict = '<span class="dim">baseline</span>'
        elif confirmed is None:
            verdict = '<span class="dim">not run</span>'
        else:
            mark = "✓ confirmed" if confirmed.confirmed else "✗ not confirmed"
            verdict = f'{_gain(confirmed.gain)} <span class="{"good" if confirmed.confirmed else "bad"}">{mark}</span>'
        trials = str(m.trials) + (f" ({m.consistency_off} consistency off)" if m.consistency_off else "")
        rows.append([escape(m.method), escape(m.searcher), trials, duration(m.compute_seconds), _num(m.best_miou), _num(m.median_miou),
                     '<span class="dim">baseline</span>' if baseline else _gain(m.gain), verdict])
    methods = table(["method", "search", "trials", f"compute ({report.unit})", "best val mIoU", "median val mIoU",
                     "val gain [95% CI over seeds]", "confirmed gain (fresh seeds)"], rows, numeric={2, 4, 5})
    best_rows = []
    for m in report.methods:
        row = m.best or {}
        best_rows.append([escape(m.method), escape(trial_label(row.get("trial_id", "—"), row.get(SHARED_WITH, ""))), escape(str(row.get("seed", ""))),
                          escape(policy_text(row, 200)), escape(knobs(row)),
                          "—" if m.method == SUPERVISED else escape(str(row.get("tsa", ""))),
                          _num(row.get("val_miou")), "" if m.method == SUPERVISED else _num(row.get("gain"), 4)])
    best = table(["method", "trial", "seed", "policy", "λ / τ / T", "TSA", "val mIoU", "gain"], best_rows, numeric={6, 7})
    return section(
        "methods", methods,
        note("Gain: per seed, the method's best trial minus the supervised baseline trained on the same labeled frames "
             "with the same seed, at the same step; mean and Student-t 95% interval across seeds (with one seed there is no "
             f"interval). Compute: the workers' busy time (training, evaluation, checkpoints) × reserved {report.unit}s. "
             "Validation numbers are the winners of a search; the confirmed column re-runs them with fresh seeds. "
             "Consistency off: UDA trials whose mask ratio never passed 1% (no pixel passed τ); they trained as supervised "
             "runs and count towards no gain or best configuration."),
        "<h3>Best configuration per method</h3>", best,
    )


def confirmed_section(report: Report) -> str:
    if not report.confirmed:
        return section("confirmed", note(
            "Not confirmed yet. The best validation gains above were picked from many noisy trials; "
            f"<code>udatune confirm {escape(report.sweep.name)} --top 3 --seeds 100,101,102</code> re-runs the top "
            "configurations and the baseline with fresh seeds and scores them on the test split."))
    split = report.confirmed[0].split
    rows = [[escape(c.candidate + (" (default)" if c.default_recipe else "")), escape(c.method), escape(c.source_trial or "—"),
             escape(policy_text(c.row, 200)), escape(knobs(c.row)),
             str(c.gain.n), _num(c.score.mean), _gain(c.gain),
             f'<span class="{"good" if c.confirmed else "bad"}">{"✓ confirmed" if c.confirmed else "✗ not confirmed"}</span>']
            for c in report.confirmed]
    return section("confirmed", table(["#", "method", "from trial", "policy", "λ / τ / T", "seeds", f"{split} mIoU",
                                       f"{split} gain [95% CI]", ""], rows, numeric={5, 6}),
                   note(f"Each configuration re-trained with fresh seeds, paired with a supervised baseline re-trained on the "
                        f"same seeds, scored on the {split} split. Confirmed: the 95% interval of the gain lies above zero."))


def best_so_far_section(report: Report) -> str:
    trials = report.sweep.trials.assign(compute=compute_seconds(report.sweep.trials, report.sweep.resources))
    searched = [m for m in report.order if m != SUPERVISED]
    by_trial = {m: best_so_far(trials[trials["method"] == m]) for m in searched}
    by_compute = {m: [(x / 60, y) for x, y in best_so_far(trials[trials["method"] == m], "compute")] for m in searched}
    baseline = trials[trials["method"] == SUPERVISED]["val_miou"].mean()
    reference = {SUPERVISED: float(baseline)} if math.isfinite(baseline) else {}
    return section(
        "best-so-far",
        '<div class="charts">',
        plots.line_chart(by_trial, "best val mIoU against trials", "trials of the method", "best val mIoU so far", report.order, reference),
        plots.line_chart(by_compute, "best val mIoU against compute", f"compute ({report.unit}·min)", "best val mIoU so far", report.order, reference),
        "</div>",
        note("Trials in the order the sweep created them; each method's curve is the best final val mIoU among its trials so far."),
    )


def gains_section(report: Report) -> str:
    trials = report.sweep.trials
    groups, intervals = {}, {}
    for m in report.methods:
        if m.method == SUPERVISED:
            continue
        groups[m.method] = [float(g) for g in trials[trials["method"] == m.method]["gain"] if math.isfinite(float(g))]
        intervals[m.method] = (m.gain.mean, m.gain.low, m.gain.high)
    chart = plots.strip_chart(groups, intervals, "paired val gain over supervised, per trial", "gain in val mIoU", report.order)
    return section("gains", chart, note("Dots: each trial's gain over the supervised trial of its seed at the same step. "
                                        "Tick and band: the mean of the per-seed best gains and its 95% interval."))


def per_class_section(report: Report) -> str:
    best = report.best_uda()
    baseline = report.baseline_for(best) if best else None
    if best is None or baseline is None:
        return section("per-class", note("Needs a UDA trial and its supervised baseline with results."))
    ours, theirs = report.sweep.last_metrics(best["trial_id"]), report.sweep.last_metrics(baseline["trial_id"])
    classes = [k.removeprefix("iou/") for k in ours if k.startswith("iou/")]
    if not classes:
        return section("per-class", note("Per-class IoU is kept in Tune's trial folders, which this sweep no longer has."))
    name = f"{best['method']} ({best['trial_id']})"
    series = {
        "supervised": [float(theirs.get(f"iou/{c}", math.nan)) for c in classes],
        f"best: {best['method']}": [float(ours.get(f"iou/{c}", math.nan)) for c in classes],
    }
    colours = dict(zip(series, [plots.colour_for(SUPERVISED, report.order), plots.colour_for(best["method"], report.order)]))
    chart = plots.bar_chart(classes, series, "val IoU per class at the last evaluation", "IoU", colours)
    return section("per-class", chart, note(
        f"The best UDA trial ({escape(name)}: {escape(policy_text(best, 200))}, λ/τ/T {escape(knobs(best))}) and the "
        f"supervised trial of the same seed ({escape(str(baseline['trial_id']))}, seed {escape(str(best['seed']))})."))


def importance_section(report: Report, importances: list[Importance]) -> str:
    parts = []
    for imp in importances:
        if not imp.values:
            parts.append(note(f"{escape(imp.method)}: {escape(imp.reason)}."))
            continue
        names = list(imp.values)
        parts.append(plots.bar_chart([label(n) for n in names], {imp.method: [imp.values[n] for n in names]},
                                     f"{imp.method}: importance for {imp.objective} ({imp.trials} trials)", "importance (PED-ANOVA, sums to 1)",
                                     {imp.method: plots.colour_for(imp.method, report.order)}))
    if not parts:
        parts.append(note("No searched method in this sweep."))
    return section("importance", '<div class="charts">', *parts, "</div>", note(
        "Optuna's PED-ANOVA evaluator over each searched method's trials, against their paired gain: the parameters of "
        "the method's Optuna study kept in the sweep folder (<code>optuna-dashboard optuna.journal</code> shows it); for "
        "a sweep without one, λ, τ, T, TSA and the policy — RandAugment's N and M; for AutoAugment, per op, how often the "
        "policy applies it per image. With few trials these are rough."))


def predictions_section(predictions: Predictions) -> str:
    if not predictions.rows:
        return section("predictions", note(f"No sample predictions: {escape(predictions.note)}."))
    rows = [[f'<img class="pred" src="{uri}" alt="{escape(column)}">' for uri, column in zip(row, predictions.columns)] for row in predictions.rows]
    return section("predictions", table(predictions.columns, rows),
                   note("First validation frames; predictions of each model's final checkpoint, coloured by class."))


def trials_section(report: Report) -> str:
    trials = report.sweep.trials.assign(compute=compute_seconds(report.sweep.trials, report.sweep.resources))
    headers = ["trial", "method", "seed", "policy", "λ", "τ", "T", "TSA", "step", "val mIoU", "gain", f"compute ({report.unit}·s)", "status"]
    rows = [
        [escape(trial_label(row.trial_id, getattr(row, SHARED_WITH, ""))), escape(row.method), str(row.seed), escape(policy_text(row._asdict(), 80)),
         _num(row.lambda_u), _num(row.tau, 2), _num(row.temperature, 2), escape(str(row.tsa)), str(row.step),
         _num(row.val_miou), _num(row.gain, 4), _num(row.compute, 0), escape(str(row.status))]
        for row in trials.itertuples()
    ]
    html = table(headers, rows, numeric={2, 4, 5, 6, 8, 9, 10, 11}, css="sortable")
    return section("trials", html, note("Click a column to sort. Exports: <code>udatune report NAME --csv FILE</code> or <code>--parquet FILE</code>."))


# --- the page ---------------------------------------------------------------------------------------


def render_html(report: Report, importances: list[Importance], predictions: Predictions) -> str:
    sweep = report.sweep
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    created = sweep.manifest.created
    header = (
        f"<h1>udatune report: {escape(sweep.name)}</h1>"
        f'<p class="note">{len(sweep.trials)} trials ({escape(counts)}) · {escape(sweep.model_line)} · {sweep.max_steps} steps each · '
        f"seeds {escape(','.join(map(str, sweep.settings.get('seeds', []))))} · created {escape(created)} · "
        f"rows from {escape(sweep.source)}<br>folder {escape(sweep.path)} · udatune {escape(sweep.manifest.udatune_version)} "
        f"· revision {escape(sweep.manifest.git_revision or '—')} · report made "
        f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}</p>"
    )
    found = report.verdict
    verdict = ""
    if found is not None:  # the confirmed numbers lead: they are the ones to act on
        good = found.best.confirmed and (found.best.default_recipe or found.beats_default)
        verdict = f'<p class="verdict {"good" if good else "bad"}"><b>{escape(found.line())}</b></p>'
    body = [
        header,
        verdict,
        *([confirmed_section(report), methods_section(report)] if report.confirmed else [methods_section(report), confirmed_section(report)]),
        best_so_far_section(report),
        gains_section(report),
        per_class_section(report),
        importance_section(report, importances),
        predictions_section(predictions),
        trials_section(report),
    ]
    ids = "[" + ",".join(f'"{s}"' for s in SECTIONS) + "]"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>udatune report: {escape(sweep.name)}</title><style>{STYLE}</style></head><body>"
        + "".join(body) + f"<script>{SCRIPT % ids}</script></body></html>"
    )


def build_html(report: Report, predictions: int = 4) -> str:
    """Everything, including the slow parts: importances and sample predictions."""
    searched = [m for m in report.order if m not in BASELINES]
    studies = read_studies(report.sweep.path)
    importances = [param_importances(report.sweep.trials, m, studies.get(m)) for m in searched]
    preds = Predictions([], [], "turned off (--predictions 0)")
    best = report.best_uda()
    baseline = report.baseline_for(best) if best else None
    if predictions > 0 and best and baseline:
        preds = sample_predictions(report.sweep.path, {"supervised": baseline["trial_id"], f"best UDA ({best['method']})": best["trial_id"]}, predictions)
    elif predictions > 0:
        preds = Predictions([], [], "needs a UDA trial and its supervised baseline with results")
    return render_html(report, importances, preds)
