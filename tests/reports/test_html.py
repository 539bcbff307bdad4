"""The HTML report: one self-contained file with every section, which a real browser renders
without a script error (headless Chromium from the system packages; skipped where absent)."""

import re

import numpy as np
import pytest
from PIL import Image

from udatune.reports.browser import find_chromium, render, screenshot
from udatune.reports.html import SECTIONS, build_html
from udatune.reports.load import load_sweep
from udatune.reports.report import build_report


@pytest.fixture
def report_html(sweep_writer, tmp_path):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path, default=(0.52, 0.53, 0.54))
    page = build_html(build_report(load_sweep(str(path))), predictions=0)
    file = tmp_path / "report.html"
    file.write_text(page, encoding="utf-8")
    return file


def test_the_page_has_every_section_and_needs_nothing_outside_it(report_html):
    page = report_html.read_text()
    for section_id, heading in SECTIONS.items():
        assert f'<section id="{section_id}">' in page and heading.split(":")[0] in page
    assert page.count("<svg") == 5  # best so far ×2, gains, per-class IoU, importance (autoaugment only)
    assert not re.search(r'(src|href)="https?:', page) and "<link" not in page  # self-contained
    # the known numbers and the confirmed marks
    assert "+0.030 [+0.005, +0.055]" in page and "+0.050 (n/a, 1 seed)" in page
    assert "✓ confirmed" in page and "✗ not confirmed" in page
    assert "needs at least 3 trials" in page  # randaugment's importance: one trial only
    # the verdict leads, then the confirmed table, then the validation numbers
    assert page.index("Best recipe c1 (autoaugment): +0.040") < page.index('<section id="confirmed">') < page.index('<section id="methods">')
    assert "did not beat the default" in page and "c3 (default)" in page


chromium = find_chromium()


@pytest.mark.skipif(chromium is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
def test_the_page_renders_in_headless_chromium_without_errors(report_html, tmp_path):
    page = render(report_html)
    assert page.errors == [] and page.ready, page.console
    assert 'id="importance"' in page.dom and "<svg" in page.dom

    picture = screenshot(report_html, tmp_path / "report.png", height=1600)
    pixels = np.asarray(Image.open(picture).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1200) and pixels.std() > 10  # something was drawn, not a blank page


@pytest.mark.skipif(chromium is None, reason="no Chromium on this machine")
def test_a_script_error_is_caught(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>document.documentElement.dataset.report = 'ready'; missing();</script></body></html>")
    page = render(bad)
    assert page.ready and len(page.errors) == 1 and "missing is not defined" in page.errors[0]
