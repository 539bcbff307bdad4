"""Every kind of bad input in bench/reliability.py, through the installed `udatune` command.

Each case runs as a subprocess of the console script a user runs (not `main()` in-process, which
once hid that every usage error was a traceback on a fresh install). A case passes when its exit
code is the expected one, its message names the option or file, no traceback is printed, it ends
on its own, and the files it must keep are byte-identical afterwards.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.reliability import CASES, Outcome, prepare_context, run_case, udatune_command

pytestmark = pytest.mark.slow  # about 20 subprocesses and one tiny real sweep

# The suite runs a sample of the catalogue: the first cases of each kind, and every case that
# trains or starts Ray. Each case is a whole `udatune` process, and all 98 took 7 of the
# suite's minutes on 2 cores. `python -m bench.reliability` runs every case (docs/reliability.md),
# and so does this file with UDATUNE_ALL_CASES=1.
PER_KIND = 2


def sampled(cases) -> list:
    if os.environ.get("UDATUNE_ALL_CASES"):
        return list(cases)
    chosen, taken = [], {}
    for case in cases:
        if case.slow or taken.get(case.kind, 0) < PER_KIND:
            chosen.append(case)
            taken[case.kind] = taken.get(case.kind, 0) + (not case.slow)
    return chosen


SAMPLE = sampled(CASES)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Run every case once (three at a time: they mostly wait on process start-up)."""
    root = tmp_path_factory.mktemp("user-errors")
    cache = tmp_path_factory.getbasetemp() / "synthetic-cache"
    contexts = {}
    for kind in sorted({c.needs for c in SAMPLE if c.needs}):
        prepare_context(kind, root / f"context-{kind}", cache)
        contexts[kind] = root / f"context-{kind}"
    quick = [c for c in SAMPLE if not c.slow]
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip([c.id for c in quick], pool.map(lambda c: run_case(c, root / c.id, cache, contexts), quick)))
    for case in (c for c in SAMPLE if c.slow):  # these train or start Ray: one at a time
        done[case.id] = run_case(case, root / case.id, cache, contexts)
    yield done
    shutil.rmtree(root, ignore_errors=True)


def test_the_catalogue_covers_every_class_the_issue_names():
    kinds = {c.kind for c in CASES}
    assert kinds == {"usage", "train options", "policies", "config files", "datasets", "output paths",
                     "sweep options", "sweep files", "faults"}
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert Path(udatune_command()[0]).name == "udatune"  # the installed console script, not the module


@pytest.mark.parametrize("case", SAMPLE, ids=[c.id for c in SAMPLE])
def test_bad_input_gets_a_clear_message(outcomes, case):
    outcome = outcomes[case.id]
    assert not outcome.problems, f"{case.what}: {'; '.join(outcome.problems)}\n--- output ---\n{outcome.output[-3000:]}"
    assert outcome.message, "nothing was printed"


def test_a_bare_udatune_prints_the_commands(outcomes):
    output = outcomes["usage-bare"].output
    for command in ("train", "search", "resume", "report", "ls"):
        assert command in output


def test_ctrl_c_says_what_was_kept(outcomes):
    cut = outcomes["train-ctrl-c"]
    assert "metrics.jsonl" in cut.message
    assert "run the same command again" in outcomes["search-ctrl-c-start"].message
