"""Bad input and faults, tried the way a user meets them: the installed `udatune` command.

Each `Case` is one kind of mistake: the command line, the files it needs, the exit code and a
word the message must contain (the option or file it names), the files that must come out
byte-identical and those that must not appear. `run_case` runs it as a subprocess and says
what went wrong, if anything: a traceback, a hang (a timeout), a lost file, a vague message.

    python -m bench.reliability            # every case; writes the table in docs/reliability.md
    python -m bench.reliability --only train-model  # the cases whose id starts with that

tests/cli/test_user_errors.py runs the same cases, so the table and the tests cannot drift.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

Setup = Callable[[Path], None]

TINY_TRAIN = ("--fast-dev-run", "--width", "4", "--set", "data.image_size=40x56")
TINY_SWEEP = ("--trials", "0", "--seeds", "0", "--max-steps", "4", "--set", "train.eval_every=2",
              "--set", "train.log_every=1", "--set", "train.batch_size=2", "--set", "train.unlabeled_batch_size=2",
              "--set", "model.width=4", "--image-size", "40x56", "--num-cpus", "2",
              # τ = 0: in 4 steps no pixel passes a higher τ, and a trial whose consistency never
              # switched on stands for nothing (export-policy would have nothing to export).
              "--set", "uda.tau=0")
EXPORTED = "runs/sweeps/ok"  # the finished sweep of the "sweep" context
DONE_RUN = "runs/done"  # the finished run of the "run" context


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # the group in the table
    what: str  # the mistake, in words
    args: tuple[str, ...]
    needle: str  # the message must contain this (the option or the file)
    code: int = 2
    setup: Setup | None = None
    needs: str = ""  # "", "run" (a finished run in runs/done) or "sweep" (a finished sweep runs/sweeps/ok)
    keeps: tuple[str, ...] = ()  # paths (files or folders) that must be byte-identical afterwards
    absent: tuple[str, ...] = ()  # paths that must not exist afterwards
    interrupt_on: str | None = None  # send SIGINT (Ctrl-C) once the output shows this text
    slow: bool = False  # starts Ray or trains: left out of the quick test selection
    timeout: float = 180.0


@dataclass
class Outcome:
    case: Case
    code: int | None
    output: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The paragraph the user reads: the last error line, else the first line."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith(("error:", "interrupted:", "Error:", "internal error:")):
                return line
        return lines[0] if lines else ""


# --- files the cases need ------------------------------------------------------------------------


def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_camvid(root: Path, train: int = 4, val: int = 2, size: tuple[int, int] = (36, 48)) -> Path:
    """A tiny, valid CamVid in the SegNet layout (images, 0..10 ids and 11 = void)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        lines = []
        for i in range(count):
            name = f"{split}_{i:03d}.png"
            _png(root / split / name, rng.integers(0, 255, (*size, 3), dtype=np.uint8))
            _png(root / f"{split}annot" / name, rng.integers(0, 12, size, dtype=np.uint8))
            lines.append(f"{split}/{name} {split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_folder(root: Path, ids: int = 3, frames: int = 5) -> Path:
    rng = np.random.default_rng(1)
    for i in range(frames):
        _png(root / "images" / f"f{i}.png", rng.integers(0, 255, (36, 48, 3), dtype=np.uint8))
        _png(root / "masks" / f"f{i}.png", rng.integers(0, ids, (36, 48), dtype=np.uint8))
    (root / "classes.txt").write_text("road\ncar\nsky\n")
    return root


def _write(path: str, text: str | bytes) -> Setup:
    def setup(work: Path) -> None:
        file = work / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(text.encode() if isinstance(text, str) else text)

    return setup


def _camvid(change: Callable[[Path], None] | None = None) -> Setup:
    def setup(work: Path) -> None:
        root = write_camvid(work / "camvid")
        if change is not None:
            change(root)

    return setup


def _folder(ids: int) -> Setup:
    return lambda work: write_folder(work / "data", ids=ids)


def _no_trainannot(root: Path) -> None:
    shutil.rmtree(root / "trainannot")
    (root / "train.txt").unlink()


def _image_without_mask(root: Path) -> None:
    (root / "trainannot" / "train_001.png").unlink()


def _corrupt_image(root: Path) -> None:
    (root / "train" / "train_002.png").write_bytes(b"\x89PNG not really")


def _size_mismatch(root: Path) -> None:
    _png(root / "trainannot" / "train_000.png", np.zeros((20, 20), dtype=np.uint8))


def _halve(file: Path) -> None:
    """Keep the first half of a file, as a full disk or a partial copy leaves it."""
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _damage(path: str, content: bytes) -> Setup:
    return lambda work: (work / path).write_bytes(content)


def _edit_settings(path: str, **values) -> Setup:
    """Change settings in a sweep's sweep.json, as a hand edit does."""

    def edit(work: Path) -> None:
        manifest = json.loads((work / path).read_text())
        manifest["settings"].update(values)
        (work / path).write_text(json.dumps(manifest))

    return edit


# --- the catalogue -------------------------------------------------------------------------------

_T = ("train", "--out", "runs/new")  # a train command whose --out must stay unwritten
_NEW = ("runs/new",)


_KIND = {"train": "train options", "policy": "policies", "config": "config files", "data": "datasets"}


def _train(id: str, what: str, args: tuple[str, ...], needle: str, **kw) -> Case:
    """A `udatune train` mistake: refused with nothing written to its --out."""
    return Case(id=id, kind=_KIND[id.split("-")[0]], what=what, args=(*_T, *args), needle=needle, absent=_NEW, **kw)


CASES: tuple[Case, ...] = (
    # usage: what typer/click parse
    Case("usage-bare", "usage", "`udatune` with no arguments", (), "Usage"),
    Case("usage-typo-command", "usage", "a mistyped command", ("trian",), "No such command"),
    Case("usage-unknown-option", "usage", "an unknown option", ("train", "--bogus"), "--bogus"),
    Case("usage-not-a-number", "usage", "a word for a number", ("train", "--steps", "abc"), "--steps"),
    Case("usage-missing-argument", "usage", "a command without its argument", ("confirm",), "Missing argument"),
    Case("usage-missing-value", "usage", "an option without its value", ("train", "--lr"), "--lr"),
    Case("usage-out-of-range", "usage", "a value outside an option's range", ("preview", "--frames", "0"), "--frames"),
    Case("usage-bad-flag", "usage", "a float for an integer option", ("search", "--trials", "2.5"), "--trials"),
    # train options: checked before data is loaded or a file is written
    _train("train-model", "an unknown model", ("--model", "segformr"), "--model"),
    _train("train-dataset", "an unknown dataset", ("--dataset", "kitti"), "--dataset"),
    _train("train-labeled-word", "--labeled not a count", ("--labeled", "many"), "--labeled"),
    _train("train-labeled-zero", "--labeled 0", ("--labeled", "0"), "--labeled"),
    _train("train-size-word", "--image-size not a size", ("--image-size", "abc"), "image_size"),
    _train("train-size-huge", "an absurd --image-size", ("--image-size", "100000x100000"), "--image-size"),
    _train("train-size-tiny", "a --image-size too small for the models", ("--image-size", "8x8"), "--image-size"),
    _train("train-tau", "τ outside [0, 1]", ("--tau", "1.5"), "tau"),
    _train("train-lambda-inf", "λ infinite", ("--lambda", "inf"), "lambda"),
    _train("train-lambda-negative", "λ negative", ("--lambda", "-1"), "lambda"),
    _train("train-temperature", "T = 0", ("-T", "0"), "temperature"),
    _train("train-ema", "EMA decay 1", ("--ema-decay", "1"), "ema_decay"),
    _train("train-steps", "zero steps", ("--steps", "0"), "--steps"),
    _train("train-batch", "batch size 0", ("--batch-size", "0"), "--batch-size"),
    _train("train-lr-nan", "learning rate nan", ("--lr", "nan"), "--lr"),
    _train("train-workers", "--workers -1", ("--workers", "-1"), "--workers"),
    _train("train-device-cuda", "--device cuda without CUDA", ("--device", "cuda"), "--device"),
    _train("train-device-word", "an unknown device", ("--device", "tpu"), "--device"),
    _train("train-width", "U-Net width 0", ("--width", "0"), "width"),
    _train("train-mode", "an unknown mode", ("--mode", "semi"), "--mode"),
    _train("train-loss", "an unknown consistency loss", ("--loss", "mse"), "--loss"),
    _train("train-tsa", "an unknown TSA schedule", ("--tsa", "cubic"), "--tsa"),
    _train("train-set-key", "--set of an unknown key", ("--set", "uda.taux=0.3"), "uda.taux"),
    _train("train-set-form", "--set without '='", ("--set", "uda.tau"), "--set"),
    _train("train-weights-missing", "--weights of a missing file", ("--weights", "nope.pt"), "nope.pt"),
    _train("train-weights-garbage", "--weights of a file that is no state dict", ("--weights", "junk.pt"), "junk.pt",
           setup=_write("junk.pt", b"not a torch file")),
    _train("train-weights-mismatch", "--weights of another model", ("--weights", "other.pt", "--width", "4"), "other.pt",
           setup=lambda work: __import__("torch").save({"w": __import__("torch").zeros(3)}, work / "other.pt")),
    _train("train-encoder-name", "an unknown smp encoder", ("--model", "fpn", "--encoder", "resnet19", "--encoder-weights", "none"),
           "--encoder"),
    _train("train-encoder-weights-missing", "--encoder-weights of a missing file",
           ("--model", "fpn", "--encoder-weights", "nope/enc.pt"), "nope/enc.pt"),
    _train("train-encoder-lr", "a negative encoder learning-rate multiplier", ("--encoder-lr-mult", "-1"), "--encoder-lr-mult"),
    # policies
    _train("policy-magnitude", "a policy magnitude out of range", ("--policy", "randaugment:2,99"), "99"),
    _train("policy-op", "an unknown op in a policy", ("--policy", 'autoaugment:[[["Spin",0.5,3]]]'), "Spin"),
    _train("policy-name", "an unknown policy family", ("--policy", "fancyaugment"), "fancyaugment"),
    _train("policy-json-shape", "a policy JSON of the wrong shape", ("--policy", "p.json"), "p.json",
           setup=_write("p.json", '{"n": 2}')),
    _train("policy-json-invalid", "a policy file that is not JSON", ("--policy", "q.json"), "q.json",
           setup=_write("q.json", '{"type": "randaugment", n: 2')),
    _train("policy-json-missing", "a missing policy file", ("--policy", "gone.json"), "gone.json"),
    _train("policy-subpolicy", "an AutoAugment sub-policy of the wrong shape", ("--policy", "r.json"), "op, probability, magnitude",
           setup=_write("r.json", "[1, 2]")),
    # config files
    _train("config-missing", "--config of a missing file", ("--config", "nope.yaml"), "nope.yaml"),
    _train("config-yaml", "a config file with a YAML error", ("--config", "bad.yaml"), "line 2",
           setup=_write("bad.yaml", "uda:\n  tau: 0.9: x\n")),
    _train("config-unknown-key", "a config file with an unknown key", ("--config", "k.yaml"), "uda.lamda_u",
           setup=_write("k.yaml", "uda:\n  lamda_u: 2\n")),
    _train("config-wrong-type", "a config value of the wrong type", ("--config", "w.yaml"), "train.steps",
           setup=_write("w.yaml", "train:\n  steps: many\n")),
    _train("config-not-mapping", "a config file that is a list", ("--config", "l.yaml"), "l.yaml",
           setup=_write("l.yaml", "- 1\n- 2\n")),
    _train("config-binary", "a config file that is not text", ("--config", "b.yaml"), "b.yaml",
           setup=_write("b.yaml", b"\xff\xfe\x00\x81")),
    # datasets
    _train("data-root-missing", "--data-root of a missing folder", ("--dataset", "camvid", "--data-root", "nowhere"), "nowhere"),
    _train("data-root-none", "a real dataset without --data-root", ("--dataset", "camvid"), "--data-root"),
    _train("data-no-masks", "CamVid without its trainannot folder", ("--dataset", "camvid", "--data-root", "camvid"), "trainannot",
           setup=_camvid(_no_trainannot)),
    _train("data-image-without-mask", "an image without its mask", ("--dataset", "camvid", "--data-root", "camvid"), "train_001",
           setup=_camvid(_image_without_mask)),
    _train("data-corrupt-image", "an unreadable image file", ("--dataset", "camvid", "--data-root", "camvid", "--labeled", "2"),
           "train_002", setup=_camvid(_corrupt_image)),
    _train("data-size-mismatch", "a mask of another size than its image", ("--dataset", "camvid", "--data-root", "camvid"),
           "train_000", setup=_camvid(_size_mismatch)),
    _train("data-labeled-too-many", "more labeled frames than the split has", ("--dataset", "camvid", "--data-root", "camvid", "--labeled", "50"),
           "--labeled", setup=_camvid()),
    _train("data-id-outside", "a mask id outside classes.txt", ("--dataset", "folder", "--data-root", "data"), "classes",
           setup=_folder(ids=7)),
    # output paths and earlier runs
    Case("out-is-file", "output paths", "`train --out` that is a file", ("train", "--out", "afile"), "afile",
         setup=_write("afile", "keep me"), keeps=("afile",)),
    Case("out-earlier-run", "output paths", "`train --out` of an earlier run", ("train", *TINY_TRAIN, "--out", DONE_RUN),
         "--overwrite", needs="run", keeps=(DONE_RUN,)),
    Case("out-typo-over-run", "output paths", "a typo (unknown model) with `--out` of an earlier run",
         ("train", "--model", "typo", "--out", DONE_RUN), "--model", needs="run", keeps=(DONE_RUN,)),
    Case("preview-out-folder", "output paths", "`preview --out` that is a folder", ("preview", "--out", "adir"), "adir",
         setup=lambda work: (work / "adir").mkdir()),
    Case("report-csv-folder", "output paths", "`report --csv` that is a folder", ("report", "ok", "--csv", "adir"), "--csv",
         setup=lambda work: (work / "adir").mkdir(), needs="sweep", keeps=(EXPORTED,)),
    Case("report-html-folder", "output paths", "`report --html` that is a folder", ("report", "ok", "--html", "adir"), "--html",
         setup=lambda work: (work / "adir").mkdir(), needs="sweep", keeps=(EXPORTED,)),
    Case("report-screenshot-alone", "output paths", "`report --screenshot` without --html", ("report", "ok", "--screenshot", "s.png"),
         "--html", needs="sweep", keeps=(EXPORTED,)),
    Case("export-out-file", "output paths", "`export-policy --out` that is a file", ("export-policy", "ok", "--out", "afile"), "afile",
         setup=_write("afile", "keep me"), needs="sweep", keeps=("afile", EXPORTED)),
    Case("search-storage-file", "output paths", "`search --storage` that is a file", ("search", "--storage", "afile"), "--storage",
         setup=_write("afile", "keep me"), keeps=("afile",)),
    # sweep options: all refused before Ray starts and before a file is written
    Case("search-gpu-on-cpu", "sweep options", "GPUs asked for on a machine without any", ("search", "--gpus-per-trial", "1", "--max-concurrent", "1"),
         "--gpus-per-trial", absent=("runs",)),
    Case("search-too-big", "sweep options", "a trial bigger than the machine", ("search", "--workers-per-trial", "64"), "--workers-per-trial",
         absent=("runs",)),
    Case("search-name-dotdot", "sweep options", "a sweep name that climbs out of --storage", ("search", "--name", "../x"), "--name",
         absent=("runs", "x")),
    Case("search-name-slash", "sweep options", "a sweep name with a '/'", ("search", "--name", "a/b"), "--name", absent=("runs",)),
    Case("search-space-missing", "sweep options", "an unknown search space", ("search", "--space", "nosuch"), "nosuch", absent=("runs",)),
    Case("search-space-yaml", "sweep options", "a space file with a YAML error", ("search", "--space", "s.yaml"), "line 2",
         setup=_write("s.yaml", "method: mine\npolicy: x: y\n"), absent=("runs",)),
    Case("search-seeds", "sweep options", "--seeds that are not integers", ("search", "--seeds", "a,b"), "--seeds", absent=("runs",)),
    Case("search-confirm-seeds", "sweep options", "--confirm-seeds that the search also uses", ("search", "--confirm", "1", "--confirm-seeds", "0,100"),
         "--confirm-seeds", absent=("runs",)),
    Case("search-confirm-negative", "sweep options", "a negative --confirm", ("search", "--confirm", "-1"), "--confirm", absent=("runs",)),
    Case("search-knobs", "sweep options", "an unknown --knobs mode", ("search", "--knobs", "some"), "--knobs", absent=("runs",)),
    Case("search-unequal-knobs", "sweep options", "two spaces that search different knobs", ("search", "--space", "randaugment", "--space", "s.yaml"),
         "policy family", setup=_write("s.yaml", "method: narrow\npolicy: {family: trivialaugment}\ntau: [0.7, 0.9]\n"), absent=("runs",)),
    Case("search-scheduler", "sweep options", "an unknown scheduler", ("search", "--scheduler", "hyperband"), "--scheduler", absent=("runs",)),
    Case("search-trials", "sweep options", "a negative trial count", ("search", "--trials", "-1"), "--trials", absent=("runs",)),
    Case("search-steps", "sweep options", "a zero step budget", ("search", "--max-steps", "0"), "--max-steps", absent=("runs",)),
    Case("search-reduction", "sweep options", "an ASHA reduction factor of 1", ("search", "--reduction-factor", "1"), "--reduction-factor",
         absent=("runs",)),
    Case("search-address", "sweep options", "an address where no Ray answers", ("search", "--address", "127.0.0.1:9"), "--address",
         absent=("runs",)),
    Case("search-resume-no-name", "sweep options", "--resume without --name", ("search", "--resume"), "--name", absent=("runs",)),
    Case("search-bad-dataset", "sweep options", "a sweep over a broken dataset", ("search", "--dataset", "camvid", "--data-root", "camvid"),
         "trainannot", setup=_camvid(_no_trainannot), absent=("runs",)),
    Case("search-name-taken", "sweep options", "a sweep name already used", ("search", "--name", "ok"), "already exists",
         needs="sweep", keeps=(EXPORTED,)),
    # finished sweeps: read, never changed
    Case("report-unknown", "sweep files", "`report` of a sweep that does not exist", ("report", "nosuch"), "nosuch", needs="sweep",
         keeps=(EXPORTED,)),
    Case("export-unknown", "sweep files", "`export-policy` of a sweep that does not exist", ("export-policy", "nosuch"), "nosuch",
         needs="sweep", keeps=(EXPORTED,)),
    Case("resume-unknown", "sweep files", "`resume` of a sweep that does not exist", ("resume", "nosuch"), "nosuch", needs="sweep",
         keeps=(EXPORTED,)),
    Case("confirm-used-seed", "sweep files", "`confirm` with a seed the search used", ("confirm", "ok", "--seeds", "0"), "seed 0",
         needs="sweep", keeps=(EXPORTED,)),
    Case("confirm-seed-word", "sweep files", "`confirm --seeds` not integers", ("confirm", "ok", "--seeds", "x"), "--seeds",
         needs="sweep", keeps=(EXPORTED,)),
    Case("report-folder-not-sweep", "sweep files", "`report` of a folder that is no sweep", ("report", "adir"), "adir",
         setup=lambda work: (work / "adir").mkdir(), needs="sweep", keeps=(EXPORTED,)),
    Case("report-damaged-csv", "sweep files", "`report` with results.csv cut in half", ("report", "ok"), "rows from",
         code=0, setup=lambda work: _halve(work / EXPORTED / "results.csv"), needs="sweep", keeps=(EXPORTED,)),
    Case("export-damaged-csv", "sweep files", "`export-policy` with results.csv empty", ("export-policy", "ok", "--out", "pol"), "pol",
         code=0, setup=_damage(f"{EXPORTED}/results.csv", b""), needs="sweep", keeps=(EXPORTED,)),
    Case("report-no-readable-rows", "sweep files", "`report` with every copy of the rows damaged", ("report", "ok"), "results.csv",
         setup=lambda work: [_halve(work / EXPORTED / f) for f in ("trials.json", "results.parquet", "results.csv")],
         needs="sweep", keeps=(EXPORTED,)),
    Case("report-damaged-manifest", "sweep files", "`report` with sweep.json damaged", ("report", "ok"), "sweep.json",
         setup=_damage(f"{EXPORTED}/sweep.json", b"{"), needs="sweep", keeps=(EXPORTED,)),
    Case("ls-damaged-manifest", "sweep files", "`ls` with one sweep's sweep.json damaged", ("ls",), "sweep.json", code=0,
         setup=_damage(f"{EXPORTED}/sweep.json", b"{"), needs="sweep", keeps=(EXPORTED,)),
    Case("resume-damaged-manifest", "sweep files", "`resume` with sweep.json damaged", ("resume", "ok"), "sweep.json",
         setup=_damage(f"{EXPORTED}/sweep.json", b"{"), needs="sweep", keeps=(EXPORTED,)),
    Case("resume-confirm-used-seed", "sweep files", "`resume` whose sweep.json asks to confirm on a seed the search used",
         ("resume", "ok"), "seed 0 was used", setup=_edit_settings(f"{EXPORTED}/sweep.json", confirm=1, confirm_seeds=[0]),
         needs="sweep", keeps=(EXPORTED,)),
    # runs that start and then fail or are stopped
    Case("train-diverges", "faults", "a training whose loss diverges (--lr 1e30)", ("train", *TINY_TRAIN, "--lr", "1e30", "--out", "runs/nan"),
         "diverged", code=1, slow=True),
    Case("train-ctrl-c", "faults", "Ctrl-C during `udatune train`", ("train", "--steps", "400", "--width", "4", "--image-size", "40x56",
         "--workers", "0", "--out", "runs/cut"), "runs/cut", code=130, interrupt_on="-> runs/cut", slow=True),
    Case("search-ctrl-c-start", "faults", "Ctrl-C while Ray starts", ("search", *TINY_SWEEP, "--name", "cut"), "start",
         code=130, interrupt_on="Ray's output", slow=True),
)


# --- running a case ------------------------------------------------------------------------------


def udatune_command() -> list[str]:
    """The console script installed next to this Python (what a user runs), else the module."""
    script = Path(sys.executable).parent / "udatune"
    return [str(script)] if script.exists() else [sys.executable, "-m", "udatune.cli.app"]


def environment(work: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "UDATUNE_DEBUG")}
    env.update(UDATUNE_CACHE=str(cache), COLUMNS="200", RAY_TMPDIR=str(_ray_tmp(work)), PYTHONUNBUFFERED="1")
    return env


