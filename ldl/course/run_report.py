"""``build/report.json`` and ``build/report.md``: what ``make execute-all`` tells the instructor.

``report.json`` is the whole run (every notebook's status, time, peak memory and recorded
metrics, the readiness checks) for the tests and tools; ``report.md`` is the same for people:
results first, then failures, warnings and the machine.
"""

from __future__ import annotations

from pathlib import Path

from ldl.core.files import write_json_atomically, write_text_atomically
from ldl.core.tables import markdown_table
from ldl.course.reference import format_comparison


def write_reports(run_report: dict[str, object], build_dir: Path) -> None:
    """Write ``report.json`` and ``report.md`` into ``build_dir`` (each atomically)."""
    write_json_atomically(build_dir / "report.json", run_report)
    write_text_atomically(build_dir / "report.md", format_markdown(run_report))


def format_markdown(run_report: dict[str, object]) -> str:
    """``report.md``: results first, then failures, warnings and the readiness checks."""
    results: dict[str, dict[str, object]] = run_report["notebooks"]  # type: ignore[assignment]
    failed = {name: result for name, result in results.items() if result["status"] != "ok"}
    lines = [
        f"# Course run: profile `{run_report['profile']}`",
        "",
        f"{len(results) - len(failed)} of {len(results)} notebooks ran in {run_report['total_seconds']:.1f} s "
        f"(kernel `{run_report['kernel']}`).",
        "",
        "## Notebooks",
        "",
    ]
    lines += markdown_table(
        ["notebook", "status", "seconds", "peak memory (GiB)", "peak RSS (GiB)", "device", "metrics"],
        [
            [
                name,
                result["status"],
                result["seconds"],
                # Reports written before memory was measured lack the key.
                "n/a" if result.get("peak_memory_gib") is None else result["peak_memory_gib"],
                "n/a" if result.get("peak_rss_gib") is None else result["peak_rss_gib"],
                result["device"],
                len(dict(result["metrics"])),
            ]
            for name, result in results.items()
        ],
    )
    if run_report.get("reference") is not None:
        lines += [""] + format_comparison(run_report["reference"], str(run_report.get("profile_used", run_report["profile"])))
    for name, result in results.items():
        metrics = dict(result["metrics"])
        if metrics:
            lines += ["", f"### {name}", ""]
            lines += markdown_table(["metric", "value"], list(metrics.items()))
    if failed:
        lines += ["", "## Failures"]
        for name, result in failed.items():
            error = dict(result["error"] or {})
            index = error.get("source_cell_index")
            where = (
                f"cell {int(index) + 1} of the notebook as written (index {index}; "
                f"In [{error.get('execution_count')}] in the executed copy)"
                if index is not None
                else "before or outside a cell"
            )
            lines += ["", f"### {name}", "", f"Failed in {where}: `{error.get('ename')}: {error.get('evalue')}`"]
            if error.get("source"):
                lines += ["", "```python", str(error["source"]), "```"]
            if result.get("output"):
                lines += ["", f"Executed copy: `{result['output']}`"]
    messages = [*run_report.get("errors", []), *run_report.get("warnings", [])]  # type: ignore[list-item]
    if messages:
        lines += ["", "## Warnings", ""] + [f"- {message}" for message in messages]
    environment: dict[str, object] = run_report["environment"]  # type: ignore[assignment]
    lines += ["", "## Environment", ""] + markdown_table(["", ""], list(environment.items()))
    lines += ["", "## Datasets", ""]
    lines += markdown_table(
        ["dataset", "status", "network"],
        [
            [row["name"], row["status"], "; ".join(f"{url}: {r}" for url, r in dict(row.get("network") or {}).items())]
            for row in run_report["datasets"]  # type: ignore[union-attr]
        ],
    )
    lines += ["", "## Pretrained weights", ""]
    lines += markdown_table(
        ["source", "status", "detail"],
        [[row["name"], row["status"], row.get("detail", "")] for row in run_report["weights"]],  # type: ignore[union-attr]
    )
    return "\n".join(lines) + "\n"


# Command line
