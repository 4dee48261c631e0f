"""The ``ursa`` command: a thin layer over the library (every command is one library call away).

Exit codes: 0 success, 2 usage error (bad option, unknown ``--set`` key, unsupported output
extension), 1 data or model error, reported as one line on standard error (the traceback only with
``--debug``). Messages go to standard error, so that ``-o -`` output on standard output stays clean.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from .report import TASKS, estimator_class

__all__ = ["app", "main"]

app = typer.Typer(
    name="ursa",
    help="Unsupervised Recurrent Sequence Analysis: fit, apply and report recurrent models of "
         "sequences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Set by the top-level options (see _options).
_STATE = {"quiet": False, "debug": False, "seed": None, "device": None}

_OUTPUT_EXTENSIONS = (".csv", ".parquet", ".pq", ".npy")
# Sequences per call when scoring with a progress bar; bounded memory comes from the estimators.
_CHUNK = 4096


class UsageError(typer.BadParameter):
    """A mistake in the command line itself (exit code 2)."""


# ------------------------------------------------------------------------------------------
# messages and errors


def _say(message: str) -> None:
    if not _STATE["quiet"]:
        typer.echo(message, err=True)


def _guarded(command):
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
            if _STATE["debug"]:
                raise
            kind = "" if isinstance(exc, (ValueError, TypeError, OSError, ImportError,
                                          LookupError)) else f"{type(exc).__name__}: "
            message = " ".join(str(exc).split()) or type(exc).__name__
            typer.echo(f"ursa: error: {kind}{message}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _progress(total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=_STATE["quiet"] or total <= 1,
                leave=False, file=sys.stderr)


# ------------------------------------------------------------------------------------------
# reading data


def _header(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "csv":
            import pandas as pd

            return list(pd.read_csv(path, nrows=0).columns)
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception:
        return []  # the reader itself reports what is wrong with the file


def _stdin_copy(fmt: str | None) -> Path:
    data = sys.stdin.buffer.read()
    if not data:
        raise ValueError("DATA is '-' but standard input is empty; pipe a file in or name one.")
    handle = tempfile.NamedTemporaryFile(prefix="ursa-stdin-", suffix=f".{fmt or 'csv'}",
                                         delete=False)
    with handle:
        handle.write(data)
    return Path(handle.name)


def read_data(path: str, fmt: str | None = None, layout: str = "long",
              id_column: str | None = None, time_column: str | None = None,
              label_column: str | None = None):
    """Read DATA with ursa.data; returns ``(X, y)`` (``y`` None when the file has no labels).

    For CSV/Parquet, ``id`` and ``time`` columns are used when the file has them and no other
    column is named; a file without an id column is one sequence (one series).
    """
    from .data import read_sequences
    from .data._io import _format_of

    temporary = None
    if path == "-":
        temporary = p = _stdin_copy(fmt)
    else:
        p = Path(path)
    try:
        kind = fmt or _format_of(p)
        kwargs = {}
        if kind in ("csv", "parquet"):
            header = _header(p, kind) if p.is_file() else []
            kwargs = dict(layout=layout, label_column=label_column,
                          id_column=id_column or ("id" if "id" in header else None),
                          time_column=time_column or ("time" if "time" in header else None))
            if layout == "wide":
                kwargs.pop("time_column")
        loaded = read_sequences(p, format=fmt, **kwargs)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    if isinstance(loaded, tuple):
        return loaded
    return loaded, None


def read_labels(path: str) -> np.ndarray:
    """Labels from .npy (any shape), or the ``label`` (else first) column of a CSV/Parquet file."""
    from .data import read_numpy

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No labels file at '{p}'.")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        return np.asarray(read_numpy(p))
    import pandas as pd

    if suffix == ".csv":
        frame = pd.read_csv(p)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(p)
    else:
        raise ValueError(f"--labels: cannot read '{p}': use .npy, .csv or .parquet.")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError(f"--labels: '{p}' holds no labels.")
    return frame["label" if "label" in frame.columns else frame.columns[0]].to_numpy()


# ------------------------------------------------------------------------------------------
# writing results


def _check_output(path: str, allowed=_OUTPUT_EXTENSIONS) -> None:
    if path == "-":
        return
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise UsageError(f"cannot tell the output format of {path!r}: name it with one of "
                         f"{', '.join(allowed)}, or '-' for CSV on standard output.",
                         param_hint="'-o' / '--output'")


def _write_table(path: str, frame, array: np.ndarray | None = None) -> None:
    """A result table: CSV / Parquet by extension, ``.npy`` writes ``array`` (or the frame's
    values), ``-`` writes CSV to standard output."""
    if path == "-":
        frame.to_csv(sys.stdout, index=False, float_format="%.9g")
        return
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False, float_format="%.9g")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        values = frame.to_numpy(dtype=np.float64) if array is None else array
        with open(path, "wb") as fh:
            np.save(fh, values, allow_pickle=False)


def _write_sequences(path: str, X, labels=None) -> None:
    """Sequences in long form (CSV, Parquet, '-') or as a NaN-padded .npy; ``labels`` (one per
    sequence) become a ``label`` column of the long form (a .npy file holds the values only)."""
    from .data import write_numpy
    from .data._io import _to_frame

    suffix = "" if path == "-" else Path(path).suffix.lower()
    if suffix == ".npy":
        write_numpy(path, X)
        return
    frame = _to_frame(X, "long", None)
    if labels is not None:
        frame.insert(2, "label", np.asarray(labels)[frame["id"].to_numpy()])
    _write_table(path, frame)


# ------------------------------------------------------------------------------------------
# models


def _load(path: Path):
    from . import load

    return load(path, device=_STATE["device"])


def _task_name(model) -> str:
    for name, task in TASKS.items():
        if type(model).__name__ == task.class_name:
            return name
    return "?"


def _require(model, path: Path, command: str, tasks: tuple[str, ...]):
    if _task_name(model) not in tasks:
        wanted = " or ".join(f"`ursa fit {t}`" for t in tasks)
        raise ValueError(f"`ursa {command}` needs a model fitted with {wanted}; {str(path)!r} "
                         f"holds a {type(model).__name__}.")


def _chunks(X):
    """Pieces of at most _CHUNK sequences, in order (arrays sliced, lists split)."""
    n = len(X)
    return [X[i:i + _CHUNK] for i in range(0, n, _CHUNK)]


def _apply(fn, X, description: str) -> list:
    pieces = _chunks(X)
    out = []
    with _progress(len(pieces), description) as bar:
        for piece in pieces:
            out.append(fn(piece))
            bar.update(1)
    return out


def _parse_value(text: str):
    """A --set value: TOML syntax (numbers, true/false, "strings", [lists]); anything else is a
    bare string; 'none'/'null' is None."""
    if text.strip().lower() in ("none", "null"):
        return None
    import tomllib

    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _read_config(path: Path, kind: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise UsageError("--config needs Python 3.11 or newer (tomllib); use --set instead.",
                         param_hint="'--config'") from None
    if not path.is_file():
        raise UsageError(f"no config file at '{path}'.", param_hint="'--config'")
    try:
        with open(path, "rb") as fh:
            config = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"'{path}' is not valid TOML ({exc}).", param_hint="'--config'") from None
    # A [kind] table (e.g. [autoencoder]) holds that estimator's parameters; top-level keys
    # that are not tables apply to every kind.
    params = {k: v for k, v in config.items() if not isinstance(v, dict)}
    section = config.get(kind, {})
    if isinstance(section, dict):
        params.update(section)
    return params


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


def _data(data, fmt, layout, id_column, time_column, label_column):
    return read_data(data, fmt, layout, id_column, time_column, label_column)


# ------------------------------------------------------------------------------------------
# commands


def _version(value: bool):
    if value:
        from . import __version__

        typer.echo(f"ursa {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or messages.")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
    = False,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", min=0, help="Random seed (fits, sampling): same seed, same machine, same result.")]
    = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="auto, cpu or cuda (default: the model's own setting).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Unsupervised Recurrent Sequence Analysis."""
    if device is not None and device not in ("auto", "cpu", "cuda") \
            and not device.startswith("cuda:"):
        raise UsageError(f"must be auto, cpu, cuda or cuda:N, got {device!r}.",
                         param_hint="'--device'")
    _STATE.update(quiet=quiet, debug=debug, seed=seed, device=device)


