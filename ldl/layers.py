"""Moved to :mod:`ldl.nn.layers`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.nn.layers")
