"""A sweep folder with damaged copies of its rows, through the installed `udatune` console
script as users run it: each command reads another copy or stops with one message that names
the damaged file — never a traceback — and leaves every file of the sweep as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from udatune.tune import store

UDATUNE = Path(sys.executable).parent / "udatune"


def udatune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(UDATUNE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def sweep(sweep_writer) -> Path:
    """The known sweep with all three copies of its rows, as a finished sweep has them."""
    path = sweep_writer.finished()
    store.write_rows(str(path), store.read_results(str(path)))
    return path


DAMAGES = {"empty": b"", "truncated": None}  # None: its first half, as a full disk or a partial copy leaves it


def damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    file.write_bytes(DAMAGES[how] if DAMAGES[how] is not None else data[: len(data) // 2])


def test_a_damaged_results_csv_alone_changes_nothing(sweep, sweep_writer, tmp_path):
    damage(sweep / "results.csv", "truncated")
    before = files(sweep_writer.root)
    storage = str(sweep_writer.root)
    report = udatune("report", "known", "--storage", storage, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "+0.047 [+0.009, +0.085]" in report.stdout and "rows from trials.json" in report.stdout
    exported = udatune("export-policy", "known", "--storage", storage, "--out", str(tmp_path / "p"), cwd=tmp_path)
    assert exported.returncode == 0 and "aa4" in exported.stdout
    listing = udatune("ls", "--storage", storage, cwd=tmp_path)
    # the best method's gain, as the report defines it: randaugment's +0.050 (one seed)
    assert listing.returncode == 0 and "known" in listing.stdout and "+0.050" in listing.stdout
    assert files(sweep_writer.root) == before


def test_with_trials_json_damaged_too_the_parquet_copy_is_read_and_named(sweep, sweep_writer, tmp_path):
    damage(sweep / "results.csv", "empty")
    damage(sweep / "trials.json", "truncated")
    before = files(sweep_writer.root)
    report = udatune("report", "known", "--storage", str(sweep_writer.root), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = " ".join(report.stdout.split())
    assert "+0.047 [+0.009, +0.085]" in text and "rows from results.parquet" in text and "trials.json" in text
    assert files(sweep_writer.root) == before


def test_with_no_readable_copy_each_command_names_the_files_and_exits_2(sweep, sweep_writer, tmp_path):
    for name, how in (("results.csv", "empty"), ("trials.json", "empty"), ("results.parquet", "truncated")):
        damage(sweep / name, how)
    before = files(sweep_writer.root)
    storage = str(sweep_writer.root)
    for args in (["report", "known"], ["export-policy", "known", "--out", str(tmp_path / "p")]):
        run = udatune(*args, "--storage", storage, cwd=tmp_path)
        err = " ".join(run.stderr.split())
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr + run.stdout
        assert f"{sweep}/results.csv" in err and f"{sweep}/trials.json" in err and "damaged" in err
    listing = udatune("ls", "--storage", storage, cwd=tmp_path)
    out = " ".join(listing.stdout.split())
    assert listing.returncode == 0 and "unreadable" in out and f"{sweep}/results.csv" in out
    assert "Traceback" not in listing.stderr + listing.stdout
    assert files(sweep_writer.root) == before
    assert not (tmp_path / "p").exists()
