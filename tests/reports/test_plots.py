"""The hand-written SVG charts: well-formed, one mark per data point, stable colours."""

import math
import xml.etree.ElementTree as ET

from udatune.reports.plots import bar_chart, colour_for, line_chart, nice_ticks, strip_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed markup


def test_ticks_are_round_and_cover_the_range():
    ticks = nice_ticks(0.013, 0.087)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.087 and ticks == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert len(nice_ticks(0.5, 0.5)) >= 2 and nice_ticks(math.nan, 1.0) == []


def test_line_chart_draws_one_step_line_per_series_and_the_reference():
    order = ["supervised", "uda-default", "autoaugment"]
    svg = parse(line_chart({"autoaugment": [(1, 0.5), (2, 0.6), (3, 0.6)], "uda-default": [(1, 0.55)]},
                           "t", "trials", "mIoU", order, reference={"supervised": 0.5}))
    paths = svg.findall(f"{SVG}path")
    assert len(paths) == 2 and len(svg.findall(f"{SVG}circle")) == 4
    assert paths[0].get("stroke") == colour_for("autoaugment", order)
    assert any(line.get("stroke-dasharray") for line in svg.findall(f"{SVG}line"))  # the baseline
    assert "no evaluated trials" in line_chart({}, "t", "x", "y", order)


def test_strip_and_bar_charts_have_a_mark_per_value_and_escape_names():
    strip = parse(strip_chart({"a<b": [0.01, 0.02, -0.01], "c": []}, {"a<b": (0.01, -0.01, 0.03)}, "gains", "gain", ["a<b", "c"]))
    assert len(strip.findall(f"{SVG}circle")) == 3
    assert "a<b" in "".join(strip.itertext())
    bars = parse(bar_chart(["road", "car"], {"sup": [0.5, math.nan], "uda": [0.6, 0.2]}, "iou", "IoU"))
    assert len([r for r in bars.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]) == 3
