from __future__ import annotations

import pytest

from ldl.core.tables import ResultsTable, format_cell


def test_rows_grow_and_replace_by_name() -> None:
    table = ResultsTable(["val_acc", "trainable"])
    table.add("scratch", val_acc=0.7125, trainable=1_234_567)
    table.add("frozen", val_acc=0.97)
    table.add("scratch", val_acc=0.75, trainable=10)
    assert [name for name, _ in table.rows] == ["frozen", "scratch"]
    assert table.row("scratch")["val_acc"] == 0.75
    markdown = table.markdown().splitlines()
    assert markdown[0] == "| step | val_acc | trainable |"
    assert markdown[2] == "| frozen | 0.970 | - |"
    assert "<td>10</td>" in table._repr_html_()


def test_unknown_columns_and_rows_are_clear_errors() -> None:
    table = ResultsTable(["val_acc"])
    with pytest.raises(ValueError, match="val_acc"):
        table.add("x", accuracy=1.0)
    with pytest.raises(KeyError, match="no_such"):
        table.row("no_such")


def test_cells_are_formatted_for_reading() -> None:
    assert format_cell(2_500_000) == "2,500,000"
    assert format_cell(0.9712) == "0.971"
    assert format_cell(3e-4) == "3.00e-04"
    assert format_cell(1234.5) == "1,234"
    assert format_cell(None) == "-" and format_cell(True) == "yes"
