"""`make demo`, timed: the search with its confirmation, then the report, as the Makefile runs them.

Runs the two commands of the Makefile's ``demo`` target (after set-up, which is not timed) in
subprocesses, as a user would, and writes to docs/benchmarks.md: the wall time of each and of
the whole, the confirmed table and the verdict line the demo ends with (read back from the
sweep folder through the report, not from the terminal).

    python -m bench.demo
    python -m bench.demo --no-write
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.docs import write_section

OUT = Path(__file__).resolve().parent / "out" / "demo"
UDATUNE = str(Path(sys.executable).parent / "udatune")


def demo_commands(name: str) -> list[list[str]]:
    """The Makefile's demo target, with the sweep kept apart from the user's runs/."""
    storage = str(OUT / "sweeps")
    return [
        [UDATUNE, "search", "--confirm", "1", "--name", name, "--storage", storage],
        [UDATUNE, "report", name, "--storage", storage, "--html", str(OUT / f"{name}.html"), "--predictions", "4"],
    ]


def timed(command: list[str]) -> tuple[float, int]:
    print("$", shlex.join(command), flush=True)
    start = time.time()
    code = subprocess.run(command).returncode
    return time.time() - start, code


def confirmed_lines(name: str) -> tuple[str, str]:
    """The confirmed table (markdown) and the verdict of the demo's sweep."""
    from udatune.reports.load import find_sweep, load_sweep
    from udatune.reports.report import build_report

    report = build_report(load_sweep(find_sweep(name, str(OUT / "sweeps"))))
    rows = ["| candidate | method | seeds | test mIoU | gain over supervised [95% CI] | confirmed |", "|---|---|---|---|---|---|"]
    for c in report.confirmed:
        rows.append(f"| {c.candidate}{' (default)' if c.default_recipe else ''} | {c.method} | {c.gain.n} | {c.score.mean:.3f} "
                    f"| {c.gain.describe()} | {'yes' if c.confirmed else 'no'} |")
    found = report.verdict
    return "\n".join(rows), found.line() if found is not None else "no verdict: the confirmation did not run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    name = "demo-" + datetime.now().strftime("%Y%m%d-%H%M%S")
    walls = []
    for command in demo_commands(name):
        wall, code = timed(command)
        if code != 0:
            sys.exit(f"{shlex.join(command)} exited {code}")
        walls.append(wall)
    table, verdict = confirmed_lines(name)
    total = sum(walls)
    body = (
        f"**Wall time of `make demo` (set-up excluded): {total:.0f} s ({total / 60:.1f} min)** — "
        f"`udatune search --confirm 1` {walls[0]:.0f} s, `udatune report --html` {walls[1]:.0f} s.\n\n"
        f"{table}\n\nThe line the demo ends with:\n\n> {verdict}\n"
    )
    print(body)
    if not args.no_write:
        write_section("demo", "make demo: search, confirmation and report", "python -m bench.demo", body)


if __name__ == "__main__":
    main()
