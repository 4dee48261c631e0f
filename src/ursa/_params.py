"""Declarative parameter checks, run once at the start of ``fit`` (scikit-learn's practice)."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

__all__ = ["Interval", "Options", "Instance", "check_count", "check_params", "fit_seed", "seeds"]


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


def check_count(value, name: str, *, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an int >= ``minimum`` (None passes with ``allow_none``); otherwise a
    ValueError naming ``name``. The one integer-argument check for public methods."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}.")
    return int(value)


def seeds(random_state, n: int = 1, *, derive: bool = True, name: str = "random_state") -> list[int]:
    """``n`` seeds in [0, 2**31 - 1) from a ``random_state`` argument: the one seeding rule.

    None draws fresh entropy; a ``RandomState`` gives its next draws (so it advances, as in
    scikit-learn). An int gives ``n`` seeds derived from it through numpy's Generator, or, with
    ``derive=False`` and ``n == 1``, the int itself (methods whose seed *is* the argument, such
    as ``sample(random_state=3)``). Fits use :func:`fit_seed`, scikit-learn's derivation.
    """
    if random_state is None:
        return [int(s) for s in np.random.SeedSequence().generate_state(n) >> 1]
    if isinstance(random_state, np.random.RandomState):
        return [int(random_state.randint(0, 2**31 - 1)) for _ in range(n)]
    if isinstance(random_state, Integral) and not isinstance(random_state, bool) and random_state >= 0:
        if not derive and n == 1:
            return [int(random_state)]
        rng = np.random.default_rng(int(random_state))
        return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]
    raise ValueError(f"{name} must be None, an integer >= 0 or a RandomState, got "
                     f"{random_state!r}.")


def fit_seed(random_state) -> int:
    """The seed a fit draws from ``random_state`` (scikit-learn's ``check_random_state``
    followed by one draw, so that an int and ``RandomState(int)`` fit alike)."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))
