"""Does a lesson's Colab install cell leave Colab's own packages alone?

Colab comes with torch, protobuf, numpy, ipywidgets 7 and some 700 other packages installed.
Each notebook's first cell runs ``%pip install 'ldl[...] @ git+...'`` there. pip keeps an
installed package when it satisfies every requirement, and upgrades it otherwise, without
asking whether other Colab packages still accept the new version (it prints a red
"ERROR: pip's dependency resolver ..." afterwards instead). So the question is whether our
requirements force a change of anything Colab pins.

The check, run with the Python of an environment that holds Colab's versions of the course's
dependencies (``.ci/run`` builds one: ``.venv-colab``):

1. resolve each install cell **under** Colab's pins (``-c compat/colab-constraints.txt``):
   the packages such an install touches that Colab pins are installed at Colab's versions,
   so that this environment looks like Colab wherever the cell could reach;
2. resolve the cell again the way Colab's pip will, **without** the constraints
   (``pip install --dry-run --report``), and list every package pip would install that
   Colab pins at another version.

    .venv-colab/bin/python compat/check_colab_resolver.py          # exit 1 if a cell would change a pin

The cell's ``git+https://...`` source is replaced by this checkout, so the check tests the
code in front of it, not what is on GitHub.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "compat" / "colab-constraints.txt"
# The install command inside a notebook's setup cell: the text between `install -q` and the closing quote.
INSTALL = re.compile(r"""install -q (?P<args>'ldl\[[^']*\] @ git\+[^']+'[^"]*)["]""")
VERSION_PLACEHOLDER = re.compile(r"\{([\w.]+)\.__version__\}")


def canonical(name: str) -> str:
    """PEP 503 name: ``Jupyter_Client`` and ``jupyter-client`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``{package: version}`` of every ``name==version`` line of a constraints file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def install_arguments(notebook: Path) -> list[str] | None:
    """The pip arguments of a notebook's Colab install cell, with this checkout as ldl's source.

    ``{module.__version__}`` placeholders (the cell pins protobuf to Colab's own) are filled in
    from this environment, which holds Colab's versions.
    """
    cells = json.loads(notebook.read_text())["cells"]
    text = "".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    match = INSTALL.search(text)
    if match is None:
        return None

    def version_of(placeholder: re.Match[str]) -> str:
        return importlib.import_module(placeholder.group(1)).__version__

    arguments = VERSION_PLACEHOLDER.sub(version_of, match.group("args"))
    words = re.findall(r"'[^']*'|\S+", arguments)
    words = [word.strip("'") for word in words]
    # 'ldl[weights] @ git+https://github.com/OWNER/NAME@main' -> 'ldl[weights] @ file:///this/checkout'
    words[0] = re.sub(r"@ git\+\S+", f"@ {ROOT.as_uri()}", words[0])
    return words


def pip_report(arguments: list[str], *, constraints: Path | None) -> dict:
    """What ``pip install --dry-run --report`` says it would install for ``arguments``."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report)]
        if constraints is not None:
            command += ["-c", str(constraints)]
        completed = subprocess.run(command + arguments, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"pip could not resolve {arguments}:\n{completed.stderr[-3000:]}")
        return json.loads(report.read_text())


def planned(report: dict) -> dict[str, str]:
    """``{package: version}`` that a pip report would install."""
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}


def changed_pins(would_install: dict[str, str], pins: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{package: (Colab's version, the version pip would install)}`` for every pin pip would change."""
    return {
        name: (pins[name], version)
        for name, version in sorted(would_install.items())
        if name in pins and version != pins[name]
    }


def install_colab_versions(arguments: list[str], pins: dict[str, str]) -> None:
    """Install, at Colab's versions, the pinned packages an install of ``arguments`` reaches."""
    reached = planned(pip_report(arguments, constraints=CONSTRAINTS))
    missing = [f"{name}=={pins[name]}" for name in reached if name in pins]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *missing], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--json", type=Path, help="also write what was found here")
    args = parser.parse_args(argv)
    pins = read_pins()
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    print(f"Python {sys.version.split()[0]}; Colab pins {len(pins)} packages (torch {pins.get('torch')}, "
          f"protobuf {pins.get('protobuf')})")
    findings: dict[str, dict[str, object]] = {}
    # Each distinct install command once, with the notebooks that run it.
    users_of: dict[tuple[str, ...], list[str]] = {}
    for nb in notebooks:
        words = install_arguments(nb)
        if words:
            users_of.setdefault(tuple(words), []).append(nb.name)
    for command, users in users_of.items():
        arguments = list(command)
        install_colab_versions(arguments, pins)
        would_install = planned(pip_report(arguments, constraints=None))
        changes = changed_pins(would_install, pins)
        findings[" ".join(arguments)] = {"notebooks": users, "installs": would_install, "changes": changes}
        print(f"\n%pip install {' '.join(arguments)}\n  used by: {', '.join(users)}")
        print(f"  installs: {', '.join(f'{n} {v}' for n, v in would_install.items() if n != 'ldl') or 'nothing new'}")
        for name, (colab, new) in changes.items():
            print(f"  CHANGES {name}: Colab has {colab}, pip would install {new}")
        if not changes:
            print("  changes nothing Colab pins")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(findings, indent=1))
    return 1 if any(finding["changes"] for finding in findings.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
