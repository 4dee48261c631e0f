"""The ``ursa`` command: a thin layer over the library (every command is one library call away).

Exit codes: 0 success, 2 usage error (bad option, unknown ``--set`` key, unsupported output
extension), 1 data or model error, reported as one line on standard error (the traceback only with
``--debug``). Messages go to standard error, so that ``-o -`` output on standard output stays clean.

Results keep DATA's names: per-sequence rows carry DATA's own sequence ids (its id column; 0, 1,
... for files without one), and feature columns keep DATA's names, which ``ursa fit`` saves with
the model (``feature_names_in_``) for the outputs that have no DATA (``ursa generate``).
"""

import json
import math
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ._cli_support import (
    STATE,
    DebugOption,
    DeviceOption,
    FeatureColumnsOption,
    FormatOption,
    IdOption,
    LabelOption,
    LabelsOption,
    LayoutOption,
    OutputOption,
    QuietOption,
    BlockSizeOption,
    SeedOption,
    StreamOption,
    TimeOption,
    TokensOption,
    UsageError,
    apply_in_chunks,
    check_output,
    fit_params,
    global_options,
    guarded,
    load_model,
    output_target,
    progress,
    read_input,
    require,
    row_ids,
    stream_input,
    say,
    set_global_options,
    write_token_lines,
)
from .estimators import estimator_class, task_names, validate_params

__all__ = ["app", "main"]

