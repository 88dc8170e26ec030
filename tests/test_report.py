"""ldl.course.report: metrics kept in memory and merged atomically into the LDL_REPORT file."""

from __future__ import annotations

import json
import time
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ldl.course import report


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch):
    """Each test starts with no recorded metrics and no LDL_REPORT file."""
    monkeypatch.delenv(report.REPORT_ENV, raising=False)
    report.clear()
    yield
    report.clear()


def test_record_keeps_metrics_in_memory_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report.record("val_accuracy", 0.8)
    report.record("val_accuracy", 0.9)  # the same name again replaces the value
    report.record("best_epoch", 7)

    assert report.recorded() == {"val_accuracy": 0.9, "best_epoch": 7}
    assert list(tmp_path.iterdir()) == []


def test_record_merges_into_the_report_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics_file = tmp_path / "metrics" / "lesson.json"
    metrics_file.parent.mkdir()
    metrics_file.write_text(json.dumps({"from_an_earlier_cell": 1}))
    monkeypatch.setenv(report.REPORT_ENV, str(metrics_file))

    before = time.time()
    report.record("train_accuracy", 0.97)
    report.record("gap_closed", True)
    report.record("model", "efficientnet_lite0")
    after = time.time()

    assert json.loads(metrics_file.read_text()) == {
        "from_an_earlier_cell": 1,
        "train_accuracy": 0.97,
        "gap_closed": True,
        "model": "efficientnet_lite0",
    }
    assert report.load(metrics_file) == json.loads(metrics_file.read_text())
    # When each was recorded, beside it (the course website finds each metric's cell by it).
    recorded_at = json.loads(report.cells_file(metrics_file).read_text())
    assert list(recorded_at) == ["train_accuracy", "gap_closed", "model"]
    assert before <= recorded_at["train_accuracy"] <= recorded_at["gap_closed"] <= recorded_at["model"] <= after
    # The temporary files used for the atomic swap are gone.
    assert sorted(path.name for path in metrics_file.parent.iterdir()) == ["lesson.cells.json", "lesson.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics_file = tmp_path / "lesson.json"
    metrics_file.write_text(json.dumps({"kept": 0.5}))
    monkeypatch.setenv(report.REPORT_ENV, str(metrics_file))

    def disk_full(source: str, target: str) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        report.record("new", 1.0)

    assert json.loads(metrics_file.read_text()) == {"kept": 0.5}
    assert [path.name for path in tmp_path.iterdir()] == ["lesson.json"]


def test_numpy_and_torch_scalars_become_plain_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics_file = tmp_path / "lesson.json"
    monkeypatch.setenv(report.REPORT_ENV, str(metrics_file))

    report.record("numpy_float", np.float32(0.25))
    report.record("numpy_int", np.int64(3))
    report.record("tensor", torch.tensor(0.5))

    written = json.loads(metrics_file.read_text())
    assert written == {"numpy_float": 0.25, "numpy_int": 3, "tensor": 0.5}
    assert type(report.recorded()["numpy_int"]) is int
    assert type(report.recorded()["tensor"]) is float


@pytest.mark.parametrize("value", [[0.1, 0.2], {"a": 1}, None, torch.tensor([0.1, 0.2]), np.zeros(3)])
def test_values_that_are_not_one_plain_value_are_rejected(
    value: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_file = tmp_path / "lesson.json"
    metrics_file.write_text(json.dumps({"kept": 1}))
    monkeypatch.setenv(report.REPORT_ENV, str(metrics_file))

    with pytest.raises(TypeError, match="'bad'"):
        report.record("bad", value)  # type: ignore[arg-type]

    assert "bad" not in report.recorded()
    assert json.loads(metrics_file.read_text()) == {"kept": 1}


def test_a_metric_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="name"):
        report.record(3, 1.0)  # type: ignore[arg-type]
    assert report.recorded() == {}


def test_load_a_missing_file_is_empty_and_a_broken_file_is_named(tmp_path: Path) -> None:
    assert report.load(tmp_path / "never_written.json") == {}

    broken = tmp_path / "broken.json"
    broken.write_text('{"accuracy": 0.')
    with pytest.raises(ValueError, match="broken.json"):
        report.load(broken)

    not_an_object = tmp_path / "list.json"
    not_an_object.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        report.load(not_an_object)


def test_show_prints_a_table_outside_a_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    report.show()
    assert "No metrics recorded" in capsys.readouterr().out

    report.record("val_accuracy", 0.876543)
    report.record("train_loss", 0.1, notebook="01_data_augmentation")
    report.show()

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "value", "notebook"]
    assert lines[1].split() == ["val_accuracy", "0.8765"]
    assert lines[2].split() == ["train_loss", "0.1", "01_data_augmentation"]


def test_show_displays_an_html_table_in_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(report, "_running_in_ipython", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)

    report.record("<b>accuracy</b>", 0.5)
    report.show()

    assert len(shown) == 1
    table = shown[0].data
    assert "<td>&lt;b&gt;accuracy&lt;/b&gt;</td><td>0.5</td>" in table
