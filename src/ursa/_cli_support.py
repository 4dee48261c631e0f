"""What the commands of ``ursa`` (:mod:`ursa.cli`) share: global options, error handling, the
options that read DATA, reading inputs, and turning ``--config`` / ``--set`` into parameters.

Like the commands themselves, this uses only the public library: ``ursa.data`` reads and writes,
``ursa.estimators`` knows the estimators, ``ursa.load`` loads models.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import shlex
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
# global options: before the command (`ursa --seed 1 generate ...`) or after it
# (`ursa generate ... --seed 1`)

_GLOBAL = "Global options (before or after the command)"
QuietOption = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bars or messages.", rich_help_panel=_GLOBAL)]
DebugOption = Annotated[bool, typer.Option(
    "--debug", help="Show the traceback of an error.", rich_help_panel=_GLOBAL)]
SeedOption = Annotated[Optional[int], typer.Option(
    "--seed", min=0, help="Random seed (fits, sampling): same seed, same machine, same result.",
    rich_help_panel=_GLOBAL)]
DeviceOption = Annotated[Optional[str], typer.Option(
    "--device", help="auto, cpu, cuda or cuda:N (default: the model's own setting).",
    rich_help_panel=_GLOBAL)]


def set_global_options(quiet=False, debug=False, seed=None, device=None) -> None:
    """Record the global options in :data:`STATE`: flags that are set and values that are
    given; a value given after the command overrides the one given before it."""
    if device is not None and device not in ("auto", "cpu", "cuda") \
            and not device.startswith("cuda:"):
        raise UsageError(f"must be auto, cpu, cuda or cuda:N, got {device!r}.",
                         param_hint="'--device'")
    STATE["quiet"] = STATE["quiet"] or quiet
    STATE["debug"] = STATE["debug"] or debug
    if seed is not None:
        STATE["seed"] = seed
    if device is not None:
        STATE["device"] = device


def global_options(command):
    """Give ``command`` the global options (``--quiet``, ``--debug``, ``--seed``,
    ``--device``) as options of its own, recorded by :func:`set_global_options` before it
    runs; its help lists them."""
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, default, annotation in (("quiet", False, QuietOption),
                                               ("debug", False, DebugOption),
                                               ("seed", None, SeedOption),
                                               ("device", None, DeviceOption))]
    signature = inspect.signature(command, eval_str=True)

    @functools.wraps(command)
    def wrapper(*args, quiet=False, debug=False, seed=None, device=None, **kwargs):
        set_global_options(quiet, debug, seed, device)
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), *extra])
    return wrapper


# ------------------------------------------------------------------------------------------
# messages and errors


def say(message: str) -> None:
    """Print ``message`` on standard error, unless ``--quiet`` (and, in a fit launched across
    processes by ``torchrun``, from rank 0 only)."""
    from .training import distributed

    if not STATE["quiet"] and distributed.is_writer():
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
StreamOption = Annotated[bool, typer.Option(
    "--stream", help="Read DATA, a Parquet file or a folder of Parquet shards, one block at a "
                     "time (memory holds one block).")]
BlockSizeOption = Annotated[int, typer.Option(
    "--block-size", min=1, help="With --stream: sequences per block, at least.")]
IdOption = Annotated[Optional[str], typer.Option(
    "--id-column", help="Sequence id column (default: 'id' when present).")]
TimeOption = Annotated[Optional[str], typer.Option(
    "--time-column", help="Time column (default: 'time' when present).")]
FeatureColumnsOption = Annotated[Optional[list[str]], typer.Option(
    "--feature-columns", help="Feature columns to read, in order: comma-separated "
    "(speed,heading) and/or repeated (default: the model's feature columns when the file has "
    "them, else every column but the id, time and label columns). Wide layout: the time-step "
    "columns.")]
TokensOption = Annotated[Optional[str], typer.Option(
    "--tokens", help="DATA is a text file of token sequences, one per line: whitespace (tokens "
    "separated by spaces, such as log keys or words) or chars (each character a token). A "
    "model fitted on tokens reads a .txt DATA as whitespace tokens unless told otherwise.")]
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


def feature_list(values: list[str] | None) -> list[str] | None:
    """The columns ``--feature-columns`` names: each value split at commas, in order."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if not all(names):
        raise UsageError(f"an empty column name in {','.join(values)!r}; separate the names "
                         "with single commas.", param_hint="'--feature-columns'")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"{twice!r} is named twice.", param_hint="'--feature-columns'")
    return names


