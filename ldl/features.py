"""Moved to :mod:`ldl.measure.features`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.measure.features")
