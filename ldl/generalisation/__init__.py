"""Generalisation (lesson 6): what a held-out score estimates, and how capacity shapes it.

- :mod:`ldl.generalisation.double_descent`: random ReLU features fitted by minimum-norm least
  squares, swept across the interpolation threshold (written out: it is the lesson);
- :mod:`ldl.generalisation.estimates`: the spread of a held-out accuracy as the held-out set
  grows, and the optimism of the best score chosen on validation.
"""

from ldl.generalisation.double_descent import (
    DoubleDescentCurve,
    double_descent,
    flip_labels,
    min_norm_least_squares,
    random_relu_features,
)
from ldl.generalisation.estimates import Selection, estimate_spread, selection_bias

__all__ = [
    "DoubleDescentCurve",
    "Selection",
    "double_descent",
    "estimate_spread",
    "flip_labels",
    "min_norm_least_squares",
    "random_relu_features",
    "selection_bias",
]
