"""Moved to :mod:`ldl.measure.inductive_bias`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.measure.inductive_bias")
