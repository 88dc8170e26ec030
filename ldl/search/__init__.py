"""Hyperparameter search (lesson 7): grid and random points, and Optuna studies on SQLite.

- :mod:`ldl.search.spaces`: the same number of trials laid out as a grid or drawn at random,
  on a log scale (Bergstra & Bengio 2012: random search tries more values of each parameter);
- :mod:`ldl.search.study`: an Optuna study stored in an SQLite file (so several processes or
  machines can work on one search), a pruning callback for the Trainer, and the trials as rows.
"""

from ldl.search.spaces import distinct_values, grid_points, random_points
from ldl.search.study import OptunaPruning, create_study, sqlite_url, trials_table

__all__ = ["OptunaPruning", "create_study", "distinct_values", "grid_points", "random_points", "sqlite_url",
           "trials_table"]