@app.command()
@_guarded
def fit(
    kind: Annotated[str, typer.Argument(help="autoencoder, cluster, gan or detect.")],
    data: Annotated[str, typer.Argument(help="Training data file ('-': standard input).")],
    out: Annotated[Path, typer.Option("--out", help="Where to save the fitted model.")],
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="TOML file of parameters (top level, or a [KIND] table).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="A parameter, key=value (repeatable; overrides --config).")] = None,
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
    label_column: LabelOption = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted fit from the checkpoint in its checkpoint_dir "
        "(same data and parameters; --set checkpoint_dir=DIR).")] = False,
    conditional: Annotated[bool, typer.Option(
        "--conditional", help="gan: condition on each sequence's label (the class labels of a "
        ".ts file; --label-column implies it). `ursa generate --label` then samples a "
        "class.")] = False,
):
    """Fit an estimator on DATA and save it to --out.

    With --set checkpoint_dir=DIR the fit writes checkpoints; interrupted (Ctrl-C, or killed),
    the same command with --resume continues it. A GAN given labels (--label-column, or
    --conditional) is a conditional GAN; the other estimators do not read labels.
    """
    if kind not in TASKS:
        raise UsageError(f"must be one of {', '.join(TASKS)}, got {kind!r}.", param_hint="'KIND'")
    if conditional and kind != "gan":
        raise UsageError(f"only a GAN is fitted on labels (conditional generation), not "
                         f"{kind!r}; drop --conditional.", param_hint="'--conditional'")
    cls = estimator_class(kind)
    params = _read_config(config, kind) if config is not None else {}
    if _STATE["seed"] is not None:
        params["random_state"] = _STATE["seed"]
    if _STATE["device"] is not None:
        params["device"] = _STATE["device"]
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {item!r}.", param_hint="'--set'")
        params[key.strip()] = _parse_value(value.strip())
    known = cls._get_param_names()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UsageError(f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(known)}.", param_hint="'--set' / '--config'")
    if resume and not params.get("checkpoint_dir"):
        raise UsageError("--resume needs the folder the interrupted fit wrote its checkpoints to: "
                         "--set checkpoint_dir=DIR.", param_hint="'--resume'")
    saved_verbose = params.get("verbose", False)
    params.setdefault("verbose", not _STATE["quiet"])  # progress bar while fitting
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc), param_hint="'--set' / '--config'") from None
    X, y = _data(data, fmt, layout, id_column, time_column, label_column)
    conditional = kind == "gan" and (conditional or label_column is not None)
    if conditional and y is None:
        raise UsageError(f"--conditional needs one label per sequence, and {data} has none: name "
                         "their column with --label-column (CSV/Parquet), or use a .ts file with "
                         "class labels.", param_hint="'--conditional'")
    from .training import TrainingInterrupted

    started = time.perf_counter()
    try:
        estimator.fit(X, y if conditional else None, resume=resume)
    except TrainingInterrupted as exc:
        typer.echo(f"ursa: interrupted: {exc} From the command line: the same command with "
                   "--resume.", err=True)
        raise typer.Exit(130) from None
    seconds = time.perf_counter() - started
    estimator.set_params(verbose=saved_verbose)
    estimator.save(out)
    history = getattr(estimator, "history_", None) or []
    last = {k: v for k, v in (history[-1] if history else {}).items() if k.endswith("loss")}
    losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
    _say(f"fitted {cls.__name__} in {seconds:.1f} s ({len(history)} epochs"
         f"{'; ' + losses if losses else ''}) -> {out}")


