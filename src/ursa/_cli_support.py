"""What the commands of ``ursa`` (:mod:`ursa.cli`) share: global options, error handling, the
options that read DATA, reading inputs, and turning ``--config`` / ``--set`` into parameters.

Like the commands themselves, this uses only the public library: ``ursa.data`` reads and writes,
``ursa.estimators`` knows the estimators, ``ursa.load`` loads models.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Optional

import typer

# Set by the top-level options (see cli._options).
STATE = {"quiet": False, "debug": False, "seed": None, "device": None}

# Sequences per call when scoring with a progress bar; bounded memory comes from the estimators.
CHUNK = 4096


class UsageError(typer.BadParameter):
    """A mistake in the command line itself (exit code 2)."""


# ------------------------------------------------------------------------------------------
# messages and errors


def say(message: str) -> None:
    """Print ``message`` on standard error, unless ``--quiet``."""
    if not STATE["quiet"]:
        typer.echo(message, err=True)


def guarded(command):
    """Turn any data or model error into one line on stderr and exit code 1 (not with --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # The reader of standard output went away (`ursa embed ... | head`): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:  # the one place that turns errors into exit code 1
            if STATE["debug"]:
                raise
            kind = "" if isinstance(exc, (ValueError, TypeError, OSError, ImportError,
                                          LookupError)) else f"{type(exc).__name__}: "
            message = " ".join(str(exc).split()) or type(exc).__name__
            typer.echo(f"ursa: error: {kind}{message}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def progress(total: int, description: str):
    """A progress bar on standard error over ``total`` steps (none with ``--quiet`` or one step)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=STATE["quiet"] or total <= 1,
                leave=False, file=sys.stderr)


def apply_in_chunks(fn, X, description: str) -> list:
    """``fn`` on consecutive pieces of at most :data:`CHUNK` sequences of ``X`` (an array or a
    list), in order, with a progress bar; the list of its results."""
    from .data import batch_rows

    n_chunks = -(-len(X) // CHUNK)
    out = []
    with progress(n_chunks, description) as bar:
        for rows in batch_rows(len(X), CHUNK):
            out.append(fn(X[rows]))
            bar.update(1)
    return out


# ------------------------------------------------------------------------------------------
# options shared by the commands that read DATA

FormatOption = Annotated[Optional[str], typer.Option(
    "--format", help="Data format, overriding the extension: ts, csv, parquet, npy, npz.")]
LayoutOption = Annotated[str, typer.Option(
    "--layout", help="CSV/Parquet layout: long (one row per step) or wide (one row per "
                     "univariate sequence).")]
IdOption = Annotated[Optional[str], typer.Option(
    "--id-column", help="Sequence id column (default: 'id' when present).")]
TimeOption = Annotated[Optional[str], typer.Option(
    "--time-column", help="Time column (default: 'time' when present).")]
LabelOption = Annotated[Optional[str], typer.Option(
    "--label-column", help="Column with one label per sequence (.ts files carry their own).")]
OutputOption = Annotated[str, typer.Option(
    "--output", "-o", help="Output file: .csv, .parquet or .npy; '-' for CSV on standard output.")]
LabelsOption = Annotated[Optional[str], typer.Option(
    "--labels", help="Labels file (.npy, or a CSV/Parquet 'label' column): classes per "
                     "sequence, or 0/1 per step for a detector.")]


# ------------------------------------------------------------------------------------------
# inputs and outputs


def _stdin_copy(fmt: str | None) -> Path:
    data = sys.stdin.buffer.read()
    if not data:
        raise ValueError("DATA is '-' but standard input is empty; pipe a file in or name one.")
    handle = tempfile.NamedTemporaryFile(prefix="ursa-stdin-", suffix=f".{fmt or 'csv'}",
                                         delete=False)
    with handle:
        handle.write(data)
    return Path(handle.name)


def read_input(path: str, fmt=None, layout="long", id_column=None, time_column=None,
               label_column=None, labels: str | None = None):
    """DATA (a file, or '-' for standard input) as ``(X, y)`` with :func:`ursa.data.read_dataset`;
    ``labels``, a ``--labels`` file, replaces the file's own labels."""
    from .data import read_dataset, read_labels

    temporary = _stdin_copy(fmt) if path == "-" else None
    try:
        X, y = read_dataset(temporary or Path(path), fmt, layout=layout, id_column=id_column,
                            time_column=time_column, label_column=label_column)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    if labels is not None:
        try:
            y = read_labels(labels)
        except ValueError as exc:
            raise ValueError(f"--labels: {exc}") from None
    return X, y


def check_output(path: str) -> None:
    """Refuse (exit code 2) an output file whose extension names no format ``ursa`` writes."""
    from .data import TABLE_EXTENSIONS

    if path != "-" and Path(path).suffix.lower() not in TABLE_EXTENSIONS:
        raise UsageError(f"cannot tell the output format of {path!r}: name it with one of "
                         f"{', '.join(TABLE_EXTENSIONS)}, or '-' for CSV on standard output.",
                         param_hint="'-o' / '--output'")


def output_target(path: str):
    """Where ``-o PATH`` writes: standard output for '-', else the path."""
    return sys.stdout if path == "-" else path


def load_model(path: Path):
    """The model saved at ``path``, on ``--device`` when it is given."""
    from . import load

    return load(path, device=STATE["device"])


def require(model, path: Path, command: str, tasks: tuple[str, ...]) -> None:
    """Refuse a model whose task is not one of ``tasks`` (``ursa COMMAND`` needs those)."""
    from .estimators import entry_for

    if entry_for(model).task not in tasks:
        wanted = " or ".join(f"`ursa fit {t}`" for t in tasks)
        raise ValueError(f"`ursa {command}` needs a model fitted with {wanted}; {str(path)!r} "
                         f"holds a {type(model).__name__}.")


# ------------------------------------------------------------------------------------------
# parameters of `ursa fit`


def parse_value(text: str):
    """A --set value: TOML syntax (numbers, true/false, "strings", [lists]); anything else is a
    bare string; 'none'/'null' is None."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def read_config(path: Path, kind: str) -> dict:
    """The parameters a ``--config`` TOML file gives estimator ``kind``: its top-level keys that
    are not tables, updated by its ``[kind]`` table."""
    if not path.is_file():
        raise UsageError(f"no config file at '{path}'.", param_hint="'--config'")
    try:
        with open(path, "rb") as fh:
            config = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"'{path}' is not valid TOML ({exc}).", param_hint="'--config'") from None
    params = {k: v for k, v in config.items() if not isinstance(v, dict)}
    section = config.get(kind, {})
    if isinstance(section, dict):
        params.update(section)
    return params


def fit_params(cls, kind: str, config: Path | None, settings: list[str]) -> dict:
    """The parameters of ``ursa fit``: ``--config``, then ``--seed`` and ``--device``, then each
    ``--set key=value``; a key that ``cls`` does not have is a usage error."""
    params = read_config(config, kind) if config is not None else {}
    if STATE["seed"] is not None:
        params["random_state"] = STATE["seed"]
    if STATE["device"] is not None:
        params["device"] = STATE["device"]
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {item!r}.", param_hint="'--set'")
        params[key.strip()] = parse_value(value.strip())
    known = list(cls().get_params(deep=False))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UsageError(f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(known)}.", param_hint="'--set' / '--config'")
    return params
