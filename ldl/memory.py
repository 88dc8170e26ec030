"""Moved to :mod:`ldl.core.memory`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.core.memory")
