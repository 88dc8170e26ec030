"""Optimisers (lesson 7): the update rules written out, and surfaces to watch them on.

- :mod:`ldl.optim.by_hand`: SGD (with momentum and Nesterov), RMSProp, Adam and AdamW, each a
  ``torch.optim.Optimizer`` equal to its ``torch.optim`` counterpart step for step;
- :mod:`ldl.optim.surfaces`: a ravine and a saddle in two dimensions, and the path an
  optimiser takes across them.
"""

from ldl.optim.by_hand import AdamByHand, AdamWByHand, RMSpropByHand, SGDByHand
from ldl.optim.surfaces import ravine, saddle, trace_path

__all__ = ["AdamByHand", "AdamWByHand", "RMSpropByHand", "SGDByHand", "ravine", "saddle", "trace_path"]
