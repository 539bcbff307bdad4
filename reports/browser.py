"""Open a report in headless Chromium: check that it renders, and take a screenshot of it.

The HTML test uses `render` (the page's script marks ``<html data-report="ready">`` once it has
run, and Chromium's console log shows any uncaught error); `udatune report --screenshot` uses
`screenshot` for the picture in docs/benchmarks.md. Chromium comes from the system packages
(Debian: ``apt-get install chromium``); nothing is downloaded here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from udatune.errors import ConfigError

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# --no-sandbox: Chromium refuses to start as root (CI containers) with its sandbox on.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage", "--no-first-run")
CONSOLE = re.compile(r":CONSOLE[^\]]*\] \"(.*)\", source: ")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


def _chromium(binary: str | None) -> str:
    found = binary or find_chromium()
    if found is None:
        raise ConfigError(f"No Chromium found (looked for {', '.join(BINARIES)}); install it, e.g. `apt-get install chromium`.")
    return found


@dataclass(frozen=True)
class Rendered:
    dom: str  # the page after its scripts ran
    console: list[str]  # console messages
    errors: list[str]  # of those, uncaught errors

    @property
    def ready(self) -> bool:
        return re.search(r'<html[^>]*\bdata-report="ready"', self.dom) is not None


def _run(binary: str | None, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="udatune-chromium-") as profile:
        command = [_chromium(binary), *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def render(html: Path, binary: str | None = None, timeout: float = 120) -> Rendered:
    """Load the page, run its scripts, and return the resulting DOM and console messages."""
    done = _run(binary, ["--enable-logging=stderr", "--v=0", "--dump-dom", Path(html).resolve().as_uri()], timeout)
    console = CONSOLE.findall(done.stderr)
    return Rendered(done.stdout, console, [m for m in console if m.startswith("Uncaught")])


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 3400, binary: str | None = None, timeout: float = 120) -> Path:
    """A PNG of the page's top ``height`` pixels at ``width``."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    done = _run(binary, [f"--screenshot={png}", f"--window-size={width},{height}", Path(html).resolve().as_uri()], timeout)
    if not png.is_file():
        raise ConfigError(f"Chromium did not write {png}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}")
    return png
