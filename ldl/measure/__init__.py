"""Measuring networks: speed, size, what they learned, and how they leave the notebook.

- :mod:`ldl.measure.bench`: throughput with warm-up and medians, multiply-accumulates;
- :mod:`ldl.measure.compare`: several networks side by side, checked against published figures (lesson 5);
- :mod:`ldl.measure.inductive_bias`: how much a network's features move when the photo shifts (lesson 5);
- :mod:`ldl.measure.features`: a frozen network's features, computed once and saved (lesson 4);
- :mod:`ldl.measure.export`: ``torch.export`` and ONNX files, checked against the model (lesson 4).
"""

from ldl.measure import bench
from ldl.measure.compare import (
    check_against_published,
    compare_models,
    comparison_table,
    relative_speeds,
    rows_for_plot,
    set_finetuned,
)
from ldl.measure.export import OnnxModel, UntrustedProgram, check_export, export_onnx, export_program, load_program
from ldl.measure.features import FeatureSet, extract_features, load_features, save_features
from ldl.measure.inductive_bias import translation_sensitivities

__all__ = [
    "FeatureSet",
    "OnnxModel",
    "UntrustedProgram",
    "bench",
    "check_against_published",
    "check_export",
    "compare_models",
    "comparison_table",
    "export_onnx",
    "export_program",
    "extract_features",
    "load_features",
    "load_program",
    "relative_speeds",
    "rows_for_plot",
    "save_features",
    "set_finetuned",
    "translation_sensitivities",
]
