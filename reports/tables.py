"""Terminal tables that never cut a number.

Rich shrinks every column of a table wider than the console, and with ``no_wrap`` a number
then ends in an ellipsis (``0.3…``, ``+0.…``) — on an 80-column pipe or log file, where most
tables of a sweep end up. A `fitted_table` instead keeps each number (or name) column as wide
as its widest cell (or header), lets text columns wrap, and when even that does not fit drops whole columns,
least useful first, and says which.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """One column: the cells of a ``whole`` column (numbers, names) are never cut or wrapped;
    ``drop`` orders the columns that may be left out of a narrow table (1 first, then 2, ...;
    0: always shown)."""

    header: str
    whole: bool = False
    drop: int = 0
    justify: str = "left"

    def __post_init__(self) -> None:
        if self.drop < 0:
            raise ValueError(f"drop must be ≥ 0, got {self.drop}")


TEXT_MIN = 10  # a text column is never narrower than this (or its widest cell, if less)


def fitted_table(title: str, columns: list[Column], rows: list[list], console: Console) -> Group | Table:
    """A table of ``rows`` (cells: str or rich Text) that fits ``console``'s width without cutting
    a number; a note under it names the columns left out."""
    widths = [_width(c, [row[i] for row in rows]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop)
    while _needed([widths[i] for i in keep]) > console.width and droppable:
        keep.remove(droppable.pop(0)[1])
    text_widths = _text_widths(columns, rows, widths, keep, console.width)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i in keep:
        # A text column gets a fixed width: left to share the spare width itself, rich folded
        # a long unbroken cell (a policy) at one width and cut it at another, losing characters.
        table.add_column(columns[i].header, justify=columns[i].justify, min_width=widths[i], width=text_widths.get(i),
                         overflow="fold")
    for row in rows:
        # A whole column's cells refuse to wrap (their own setting wins over the column's, whose
        # header may wrap); the column is at least as wide as they are, so nothing is cut.
        table.add_row(*(_unwrapped(row[i]) if columns[i].whole else row[i] for i in keep))
    left_out = [c.header for i, c in enumerate(columns) if i not in keep]
    if not left_out:
        return table
    return Group(table, Text(f"(left out at {console.width} columns: {', '.join(left_out)}; a wider terminal shows them)", style="dim"))


def _text_widths(columns: list[Column], rows: list[list], widths: list[int], keep: list[int], room: int) -> dict[int, int]:
    """The kept text columns' widths: the space the other columns leave, shared equally, but no
    wider than a column's longest cell or header."""
    text = [i for i in keep if not columns[i].whole]
    if not text:
        return {}
    spare = max(0, room - _needed([widths[i] for i in keep])) // len(text)
    return {i: min(widths[i] + spare, _longest(columns[i], [row[i] for row in rows])) for i in text}


def _longest(column: Column, cells: list) -> int:
    return max([_cell_len(c) for c in cells] + [len(column.header)])


def _cell_len(cell) -> int:
    """The cells a cell takes on screen (markup in a str does not count)."""
    return (Text.from_markup(cell) if isinstance(cell, str) else cell).cell_len


def _unwrapped(cell) -> Text:
    text = Text.from_markup(cell) if isinstance(cell, str) else cell.copy()
    text.no_wrap = True
    return text


def _width(column: Column, cells: list) -> int:
    """The narrowest a column may get: a whole column its widest cell or its header (rich would
    widen it to the header anyway), a text column `TEXT_MIN` (less when all its cells are
    shorter) or its header's longest word."""
    lengths = [_cell_len(c) for c in cells]
    if column.whole:
        return max(lengths + [len(column.header)])
    word = max((len(w) for w in column.header.split()), default=1)
    return max(word, min(TEXT_MIN, max(lengths + [1])))


def _needed(widths: list[int]) -> int:
    """A SIMPLE_HEAD table's width at these column widths: a space at each edge, and a space of
    padding, the divider and a space of padding between columns."""
    return sum(widths) + 3 * (len(widths) - 1) + 2
