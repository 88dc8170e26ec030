"""Plots the notebooks show, by subject. Every function returns the matplotlib Figure it drew.

- :mod:`ldl.plots.images`: batches of photos, whitening, feature maps, ViT patches, attention maps.
- :mod:`ldl.plots.curves`: learning curves of one or several fits (:func:`plot_curves`).
- :mod:`ldl.plots.learning_rates`: the LR range test and learning-rate schedules.
- :mod:`ldl.plots.weights`: weights, batch-norm statistics, activations and gradients layer by layer.
- :mod:`ldl.plots.activations`: how the spread of the activations changes with depth.
- :mod:`ldl.plots.comparisons`: final accuracies of several runs, accuracy against speed.
- :mod:`ldl.plots.seeds`: runs repeated over seeds, every seed faint behind the mean; held-out scores.
- :mod:`ldl.plots.generalisation`: a held-out score's spread, the winner's curse, sweeps with error
  bands, double descent (lesson 6).
- :mod:`ldl.plots.optimisers`: optimisers' paths over a 2-D loss surface (lesson 7).
- :mod:`ldl.plots.search`: a hyperparameter search's trials, grid vs random, and a study's progress (lesson 7).

The functions take plain data (a :class:`ldl.train.History` counts: it is columns per key),
and the one-panel ones take ``ax=`` to draw on a panel of a larger figure. Most draw with
pyplot: in a notebook, end the cell with ``plt.show()``.
"""

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.plots.activations import plot_activation_spread
from ldl.plots.comparisons import plot_accuracy_vs_speed, plot_comparison, plot_final_accuracy
from ldl.plots.curves import (
    compare_gaps,
    compare_histories,
    plot_curves,
    plot_early_stopping,
    plot_overfitting,
    plot_runs,
)
from ldl.plots.generalisation import plot_double_descent, plot_estimate_spread, plot_selection, plot_sweep
from ldl.plots.images import (
    denormalize,
    plot_whitening,
    show_attention_overlay,
    show_batch,
    show_feature_maps,
    show_mixed_batch,
    show_patch_grid,
)
from ldl.plots.learning_rates import plot_lr_finder, plot_lr_schedule
from ldl.plots.optimisers import plot_paths
from ldl.plots.search import plot_search_points, plot_trials
from ldl.plots.seeds import plot_held_out, plot_seed_curves
from ldl.plots.weights import (
    plot_batchnorm_stats,
    plot_clipping,
    plot_gradient_norms_by_depth,
    plot_layer_histograms,
    plot_weight_histograms,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "compare_gaps",
    "compare_histories",
    "denormalize",
    "plot_accuracy_vs_speed",
    "plot_activation_spread",
    "plot_batchnorm_stats",
    "plot_clipping",
    "plot_comparison",
    "plot_curves",
    "plot_double_descent",
    "plot_early_stopping",
    "plot_estimate_spread",
    "plot_final_accuracy",
    "plot_gradient_norms_by_depth",
    "plot_held_out",
    "plot_layer_histograms",
    "plot_lr_finder",
    "plot_lr_schedule",
    "plot_overfitting",
    "plot_paths",
    "plot_search_points",
    "plot_trials",
    "plot_runs",
    "plot_seed_curves",
    "plot_selection",
    "plot_sweep",
    "plot_weight_histograms",
    "plot_whitening",
    "show_attention_overlay",
    "show_batch",
    "show_feature_maps",
    "show_mixed_batch",
    "show_patch_grid",
]
