"""Token sequences (log keys, words, characters, DNA): a fitted vocabulary maps tokens to ids,
which travel through the pipeline as a single float channel of :class:`Sequences`."""

from __future__ import annotations

from collections import Counter
from numbers import Integral
from pathlib import Path

import numpy as np

from ._sequences import Sequences

__all__ = ["TokenSequences", "Vocabulary", "is_token_input", "read_tokens"]

# Ids with a fixed meaning: 0 pads a batch after each sequence's end, 1 stands for a token the
# vocabulary has not seen. Known tokens take 2, 3, ... in order of decreasing count.
PADDING_ID, UNKNOWN_ID = 0, 1
PADDING, UNKNOWN = "<pad>", "<unk>"
N_SPECIAL = 2
# Ids are carried in float32 values: exact up to 2**24.
_MAX_SIZE = 1 << 24


class TokenSequences(list):
    """A list of token sequences, marked as tokens.

    Each item is a sequence of tokens: a list, tuple or 1-D array of strings or of integers
    (one type throughout), or a string, read as its characters. Strings are recognised as tokens
    without this marker; wrap integer sequences in it (``TokenSequences(ids)``), since a list of
    integer arrays is otherwise read as numeric series.

    Parameters
    ----------
    sequences : iterable of token sequences
    vocabulary : Vocabulary or None, default=None
        The vocabulary an estimator fitted on these sequences uses: a fitted one as it is, an
        unfitted one (e.g. ``Vocabulary(min_count=2)``) fitted on them; None fits
        ``Vocabulary()``.
    """

    def __init__(self, sequences=(), vocabulary: "Vocabulary | None" = None):
        super().__init__(sequences)
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            raise TypeError(f"vocabulary must be a Vocabulary or None, got "
                            f"{type(vocabulary).__name__}.")
        self.vocabulary = vocabulary


def _kind_of(token) -> str | None:
    if isinstance(token, (str, np.str_)):
        return "str"
    if isinstance(token, (Integral, np.integer)) and not isinstance(token, (bool, np.bool_)):
        return "int"
    return None


def is_token_input(X) -> bool:
    """Whether ``X`` is token sequences: a :class:`TokenSequences`, or a list or tuple whose
    first sequence is a string or holds strings."""
    if isinstance(X, TokenSequences):
        return True
    if not isinstance(X, (list, tuple)) or not len(X):
        return False
    first = X[0]
    if isinstance(first, (str, np.str_)):
        return True
    if isinstance(first, np.ndarray):
        return first.dtype.kind in "UO" and first.size > 0 and _kind_of(first.flat[0]) == "str"
    if isinstance(first, (list, tuple)) and len(first):
        return _kind_of(first[0]) == "str"
    return False


def _tokens_of(item, name: str, index: int) -> list:
    """One sequence's tokens as a list, checked: not empty, strings or integers, one type."""
    if isinstance(item, (str, np.str_)):
        tokens = list(str(item))
    elif isinstance(item, np.ndarray):
        if item.ndim != 1:
            raise ValueError(f"{name}[{index}] has shape {item.shape}; a token sequence is 1-D "
                             "(one token per step).")
        tokens = item.tolist()
    elif isinstance(item, (list, tuple)):
        tokens = list(item)
    else:
        raise TypeError(f"{name}[{index}] is a {type(item).__name__}; a token sequence is a "
                        "string (its characters), or a list or 1-D array of string or integer "
                        "tokens.")
    if not tokens:
        raise ValueError(f"{name}[{index}] is empty: every sequence needs at least one token. "
                         "Drop the empty sequences.")
    kinds = {_kind_of(t) for t in tokens}
    if None in kinds:
        bad = next(p for p, t in enumerate(tokens) if _kind_of(t) is None)
        kind = type(tokens[bad]).__name__
        raise TypeError(f"{name}[{index}][{bad}] is {tokens[bad]!r} ({kind}): "
                        "tokens are strings or integers. Convert the sequence's tokens to one "
                        "of them (numeric series are passed as arrays, not as tokens).")
    if len(kinds) > 1:
        raise TypeError(f"{name}[{index}] mixes string and integer tokens; use one type (e.g. "
                        "str() every token).")
    if "str" in kinds:
        empty = [p for p, t in enumerate(tokens) if not t]
        if empty:
            raise ValueError(f"{name}[{index}][{empty[0]}] is an empty string; a token needs at "
                             "least one character. Drop empty tokens (str.split() with no "
                             "argument does).")
        return [str(t) for t in tokens]
    return [int(t) for t in tokens]


