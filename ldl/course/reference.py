"""Reference results: is tonight's run normal?

``reference/<profile>.json`` (committed) holds the metrics and per-notebook seconds of a run
of that profile that was checked by hand. ``make execute-all`` compares tonight's run with
it and says, in ``build/report.md`` and ``report.json``:

- a notebook that took more than ``SLOWER_FACTOR`` (1.5) times its reference seconds;
- a metric measured over seeds (it has a ``<name>_sd`` beside it) that lies more than
  ``SPREAD_FACTOR`` (2) of the reference's sds from the reference's mean: more than the
  seeds' own scatter explains;
- a verdict or other word, or a yes/no, that changed ("unclear" became "clearly higher").

Other numbers (single measurements with no spread to judge them by) are not flagged.

    python -m ldl.course reference build/report.json      # writes reference/<profile>.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ldl.core.files import write_json_atomically

SLOWER_FACTOR = 1.5
SPREAD_FACTOR = 2.0
SD_SUFFIX = "_sd"


def reference_from_report(run_report: dict[str, Any]) -> dict[str, Any]:
    """The parts of a run worth keeping as a reference: each notebook that ran, its seconds and metrics."""
    environment = dict(run_report.get("environment", {}))
    return {
        "profile": run_report["profile"],
        "device": environment.get("device"),
        "torch": environment.get("torch"),
        "notebooks": {
            name: {"seconds": result["seconds"], "metrics": dict(result["metrics"])}
            for name, result in run_report["notebooks"].items()
            if result["status"] == "ok"
        },
    }


def save_reference(run_report: dict[str, Any], folder: Path) -> Path:
    """Write ``folder/<profile>.json`` from a run's report (atomically); return its path."""
    profile = run_report.get("profile_used", run_report["profile"])
    if profile == "auto":
        raise ValueError("A reference belongs to one profile: run execute-all with --profile smoke, cpu or gpu.")
    reference = reference_from_report(run_report)
    reference["profile"] = profile
    if not reference["notebooks"]:
        raise ValueError("No notebook ran successfully in this report: there is nothing to keep as a reference.")
    path = folder / f"{profile}.json"
    write_json_atomically(path, reference)
    return path


def load_reference(folder: Path, profile: str) -> dict[str, Any] | None:
    """``folder/<profile>.json``, or ``None`` when that profile has no reference yet."""
    path = folder / f"{profile}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"The reference {path} cannot be read ({error}); restore it from git or "
                         "write a new one with `python -m ldl.course reference build/report.json`.") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def compare_notebook(tonight: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """What is unusual about one notebook's run against its reference entry."""
    metrics, known = dict(tonight["metrics"]), dict(reference["metrics"])
    outside, changed = [], []
    for name, expected in known.items():
        if name.endswith(SD_SUFFIX) or name not in metrics:
            continue
        value = metrics[name]
        sd = known.get(name + SD_SUFFIX)
        if _is_number(value) and _is_number(expected) and _is_number(sd):
            if abs(value - expected) > SPREAD_FACTOR * sd:
                outside.append({"metric": name, "value": value, "reference": expected, "reference_sd": sd})
        elif isinstance(expected, (str, bool)) and value != expected:
            changed.append({"metric": name, "value": value, "reference": expected})
    ratio = tonight["seconds"] / reference["seconds"] if reference.get("seconds") else None
    return {
        "seconds": tonight["seconds"],
        "reference_seconds": reference.get("seconds"),
        "slower": ratio is not None and ratio > SLOWER_FACTOR,
        "time_ratio": ratio,
        "outside_spread": outside,
        "changed": changed,
        "missing": sorted(name for name in known if name not in metrics and not name.endswith(SD_SUFFIX)),
    }


def compare_run(run_report: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Every notebook that ran tonight and has a reference entry, compared (see :func:`compare_notebook`)."""
    known = reference["notebooks"]
    return {
        "reference_device": reference.get("device"),
        "notebooks": {
            name: compare_notebook(result, known[name])
            for name, result in run_report["notebooks"].items()
            if result["status"] == "ok" and name in known
        },
        "without_reference": sorted(name for name in run_report["notebooks"] if name not in known),
    }


def is_normal(comparison: dict[str, Any]) -> bool:
    """No notebook slower than ``SLOWER_FACTOR``, no metric outside the spread, no verdict changed."""
    return not any(entry["slower"] or entry["outside_spread"] or entry["changed"]
                   for entry in comparison["notebooks"].values())


def format_comparison(comparison: dict[str, Any], profile: str) -> list[str]:
    """Markdown lines for ``report.md``: a heading, the verdict, then each flag."""
    return ["## Against the reference", ""] + comparison_lines(comparison, profile)


def comparison_lines(comparison: dict[str, Any], profile: str) -> list[str]:
    """The verdict first, then each flag (a ``###`` heading per notebook), as Markdown lines."""
    lines: list[str] = []
    entries = comparison["notebooks"]
    if not entries:
        return lines + [f"No notebook of this run has a reference for profile `{profile}`."]
    lines.append(f"Reference: `reference/{profile}.json` (measured on {comparison['reference_device']}).")
    lines.append("")
    if is_normal(comparison):
        lines.append(f"**Normal:** every notebook ran within {SLOWER_FACTOR:g}x its reference time, and every metric "
                     f"measured over seeds lies within {SPREAD_FACTOR:g} sds of its reference.")
    for name, entry in entries.items():
        flags = []
        if entry["slower"]:
            flags.append(f"- {entry['time_ratio']:.1f}x slower than the reference "
                         f"({entry['seconds']:.0f} s vs {entry['reference_seconds']:.0f} s)")
        for row in entry["outside_spread"]:
            flags.append(f"- `{row['metric']}` = {row['value']:.4g}, reference {row['reference']:.4g} ± "
                         f"{row['reference_sd']:.2g}: outside {SPREAD_FACTOR:g} sds")
        for row in entry["changed"]:
            flags.append(f"- `{row['metric']}` = {row['value']!r}, reference {row['reference']!r}")
        if entry["missing"]:
            flags.append(f"- not recorded tonight: {', '.join(entry['missing'])}")
        if flags:
            lines += ["", f"### {name}", ""] + flags
    if comparison["without_reference"]:
        lines += ["", f"No reference yet for: {', '.join(comparison['without_reference'])}."]
    return lines
