"""One model file format for every estimator: a single safetensors file.

The tensors hold the network weights and every numeric fitted array (scaler statistics, centres...).
The safetensors header's metadata holds, as JSON, the format name and version, the estimator class,
its parameters and its non-array fitted state (history, shapes), plus a SHA-256 checksum over all of
it, so that a truncated, tampered or foreign file is refused with a clear error. Nothing is ever
unpickled, and only classes registered here can be rebuilt: a model file cannot name code to run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._registry import ESTIMATORS, entry_for, register, registered_class

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "describe_model", "load", "read_model",
           "register", "save_model"]

FORMAT = "ursa-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be loaded: truncated, tampered, wrong version or not an ursa model."""


def _checksum(document: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(document.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model(path, class_name: str, document: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``document`` (JSON-able) and ``arrays`` to ``path`` atomically.

    The file is written beside ``path`` and renamed over it once complete, so that an
    interrupted save never leaves a half-written model. Returns ``path`` as a Path.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot save to {str(path)!r}: the folder {str(path.parent)!r} "
                                "does not exist; create it first or choose another path.")
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    text = json.dumps(document, sort_keys=True, allow_nan=True)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "class": class_name,
        "document": text,
        "checksum": _checksum(class_name + text, arrays),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(arrays, str(tmp), metadata=metadata)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_model(path) -> tuple[str, dict, dict[str, np.ndarray]]:
    """Read and verify a model file without building the model.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    class_name : str
        The estimator class the file was saved from.
    document : dict
        The JSON part: parameters and non-array fitted state.
    arrays : dict of str to ndarray
        The weights and the numeric fitted arrays.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        The file is truncated, tampered with, from another format version, or not an ursa model.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    where = f"model file {str(path)!r}"
    try:
        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
            arrays = {name: fh.get_tensor(name) for name in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for every malformed header
        raise ModelFileError(
            f"Cannot read {where}: it is truncated, corrupted or not a safetensors file ({exc})."
        ) from None
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{where} is not an ursa model (no '{FORMAT}' marker in its header).")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{where} has format version {version!r}; this ursa reads version {FORMAT_VERSION}. "
            "Load it with the ursa release that saved it, or refit the model."
        )
    class_name = metadata.get("class", "")
    text = metadata.get("document", "")
    if metadata.get("checksum") != _checksum(class_name + text, arrays):
        raise ModelFileError(f"{where} failed its checksum: the file was modified or corrupted.")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ModelFileError(f"{where} has an unreadable JSON document ({exc}).") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{where} has a JSON document of the wrong type.")
    return class_name, document, arrays


def describe_model(path) -> dict:
    """What a model file holds, read from its header without building the model.

    Parameters
    ----------
    path : str or path-like
        A file written by an estimator's ``save``.

    Returns
    -------
    dict
        ``file``, ``size_bytes``, ``format_version``, ``class``, ``kind`` (its task name, as in
        ``ursa fit KIND``; None for a class ursa does not know), ``n_features_in``,
        ``feature_names_in`` (None when the model has no feature names), ``n_weights``
        (network weights), ``params``, ``epochs_trained``, ``training_seconds`` (summed over the
        training history), ``last_epoch`` (the last history record, or None), ``privacy``
        (what a private fit spent, see ``privacy_spent_``; None otherwise), ``vocabulary_size``
        (known tokens, for a model fitted on tokens) and ``audio_frontend`` (for one fitted on
        :func:`ursa.data.read_audio` features), then every other
        number, string or flag of the saved state (e.g. ``n_iter``).

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`read_model`.
    """
    path = Path(path)
    class_name, document, arrays = read_model(path)
    history = document.get("history") or []
    try:
        kind = entry_for(class_name).task
    except ValueError:
        kind = None
    summary = {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "format_version": FORMAT_VERSION,
        "class": class_name,
        "kind": kind,
        "n_features_in": document.get("n_features_in"),
        "feature_names_in": document.get("feature_names_in"),
        "n_weights": sum(int(a.size) for k, a in arrays.items() if k.startswith("network.")),
        "params": document.get("params", {}),
        "epochs_trained": len(history),
        "training_seconds": round(sum(float(r.get("seconds", 0)) for r in history), 3),
        "last_epoch": history[-1] if history else None,
        "privacy": document.get("privacy_spent"),
    }
    vocabulary = document.get("vocabulary")
    if isinstance(vocabulary, dict) and isinstance(vocabulary.get("tokens"), list):
        summary["vocabulary_size"] = len(vocabulary["tokens"])  # known tokens
    frontend = document.get("audio_frontend")
    if isinstance(frontend, dict):
        summary["audio_frontend"] = ", ".join(f"{k}={v}" for k, v in sorted(frontend.items()))
    summary.update({k: v for k, v in document.items()
                    if k not in ("params", "history", "scaler", "n_features_in")
                    and isinstance(v, (int, float, str, bool))})
    return summary


def load(path, device=None):
    """Load any estimator saved with ``save``.

    Only the classes of ursa's estimator table are rebuilt, from the modules the table names;
    nothing in the file is ever unpickled or imported.

    Parameters
    ----------
    path : str or path-like
        A file written by an estimator's ``save``.
    device : {None, "auto", "cpu", "cuda", "cuda:N"} or torch.device, default=None
        Where the model's tensors go, and so where it computes. ``None`` keeps the saved
        ``device`` parameter and places the model there when this machine has that device, else
        on the CPU: a model fitted on a GPU loads on a machine without one, and on the machine
        that fitted it, it gives the same outputs as before saving. Any other value also replaces
        the saved ``device`` parameter (used by a later ``fit``), like ``map_location`` in
        ``torch.load``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        ``device`` is not one of the values above, or names a GPU this machine does not have.
    ModelFileError
        The file is truncated, tampered with, from another format version, or not an ursa model.
    """
    if device is not None:
        check_device_here(device)
    class_name, document, arrays = read_model(path)
    # Only classes of the estimator table are rebuilt, from the module the table names.
    cls = registered_class(class_name)
    if cls is None:
        raise ModelFileError(
            f"model file {str(path)!r} holds an unknown estimator class {class_name!r}; "
            f"known: {sorted(entry.class_name for entry in ESTIMATORS)}."
        )
    try:
        return cls._from_saved(document, arrays, device=device)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"model file {str(path)!r} is inconsistent with {class_name}: {exc}"
        ) from None


def check_device_here(device, where: str = "load"):
    """The torch.device that ``device`` names ("auto": a GPU when there is one, else the CPU).

    Parameters
    ----------
    device : str or torch.device
        "auto", "cpu", "cuda", "cuda:N" or a torch.device.
    where : str, default="load"
        The call that was given ``device``, named at the start of an error message.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        ``device`` is none of the above, or names a GPU this machine does not have.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    parsed = None
    if isinstance(device, (str, torch.device)):
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError):
            pass
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{where}(device={device!r}): use None, 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{where}(device={device!r}): CUDA is not available here; use "
                             "device='cpu' or 'auto', or leave it out.")
        if (parsed.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"{where}(device={device!r}): this machine has "
                             f"{torch.cuda.device_count()} GPU(s), numbered from 0.")
    return parsed
