"""The claims dashboard: one page that says whether tonight's run shows what the lessons claim.

Built from a run's ``build/report.json`` (:func:`ldl.course.execute.execute_all`) into a
MyST Markdown page of the course website:

1. the run: profile, device, torch, each notebook's status and minutes;
2. whether the run is normal against the kept reference (``reference/<profile>.json``,
   :mod:`ldl.course.reference`): slower notebooks, metrics outside the reference's spread,
   changed verdicts;
3. every headline claim (:data:`ldl.course.claims.CLAIMS`) with its measured value (mean ± sd
   where the lesson ran seeds), its rule and whether it holds, linked to the cell that
   recorded it;
4. every number each lesson recorded, with the same links and the reference's verdict.

The tables are HTML blocks inside the Markdown, so each row can link to a cell's anchor
(``notebooks/<lesson>.html#cell-<id>``, made by :mod:`ldl.site.source`).
"""

from __future__ import annotations

import html
import math
from typing import Any

from ldl.core.tables import html_table
from ldl.course.claims import CLAIMS, HOLDS, NOT_RECORDED, judge
from ldl.course.reference import SD_SUFFIX, SPREAD_FACTOR, comparison_lines

# CSS classes the site's stylesheet colours and the browser test looks for.
ROW_CLASS = "ldl-claim"
VERDICT_CLASSES = {HOLDS: "ldl-holds", NOT_RECORDED: "ldl-missing"}
FAILS_CLASS = "ldl-fails"


def cell_anchor(cell_id: str) -> str:
    """The HTML id of a lesson cell on its page: ``cell-<the notebook's cell id>``."""
    return f"cell-{cell_id}"


def lesson_link(notebook: str, cell_id: str | None = None) -> str:
    """Relative address, from the site's root, of a lesson page or one of its cells."""
    page = f"notebooks/{notebook}.html"
    return f"{page}#{cell_anchor(cell_id)}" if cell_id else page


