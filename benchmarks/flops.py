"""The analytic FLOP counts now live in the package (:mod:`studentbert.flops`); this name keeps the benchmarks'
``import flops`` working."""

from studentbert.flops import *  # noqa: F403
from studentbert.flops import __doc__ as _doc  # noqa: F401
