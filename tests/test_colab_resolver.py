"""compat/check_colab_resolver.py: the logic that decides whether an install cell changes a Colab pin.

The check itself runs in CI inside an environment pinned like Colab (.ci/run); these tests
cover its parsing and its verdict on made-up pip reports.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("check_colab_resolver", ROOT / "compat" / "check_colab_resolver.py")
resolver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(resolver)


def test_colabs_pins_are_read_with_canonical_names() -> None:
    pins = resolver.read_pins()
    assert pins["torch"] == "2.11.0" and pins["torchvision"] == "0.26.0" and pins["protobuf"].startswith("5.29")
    assert pins["ipywidgets"] == "7.7.1" and pins["notebook"] == "6.5.7" and pins["ipython"] == "7.34.0"
    assert pins["jupyter-client"] == resolver.read_pins()["jupyter-client"]  # jupyter_client in the file


def test_each_notebooks_install_cell_is_read_with_this_checkout_as_the_source() -> None:
    lesson0 = resolver.install_arguments(ROOT / "notebooks" / "00_recap_cnn_from_scratch.ipynb")
    assert lesson0 == [f"ldl[weights] @ {ROOT.as_uri()}"]
    lesson4 = resolver.install_arguments(ROOT / "notebooks" / "04_transfer_learning.ipynb")
    import google.protobuf

    # Lesson 4 keeps Colab's protobuf: the newest onnx would otherwise pull protobuf 7.
    assert lesson4 == [f"ldl[weights,export] @ {ROOT.as_uri()}", f"protobuf=={google.protobuf.__version__}"]


def test_a_changed_pin_is_reported_and_new_packages_are_not() -> None:
    pins = {"torch": "2.11.0", "protobuf": "5.29.6", "numpy": "2.1.3"}
    report = {"install": [
        {"metadata": {"name": "protobuf", "version": "7.36.2"}},
        {"metadata": {"name": "onnx", "version": "1.23.2"}},  # Colab has none: installing it is fine
        {"metadata": {"name": "NumPy", "version": "2.1.3"}},  # the same version: no change
    ]}
    assert resolver.changed_pins(resolver.planned(report), pins) == {"protobuf": ("5.29.6", "7.36.2")}
    assert resolver.changed_pins(resolver.planned({"install": []}), pins) == {}
