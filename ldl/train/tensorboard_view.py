"""Moved to :mod:`ldl.widgets.tensorboard`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.widgets.tensorboard")
