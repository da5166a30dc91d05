"""Reading a user's data files, for every task that takes one: ``.csv`` and ``.npz``.

* :func:`data_file_format`: the file exists and is a ``.csv`` or an ``.npz``.
* :func:`read_npz`: arrays by key, the first present of several alternatives
  when asked; never unpickles (a data file must not run code).
* :func:`read_csv`: the non-blank rows of a CSV file, its header row split off
  when it has one, and the index of the column asked for: by header name, by
  index (negative counts from the end) or, for a one-column file, none.
  :class:`CsvTable` turns the rows into numbers.

A header row is recognised by content: the first row is a header when one of
its cells that must hold a number does not (with ``text_column=True`` the
picked column, e.g. class labels, may hold text and is not looked at). Asking
for a column by name takes the first row as the header.

Errors are ValueErrors that name the config field (``task.path``,
``task.column``, ...), the file and what is wrong.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = (".npz", ".csv")


def data_file_format(path: str | Path, field: str = "task.path") -> str:
    """``"npz"`` or ``"csv"`` from the suffix; ValueError when the file is missing or of another format."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{field} = {str(path)!r}: file does not exist")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{field} = {str(path)!r}: unsupported format {suffix!r}; allowed: {', '.join(FORMATS)}")
    return suffix[1:]


def read_npz(path: str | Path, *names: str | tuple[str, ...], field: str = "task.path") -> list[np.ndarray]:
    """One array per entry of ``names`` from an ``.npz`` file (no pickle); a tuple takes the first name the file holds."""
    with np.load(path, allow_pickle=False) as data:
        arrays = []
        for wanted in names:
            alternatives = (wanted,) if isinstance(wanted, str) else tuple(wanted)
            found = next((key for key in alternatives if key in data.files), None)
            if found is None:
                named = " or ".join(map(repr, alternatives))
                raise ValueError(f"{field} = {str(path)!r}: no array named {named}; it holds {sorted(data.files)}")
            arrays.append(np.asarray(data[found]))
    return arrays


@dataclass(frozen=True)
class CsvTable:
    """A CSV file's data rows (cells stripped, all of one width), its header row if any, and the picked column."""

    path: Path
    header: tuple[str, ...] | None
    rows: list[list[str]]
    column: int

    def picked(self) -> np.ndarray:
        """The picked column's cells as strings ``(N,)``."""
        return np.asarray([row[self.column] for row in self.rows])

    def picked_floats(self) -> np.ndarray:
        """The picked column as floats ``(N,)``; ValueError naming the first row that is not a number."""
        values = []
        for line_no, row in enumerate(self.rows, start=1):
            try:
                values.append(float(row[self.column]))
            except ValueError:
                raise ValueError(f"task.path = {str(self.path)!r}: data row {line_no}: no numeric value in column {self.column}") from None
        return np.asarray(values, dtype=np.float64)

    def other_floats(self) -> np.ndarray:
        """Every column but the picked one as floats ``(N, width - 1)``; ValueError naming the first bad row."""
        features = []
        for line_no, row in enumerate(self.rows, start=1):
            try:
                features.append([float(cell) for i, cell in enumerate(row) if i != self.column])
            except ValueError as exc:
                raise ValueError(f"task.path = {str(self.path)!r}: data row {line_no}: non-numeric feature ({exc})") from None
        return np.asarray(features, dtype=np.float64)


def read_csv(path: str | Path, column: str | int | None, column_field: str = "task.column", text_column: bool = False) -> CsvTable:
    """The rows of a ``.csv`` file and the index of ``column`` (a header name, an index, or None for a one-column file).

    ``column_field`` names the config field ``column`` came from, for the
    errors; ``text_column`` says the picked column may hold text (labels), so
    it does not count when telling a header row from data.
    """
    path = Path(path)
    with open(path, newline="") as fh:
        rows = [[cell.strip() for cell in row] for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"task.path = {str(path)!r}: the file is empty")
    width = len(rows[0])
    header = None
    if isinstance(column, str):
        if column not in rows[0]:
            raise ValueError(f"{column_field} = {column!r}: no such column; the first row is {rows[0]}")
        index = rows[0].index(column)
        header, rows = tuple(rows[0]), rows[1:]
    else:
        if column is None:
            if width != 1:
                raise ValueError(f"{column_field}: {str(path)!r} has {width} columns {rows[0]}; name the one to use")
            index = 0
        else:
            if not -width <= column < width:
                raise ValueError(f"{column_field} = {column}: out of range for {width} columns")
            index = column % width
        numeric = (cell for i, cell in enumerate(rows[0]) if not (text_column and i == index))
        if not _all_numeric(numeric):
            header, rows = tuple(rows[0]), rows[1:]
    for line_no, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueError(f"task.path = {str(path)!r}: data row {line_no} has {len(row)} columns, expected {width}")
    if not rows:
        raise ValueError(f"task.path = {str(path)!r}: no data rows")
    return CsvTable(path, header, rows, index)


def _all_numeric(cells: Iterable[str]) -> bool:
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return True
