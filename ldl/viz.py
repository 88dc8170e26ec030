"""Moved to :mod:`ldl.plots`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.plots")
