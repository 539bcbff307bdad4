"""`fitted_table`: numbers whole, text wrapped without losing a character, at any width."""

import io

import pytest
from rich.console import Console
from rich.text import Text

from udatune.reports.tables import Column, fitted_table

POLICY = "AA[Identity1@4+TranslateX1@4 | AutoContrast1@4+Contrast1@4 | Sharpness1@4+Hue1@4]"
COLUMNS = [Column("rank", whole=True), Column("method", whole=True), Column("trials", whole=True, drop=2),
           Column("gain [95% CI]", whole=True), Column("best mIoU", whole=True, drop=3), Column("best policy", drop=1)]


def rendered(rows: list[list], width: int) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(fitted_table("methods", COLUMNS, rows, console))
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 100, 120])
def test_a_long_unbroken_text_cell_wraps_without_losing_a_character(width):
    # The demo's ranking table at 80 columns printed "AA[Identity1@4" then "anslateX1@4 |":
    # rich folded the cell at one width and cut it at another.
    rows = [["1", "uda-default", "1", Text("+0.076 (n/a, 1 seed)"), "0.439", "RA(2,4)"],
            ["2", "autoaugment", "2", Text("+0.044 (n/a, 1 seed)"), "0.407", POLICY]]
    out = rendered(rows, width)
    policy_column = out.splitlines()[2].index("best policy")  # title, blank line, header
    lines = [line[policy_column:].strip() for line in out.splitlines()[4:]]
    assert "".join(lines).replace(" ", "").endswith(POLICY.replace(" ", ""))
    assert all(len(line.rstrip()) <= width for line in out.splitlines())


def test_a_short_text_column_is_no_wider_than_its_cells():
    out = rendered([["1", "uda-default", "1", Text("+0.076 (n/a, 1 seed)"), "0.439", "RA(2,4)"]], 120)
    assert max(len(line.rstrip()) for line in out.splitlines()) < 80