@app.command()
@_guarded
def embed(
    model: Annotated[Path, typer.Argument(help="Saved model (autoencoder or cluster).")],
    data: Annotated[str, typer.Argument(help="Data file ('-': standard input).")],
    output: OutputOption = "-",
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
):
    """Embeddings of each sequence: columns id, z0, z1, ..."""
    import pandas as pd

    _check_output(output)
    estimator = _load(model)
    _require(estimator, model, "embed", ("autoencoder", "cluster"))
    X, _ = _data(data, fmt, layout, id_column, time_column, None)
    codes = np.concatenate(_apply(estimator.transform, X, "embed"))
    frame = pd.DataFrame(codes, columns=[f"z{i}" for i in range(codes.shape[1])])
    frame.insert(0, "id", np.arange(len(codes)))
    _write_table(output, frame, codes)
    _say(f"{codes.shape[0]} embeddings of size {codes.shape[1]} -> {output}")


@app.command()
@_guarded
def cluster(
    model: Annotated[Path, typer.Argument(help="Saved clusterer (`ursa fit cluster`).")],
    data: Annotated[str, typer.Argument(help="Data file ('-': standard input).")],
    output: OutputOption = "-",
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
):
    """Cluster of each sequence and the probability of every cluster: id, label, p0, p1, ..."""
    import pandas as pd

    _check_output(output)
    estimator = _load(model)
    _require(estimator, model, "cluster", ("cluster",))
    X, _ = _data(data, fmt, layout, id_column, time_column, None)
    proba = np.concatenate(_apply(estimator.predict_proba, X, "cluster"))
    labels = proba.argmax(axis=1)  # RecurrentClusterer.predict is this argmax: no second pass
    frame = pd.DataFrame(proba, columns=[f"p{i}" for i in range(proba.shape[1])])
    frame.insert(0, "label", labels)
    frame.insert(0, "id", np.arange(len(labels)))
    _write_table(output, frame)
    counts = np.bincount(labels.astype(int), minlength=proba.shape[1])
    _say(f"{len(labels)} sequences in {proba.shape[1]} clusters (sizes "
         f"{', '.join(map(str, counts))}) -> {output}")


