"""Where udatune may write: checked before any data is loaded, any Ray starts or any file is written.

A typo in an option must never cost a user an earlier run, and a path that cannot be written
must fail up front with the option's name, not as an `OSError` traceback after minutes of work.
These checks write nothing: writability is judged from the nearest folder that exists.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from udatune.errors import ConfigError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_creatable(path: Path, option: str) -> None:
    """The folder ``path`` (or what is above it) can be created and written by this user."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise ConfigError(
            f"{option} {path}: {existing} is a file, not a folder, so nothing can be created there; "
            "pass another path."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {existing} is not writable by this user; pass a folder you can write to.")


def check_output_folder(path: Path, option: str, *, overwrite: bool = False) -> None:
    """``path`` will be a run's output folder: a folder we can create, and not an earlier run
    (a non-empty folder) unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder; pass a folder for the run's outputs.")
    _check_creatable(path, option)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError(
            f"{option} {path} already holds files (an earlier run?); nothing was changed. Pass another "
            f"{option}, leave it out for a new folder, or add --overwrite to replace that run."
        )


def check_writable_folder(path: str, option: str, purpose: str) -> None:
    """A folder udatune writes into (sweeps' storage, exported files): a URI (checked by the
    filesystem that serves it) or a local folder that is, or can be, created here."""
    if "://" in path:
        return
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{option} {folder} is a file, not a folder; pass {purpose}.")
    _check_creatable(folder, option)


def check_output_file(path: Path, option: str) -> None:
    """``path`` will be written as a file: not a folder, and its folder can be created."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; pass the path of a file to write, e.g. a new name inside that folder.")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path} exists and is not writable by this user; pass another file.")
    _check_creatable(path.parent, option)


SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_sweep_name(name: str) -> None:
    """A sweep name is one folder inside ``--storage``: no path separators, no ``..``, so a
    sweep can neither land outside the storage nor hide from `udatune ls`."""
    if not SWEEP_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"--name {name!r} is not a valid sweep name: use letters, digits, '.', '_' and '-' "
            "(at most 100, starting with a letter or digit; no '/' or '..'), e.g. camvid-1."
        )


def new_run_folder(base: Path, now: dt.datetime | None = None) -> Path:
    """A fresh folder name under ``base`` (``base/20261201-231500``, then ``-2``, ...), so the
    default output of `udatune train` never lands on an earlier run."""
    stamp = f"{(now or dt.datetime.now()):%Y%m%d-%H%M%S}"
    candidate, n = base / stamp, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{stamp}-{n}"
    return candidate
