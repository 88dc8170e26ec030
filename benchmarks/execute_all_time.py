"""How long does the instructor's `make execute-all` take in the smoke profile, per notebook and in all?

Runs every lesson through the same code path as `make execute-all` (papermill, one kernel
per notebook, no HTML export) and prints each notebook's seconds, the total, and the total
against the 8-minute target for 2 cores.

    LDL_DATA=../shared/data taskset -c 0,1 .venv/bin/python benchmarks/execute_all_time.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.course.execute import default_notebooks, execute_all  # noqa: E402

TARGET_S = 8 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--build", type=Path, default=None,
                        help="keep the executed notebooks here (their cells carry papermill's timings)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        build = args.build or Path(scratch)
        root = Path(__file__).resolve().parents[1]
        execute_all(default_notebooks(root), profile=args.profile, build_dir=build, cell_timeout=900, html=False)
        report = json.loads((build / "report.json").read_text())
    total = 0.0
    print(f"{'notebook':<40}{'status':>8}{'seconds':>10}")
    for name, result in report["notebooks"].items():
        total += result["seconds"]
        print(f"{name:<40}{result['status']:>8}{result['seconds']:>10.1f}")
    print(f"{'total':<40}{'':>8}{total:>10.1f}")
    print(f"total / {TARGET_S // 60}-minute target: {total / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