@app.command()
@_guarded
def generate(
    model: Annotated[Path, typer.Argument(help="Saved GAN (`ursa fit gan`).")],
    n: Annotated[int, typer.Option("-n", "--n-sequences", min=1, help="How many sequences.")],
    output: OutputOption = "-",
    n_timesteps: Annotated[Optional[int], typer.Option(
        "--n-timesteps", min=1, help="Length of each sequence (default: as trained).")] = None,
    label: Annotated[Optional[str], typer.Option(
        "--label", help="Class to sample from a GAN fitted on labels (default: classes drawn "
                        "in their training proportions).")] = None,
):
    """Sample synthetic sequences: long form (id, time, f0, f1, ...) or a NaN-padded .npy.

    From a GAN fitted on labels, CSV and Parquet output also has a ``label`` column.
    """
    _check_output(output)
    estimator = _load(model)
    _require(estimator, model, "generate", ("gan",))
    on_labels = getattr(estimator, "condition_kind_", None) == "labels"
    y = None
    if label is not None:
        if not on_labels:
            raise UsageError(f"{model} was not fitted on class labels (`ursa fit gan "
                             "--label-column COLUMN`); drop --label.", param_hint="'--label'")
        matches = [c for c in estimator.classes_ if str(c) == label]
        if not matches:
            raise UsageError(f"{label!r} is not a class of {model}; its classes: "
                             f"{', '.join(map(str, estimator.classes_))}.", param_hint="'--label'")
        y = np.full(n, matches[0], dtype=estimator.classes_.dtype)
    X = estimator.sample(n, n_timesteps=n_timesteps, y=y, random_state=_STATE["seed"])
    labels = (estimator.sample_labels_ if y is None else y) if on_labels else None
    _write_sequences(output, X, labels)
    _say(f"{n} synthetic sequences -> {output}")


@app.command()
@_guarded
def detect(
    model: Annotated[Path, typer.Argument(help="Saved detector (`ursa fit detect`).")],
    data: Annotated[str, typer.Argument(help="Series file ('-': standard input); several series "
                                              "by id column.")],
    output: OutputOption = "-",
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
):
    """Per-step anomaly score and 0/1 flag of each series: series, time, score, flag."""
    import pandas as pd

    from .report import _series_list

    _check_output(output)
    estimator = _load(model)
    _require(estimator, model, "detect", ("detect",))
    X, _ = _data(data, fmt, layout, id_column, time_column, None)
    series = _series_list(X)
    frames = []
    with _progress(len(series), "detect") as bar:
        for i, values in enumerate(series):
            scores = np.asarray(estimator.decision_function(values), dtype=np.float64).reshape(-1)
            flags = np.asarray(estimator.predict(values)).reshape(-1).astype(np.int64)
            frames.append(pd.DataFrame({"series": i, "time": np.arange(len(scores)),
                                        "score": scores, "flag": flags}))
            bar.update(1)
    frame = pd.concat(frames, ignore_index=True)
    _write_table(output, frame)
    _say(f"{len(series)} series, {len(frame)} steps, {int(frame['flag'].sum())} flagged -> {output}")


