"""Terminal tables on a narrow console that is not a terminal (a pipe, a log file): every
number whole — no "0.3…" — with text wrapped and the least useful columns left out, named."""

import io
import re

import pytest
from rich.console import Console

from udatune.reports.load import load_sweep
from udatune.reports.report import build_report
from udatune.reports.terminal import print_report

# a number cut short: "0.3…", "+0.…", "12…" (not a policy summary's "Color.4…", which is text)
CUT = re.compile(r"(?<![\w@.])[+\-]?\d+\.?\d{0,2}…")


def narrow(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)


@pytest.mark.parametrize("width", [80, 60])
def test_the_report_at_narrow_widths_keeps_every_number_whole(sweep_writer, width):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    console = narrow(width)
    print_report(build_report(load_sweep(str(path))), console)
    text = console.file.getvalue()
    assert not CUT.search(text), text
    assert max(len(line) for line in text.splitlines()) <= width
    for number in ("+0.030 [+0.005, +0.055]", "+0.047 [+0.009, +0.085]", "+0.050 (n/a, 1 seed)", "0.600", "+0.060",
                   "+0.040 [+0.015, +0.065]", "+0.003 [-0.035, +0.041]"):
        assert number in text
    assert f"left out at {width} columns" in text  # the table said what it dropped


def test_a_wide_console_shows_every_column(sweep_writer):
    console = narrow(200)
    print_report(build_report(load_sweep(str(sweep_writer.finished()))), console)
    text = console.file.getvalue()
    assert "median mIoU" in text and "compute (CPU)" in text and "left out" not in text


def test_the_search_tables_keep_numbers_whole_at_80_columns(sweep_writer):
    from udatune.cli.search_command import ranking_table, trial_table
    from udatune.tune import store

    results = store.read_results(str(sweep_writer.finished()))
    console = narrow(80)
    console.print(trial_table(results, console))
    console.print(ranking_table(results, console))
    text = console.file.getvalue()
    assert not CUT.search(text), text
    assert "+0.060" in text and "0.600" in text and "+0.047 [+0.009, +0.085]" in text
    for row in results.ordered():  # every trial's score, whole
        assert f"{row.val_miou:.3f}" in text or row.status == "error"
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_search_ranking_counts_a_shared_first_trial_for_its_method(sweep_writer):
    from udatune.cli.search_command import ranking_table
    from udatune.tune import store

    results = store.read_results(str(sweep_writer.finished()))
    rows = {}
    for shared in ((), ("randaugment",)):
        console = narrow(200)
        console.print(ranking_table(results, console, shared, (0, 1, 2)))
        rows[shared] = next(line.split() for line in console.file.getvalue().splitlines() if "randaugment" in line)
    assert rows[()][2] == "1" and rows[("randaugment",)][2] == "2"  # its own trial, then with the baseline's run


def test_a_confirmed_report_leads_with_the_confirmed_numbers_and_ends_with_the_verdict(sweep_writer):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path, default=(0.52, 0.53, 0.54))
    console = Console(file=io.StringIO(), width=200)
    print_report(build_report(load_sweep(str(path))), console)
    text = console.file.getvalue()
    assert text.index("confirmed: top configurations") < text.index("methods (validation split")
    last = " ".join(text[text.rindex("Best recipe"):].split())  # the verdict, last (wrapped at the width)
    # c1 gains +0.04 over supervised; against the default (+0.02 per seed) +0.02 [−0.005, +0.045]: inside the noise
    assert last.startswith("Best recipe c1 (autoaugment): +0.040 [+0.015, +0.065]") and "against default UDA: +0.020" in last
    assert "did not beat the default" in last and "c3 (default)" in text


def test_a_long_policy_takes_at_most_two_lines_of_the_search_tables_at_80_columns(sweep_writer):
    # The demo's ranking table at 80 columns folded a 3-sub-policy AutoAugment policy over 5 lines.
    from udatune.cli.search_command import ranking_table, trial_table
    from udatune.tune import store

    policy = ('autoaugment:[[["Solarize",0.98,8],["Rotate",0.7,0]],[["Solarize",0.2,4],["AutoContrast",0.6,3]],'
              '[["Color",0.4,2],["Equalize",0.8,4]]]')
    path = sweep_writer.root / "long"
    sweep_writer.manifest(path, "long", seeds=(0,))
    sweep_writer.write(path, [
        ("sup0", {"method": "supervised", "seed": 0, "overrides": {"uda.mode": "supervised"}, "index": 0}, {100: 0.50}, "TERMINATED", None),
        ("aa0", {"method": "autoaugment", "seed": 0, "overrides": sweep_writer.uda(policy, 1.0, 0.8, 0.4), "index": 1}, {100: 0.55},
         "TERMINATED", None),
    ])
    results = store.read_results(str(path))
    for table in (ranking_table, trial_table):
        console = narrow(80)
        console.print(table(results, console))
        lines = console.file.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if "autoaugment" in line)
        # the row's continuation lines: the next lines up to a blank one, the next row or the table's note
        rest = [line for line in lines[first + 1:first + 4] if line.strip() and not line.lstrip().startswith(("(", "methods"))]
        assert len(rest) <= 1, "\n".join(lines)
        assert "+0.050" in lines[first]
