"""Shared fixtures. Tests run in importlib mode, so helpers are handed out as fixtures, not imported."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


class PngWriter:
    """Writes the small real image files that the data-loader tests read back."""

    def rgb(self, path: Path, height: int = 12, width: int = 16, seed: int = 0) -> Path:
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        return self.save(path, Image.fromarray(pixels))

    def mask(self, path: Path, ids: list[int] | np.ndarray, height: int = 12, width: int = 16) -> Path:
        """A single-channel mask whose columns cycle through ``ids`` (so every id is present)."""
        ids = np.asarray(ids, dtype=np.uint8)
        columns = ids[np.arange(width) % len(ids)]
        return self.save(path, Image.fromarray(np.tile(columns, (height, 1))))

    def garbage(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a png at all")
        return path

    def truncated(self, path: Path) -> Path:
        """A PNG cut in half: the header parses, decoding the pixels fails."""
        self.rgb(path, 24, 32)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    @staticmethod
    def save(path: Path, picture: Image.Image) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        return path


@pytest.fixture
def png() -> PngWriter:
    return PngWriter()


class DriverWriter:
    """Writes a sweep's driver state (``state.json``) as a live driver, this process, or a
    killed one left it (a pid that no longer exists)."""

    @staticmethod
    def dead_pid() -> int:
        import subprocess
        import sys

        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        return process.pid

    def write(self, path: str, state: str, alive: bool) -> None:
        import json

        from udatune.tune import store
        from udatune.tune.driver_state import this_driver

        driver = this_driver(state) if alive else dataclasses.replace(this_driver(state), pid=self.dead_pid())
        store.write_bytes(f"{path}/{store.STATE}", json.dumps(dataclasses.asdict(driver)).encode())


@pytest.fixture
def driver_writer() -> DriverWriter:
    return DriverWriter()


class SweepWriter:
    """Writes a sweep folder as `udatune search` leaves it — the manifest and the trial rows,
    fed through `SweepResults` and written by the sweep store as the driver's callback does —
    with known numbers, for the report tests. `finished` is a sweep whose gains and intervals
    were worked out by hand:

    * supervised val mIoU per seed 0/1/2: 0.50, 0.52, 0.54 (0.05 less at step 50);
    * uda-default: 0.52, 0.55, 0.58 → gains 0.02, 0.03, 0.04 → mean 0.03, 95% CI ±0.024843;
    * autoaugment: per seed best gains 0.03, 0.05, 0.06 → mean 0.046667, 95% CI ±0.037946
      (plus worse trials, and one stopped early at step 50);
    * randaugment: one trial, seed 0, gain 0.05 (no interval); trivialaugment: one failed trial.
    """

    MAX_STEPS = 100
    CLASSES = ("road", "car", "sky")
    SUPERVISED = {0: 0.50, 1: 0.52, 2: 0.54}
    STARTED = 1_700_000_000.0

    def __init__(self, root: Path) -> None:
        self.root = root

    def manifest(self, path: Path, name: str, seeds=(0, 1, 2), shared: tuple[str, ...] = ()) -> None:
        from udatune.config import TrialConfig
        from udatune.tune import store

        spaces = [{"method": "autoaugment", "searcher": "optuna"}, {"method": "randaugment", "searcher": "random"},
                  {"method": "trivialaugment", "searcher": "random"}]
        store.write_manifest(str(path), store.Manifest(
            format=store.FORMAT, udatune_version="0.1.0", created="2026-01-01T00:00:00+00:00", name=name, path=str(path),
            settings={"seeds": list(seeds), "max_steps": self.MAX_STEPS, "resources": {"workers": 1, "cpus": 1.0, "gpus": 0.0}, "spaces": spaces,
                      "shared": list(shared)},
            base_config=TrialConfig().override({"train.steps": self.MAX_STEPS}).to_dict(),
            data_fingerprint="fixture",
        ))

    def reports(self, trial_id: str, config: dict, scores: dict[int, float], extra: dict | None = None) -> list[dict]:
        """What a trial reports; ``scores``: step -> val mIoU (per-class IoU derived from it)."""
        reports = []
        for i, (step, miou) in enumerate(sorted(scores.items())):
            reports.append({"step": step, "val_miou": miou, "best_miou": max(v for s, v in scores.items() if s <= step),
                            **{f"iou/{c}": miou + d for c, d in zip(self.CLASSES, (0.1, 0.0, -0.1))},
                            "train_seconds": 10.0 * (i + 1), "eval_seconds": 2.0 * (i + 1), "checkpoint_seconds": 0.0,
                            "timestamp": 1_700_000_000 + step, "trial_id": trial_id, "config": config, **(extra or {})})
        return reports

    @staticmethod
    def uda(policy: str, lambda_u: float, tau: float, temperature: float, tsa: str = "none") -> dict:
        return {"uda.mode": "uda", "uda.policy": policy, "uda.lambda_u": lambda_u, "uda.tau": tau,
                "uda.temperature": temperature, "uda.tsa": tsa}

    def write(self, path: Path, trials: list[tuple[str, dict, dict[int, float], str, dict | None]]) -> None:
        """Rows through the store: (trial id, config, step -> val mIoU, status, extra metrics),
        status as Tune says it (TERMINATED, ERROR, RUNNING, PENDING)."""
        from udatune.config import TrialConfig
        from udatune.tune import store
        from udatune.tune.results import SweepResults

        results = SweepResults(TrialConfig().override({"train.steps": self.MAX_STEPS}).to_dict(), self.MAX_STEPS)
        for trial_id, config, scores, status, extra in trials:
            if status == "PENDING":
                results.add(trial_id, config)
                continue
            results.started(trial_id, config)
            for report in self.reports(trial_id, config, scores, extra):
                results.result(trial_id, config, report)
            if status == "TERMINATED":
                results.finished(trial_id, config)
            elif status == "ERROR":
                results.finished(trial_id, config, error=True, error_file="error.txt")
            row = results.rows[trial_id]
            ended_at = float(row.last.get("timestamp", math.nan)) if status != "RUNNING" else math.nan
            results.rows[trial_id] = dataclasses.replace(row, started_at=self.STARTED, ended_at=ended_at)
        store.write_rows(str(path), results, tables=False)

    def finished(self, name: str = "known", shared: tuple[str, ...] = ()) -> Path:
        """``shared``: methods whose first trial is the default-UDA baseline's run (seed 0)."""
        path = self.root / name
        self.manifest(path, name, shared=shared)
        aa = ['autoaugment:[[["Rotate",0.5,3],["Color",0.2,8]]]', 'autoaugment:[[["Solarize",0.9,5],["Color",0.4,2]]]',
              'autoaugment:[[["Rotate",0.3,6],["Equalize",0.8,4]]]', 'autoaugment:[[["Color",0.7,7],["Contrast",0.6,5]]]',
              'autoaugment:[[["Rotate",0.9,2],["Solarize",0.1,9]]]', 'autoaugment:[[["Equalize",0.5,5],["Color",0.5,5]]]']
        plan = []  # (trial id, method, seed, overrides, final val mIoU or None, last step, Tune status)
        for seed, value in self.SUPERVISED.items():
            plan.append((f"sup{seed}", "supervised", seed, {"uda.mode": "supervised"}, value, 100, "TERMINATED"))
        for seed, gain in {0: 0.02, 1: 0.03, 2: 0.04}.items():
            plan.append((f"def{seed}", "uda-default", seed, {"uda.mode": "uda"}, self.SUPERVISED[seed] + gain, 100, "TERMINATED"))
        searched = [(0, 0.03, 1.0, 0.70, 0.4), (0, 0.01, 3.0, 0.90, 0.8), (1, 0.05, 0.5, 0.60, 0.3),
                    (2, 0.02, 2.0, 0.85, 0.7), (2, 0.06, 0.8, 0.65, 0.5)]
        for i, (seed, gain, lam, tau, temp) in enumerate(searched):
            plan.append((f"aa{i}", "autoaugment", seed, self.uda(aa[i], lam, tau, temp, ("none", "linear")[i % 2]),
                         self.SUPERVISED[seed] + gain, 100, "TERMINATED"))
        plan.append(("aa5", "autoaugment", 1, self.uda(aa[5], 5.0, 0.95, 1.0), self.SUPERVISED[1] - 0.05 + 0.03, 50, "TERMINATED"))
        plan.append(("ra0", "randaugment", 0, self.uda("randaugment:2,9", 1.5, 0.8, 0.4), self.SUPERVISED[0] + 0.05, 100, "TERMINATED"))
        plan.append(("ta0", "trivialaugment", 0, self.uda("trivialaugment", 1.0, 0.8, 0.4), None, 0, "ERROR"))
        trials = []
        for index, (tid, method, seed, overrides, final, last, status) in enumerate(plan):
            config = {"method": method, "seed": seed, "overrides": overrides, "index": index}
            scores = {} if final is None else {50: final - 0.05, 100: final} if last == 100 else {50: final}
            trials.append((tid, config, scores, status, None))
        self.write(path, trials)
        return path

    def confirmation(self, path: Path, default: tuple[float, float, float] | None = None) -> None:
        """`udatune confirm` re-runs: supervised test 0.50/0.51/0.52 on seeds 100-102; c1 (trial
        aa4) gains 0.04, 0.03, 0.05 (confirmed: ±0.024843); c2 (ra0) gains -0.01, 0.02, 0.00;
        with ``default``, c3 is the default recipe (trial def2) with these test scores."""
        from udatune.tune import store

        plan = [("baseline", "supervised", "", {"uda.mode": "supervised"}, (0.50, 0.51, 0.52)),
                ("c1", "autoaugment", "aa4", self.uda('autoaugment:[[["Rotate",0.9,2],["Solarize",0.1,9]]]', 0.8, 0.65, 0.5), (0.54, 0.54, 0.57)),
                ("c2", "randaugment", "ra0", self.uda("randaugment:2,9", 1.5, 0.8, 0.4), (0.49, 0.53, 0.52))]
        if default is not None:
            plan.append(("c3", "uda-default", "def2", {"uda.mode": "uda"}, default))
        trials, index = [], 0
        for s, seed in enumerate((100, 101, 102)):
            for candidate, method, source, overrides, tests in plan:
                config = {"method": method, "seed": seed, "overrides": overrides, "candidate": candidate, "source_trial": source,
                          "index": index, "default_recipe": candidate == "c3"}
                trials.append((f"cf{index}", config, {100: tests[s] - 0.01}, "TERMINATED", {"test_miou": tests[s]}))
                index += 1
        self.write(Path(store.confirm_path(str(path))), trials)


@pytest.fixture
def sweep_writer(tmp_path) -> SweepWriter:
    return SweepWriter(tmp_path / "sweeps")