def _ray_tmp(work: Path) -> Path:
    # Ray's socket paths must stay under 107 characters: a short folder per work dir.
    folder = Path("/tmp") / f"udr-{hashlib.sha1(str(work).encode()).hexdigest()[:8]}"
    folder.mkdir(exist_ok=True)
    return folder


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (or of ``root`` itself), by relative path."""
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def prepare_context(kind: str, work: Path, cache: Path) -> None:
    """Build the finished run or sweep a case needs (once; cases get copies)."""
    command = {
        "run": ["train", *TINY_TRAIN, "--out", DONE_RUN],
        "sweep": ["search", *TINY_SWEEP, "--name", "ok"],
    }[kind]
    work.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([*udatune_command(), *command], cwd=work, env=environment(work, cache),
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"could not prepare the {kind!r} context:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def run_case(case: Case, work: Path, cache: Path, contexts: dict[str, Path] | None = None) -> Outcome:
    """Run one case in ``work`` (a fresh folder) and list what it did wrong."""
    work.mkdir(parents=True, exist_ok=True)
    if case.needs:
        source = (contexts or {})[case.needs]
        shutil.copytree(source, work, dirs_exist_ok=True, symlinks=True)
    if case.setup is not None:
        case.setup(work)
    before = {path: snapshot(work / path) for path in case.keeps}
    started = time.time()
    with ctrl_c_reaches_children():
        process = subprocess.Popen([*udatune_command(), *case.args], cwd=work, env=environment(work, cache),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, code = _communicate(process, case)
    outcome = Outcome(case, code, output, time.time() - started)
    if code is None:
        outcome.problems.append(f"hang: no answer within {case.timeout:.0f} s")
    elif code != case.code:
        outcome.problems.append(f"exit code {code}, expected {case.code}")
    if "Traceback" in output:
        outcome.problems.append("a traceback was printed")
    if case.needle.lower() not in output.lower():
        outcome.problems.append(f"the message does not name {case.needle!r}")
    for path in case.keeps:
        if snapshot(work / path) != before[path]:
            outcome.problems.append(f"{path} changed")
    for path in case.absent:
        if (work / path).exists():
            outcome.problems.append(f"{path} was written")
    if case.interrupt_on is not None:
        left = _leftovers(str(_ray_tmp(work)))
        if left:
            outcome.problems.append(f"{len(left)} Ray processes left running")
            for pid in left:
                _kill_pid(pid)
    return outcome


def _leftovers(marker: str, grace: float = 10.0) -> list[int]:
    """Processes that still name this case's Ray folder ``grace`` seconds after the command ended."""
    deadline = time.time() + grace
    while True:
        found = []
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(pid)
            except OSError:
                continue
        if not found or time.time() > deadline:
            return found
        time.sleep(0.5)


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def ctrl_c_reaches_children():
    """A process started in the background of a non-interactive shell (CI, ``cmd &``) ignores
    SIGINT, and so would every child it starts; a user's terminal does not. Start the children
    with SIGINT at its default, as a terminal would (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _communicate(process: subprocess.Popen, case: Case) -> tuple[str, int | None]:
    if case.interrupt_on is None:
        try:
            output, _ = process.communicate(timeout=case.timeout)
            return output, process.returncode
        except subprocess.TimeoutExpired:
            _kill(process)
            return process.communicate()[0], None
    # Read until the trigger text shows, then press Ctrl-C: SIGINT to the whole process group,
    # as a terminal does.
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    deadline, sent = time.time() + case.timeout, False
    while time.time() < deadline and process.poll() is None:
        if not sent and case.interrupt_on in "".join(seen):
            time.sleep(0.5)
            os.killpg(process.pid, signal.SIGINT)
            sent = True
        time.sleep(0.1)
    if process.poll() is None:
        _kill(process)
        process.wait()
        reader.join(timeout=5)
        return "".join(seen), None
    reader.join(timeout=5)
    return "".join(seen), process.returncode


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- the table ------------------------------------------------------------------------------------

HEADER = """# Reliability: what a user sees for each kind of bad input

