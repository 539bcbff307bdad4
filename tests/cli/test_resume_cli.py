"""`udatune resume` and `udatune ls` through the real CLI: a sweep run as a real process, killed
mid-way by a real signal, resumed on a real local Ray; a trial whose loss diverges; bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from udatune.cli.app import main

# A sweep small enough for a 2-core machine: 32x48 synthetic frames, a 4-channel U-Net.
TINY = [
    "--space", "randaugment", "--no-baselines", "--scheduler", "fifo", "--num-cpus", "2",
    "--set", "train.log_every=1", "--set", "train.batch_size=2", "--set", "train.unlabeled_batch_size=2",
    "--set", "model.width=4", "--set", "uda.rampup_steps=2", "--set", "train.eval_every=3",
]
# Long enough that a trial seen in its first half is still training when the signal lands a
# few seconds later (with 12 steps, a fast machine finished it before the kill).
STEPS = 48


@pytest.fixture(autouse=True)
def _cache(synthetic_cache):
    return synthetic_cache


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(sweep: Path) -> list[dict]:
    try:
        return json.loads((sweep / "trials.json").read_text())["rows"]
    except (OSError, ValueError):
        return []  # not written yet, or being replaced right now


def tune_statuses(sweep: Path) -> dict[str, str]:
    """Trial id -> status in Tune's newest saved experiment state (what a resume restores)."""
    states = sorted(sweep.glob("experiment_state-*.json"))
    try:
        data = json.loads(states[-1].read_text())["trial_data"]
    except (IndexError, OSError, ValueError, KeyError):
        return {}
    return {state["trial_id"]: state["status"] for state in (json.loads(entry[0]) for entry in data)}


def reports(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "result.json").read_text().splitlines() if line.strip()]


def trial_folder(sweep: Path, trial_id: str) -> Path:
    return next(sweep.glob(f"*-{trial_id}"))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def settled(root: Path, quiet: float = 2.0, limit: float = 60.0) -> None:
    """Wait until nothing under ``root`` changes for ``quiet`` seconds: a killed worker's last
    checkpoint may still be landing when its process is gone from the process table."""
    deadline = time.time() + limit
    before = snapshot(root)
    while time.time() < deadline:
        time.sleep(quiet)
        now = snapshot(root)
        if now == before:
            return
        before = now
    raise AssertionError(f"{root} kept changing for {limit:.0f} s after the driver was killed")


def csv_lines(sweep: Path) -> dict[str, str]:
    """results.csv's lines by trial id (the first column)."""
    return {line.split(",", 1)[0]: line for line in (sweep / "results.csv").read_text().splitlines()[1:]}


def ls(storage: Path, capsys) -> str:
    assert main(["ls", "--storage", str(storage)]) == 0
    return capsys.readouterr().out


