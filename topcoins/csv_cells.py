"""Text cells for CSV output that a spreadsheet never runs as a formula (OWASP CSV injection).

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets. ``spreadsheet_safe`` prefixes such a text cell with
``'``, as OWASP recommends; the producers also refuse such symbols (``producers/_parse.py``),
so this is the second line of defence. Numbers are never passed through it.
"""

from __future__ import annotations

__all__ = ["FORMULA_PREFIXES", "spreadsheet_safe"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell``, with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell
