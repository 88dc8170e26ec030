"""Moved to :mod:`ldl.course.readiness`; this old path works until the next release."""

from ldl._moved import forward

__getattr__ = forward(__name__, "ldl.course.readiness")
