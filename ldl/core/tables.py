"""Tables a notebook shows: plain HTML and Markdown, and a results table that grows row by row.

:func:`html_table` and :func:`markdown_table` are the one way the package draws a table;
objects that show themselves in a notebook (``History``, ``ResultsTable``, a model's trainable
summary) call them from their ``_repr_html_``.

>>> table = ResultsTable(["val_acc", "trainable", "s/epoch"])
>>> table.add("scratch CNN", val_acc=0.71, trainable=1_200_000, **{"s/epoch": 3.1})
>>> table                      # a notebook shows it as an HTML table
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    table_class: str | None = None,
    row_classes: Sequence[str] | None = None,
    cells_are_html: bool = False,
) -> str:
    """A plain HTML table of text cells (escaped), for a ``_repr_html_``, on one line.

    Args:
        table_class, row_classes: CSS classes of the table and of each row (for a stylesheet
            or a test to find them).
        cells_are_html: the cells are HTML already (links, ``<code>``), written as they are;
            the caller escapes any text inside them.
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    classes = list(row_classes) if row_classes is not None else [""] * len(rows)
    body = "".join(
        (f'<tr class="{html.escape(row_class, quote=True)}">' if row_class else "<tr>")
        + "".join(f"<td>{c if cells_are_html else html.escape(c)}</td>" for c in row)
        + "</tr>"
        for row, row_class in zip(rows, classes)
    )
    opening = f'<table class="{html.escape(table_class, quote=True)}">' if table_class else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_cell(value: object) -> str:
    """Text that is safe inside a Markdown table cell (floats to 4 significant digits)."""
    if isinstance(value, float):
        value = f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table as lines: the header, its rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(value) for value in row) + " |" for row in rows]
    return lines


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
        return "\n".join(markdown_table([self.name_header, *self.columns], self._cells()))

    def _repr_html_(self) -> str:
        return html_table([self.name_header, *self.columns], self._cells())

    def __repr__(self) -> str:
        return self.markdown()
