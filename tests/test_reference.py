"""Reference results: tonight's run against a kept one (ldl.course.reference)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldl.course import reference
from ldl.course.execute import main
from ldl.course.run_report import format_markdown


def run(seconds: float = 10.0, **metrics: object) -> dict:
    return {"profile": "smoke", "profile_used": "smoke", "environment": {"device": "cpu", "torch": "2.11"},
            "notebooks": {"07_optimisation": {"status": "ok", "seconds": seconds, "metrics": metrics},
                          "08_broken": {"status": "failed", "seconds": 1.0, "metrics": {}}}}


KEPT = run(10.0, test_acc=0.90, test_acc_sd=0.02, verdict="unclear", stopped=True, macs=1234.0)


def test_a_normal_run_is_normal() -> None:
    tonight = run(14.0, test_acc=0.93, test_acc_sd=0.01, verdict="unclear", stopped=True, macs=999.0)
    comparison = reference.compare_run(tonight, reference.reference_from_report(KEPT))
    assert reference.is_normal(comparison)
    entry = comparison["notebooks"]["07_optimisation"]
    assert entry["time_ratio"] == pytest.approx(1.4) and not entry["slower"]
    assert "**Normal:**" in "\n".join(reference.format_comparison(comparison, "smoke"))


def test_outside_the_spread_a_changed_verdict_and_a_slow_notebook_are_flagged() -> None:
    tonight = run(16.0, test_acc=0.85, test_acc_sd=0.01, verdict="clearly lower", stopped=False, macs=1234.0)
    comparison = reference.compare_run(tonight, reference.reference_from_report(KEPT))
    entry = comparison["notebooks"]["07_optimisation"]
    assert entry["slower"]
    assert [(row["metric"], row["reference_sd"]) for row in entry["outside_spread"]] == [("test_acc", 0.02)]
    assert {row["metric"] for row in entry["changed"]} == {"verdict", "stopped"}
    assert not reference.is_normal(comparison)
    lines = "\n".join(reference.format_comparison(comparison, "smoke"))
    assert "1.6x slower" in lines and "`test_acc` = 0.85, reference 0.9 ± 0.02" in lines


def test_numbers_without_a_spread_are_not_judged() -> None:
    tonight = run(10.0, test_acc=0.90, test_acc_sd=0.02, verdict="unclear", stopped=True, macs=1.0)
    assert reference.is_normal(reference.compare_run(tonight, reference.reference_from_report(KEPT)))


def test_a_reference_keeps_the_notebooks_that_ran_and_goes_to_its_profiles_file(tmp_path: Path) -> None:
    path = reference.save_reference(KEPT, tmp_path)
    assert path == tmp_path / "smoke.json"
    kept = reference.load_reference(tmp_path, "smoke")
    assert list(kept["notebooks"]) == ["07_optimisation"] and kept["profile"] == "smoke"
    assert reference.load_reference(tmp_path, "gpu") is None
    with pytest.raises(ValueError, match="one profile"):
        reference.save_reference({**KEPT, "profile": "auto", "profile_used": "auto"}, tmp_path)
    (tmp_path / "cpu.json").write_text("{not json")
    with pytest.raises(ValueError, match="cpu.json"):
        reference.load_reference(tmp_path, "cpu")


def test_report_md_shows_the_comparison_after_the_results() -> None:
    tonight = {**run(30.0, test_acc=0.5, test_acc_sd=0.01, verdict="unclear", stopped=True),
               "kernel": "python3", "total_seconds": 31.0, "datasets": [], "weights": []}
    tonight["notebooks"]["07_optimisation"].update(peak_memory_gib=1.0, peak_rss_gib=1.2, device="cpu", error=None)
    tonight["notebooks"]["08_broken"].update(peak_memory_gib=1.0, peak_rss_gib=1.2, device="cpu", error=None)
    tonight["reference"] = reference.compare_run(tonight, reference.reference_from_report(KEPT))
    text = format_markdown(tonight)
    assert text.index("## Notebooks") < text.index("## Against the reference") < text.index("### 07_optimisation")
    assert "3.0x slower" in text and "No reference yet for: 08_broken" in text


def test_the_cli_keeps_a_report_as_the_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(KEPT))
    assert main(["reference", str(report), "--folder", str(tmp_path / "kept")]) == 0
    assert json.loads((tmp_path / "kept" / "smoke.json").read_text())["notebooks"]["07_optimisation"]["seconds"] == 10.0
    assert main(["reference", str(tmp_path / "missing.json"), "--folder", str(tmp_path)]) == 2
    assert "missing.json" in capsys.readouterr().err