def format_number(value: Any) -> str:
    """Floats with 3 significant digits; integers, words, yes/no and non-finite floats as they are."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    return str(value)


def format_measurement(metrics: dict[str, Any], name: str) -> str:
    """``"0.745 ± 0.0102"`` when the lesson recorded ``<name>_sd``, else the value; ``—`` when missing."""
    if name not in metrics:
        return "—"
    value = format_number(metrics[name])
    sd = metrics.get(name + SD_SUFFIX)
    if isinstance(sd, (int, float)) and not isinstance(sd, bool):
        return f"{value} ± {format_number(float(sd))}"
    return value


def _html_table(columns: list[str], rows: list[tuple[str, list[str]]], table_class: str) -> str:
    """An HTML table on one line (so Markdown keeps it as one HTML block); each row is
    ``(its CSS class, its cells' HTML)``."""
    return html_table(columns, [cells for _, cells in rows], table_class=table_class,
                      row_classes=[row_class for row_class, _ in rows], cells_are_html=True)


def _link(text: str, address: str) -> str:
    return f'<a href="{html.escape(address, quote=True)}">{html.escape(text)}</a>'


def _lesson_results(run_report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(run_report.get("notebooks", {}))


def run_section(run_report: dict[str, Any]) -> list[str]:
    """Which run this page shows: profile, device, torch, and each lesson's status and time."""
    environment = run_report.get("environment", {})
    profile = run_report.get("profile_used", run_report.get("profile", "?"))
    asked = run_report.get("profile")
    asked_text = f" (asked for `{asked}`)" if asked and asked != profile else ""
    lines = [
        f"Profile **`{profile}`**{asked_text} on **{environment.get('device', '?')}**, torch "
        f"{environment.get('torch', '?')}, {format_number(float(run_report.get('total_seconds', 0.0)) / 60)} minutes "
        "in all. The numbers are this run's; each lesson page shows the same run's cells.",
        "",
    ]
    rows = []
    for notebook, result in _lesson_results(run_report).items():
        status = str(result.get("status"))
        rows.append((f"ldl-{status}", [
            _link(notebook, lesson_link(notebook)),
            html.escape(status),
            format_number(round(float(result.get("seconds", 0.0)) / 60, 1)),
            html.escape(str(result.get("device", environment.get("device", "?")))),
        ]))
    return lines + [_html_table(["lesson", "status", "minutes", "device"], rows, "ldl-runs"), ""]


def reference_section(run_report: dict[str, Any]) -> list[str]:
    """``report.md``'s "Against the reference", under its own heading here."""
    comparison = run_report.get("reference")
    profile = str(run_report.get("profile_used", run_report.get("profile", "?")))
    lines = ["## Is tonight's run normal?", ""]
    if comparison is None:
        return lines + [f"No reference is kept for profile `{profile}` yet: there is nothing to compare with. "
                        "After a run you have checked, keep it with "
                        "`python -m ldl.course reference build/report.json`.", ""]
    return lines + comparison_lines(comparison, profile) + [""]


def claims_section(run_report: dict[str, Any]) -> list[str]:
    """Every headline claim, its value, its rule and whether it holds, linked to its cell."""
    results = _lesson_results(run_report)
    rows = []
    holding = 0
    judged = 0
    for claim in CLAIMS:
        result = results.get(claim.notebook)
        metrics = dict(result.get("metrics", {})) if result else {}
        cells = dict(result.get("metric_cells", {})) if result else {}
        verdict = judge(claim, metrics) if result else NOT_RECORDED
        shown = claim.shown_metric(metrics)
        holding += verdict == HOLDS
        judged += verdict != NOT_RECORDED
        rows.append((f"{ROW_CLASS} {VERDICT_CLASSES.get(verdict, FAILS_CLASS)}", [
            _link(claim.notebook[:2], lesson_link(claim.notebook)),
            _link(claim.statement, lesson_link(claim.notebook, cells.get(shown))),
            f"<code>{html.escape(shown)}</code> = {html.escape(format_measurement(metrics, shown))}",
            html.escape(claim.rule),
            f'<span class="ldl-verdict">{html.escape(verdict)}</span>',
        ]))
    summary = (f"{holding} of {len(CLAIMS)} claims hold in this run"
               + (f"; {len(CLAIMS) - judged} could not be judged (their lesson did not run or record them)."
                  if judged < len(CLAIMS) else "."))
    return [
        "## The lessons' claims",
        "",
        summary + " A claim about generalising is judged on the test photos, and a difference counts only "
        "when it is larger than its spread over seeds (mean ± sd). Each claim links to the cell that "
        "recorded its number.",
        "",
        _html_table(["lesson", "claim", "measured", "holds when", "verdict"], rows, "ldl-claims"),
        "",
    ]


def _reference_flag(name: str, comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "no reference"
    if any(row["metric"] == name for row in comparison.get("outside_spread", [])):
        return f"outside {SPREAD_FACTOR:g} sds"
    if any(row["metric"] == name for row in comparison.get("changed", [])):
        return "changed"
    return "normal"


def metrics_section(run_report: dict[str, Any]) -> list[str]:
    """Every number every lesson recorded (a ``_sd`` beside its mean), linked to its cell."""
    lines = ["## Every recorded number", "",
             "What each lesson recorded with `ldl.course.report.record`, beside the reference's verdict: "
             f"*outside {SPREAD_FACTOR:g} sds* marks a number measured over seeds that lies further from the "
             "reference's mean than the seeds' scatter explains.", ""]
    compared = (run_report.get("reference") or {}).get("notebooks", {})
    for notebook, result in _lesson_results(run_report).items():
        metrics = dict(result.get("metrics", {}))
        cells = dict(result.get("metric_cells", {}))
        rows = []
        for name in metrics:
            if name.endswith(SD_SUFFIX) and name[: -len(SD_SUFFIX)] in metrics:
                continue
            flag = _reference_flag(name, compared.get(notebook))
            rows.append((f"ldl-metric ldl-{flag.split()[0]}", [
                _link(name, lesson_link(notebook, cells.get(name))),
                html.escape(format_measurement(metrics, name)),
                html.escape(flag),
            ]))
        lines += [f"### {notebook}", ""]
        if rows:
            lines += [_html_table(["metric", "value", "against the reference"], rows, "ldl-metrics"), ""]
        else:
            lines += [f"Nothing recorded: the lesson {html.escape(str(result.get('status')))}.", ""]
    return lines


def dashboard_page(run_report: dict[str, Any]) -> str:
    """The whole dashboard as MyST Markdown."""
    lines = ["# Claims dashboard", ""]
    lines += run_section(run_report)
    lines += reference_section(run_report)
    lines += claims_section(run_report)
    lines += metrics_section(run_report)
    return "\n".join(lines).rstrip() + "\n"