# How the library's data readers name their arguments, and the options that set them here.
_OPTIONS = {"id_column": "--id-column", "time_column": "--time-column",
            "label_column": "--label-column", "feature_columns": "--feature-columns",
            "format": "--format", "layout": "--layout"}
_ARGUMENT = re.compile(r"(?<![\w'\"-])(" + "|".join(_OPTIONS) + r")"
                       r"(?:=('[^']*'|\"[^\"]*\"|\[[^\]]*\])?|(?=\)))")


def cli_spelling(message: str) -> str:
    """A reader's message with its arguments (``feature_columns=['a', 'b']``,
    ``(id_column)``) respelled as this command's options (``--feature-columns a,b``,
    ``(--id-column)``)."""

    def respell(match):
        option, value = _OPTIONS[match.group(1)], match.group(2)
        if value is None:
            return option
        value = ast.literal_eval(value)
        return f"{option} {shlex.quote(','.join(value) if isinstance(value, list) else value)}"

    return _ARGUMENT.sub(respell, message)


def read_input(path: str, fmt=None, layout="long", id_column=None, time_column=None,
               label_column=None, labels: str | None = None, feature_columns=None, model=None,
               tokens: str | None = None):
    """DATA (a file, or '-' for standard input) read with :func:`ursa.data.read_dataset`;
    token sequences (``tokens``) with :func:`ursa.data.read_tokens`; a folder of WAV files or
    one WAV file with :func:`ursa.data.read_audio` (the model's front-end, when it has one).

    Parameters
    ----------
    path, fmt, layout, id_column, time_column, label_column
        DATA and the options that say how to read it.
    labels : str, optional
        A ``--labels`` file, which replaces the file's own labels.
    feature_columns : list of str, optional
        ``--feature-columns`` as given (see :func:`feature_list`).
    model : fitted estimator, optional
        The model DATA is for: a long table that has all of its ``feature_names_in_`` gives
        those columns, in the model's order, unless ``--feature-columns`` says otherwise; other
        feature names than the model's are refused (or, chosen with ``--feature-columns``,
        used by position with a warning).
    tokens : {"whitespace", "chars"}, optional
        ``--tokens``: DATA is a text file of token sequences, one per line.

    Returns
    -------
    ursa.data.DataFile
        ``X``, ``y`` and the names that tie results back to DATA.
    """
    from .data import DataFile, format_of, read_dataset, read_labels, read_tokens, table_columns

    if tokens is None and getattr(model, "vocabulary_", None) is not None \
            and path != "-" and Path(path).suffix.lower() == ".txt":
        tokens = "whitespace"
    if tokens is not None:
        if tokens not in ("whitespace", "chars"):
            raise UsageError(f"must be whitespace or chars, got {tokens!r}.",
                             param_hint="'--tokens'")
        temporary = _stdin_copy("txt") if path == "-" else None
        try:
            X = read_tokens(temporary or Path(path), split=tokens)
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        return DataFile(X=X, y=None, ids=None, feature_names=None, times=None)
    if path != "-" and (Path(path).is_dir() or Path(path).suffix.lower() == ".wav"):
        import numpy as np

        from .data import read_audio

        X = read_audio(path, frontend=getattr(model, "audio_frontend_", None))
        return DataFile(X=X, y=None, ids=np.asarray([Path(p).stem for p in X.paths]),
                        feature_names=None, times=None)
    if layout not in ("long", "wide"):
        raise UsageError(f"must be long or wide, got {layout!r}.", param_hint="'--layout'")
    chosen = feature_list(feature_columns)
    expected = getattr(model, "feature_names_in_", None)
    expected = None if expected is None else [str(n) for n in expected]
    temporary = _stdin_copy(fmt) if path == "-" else None
    source = temporary or Path(path)
    try:
        kind = fmt.lower().lstrip(".") if fmt else format_of(source)
        if chosen is None and expected is not None and layout == "long" \
                and kind in ("csv", "parquet"):
            try:
                header = table_columns(source, kind)
            except (OSError, ValueError):
                header = []  # read_dataset says what is wrong with the file
            if set(expected) <= set(header):
                chosen = expected
        data = read_dataset(source, fmt, layout=layout, id_column=id_column,
                            time_column=time_column, label_column=label_column,
                            feature_columns=chosen, return_names=True)
    except ValueError as exc:
        raise ValueError(cli_spelling(str(exc))) from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    if expected is not None and data.feature_names is not None \
            and data.feature_names != expected:
        _different_names(data.feature_names, expected, given=feature_columns is not None)
    if labels is not None:
        try:
            data = data._replace(y=read_labels(labels))
        except ValueError as exc:
            raise ValueError(f"--labels: {exc}") from None
    return data


