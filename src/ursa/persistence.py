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

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "register", "save_model", "load"]

FORMAT = "ursa-model"
FORMAT_VERSION = 1
_REGISTRY: dict[str, type] = {}
# Estimator classes whose modules are imported on first use (see ursa/__init__.py): load imports the
# module named here, never a module named by the file.
_MODULES = {
    "RecurrentClusterer": "ursa.estimators.clusterer",
    "RecurrentGAN": "ursa.estimators.gan",
    "SequenceAnomalyDetector": "ursa.estimators.anomaly",
}


class ModelFileError(ValueError):
    """A model file that cannot be loaded: truncated, tampered, wrong version or not an ursa model."""


def register(cls):
    """Class decorator: allow ``load`` to rebuild instances of ``cls``."""
    _REGISTRY[cls.__name__] = cls
    return cls


def _checksum(document: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(document.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model(path, class_name: str, document: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``document`` (JSON-able) and ``arrays`` to ``path`` atomically."""
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
    """Read and verify a model file; return ``(class_name, document, arrays)``."""
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


def load(path, device=None):
    """Load any estimator saved with ``save``.

    Parameters
    ----------
    path : str or path-like
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
    if class_name not in _REGISTRY and class_name in _MODULES:
        import importlib

        importlib.import_module(_MODULES[class_name])
    cls = _REGISTRY.get(class_name)
    if cls is None:
        raise ModelFileError(
            f"model file {str(path)!r} holds an unknown estimator class {class_name!r}; "
            f"known: {sorted(_REGISTRY)}."
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
    Raise ValueError unless it is "auto", or a CPU or GPU this machine has; the message starts
    ``{where}(device=...)``, naming the call that was given it."""
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
