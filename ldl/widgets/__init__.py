"""What a student moves and watches: the lessons' playgrounds and TensorBoard in the notebook.

- :mod:`ldl.widgets.augmentation`: lesson 1's augmentation playground;
- :mod:`ldl.widgets.init`: lesson 3's initialisation playground;
- :mod:`ldl.widgets.tensorboard`: ``show_tensorboard``, wherever the notebook runs (imported on
  its own, since it loads TensorBoard);
- :mod:`ldl.widgets.display`: a live widget for a person, a picture for a static notebook.
"""

from ldl.widgets.augmentation import Playground, augmentation_playground
from ldl.widgets.display import WIDGET_VIEW_MIMETYPE
from ldl.widgets.init import InitPlayground, deep_activations, init_playground

__all__ = [
    "WIDGET_VIEW_MIMETYPE",
    "InitPlayground",
    "Playground",
    "augmentation_playground",
    "deep_activations",
    "init_playground",
    # imported on its own: from ldl.widgets.tensorboard import show_tensorboard
    "tensorboard",
]
