"""Which exception classes mean "usage error", "exit" and "abort" — for whatever click runs.

typer ≥ 0.2x ships its own copy of click (``typer._click``) and raises that copy's exceptions,
while older typer raises those of the separate ``click`` package. Matching only one of them
turns every usage error (a bare ``udatune``, a typo'd command, ``--steps abc``) into a
traceback on the other. So the classes are collected from every copy that is importable.
"""

from __future__ import annotations

import datetime as dt
import importlib
import tempfile
import traceback
from pathlib import Path

_MODULES = ("click.exceptions", "typer._click.exceptions", "typer.exceptions")


def _classes(name: str) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name in _MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


CLICK_ERRORS = _classes("ClickException")  # usage errors, bad parameters: ``.show()``, ``.exit_code``
CLICK_EXIT = _classes("Exit")  # ``--help`` and friends: ``.exit_code``
CLICK_ABORT = _classes("Abort")  # Ctrl-C at a prompt


def save_traceback(error: BaseException) -> Path:
    """Write the traceback of an unexpected error to a file, for a bug report."""
    folder = Path(tempfile.gettempdir()) / "udatune-crash"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{dt.datetime.now():%Y%m%d-%H%M%S}-{id(error):x}.log"
    path.write_text("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return path
