"""ldl: the helper package behind the "Learning Deep Learning" notebooks.

Import the parts you need, e.g. ``from ldl import profiles`` or
``from ldl.train import Trainer``. Nothing heavy happens at import time.
"""

__version__ = "0.1.0"
