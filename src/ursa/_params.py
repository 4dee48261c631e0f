"""Declarative parameter checks, run once at the start of ``fit`` (scikit-learn's practice)."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

__all__ = ["Interval", "Options", "Instance", "check_params"]


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) in [low, high]; ``open_low`` / ``open_high`` make a bound
    strict."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, Integral):
            return False
        if self.kind is float and not isinstance(value, Real):
            return False
        if isinstance(value, Real) and not np.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value < self.high or (value == self.high and not self.open_high)

    def describe(self) -> str:
        kind = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left = "(" if self.open_low else "["
            right = ")" if self.open_high else "]"
            return f"{kind} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.open_low else '>='} {self.low}"
        return kind


@dataclass(frozen=True)
class Options:
    values: tuple

    def accepts(self, value) -> bool:
        return isinstance(value, (str, type(None), bool)) and value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Instance:
    types: tuple

    def accepts(self, value) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return "an instance of " + " or ".join(t.__name__ for t in self.types)


def check_params(estimator, constraints: dict) -> None:
    """Raise ValueError naming the first parameter whose value no constraint accepts."""
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if any((value is None) if rule is None else rule.accepts(value) for rule in allowed):
            continue
        described = ["None" if rule is None else rule.describe() for rule in allowed]
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be "
            f"{' or '.join(described)}; got {value!r}."
        )