@app.command()
@_guarded
def evaluate(
    model: Annotated[Path, typer.Argument(help="Saved model.")],
    data: Annotated[str, typer.Argument(help="Data (real data for a GAN; series for a detector).")],
    labels: Annotated[Optional[str], typer.Option(
        "--labels", help="Labels file (.npy, or a CSV/Parquet 'label' column): classes per "
                         "sequence, or 0/1 per step for a detector.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
    label_column: LabelOption = None,
):
    """The model's metrics on DATA (against labels when given).

    Labels come from a .ts file, --labels or --label-column.
    """
    from .report import report_sections, without_figures

    estimator = _load(model)
    X, y = _data(data, fmt, layout, id_column, time_column, label_column)
    if labels is not None:
        y = read_labels(labels)
    with without_figures():
        sections = report_sections(estimator, X, y, random_state=_STATE["seed"] or 0)
    rows = [(name, value, note) for s in sections[2:] for name, value, note in s.metrics]
    if as_json:
        typer.echo(json.dumps({name: value for name, value, _ in rows}, indent=2))
        return
    width = max(len(r[0]) for r in rows) if rows else 0
    for name, value, note in rows:
        typer.echo(f"{name.ljust(width)}  {value}" + (f"  ({note})" if note else ""))


@app.command()
@_guarded
def info(
    model: Annotated[Path, typer.Argument(help="Saved model file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """What a saved model is: class, parameters, data shape, training history, format.

    Read from the file's header without building the model.
    """
    from .persistence import FORMAT_VERSION, read_model

    class_name, document, arrays = read_model(model)
    history = document.get("history") or []
    weights = sum(int(a.size) for k, a in arrays.items() if k.startswith("network."))
    summary = {
        "file": str(model),
        "size_bytes": model.stat().st_size,
        "format_version": FORMAT_VERSION,
        "class": class_name,
        "kind": next((n for n, t in TASKS.items() if t.class_name == class_name), None),
        "n_features_in": document.get("n_features_in"),
        "n_weights": weights,
        "params": document.get("params", {}),
        "epochs_trained": len(history),
        "training_seconds": round(sum(float(r.get("seconds", 0)) for r in history), 3),
        "last_epoch": history[-1] if history else None,
    }
    extra = {k: v for k, v in document.items()
             if k not in ("params", "history", "scaler", "n_features_in")
             and isinstance(v, (int, float, str, bool))}
    summary.update(extra)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    for key, value in summary.items():
        if key == "params":
            typer.echo("params:")
            for name, param in sorted(value.items()):
                typer.echo(f"  {name} = {param!r}")
        elif key == "last_epoch" and value:
            typer.echo("last epoch: " + ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()))
        else:
            typer.echo(f"{key.replace('_', ' ')}: {value}")


@app.command()
@_guarded
def report(
    model: Annotated[Path, typer.Argument(help="Saved model.")],
    data: Annotated[str, typer.Argument(help="Data to describe the model on.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")]
    = Path("report.html"),
    labels: Annotated[Optional[str], typer.Option(
        "--labels", help="Labels file (.npy, or a CSV/Parquet 'label' column).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Page title.")] = None,
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
    label_column: LabelOption = None,
):
    """One self-contained HTML report: data, training, the task's figures and metrics.

    Images are embedded, so the file opens anywhere, offline.
    """
    from .report import write_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the report is HTML: name it *.html, got '{output}'.",
                         param_hint="'-o' / '--output'")
    estimator = _load(model)
    X, y = _data(data, fmt, layout, id_column, time_column, label_column)
    if labels is not None:
        y = read_labels(labels)
    write_report(output, estimator, X, y, title=title, random_state=_STATE["seed"] or 0)
    _say(f"report -> {output} ({output.stat().st_size / 1024:.0f} KiB)")


@app.command()
@_guarded
def demo(
    quick: Annotated[bool, typer.Option(
        "--quick", help="Tiny sizes (seconds): checks that everything runs, figures "
                        "meaningless.")] = False,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the HTML report.")] = Path("ursa-demo.html"),
):
    """The main job: fit every estimator on built-in data, compare with published figures.

    Prints each figure beside its published reference and writes the HTML report.
    """
    from .demo import run_all

    run_all(quick=quick, seed=_STATE["seed"] or 0, report_path=output,
            verbose=not _STATE["quiet"])


def main(argv=None) -> int:
    """Entry point of the ``ursa`` script; returns the exit code."""
    import warnings

    # Library warnings (e.g. a GAN's mode-collapse check) as one line, like errors.
    warnings.formatwarning = lambda message, *args, **kwargs: f"ursa: warning: {message}\n"
    try:
        app(args=argv, prog_name="ursa", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