Every row is a run of the installed `udatune` command as a subprocess, by
`python -m bench.reliability` (which wrote this file); `tests/cli/test_user_errors.py` runs the
same cases. A row passes when the exit code is the expected one (2 a user error, 1 a run that
failed, 130 interrupted), the message names the option or file, no traceback is printed, the
command ends on its own, and the files listed as kept are byte-identical afterwards (and those
that must not be written were not).

"""


def markdown(outcomes: list[Outcome], seconds: float) -> str:
    failures = [o for o in outcomes if o.problems]
    lines = [HEADER, f"**{len(outcomes)} kinds tried, {len(failures)} with a problem; "
             f"{sum('traceback' in ' '.join(o.problems) for o in outcomes)} tracebacks, "
             f"{sum(o.code is None for o in outcomes)} hangs, "
             f"{sum(any('changed' in p for p in o.problems) for o in outcomes)} lost or changed files** "
             f"({seconds:.0f} s, {time.strftime('%Y-%m-%d')}, udatune at git {_revision()}).\n"]
    lines += ["| group | bad input | command | exit | what the user sees | kept | result |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.case
        command = "udatune " + " ".join(c.args)
        kept = ", ".join(c.keeps) + (" (unchanged)" if c.keeps else "") or ("nothing written" if c.absent else "—")
        message, command = o.message.replace("|", "\\|"), command.replace("|", "\\|")
        lines.append(f"| {c.kind} | {c.what} | `{command}` | {o.code} | {message} | {kept} | "
                     f"{'ok' if not o.problems else '; '.join(o.problems)} |")
    return "\n".join(lines) + "\n"


def _revision() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose id starts with this")
    parser.add_argument("--doc", default="docs/reliability.md", help="where to write the table ('' = nowhere)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if c.id.startswith(args.only)]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="udatune-reliability-") as tmp:
        root = Path(tmp)
        cache = root / "cache"
        contexts = {}
        for kind in sorted({c.needs for c in cases if c.needs}):
            prepare_context(kind, root / f"context-{kind}", cache)
            contexts[kind] = root / f"context-{kind}"
        outcomes = []
        for i, case in enumerate(cases):
            outcome = run_case(case, root / f"case-{i:03d}", cache, contexts)
            outcomes.append(outcome)
            status = "ok" if not outcome.problems else "; ".join(outcome.problems)
            print(f"{case.id:28s} exit {outcome.code}  {outcome.seconds:5.1f} s  {status}", flush=True)
            if outcome.problems:
                print("    | " + "\n    | ".join(outcome.output.splitlines()[-15:]), flush=True)
    text = markdown(outcomes, time.time() - started)
    if args.doc and not args.only:
        Path(args.doc).write_text(text)
        print(f"wrote {args.doc}")
    print(json.dumps({"cases": len(outcomes), "problems": sum(bool(o.problems) for o in outcomes)}))
    return 0 if not any(o.problems for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