def _different_names(found: list[str], expected: list[str], given: bool) -> None:
    """DATA's feature columns are not the model's: a warning when ``--feature-columns`` chose
    them (they are used by position), else an error naming both lists and the fix."""
    import warnings

    if given and len(found) == len(expected):
        pairs = ", ".join(f"{f} as {e}" for f, e in zip(found, expected) if f != e)
        warnings.warn(f"--feature-columns {','.join(found)} are not the model's feature "
                      f"columns {','.join(expected)}; used by position: {pairs}.", stacklevel=2)
        return
    missing = [name for name in expected if name not in found]
    raise ValueError(f"DATA's feature columns ({', '.join(found)}) are not the model's "
                     f"({', '.join(expected)}, read by `ursa fit`)"
                     + (f"; DATA has no column {', '.join(map(repr, missing))}" if missing
                        else "")
                     + ". Rename DATA's columns, or choose the columns for the model's features, "
                     "in its order, with --feature-columns.")


def stream_input(path: str, layout="long", id_column=None, time_column=None,
                 feature_columns=None, block_size: int = 65536):
    """DATA as a :class:`ursa.data.DataFile` whose ``X`` is a :class:`ursa.data.ParquetDataset`
    (``--stream``): a Parquet file or a folder of shards; 'id' and 'time' are the id and time
    columns when present, as for files read whole."""
    from .data import DataFile, ParquetDataset

    if layout not in ("long", "wide"):
        raise UsageError(f"must be long or wide, got {layout!r}.", param_hint="'--layout'")
    source = Path(path)
    if path == "-" or not (source.is_dir() or source.suffix.lower() in (".parquet", ".pq")):
        raise UsageError(f"--stream reads a Parquet file or a folder of Parquet files, not "
                         f"{path!r}.", param_hint="'--stream'")
    files = [source] if source.is_file() else sorted(source.rglob("*.parquet"))
    if not files:
        raise UsageError(f"{path!r} holds no .parquet file.", param_hint="'DATA'")
    import pyarrow.parquet as pq

    names = pq.read_schema(files[0]).names
    if id_column is None:
        id_column = "id" if "id" in names else None
    if time_column is None:
        time_column = "time" if "time" in names else None
    dataset = ParquetDataset(source, layout=layout, id_column=id_column, time_column=time_column,
                             feature_columns=feature_list(feature_columns), block_size=block_size)
    return DataFile(dataset, None, None, dataset.feature_names, None)


def row_ids(data, n: int):
    """The ids of ``n`` results, one per sequence of ``data`` (a :class:`~ursa.data.DataFile`):
    DATA's own ids, else 0, 1, ..."""
    import numpy as np

    if data.ids is None:
        return np.arange(n)
    if len(data.ids) != n:
        raise ValueError(f"DATA names {len(data.ids)} sequences but the model returned {n} "
                         "results; report this as a bug.")
    return data.ids


def check_output(path: str) -> None:
    """Refuse (exit code 2) an output file whose extension names no format ``ursa`` writes."""
    from .data import TABLE_EXTENSIONS

    if path != "-" and Path(path).suffix.lower() not in TABLE_EXTENSIONS:
        raise UsageError(f"cannot tell the output format of {path!r}: name it with one of "
                         f"{', '.join(TABLE_EXTENSIONS)}, or '-' for CSV on standard output.",
                         param_hint="'-o' / '--output'")


def write_token_lines(path: str, sequences) -> None:
    """Token sequences as text, one per line, tokens separated by spaces: to standard output
    for '-', else to ``path`` (written to a temporary file beside it, then renamed)."""
    text = "".join(" ".join(map(str, s)) + "\n" for s in sequences)
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


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