def _checked(X, name: str) -> list[list]:
    if isinstance(X, (str, np.str_)):
        raise TypeError(f"{name} is a single string; pass a list of sequences, e.g. [{X!r}] for "
                        "one sequence of characters, or a list of token lists.")
    if not isinstance(X, (list, tuple)):
        raise TypeError(f"{name} must be a list of token sequences, got {type(X).__name__}.")
    if not len(X):
        raise ValueError(f"{name} is empty: it holds no sequences. Pass at least one sequence.")
    sequences = [_tokens_of(item, name, i) for i, item in enumerate(X)]
    kinds = {_kind_of(s[0]) for s in sequences}
    if len(kinds) > 1:
        first = _kind_of(sequences[0][0])
        bad = next(i for i, s in enumerate(sequences) if _kind_of(s[0]) != first)
        raise TypeError(f"{name}[{bad}] holds {_kind_of(sequences[bad][0])} tokens but {name}[0] "
                        f"holds {first} tokens; use one type for every sequence.")
    return sequences


class Vocabulary:
    """Map tokens (strings or integers) to ids, fitted on training sequences.

    Id 0 pads a batch after each sequence's end and id 1 (``"<unk>"``) stands for any token not
    in the vocabulary; the known tokens take ids from 2 on, most frequent first (ties in order
    of first appearance). An estimator fitted on token sequences keeps its vocabulary in
    ``vocabulary_`` and saves it with the model; at inference a token it has not seen maps to
    the unknown id (a reconstruction or anomaly score then counts it as an error), or raises
    with ``unknown="error"``.

    Parameters
    ----------
    min_count : int, default=1
        Tokens seen fewer times in the training data map to the unknown id, so that the model
        also learns what an unseen token looks like when rare ones exist.
    max_size : int or None, default=None
        Keep at most this many known tokens (the most frequent); None keeps all.
    unknown : {"map", "error"}, default="map"
        What ``encode`` does with a token outside the vocabulary.
    """

    # The first id of a known token (those below are padding and unknown).
    first_id = N_SPECIAL

    def __init__(self, min_count: int = 1, max_size: int | None = None, unknown: str = "map"):
        if isinstance(min_count, bool) or not isinstance(min_count, Integral) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}.")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(
                max_size, Integral) or not 1 <= max_size <= _MAX_SIZE - N_SPECIAL):
            raise ValueError(f"max_size must be None or an integer in [1, {_MAX_SIZE - N_SPECIAL}]"
                             f", got {max_size!r}.")
        if unknown not in ("map", "error"):
            raise ValueError(f"unknown must be 'map' or 'error', got {unknown!r}.")
        self.min_count, self.max_size, self.unknown = int(min_count), max_size, unknown

    def fit(self, X, name: str = "X") -> "Vocabulary":
        """Learn the tokens of ``X`` (a list of token sequences)."""
        sequences = _checked(X, name)
        counts = Counter(t for s in sequences for t in s)
        tokens = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1])
                  if c >= self.min_count]  # sorted is stable: ties keep first appearance
        if self.max_size is not None:
            tokens = tokens[: self.max_size]
        if len(tokens) > _MAX_SIZE - N_SPECIAL:
            raise ValueError(f"{name} holds {len(tokens)} distinct tokens; at most "
                             f"{_MAX_SIZE - N_SPECIAL} fit. Set max_size.")
        self.tokens_ = tokens
        self.kind_ = _kind_of(sequences[0][0])
        self._index = {t: i + N_SPECIAL for i, t in enumerate(tokens)}
        return self

    def __len__(self) -> int:
        """Number of ids, the two special ones included."""
        self._check_fitted()
        return len(self.tokens_) + N_SPECIAL

    def _check_fitted(self) -> None:
        if not hasattr(self, "tokens_"):
            raise ValueError("this Vocabulary is not fitted: call fit(X) on training sequences.")

    def encode(self, X, name: str = "X") -> Sequences:
        """Token sequences -> :class:`Sequences` of ids, one float32 channel, padded with 0."""
        self._check_fitted()
        sequences = _checked(X, name)
        kind = _kind_of(sequences[0][0])
        if kind != self.kind_:
            raise TypeError(f"{name} holds {kind} tokens, but the vocabulary was fitted on "
                            f"{self.kind_} tokens; pass tokens of the same type as at fit.")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        values = np.zeros((len(sequences), int(lengths.max()), 1), dtype=np.float32)
        index = self._index
        for i, s in enumerate(sequences):
            ids = [index.get(t, UNKNOWN_ID) for t in s]
            if self.unknown == "error" and UNKNOWN_ID in ids:
                p = ids.index(UNKNOWN_ID)
                raise ValueError(f"{name}[{i}][{p}] is {s[p]!r}, a token the vocabulary has not "
                                 "seen. Map it yourself, or use Vocabulary(unknown='map') to read "
                                 "it as the unknown token.")
            values[i, : len(ids), 0] = ids
        return Sequences(values, lengths)

    def decode(self, ids, lengths=None) -> list[list]:
        """Ids -> token lists: ``ids`` of shape (n, T) (or (n, T, 1)) with ``lengths``, or a
        list of 1-D id arrays. The unknown id decodes to ``"<unk>"`` (string vocabularies) or
        -1 (integer ones); padding ids are dropped."""
        self._check_fitted()
        if lengths is not None:
            ids = np.asarray(ids)
            ids = ids.reshape(ids.shape[0], ids.shape[1])
            rows = [ids[i, : int(n)] for i, n in enumerate(lengths)]
        else:
            rows = [np.asarray(r).reshape(-1) for r in ids]
        table = [PADDING, UNKNOWN if self.kind_ == "str" else -1, *self.tokens_]
        out = []
        for row in rows:
            row = np.asarray(row, dtype=np.int64)
            if len(row) and (row.min() < 0 or row.max() >= len(table)):
                raise ValueError(f"ids must lie in [0, {len(table) - 1}] for this vocabulary.")
            out.append([table[i] for i in row.tolist() if i != PADDING_ID])
        return out

    def get_state(self) -> dict:
        """The fitted vocabulary as a JSON-able dict (saved with a model)."""
        self._check_fitted()
        return {"tokens": list(self.tokens_), "kind": self.kind_, "min_count": self.min_count,
                "max_size": self.max_size, "unknown": self.unknown}

    @classmethod
    def from_state(cls, state: dict) -> "Vocabulary":
        """Rebuild a fitted vocabulary from :meth:`get_state`'s dict, checked."""
        if not isinstance(state, dict):
            raise ValueError("the vocabulary must be a mapping")
        vocabulary = cls(state.get("min_count", 1), state.get("max_size"),
                         state.get("unknown", "map"))
        tokens, kind = state.get("tokens"), state.get("kind")
        if kind not in ("str", "int") or not isinstance(tokens, list) or not all(
                _kind_of(t) == kind for t in tokens) or len(set(tokens)) != len(tokens):
            raise ValueError("the vocabulary's 'tokens' must be distinct strings or integers, "
                             "all of its 'kind'")
        vocabulary.tokens_, vocabulary.kind_ = tokens, kind
        vocabulary._index = {t: i + N_SPECIAL for i, t in enumerate(tokens)}
        return vocabulary

    def __repr__(self) -> str:
        size = f", {len(self.tokens_)} tokens" if hasattr(self, "tokens_") else ""
        return (f"Vocabulary(min_count={self.min_count}, max_size={self.max_size}, "
                f"unknown={self.unknown!r}{size})")


def read_tokens(path, split: str = "whitespace", encoding: str = "utf-8") -> TokenSequences:
    """Read a text file of token sequences, one per line (blank lines are skipped).

    Parameters
    ----------
    path : str or path
    split : {"whitespace", "chars"}, default="whitespace"
        ``"whitespace"``: a line's tokens are separated by spaces or tabs (log keys, words);
        ``"chars"``: every character of a line is a token (words, DNA).
    encoding : str, default="utf-8"

    Returns
    -------
    TokenSequences of lists of strings
    """
    if split not in ("whitespace", "chars"):
        raise ValueError(f"split must be 'whitespace' or 'chars', got {split!r}.")
    path = Path(path)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not {encoding} text ({exc.reason} at byte {exc.start}); "
                         "pass encoding= or convert the file.") from None
    lines = [line.rstrip("\r\n") for line in text.split("\n")]
    sequences = [line.split() if split == "whitespace" else list(line.strip())
                 for line in lines if line.strip()]
    if not sequences:
        raise ValueError(f"{path} holds no token sequences (every line is blank).")
    return TokenSequences(sequences)