app = typer.Typer(
    name="ursa",
    help="Unsupervised Recurrent Sequence Analysis: fit, apply and report recurrent models of "
         "sequences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_TASKS = task_names()


def _version(value: bool):
    if value:
        from . import __version__

        typer.echo(f"ursa {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    quiet: QuietOption = False,
    debug: DebugOption = False,
    seed: SeedOption = None,
    device: DeviceOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Unsupervised Recurrent Sequence Analysis.

    The global options (--quiet, --debug, --seed, --device) go before the command or after it:
    `ursa --seed 1 generate gan.ursa -n 10` is `ursa generate gan.ursa -n 10 --seed 1`.
    """
    STATE.update(quiet=False, debug=False, seed=None, device=None)  # one invocation's options
    set_global_options(quiet, debug, seed, device)


@app.command()
@guarded
@global_options
def fit(
    kind: Annotated[str, typer.Argument(
        help=f"{', '.join(_TASKS[:-1])} or {_TASKS[-1]}.")],
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
    feature_columns: FeatureColumnsOption = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted fit from the checkpoint in its checkpoint_dir "
        "(same data and parameters; --set checkpoint_dir=DIR).")] = False,
    conditional: Annotated[bool, typer.Option(
        "--conditional", help="gan: condition on each sequence's label (the class labels of a "
        ".ts file; --label-column implies it). `ursa generate --label` then samples a "
        "class.")] = False,
    stream: StreamOption = False,
    block_size: BlockSizeOption = 65536,
    tokens: TokensOption = None,
):
    """Fit an estimator on DATA and save it to --out.

    DATA is a table or array file, a text file of token sequences (--tokens), or a folder of
    WAV files (read as MFCC frame sequences; the model keeps the front-end's settings).

    With --set checkpoint_dir=DIR the fit writes checkpoints; interrupted (Ctrl-C, or killed),
    the same command with --resume continues it. A GAN given labels (--label-column, or
    --conditional) is a conditional GAN; the other estimators do not read labels. The model
    keeps the names of DATA's feature columns (feature_names_in_) for the commands that use it.
    """
    if kind not in _TASKS:
        raise UsageError(f"must be one of {', '.join(_TASKS)}, got {kind!r}.", param_hint="'KIND'")
    if conditional and kind != "gan":
        raise UsageError(f"only a GAN is fitted on labels (conditional generation), not "
                         f"{kind!r}; drop --conditional.", param_hint="'--conditional'")
    cls = estimator_class(kind)
    params = fit_params(cls, kind, config, set_ or [])
    if resume and not params.get("checkpoint_dir"):
        raise UsageError("--resume needs the folder the interrupted fit wrote its checkpoints to: "
                         "--set checkpoint_dir=DIR.", param_hint="'--resume'")
    saved_verbose = params.get("verbose", True)
    params.setdefault("verbose", not STATE["quiet"])  # progress bar while fitting
    estimator = cls(**params)
    try:
        validate_params(estimator)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc), param_hint="'--set' / '--config'") from None
    if stream:
        if kind != "autoencoder" or label_column is not None:
            raise UsageError(f"--stream fits an autoencoder from a Parquet file or folder, "
                             f"without labels; read {kind!r} data into memory (drop --stream).",
                             param_hint="'--stream'")
        data_file = stream_input(data, layout, id_column, time_column, feature_columns,
                                 block_size)
    else:
        data_file = read_input(data, fmt, layout, id_column, time_column, label_column,
                               feature_columns=feature_columns, tokens=tokens)
    X, y = data_file.X, data_file.y
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
    if data_file.feature_names is not None:
        estimator.feature_names_in_ = np.asarray(data_file.feature_names, dtype=object)
    estimator.save(out)
    history = getattr(estimator, "history_", None) or []
    last = {k: v for k, v in (history[-1] if history else {}).items() if k.endswith("loss")}
    losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
    say(f"fitted {cls.__name__} in {seconds:.1f} s ({len(history)} epochs"
        f"{'; ' + losses if losses else ''}) -> {out}")


# ------------------------------------------------------------------------------------------
# commands that apply a saved model to DATA and write one table


def _table_command(name: str, tasks: tuple, model_help: str, data_help: str,
                   per_sequence: bool = False):
    """Register ``ursa NAME MODEL DATA [-o OUTPUT]`` for a model of one of ``tasks``; the
    decorated ``run(estimator, data)``, given DATA as a :class:`ursa.data.DataFile`, returns
    ``(frame, npy_values or None, summary)``, and its docstring is the command's help. A
    ``per_sequence`` command (one row per sequence) also runs with ``--stream``, a block of a
    Parquet dataset at a time."""

    def register(run):
        def command(
            model: Annotated[Path, typer.Argument(help=model_help)],
            data: Annotated[str, typer.Argument(help=data_help)],
            output: OutputOption = "-",
            fmt: FormatOption = None,
            layout: LayoutOption = "long",
            id_column: IdOption = None,
            time_column: TimeOption = None,
            feature_columns: FeatureColumnsOption = None,
            stream: StreamOption = False,
            block_size: BlockSizeOption = 65536,
            tokens: TokensOption = None,
        ):
            from .data import DataFile, write_table, write_table_parts

            check_output(output)
            estimator = load_model(model)
            require(estimator, model, name, tasks)
            if stream:
                if not per_sequence:
                    raise UsageError(f"`ursa {name}` reads whole series, not one block at a "
                                     "time; drop --stream.", param_hint="'--stream'")
                dataset = stream_input(data, layout, id_column, time_column, feature_columns,
                                       block_size).X
                parts = (run(estimator, DataFile(block.sequences.to_padded(), None, block.ids,
                                                 None, None))[0]
                         for block in dataset.blocks())
                rows = write_table_parts(output_target(output), parts)
                say(f"{rows} rows from {dataset.n_blocks} blocks -> {output}")
                return
            data_file = read_input(data, fmt, layout, id_column, time_column,
                                   feature_columns=feature_columns, model=estimator,
                                   tokens=tokens)
            frame, values, summary = run(estimator, data_file)
            write_table(output_target(output), frame, values)
            say(f"{summary} -> {output}")

        command.__name__, command.__doc__ = name, run.__doc__
        app.command(name)(guarded(global_options(command)))
        return run

    return register


_DATA_HELP = "Data file ('-': standard input)."


@_table_command("embed", ("autoencoder", "cluster"), "Saved model (autoencoder or cluster).",
                _DATA_HELP, per_sequence=True)
def _embed(estimator, data):
    """Embeddings of each sequence: columns id, z0, z1, ...

    id is DATA's own sequence id (0, 1, ... without an id column).
    """
    import pandas as pd

    codes = np.concatenate(apply_in_chunks(estimator.transform, data.X, "embed"))
    frame = pd.DataFrame(codes, columns=[f"z{i}" for i in range(codes.shape[1])])
    frame.insert(0, "id", row_ids(data, len(codes)))
    return frame, codes, f"{codes.shape[0]} embeddings of size {codes.shape[1]}"


@_table_command("cluster", ("cluster",), "Saved clusterer (`ursa fit cluster`).", _DATA_HELP,
                per_sequence=True)
def _cluster(estimator, data):
    """Cluster of each sequence and each cluster's probability: id, label, p0, p1, ...

    id is DATA's own sequence id (0, 1, ... without an id column).
    """
    import pandas as pd

    proba = np.concatenate(apply_in_chunks(estimator.predict_proba, data.X, "cluster"))
    labels = proba.argmax(axis=1)  # RecurrentClusterer.predict is this argmax: no second pass
    frame = pd.DataFrame(proba, columns=[f"p{i}" for i in range(proba.shape[1])])
    frame.insert(0, "label", labels)
    frame.insert(0, "id", row_ids(data, len(labels)))
    counts = np.bincount(labels.astype(int), minlength=proba.shape[1])
    return frame, None, (f"{len(labels)} sequences in {proba.shape[1]} clusters (sizes "
                         f"{', '.join(map(str, counts))})")


@app.command()
@guarded
@global_options
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
    """Sample synthetic sequences: long form (id, time, features) or a NaN-padded .npy; from
    a GAN fitted on tokens, a text file of one sequence per line, tokens separated by spaces.

    The feature columns have the names of the training data's (f0, f1, ... when it had none).
    From a GAN fitted on labels, CSV and Parquet output also has a ``label`` column.
    """
    from .data import write_sequences

    estimator = load_model(model)
    require(estimator, model, "generate", ("gan",))
    tokens = getattr(estimator, "vocabulary_", None) is not None
    if not (tokens and (output == "-" or Path(output).suffix.lower() == ".txt")):
        check_output(output)
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
    X = estimator.sample(n, n_timesteps=n_timesteps, y=y, random_state=STATE["seed"])
    if tokens:  # token sequences: one per line
        write_token_lines(output, X)
        say(f"{n} synthetic token sequences -> {output}")
        return
    labels = (estimator.sample_labels_ if y is None else y) if on_labels else None
    names = getattr(estimator, "feature_names_in_", None)
    write_sequences(output_target(output), X, labels,
                    feature_names=None if names is None else [str(name) for name in names])
    say(f"{n} synthetic sequences -> {output}")


@_table_command("detect", ("detect",), "Saved detector (`ursa fit detect`).",
                "Series file ('-': standard input); several series by id column.")
def _detect(estimator, data):
    """Per-step anomaly score and 0/1 flag of each series: series, time, score, flag; from a
    detector fitted with window=None, one row per session: id, score, flag.

    series is DATA's id of the series (0, 1, ... without an id column), time its time column's
    value (the step 0, 1, ... without one), so that rows join back to DATA.
    """
    import pandas as pd

    from .data import as_series

    if estimator.window_ is None:  # whole sessions: a score and a flag per sequence
        scores = np.concatenate(apply_in_chunks(estimator.decision_function, data.X, "detect"))
        flags = estimator._flags(scores)
        frame = pd.DataFrame({"id": row_ids(data, len(scores)), "score": scores, "flag": flags})
        return frame, None, (f"{len(scores)} sessions, {int(flags.sum())} flagged")
    series, _, _ = as_series(data.X)
    ids = row_ids(data, len(series))
    frames = []
    with progress(len(series), "detect") as bar:
        for i, values in enumerate(series):
            scores = np.asarray(estimator.decision_function(values), dtype=np.float64).reshape(-1)
            flags = np.asarray(estimator.predict(values)).reshape(-1).astype(np.int64)
            times = np.arange(len(scores))
            if data.times is not None and len(data.times[i]) >= len(scores):
                times = data.times[i][:len(scores)]  # trailing all-missing steps are dropped
            frames.append(pd.DataFrame({"series": np.repeat(ids[i:i + 1], len(scores)),
                                        "time": times, "score": scores, "flag": flags}))
            bar.update(1)
    frame = pd.concat(frames, ignore_index=True)
    return frame, None, (f"{len(series)} series, {len(frame)} steps, "
                         f"{int(frame['flag'].sum())} flagged")


# ------------------------------------------------------------------------------------------
# describing a model


def _json_number(value):
    """A metric's value for JSON: ints and floats as numbers, a pair as a 2-element list, None,
    NaN and infinities as null."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return [_json_number(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


@app.command()
@guarded
@global_options
def evaluate(
    model: Annotated[Path, typer.Argument(help="Saved model.")],
    data: Annotated[str, typer.Argument(help="Data (real data for a GAN; series for a detector).")],
    labels: LabelsOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON instead of a table: metric name to value, a number (a pair "
        "of numbers as [real, synthetic]; null where there is none or it is NaN).")] = False,
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
    label_column: LabelOption = None,
    feature_columns: FeatureColumnsOption = None,
):
    """The model's metrics on DATA (against labels when given).

    Labels come from a .ts file, --labels or --label-column.
    """
    from .metrics import metric_table

    estimator = load_model(model)
    data_file = read_input(data, fmt, layout, id_column, time_column, label_column, labels,
                           feature_columns, model=estimator)
    rows = metric_table(estimator, data_file.X, data_file.y, random_state=STATE["seed"] or 0,
                        verbose=not STATE["quiet"])
    if as_json:
        metrics = {row.name: _json_number(row.value) for row in rows}
        typer.echo(json.dumps(metrics, indent=2, allow_nan=False))
        return
    width = max((len(row.name) for row in rows), default=0)
    for row in rows:
        typer.echo(f"{row.name.ljust(width)}  {row.text}" + (f"  ({row.note})" if row.note else ""))


@app.command()
@guarded
@global_options
def info(
    model: Annotated[Path, typer.Argument(help="Saved model file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """What a saved model is: class, parameters, data shape, training history, format.

    Read from the file's header without building the model.
    """
    from .persistence import describe_model

    summary = describe_model(model)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    for key, value in summary.items():
        if key == "params":
            typer.echo("params:")
            for name, param in sorted(value.items()):
                typer.echo(f"  {name} = {param!r}")
        elif key == "feature_names_in":
            if value is not None:
                typer.echo("feature names: " + ", ".join(value))
        elif key == "privacy":
            typer.echo("privacy: " + ("none (not a differentially private fit)" if not value
                                      else _privacy_line(value)))
        elif key == "last_epoch" and value:
            typer.echo("last epoch: " + ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()))
        else:
            typer.echo(f"{key.replace('_', ' ')}: {value}")


def _privacy_line(spent: dict) -> str:
    parts = [f"budget epsilon {spent.get('epsilon_budget')}"]
    if spent.get("steps") or spent.get("noise_multiplier") is not None:
        parts.append(f"noise multiplier {spent.get('noise_multiplier') or float('nan'):.3g}, "
                     f"clipping norm {spent.get('max_grad_norm')}, {spent.get('steps')} steps")
    if spent.get("releases"):
        parts.append(f"{spent['releases']} noisy releases of the data's statistics (noise "
                     f"multiplier {spent.get('release_noise_multiplier', float('nan')):.3g})")
    return (f"({spent['epsilon']:.3g}, {spent['delta']:.3g})-differentially private per training "
            f"sequence ({'; '.join(parts)})")


@app.command()
@guarded
@global_options
def report(
    model: Annotated[Path, typer.Argument(help="Saved model.")],
    data: Annotated[str, typer.Argument(help="Data to describe the model on.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")]
    = Path("report.html"),
    labels: LabelsOption = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Page title.")] = None,
    fmt: FormatOption = None,
    layout: LayoutOption = "long",
    id_column: IdOption = None,
    time_column: TimeOption = None,
    label_column: LabelOption = None,
    feature_columns: FeatureColumnsOption = None,
):
    """One self-contained HTML report: data, training, the task's figures and metrics.

    Images are embedded, so the file opens anywhere, offline.
    """
    from .report import write_report

    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the report is HTML: name it *.html, got '{output}'.",
                         param_hint="'-o' / '--output'")
    estimator = load_model(model)
    data_file = read_input(data, fmt, layout, id_column, time_column, label_column, labels,
                           feature_columns, model=estimator)
    write_report(output, estimator, data_file.X, data_file.y, title=title,
                 random_state=STATE["seed"] or 0, verbose=not STATE["quiet"])
    say(f"report -> {output} ({output.stat().st_size / 1024:.0f} KiB)")


@app.command()
@guarded
@global_options
def demo(
    quick: Annotated[bool, typer.Option(
        "--quick", help="Tiny sizes: checks that everything runs; the figures mean "
                        "nothing.")] = False,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the HTML report.")] = Path("ursa-demo.html"),
):
    """The main job: fit every estimator on built-in data, compare with published figures.

    Prints each figure beside its published reference and writes the HTML report.
    """
    from .demo import run_all

    run_all(quick=quick, seed=STATE["seed"] or 0, report_path=output,
            verbose=not STATE["quiet"])


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
