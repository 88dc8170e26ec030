"""A results table that grows as a lesson goes: one row per experiment.

>>> table = ResultsTable(["val_acc", "trainable", "s/epoch"])
>>> table.add("scratch CNN", val_acc=0.71, trainable=1_200_000, **{"s/epoch": 3.1})
>>> table                      # a notebook shows it as an HTML table
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence


def format_cell(value: object) -> str:
    """Numbers the way a table wants them: accuracies with 3 decimals, big counts with separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.3f}"
    return str(value)


class ResultsTable:
    """Rows of named values under fixed columns; shows itself as HTML (notebook) or Markdown.

    Args:
        columns: the value columns, in order (the row name comes first on its own).
        name_header: the header of the row-name column.
    """

    def __init__(self, columns: Sequence[str], name_header: str = "step") -> None:
        self.columns = list(columns)
        self.name_header = name_header
        self.rows: list[tuple[str, dict[str, object]]] = []

    def add(self, name: str, **values: object) -> ResultsTable:
        """Add (or replace) the row ``name``; unknown columns are an error, missing ones show "-"."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise ValueError(f"Unknown column(s) {sorted(unknown)}; the table has {self.columns}.")
        self.rows = [(n, v) for n, v in self.rows if n != name]
        self.rows.append((name, dict(values)))
        return self

    def row(self, name: str) -> Mapping[str, object]:
        """The values of row ``name``."""
        for row_name, values in self.rows:
            if row_name == name:
                return values
        raise KeyError(f"No row {name!r}; rows: {[n for n, _ in self.rows]}.")

    def _cells(self) -> list[list[str]]:
        return [[name] + [format_cell(values.get(c)) for c in self.columns] for name, values in self.rows]

    def markdown(self) -> str:
        """The table in Markdown (for reports and the README)."""
        header = [self.name_header, *self.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in self._cells()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in [self.name_header, *self.columns])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in self._cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return self.markdown()
