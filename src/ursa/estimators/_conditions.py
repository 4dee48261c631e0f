"""Conditions of a conditional generator: class labels or static attributes, encoded as floats."""

from __future__ import annotations

import numpy as np

__all__ = ["ConditionEncoder"]


def check_conditions(y, n: int) -> np.ndarray:
    """``y`` as a 1-D array of class labels or a 2-D float array of attributes, one row per
    sequence; integral floats in 1-D are labels, other 1-D floats one attribute."""
    if isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise TypeError(f"y must be a 1-D array of class labels or a 2-D array of static "
                        f"attributes, got {type(y).__name__}.")
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D (class labels) or 2-D (static attributes, one row per "
                         f"sequence), got {y.ndim} dimensions with shape {y.shape}.")
    if len(y) != n:
        raise ValueError(f"y has {len(y)} rows but there are {n} sequences; pass one label or "
                         "attribute row per sequence.")
    if y.ndim == 1 and y.dtype.kind == "f":
        if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)  # integral floats are class labels
        else:
            y = y[:, None]  # a single continuous attribute
    if y.ndim == 2:
        if y.dtype.kind not in "biuf":
            raise TypeError(f"2-D y (static attributes) must hold numbers, got dtype {y.dtype}.")
        bad = np.argwhere(~np.isfinite(y.astype(np.float64)))
        if len(bad):
            raise ValueError(f"y[{bad[0][0]}] contains NaN or an infinite value at column "
                             f"{bad[0][1]}; pass finite attributes.")
    elif y.dtype.kind not in "biuUSO":
        raise TypeError(f"1-D y (class labels) must hold integers or strings, got {y.dtype}.")
    return y


class ConditionEncoder:
    """Learns how to encode conditions and encodes them as an (n, width) float32 array.

    Class labels become one-hot rows (``classes_``, with their training counts in
    ``class_counts_``); static attributes are standardised with the training mean and standard
    deviation (``offset_``, ``scale_``). ``kind_`` is None (unconditional), "labels" or
    "attributes". ``get_state`` / ``from_state`` round-trip it through a model file.
    """

    def __init__(self):
        self.kind_ = None
        self.classes_ = self.class_counts_ = None
        self.offset_ = self.scale_ = None

    @property
    def width(self) -> int:
        """Condition channels fed to the networks (0 when unconditional)."""
        if self.kind_ == "labels":
            return len(self.classes_)
        if self.kind_ == "attributes":
            return len(self.offset_)
        return 0

    def fit(self, y, n: int) -> ConditionEncoder:
        self.__init__()
        if y is None:
            return self
        y = check_conditions(y, n)
        if y.ndim == 1:
            self.kind_ = "labels"
            self.classes_, self.class_counts_ = np.unique(y, return_counts=True)
        else:
            self.kind_ = "attributes"
            values = y.astype(np.float64)
            self.offset_ = values.mean(axis=0).astype(np.float32)
            scale = values.std(axis=0)
            self.scale_ = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        return self

    def transform(self, y, n: int) -> np.ndarray | None:
        """The encoded conditions of ``n`` sequences, or None for an unconditional model."""
        if self.kind_ is None:
            if y is not None:
                raise ValueError("y was given, but this model was fitted without conditions; fit "
                                 "with fit(X, y) to generate conditionally.")
            return None
        if y is None:
            raise ValueError("This model was fitted with conditions: pass y (one condition per "
                             "sequence).")
        y = check_conditions(y, n)
        if self.kind_ == "labels":
            if y.ndim != 1:
                raise ValueError(f"y must be 1-D class labels for this model (fitted with labels "
                                 f"{self.classes_.tolist()}), got shape {y.shape}.")
            if self.classes_.dtype.kind in "iu" and y.dtype.kind not in "iu":
                raise ValueError(f"y must hold integer labels from {self.classes_.tolist()}.")
            codes = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
            unknown = np.flatnonzero(self.classes_[codes] != y)
            if len(unknown):
                i = unknown[0]
                raise ValueError(f"y[{i}] = {y[i].item()!r} is not a class seen in fit; use one of "
                                 f"{self.classes_.tolist()}.")
            return np.eye(len(self.classes_), dtype=np.float32)[codes]
        if y.ndim != 2 or y.shape[1] != len(self.offset_):
            raise ValueError(f"y must have shape (n, {len(self.offset_)}) (the static "
                             f"attributes seen in fit), got {y.shape}.")
        return ((y.astype(np.float32) - self.offset_) / self.scale_).astype(np.float32)

    def fit_transform(self, y, n: int) -> np.ndarray | None:
        return self.fit(y, n).transform(y, n)

    def draw_labels(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` class labels drawn with the training class frequencies."""
        return rng.choice(self.classes_, size=n, p=self.class_counts_ / self.class_counts_.sum())

    # ----------------------------------------------------------------- persistence
    def get_state(self) -> tuple[dict, dict]:
        document, arrays = {"condition_kind": self.kind_}, {}
        if self.kind_ == "labels":
            document["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
            document["classes_kind"] = self.classes_.dtype.kind
            arrays["class_counts"] = self.class_counts_.astype(np.int64)
        elif self.kind_ == "attributes":
            arrays["condition_offset"] = self.offset_
            arrays["condition_scale"] = self.scale_
        return document, arrays

    @classmethod
    def from_state(cls, document: dict, arrays: dict) -> ConditionEncoder:
        encoder = cls()
        kind = document["condition_kind"]
        if kind not in (None, "labels", "attributes"):
            raise ValueError(f"unknown condition kind {kind!r}")
        encoder.kind_ = kind
        if kind == "labels":
            classes = list(document["classes"])
            encoder.classes_ = (np.array(classes, dtype=np.int64)
                                if document["classes_kind"] in "iu" else np.array(classes))
            encoder.class_counts_ = np.asarray(arrays["class_counts"], dtype=np.int64)
        elif kind == "attributes":
            encoder.offset_ = np.asarray(arrays["condition_offset"], dtype=np.float32)
            encoder.scale_ = np.asarray(arrays["condition_scale"], dtype=np.float32)
        return encoder