# SIGKILL in the suite: the hardest stop (nothing gets to save). Ctrl-C mid-sweep runs too with
# UDATUNE_ALL_SIGNALS=1 (each variant is a 3-trial sweep, about 3 minutes on 2 cores); Ctrl-C's
# exit code and hint are in the suite through the catalogue's search-ctrl-c-start and train-ctrl-c.
SIGNALS = [signal.SIGKILL, signal.SIGINT] if os.environ.get("UDATUNE_ALL_SIGNALS") else [signal.SIGKILL]


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, capsys, monkeypatch, processes, wait_until, signum):
    storage, name = tmp_path / "sweeps", "cut"
    sweep = storage / name
    driver = processes.udatune(
        ["search", "--trials", "3", "--max-concurrent", "2", "--max-steps", str(STEPS), "--storage", str(storage), "--name", name, *TINY],
        tmp_path / "driver.log",
    )

    def finished_and_midway():
        known = tune_statuses(sweep)
        ended = [r for r in rows(sweep) if r["status"] == "done" and known.get(r["trial_id"]) == "TERMINATED"]
        midway = [r for r in rows(sweep) if r["status"] == "running" and 0 < r["step"] <= STEPS // 2 and r["trial_id"] in known]
        return (ended, midway[0]) if ended and midway else None

    ended, midway = wait_until(finished_and_midway, 600, "one finished trial and one mid-way", process=driver)
    assert "running" in ls(storage, capsys)
    assert main(["resume", name, "--storage", str(storage)]) == 2  # its driver is alive
    assert "still running" in capsys.readouterr().err

    killed_at = time.time()
    os.kill(driver.pid, signum)
    code = driver.wait(timeout=600)
    log = (tmp_path / "driver.log").read_text()
    if signum == signal.SIGINT:
        assert code == 130 and f"udatune resume {name}" in log, log[-2000:]  # interrupted: 130, and how to go on
    assert "interrupted" in ls(storage, capsys)
    # The killed driver's Ray workers can outlive it by seconds and still write a checkpoint;
    # stop them, so that what the commands below write (or do not) is all that changes.
    processes.kill_leftovers()
    settled(sweep)

    # Nothing was lost: the finished trials' rows were written as they ended.
    ended_ids = [r["trial_id"] for r in ended]
    before_lines = csv_lines(sweep)
    assert set(ended_ids) <= set(before_lines)
    before_logs = {tid: (trial_folder(sweep, tid) / "result.json").read_bytes() for tid in ended_ids}
    before_runs = {tid: sorted(p.name for p in (sweep / "train" / tid).rglob("*")) for tid in ended_ids}

    # An unreachable cluster is refused before anything is written.
    files = snapshot(sweep)
    address = f"127.0.0.1:{free_port()}"
    assert main(["resume", name, "--storage", str(storage), "--address", address]) == 2
    assert address in capsys.readouterr().err.replace("\n", "")
    assert snapshot(sweep) == files

    how = ["resume", name] if signum == signal.SIGKILL else ["search", "--resume", "--name", name]
    resumed = processes.udatune([*how, "--storage", str(storage), "--num-cpus", "2"], tmp_path / "resume.log")
    # While it runs, every trial's row only moves forward: the copy of trials.json Tune took at
    # the restore (it uploads its staging folder at each experiment checkpoint) never comes back.
    seen: dict[str, int] = {}
    while resumed.poll() is None:
        for row in rows(sweep):
            assert row["step"] >= seen.get(row["trial_id"], 0), (row["trial_id"], row["step"], seen)
            seen[row["trial_id"]] = row["step"]
        time.sleep(0.1)
    out = (tmp_path / "resume.log").read_text()
    assert resumed.returncode == 0, out[-3000:]
    assert "methods ranked by gain" in out.replace("\n", " ") and "Interrupted" not in out

    frame = pd.read_csv(sweep / "results.csv")
    assert len(frame) == 3 and frame["trial_id"].is_unique  # exactly the trials asked for
    assert (frame["status"] == "done").all() and (frame["step"] == STEPS).all()
    assert len(list((sweep / "train").iterdir())) == 3 and len(list(sweep.glob("0*-randaugment-*"))) == 3
    after_lines = csv_lines(sweep)
    for tid in ended_ids:  # the finished trials did not run again: byte for byte the same
        assert after_lines[tid] == before_lines[tid]
        assert (trial_folder(sweep, tid) / "result.json").read_bytes() == before_logs[tid]
        assert sorted(p.name for p in (sweep / "train" / tid).rglob("*")) == before_runs[tid]

    # The mid-way trial went on from its checkpoint: none of its steps ran twice, and the first
    # report of its new worker is past the first evaluation (a restart from step 0 reports 3 again).
    steps = [r["step"] for r in reports(trial_folder(sweep, midway["trial_id"]))]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
    new_worker = [r["step"] for r in reports(trial_folder(sweep, midway["trial_id"])) if r["worker_started"] > killed_at]
    assert new_worker and new_worker[0] > 3
    history = [step for step, _ in next(r for r in rows(sweep) if r["trial_id"] == midway["trial_id"])["history"]]
    assert history[: len(midway["history"])] == [step for step, _ in midway["history"]]
    assert history == sorted(set(history)) and history[-1] == STEPS

    listing = ls(storage, capsys)
    assert "finished" in listing and "3/3" in listing


@pytest.mark.slow
def test_a_diverging_trial_fails_with_its_reason_and_the_others_finish(tmp_path, capsys, monkeypatch, processes):
    blowup = tmp_path / "blowup.yaml"  # a legitimately diverging setting: AdamW at lr 1e30
    blowup.write_text("method: blowup\nsearcher: random\npolicy: {family: fixed, policy: 'randaugment:2,9'}\ntrial: {train.lr: 1.0e+30}\n")
    storage = tmp_path / "sweeps"
    monkeypatch.setenv("RAY_TMPDIR", str(processes.ray_tmp))
    # One searched method (a sweep compares only methods with the same knobs and trial: section),
    # and the baselines, which train at the base config's learning rate and finish.
    tiny = [a for a in TINY if a not in ("--space", "randaugment", "--no-baselines")]
    args = ["--trials", "1", "--max-steps", "6", "--storage", str(storage), "--name", "nan", *tiny, "--space", str(blowup)]
    assert main(["search", *args]) == 0
    out = " ".join(capsys.readouterr().out.split())

    frame = pd.read_csv(storage / "nan" / "results.csv", keep_default_na=False)
    assert sorted(frame["method"]) == ["blowup", "supervised", "uda-default"]
    failed = frame.set_index("method").loc["blowup"]
    assert failed["status"] == "failed" and failed["reason"].startswith("diverged: loss became nan by step")
    assert failed["gain"] == "" and failed["error_file"] == ""  # no gain counted; not a crash
    assert (frame.set_index("method").loc[["supervised", "uda-default"], "status"] == "done").all()
    assert "failed" in out and "diverged: loss became nan" in out

    # Not retried: one report (the failure) from one Train run, which says how it ended.
    folder = next((storage / "nan").glob("*-blowup-*"))
    assert [bool(r.get("failure")) for r in reports(folder)] == [True]
    outcome = json.loads((storage / "nan" / "train" / failed["trial_id"] / "outcome.json").read_text())
    assert outcome["outcome"] == "failed" and outcome["metrics"]["failure"] == failed["reason"]

    listing = ls(storage, capsys)
    assert "finished" in listing and "3/3" in listing

    files = snapshot(storage)  # a finished sweep: nothing to resume, nothing written
    assert main(["resume", "nan", "--storage", str(storage)]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert snapshot(storage) == files


@pytest.mark.slow
def test_resume_runs_the_confirmation_the_search_asked_for(confirmed_sweep, tmp_path, capsys, monkeypatch, processes, wait_until,
                                                          driver_writer):
    """`udatune search --confirm 1` stopped as its search ended, before its confirmation began;
    then Ctrl-C during the confirmation. Each time `udatune resume` carries on what is left
    (the confirmation asked for, then the interrupted one) and ends with the verdict."""
    from udatune.reports.load import load_sweep

    assert confirmed_sweep.code == 0, confirmed_sweep.out[-3000:]
    storage = tmp_path / "sweeps"
    sweep = storage / "tiny"
    shutil.copytree(confirmed_sweep.path, sweep)
    shutil.rmtree(sweep / "confirm")
    # As copied, the search's state names its driver: this process (the fixture ran in it), alive,
    # so about to start the confirmation itself; resume refuses to start a second one.
    assert "running" in ls(storage, capsys)
    files = snapshot(sweep)
    assert main(["resume", "tiny", "--storage", str(storage)]) == 2
    assert "still running" in capsys.readouterr().err and snapshot(sweep) == files
    # The search's process died the moment its search ended, before its confirmation began.
    driver_writer.write(str(sweep), "finished", alive=False)
    assert "interrupted" in ls(storage, capsys)  # the search finished; what it asked for did not

    driver = processes.udatune(["resume", "tiny", "--storage", str(storage), "--num-cpus", "2"], tmp_path / "driver.log")
    wait_until(lambda: any(r["status"] == "running" for r in rows(sweep / "confirm")), 600, "a confirmation trial running",
               process=driver)
    os.kill(driver.pid, signal.SIGINT)
    code = driver.wait(timeout=600)
    log = (tmp_path / "driver.log").read_text()
    # Interrupted: 130, and the command that carries it on names the sweep, not its confirm folder.
    assert code == 130 and f"udatuneresumetiny--storage{storage}" in "".join(log.split()), log[-2000:]
    processes.kill_leftovers()
    settled(sweep)
    assert "interrupted" in ls(storage, capsys)
    assert main(["confirm", "tiny", "--storage", str(storage), "--top", "1", "--seeds", "100"]) == 2  # not started over
    assert "udatune resume tiny" in " ".join(capsys.readouterr().err.split())
    ended_before = {r["trial_id"]: r for r in rows(sweep / "confirm") if r["status"] == "done"}

    monkeypatch.setenv("RAY_TMPDIR", str(processes.ray_tmp))
    assert main(["resume", "tiny", "--storage", str(storage), "--num-cpus", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the confirmation of tiny (interrupted)" in out and "Best recipe c1" in out
    confirm, original = load_sweep(str(sweep)).confirm, load_sweep(str(confirmed_sweep.path)).confirm
    assert len(confirm) == len(original) and confirm["trial_id"].is_unique and set(confirm["status"]) == {"done"}
    assert sorted(confirm["candidate"]) == sorted(original["candidate"]) and set(confirm["split"]) == {"test"}
    after = {r["trial_id"]: r for r in rows(sweep / "confirm")}
    assert all(after[tid]["val_miou"] == row["val_miou"] for tid, row in ended_before.items())  # not re-run
    assert "finished" in ls(storage, capsys)
    assert main(["resume", "tiny", "--storage", str(storage)]) == 0
    assert "nothing to resume" in capsys.readouterr().out


# --- bad input: one clear error each, nothing written -------------------------------------------------


def test_resume_will_not_start_the_confirmation_a_live_search_process_is_about_to_start(tmp_path, driver_writer):
    """Between a search's end and its confirmation's start, the search's state says "finished"
    but its process lives: a second driver would run the confirmation twice."""
    from udatune.cli.resume_command import check_not_confirming
    from udatune.errors import ConfigError

    driver_writer.write(str(tmp_path), "finished", alive=True)
    with pytest.raises(ConfigError, match="still running"):
        check_not_confirming(str(tmp_path))
    driver_writer.write(str(tmp_path), "finished", alive=False)
    check_not_confirming(str(tmp_path))  # its process is gone: nothing stands in the way


def sweep_folder(storage: Path, name: str, manifest: dict) -> Path:
    folder = storage / name
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    "case, needles",
    [
        ("unknown name", ["No sweep named 'nosuch'", "the sweeps there are broken, old", "udatune ls"]),
        ("unknown path", ["nowhere/at/all: no such folder"]),
        ("not a sweep", ["is not a udatune sweep", "no sweep.json"]),
        ("incompatible", ["udatune 0.0.1 (sweep format 0)", "resumes sweep format 1 only"]),
        ("damaged", ["sweep.json cannot be read", "damaged"]),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, capsys, case, needles):
    storage = tmp_path / "sweeps"
    sweep_folder(storage, "old", {"format": 0, "udatune_version": "0.0.1", "ray_version": "2.60.0"})
    (storage / "stray").mkdir()
    (storage / "stray" / "notes.txt").write_text("not a sweep")
    broken = sweep_folder(storage, "broken", {})
    (broken / "sweep.json").write_text("{ half a")
    target = {
        "unknown name": "nosuch", "unknown path": str(tmp_path / "nowhere" / "at" / "all"), "not a sweep": str(storage / "stray"),
        "incompatible": "old", "damaged": "broken",
    }[case]
    before = snapshot(tmp_path)
    assert main(["resume", target, "--storage", str(storage)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    for needle in needles:
        assert needle in err
    assert snapshot(tmp_path) == before


def test_search_resume_needs_a_name(tmp_path, capsys):
    assert main(["search", "--resume", "--storage", str(tmp_path)]) == 2
    assert "--resume needs --name" in capsys.readouterr().err


def test_ls_lists_sweeps_and_ignores_other_folders(tmp_path, capsys):
    storage = tmp_path / "sweeps"
    storage.mkdir()
    assert "No sweeps in" in ls(storage, capsys)
    sweep_folder(storage, "old", {"format": 0, "created": "2026-01-01T00:00:00+00:00", "settings": {"trials": 4, "seeds": [0, 1]}})
    (storage / "stray").mkdir()
    out = ls(storage, capsys)
    assert "old" in out and "stray" not in out and "0/8" in out and "unknown" in out
    assert main(["ls", "--storage", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
