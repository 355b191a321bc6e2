"""Plain-text tables for the command line: one formatter, so every printed report lines up alike."""

from __future__ import annotations


def format_rows(rows: list[tuple[str, str, str]], headers: tuple[str, str, str]) -> list[str]:
    """The header line, then one line per row: the first column left-aligned, the second
    right-aligned, the third as is, two spaces between them.

    Column widths fit the rows (a header longer than every cell of its column runs over), and
    lines are right-stripped so that a row with empty cells, such as a section heading, leaves
    no trailing spaces.
    """
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    return [f"{name:<{width}}  {value:>{value_width}}  {last}".rstrip()
            for name, value, last in [headers, *rows]]
