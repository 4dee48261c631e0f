"""One self-contained HTML report describing a fitted estimator on a data set.

The report holds a data summary, the model's parameters (those set away from their defaults; the
full list folded), its training curves, and the figures and metrics of its job; every image is a
PNG embedded as base64, so the file opens anywhere, offline.

Which estimators exist, and the job of each, comes from ursa's one estimator table (the same one
that ``ursa.load``, ``ursa demo`` and the command line read); the metrics are those of
:func:`ursa.metrics.evaluate`, computed on the same model outputs the figures show.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as _dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ._registry import EstimatorEntry, entry_for

__all__ = ["Section", "build_report", "data_section", "render", "report_sections",
           "without_figures", "without_generation_scores", "write_report"]


@dataclass
class Section:
    """A part of the report: a title, a paragraph, figures and rows of metrics.

    ``folded`` tables are rendered collapsed (an HTML ``<details>`` element), and consecutive
    ``narrow`` sections share a row of the page when it is wide enough.
    """

    title: str
    text: str = ""
    figures: list = field(default_factory=list)   # (caption, matplotlib Figure)
    metrics: list = field(default_factory=list)   # (name, value, note)
    folded: list = field(default_factory=list)    # (summary, [(name, value, note)])
    narrow: bool = False


# ------------------------------------------------------------------------------------------
# switches

# False inside without_figures(): the metrics alone, no matplotlib.
_FIGURES = contextvars.ContextVar("ursa_report_figures", default=True)
# False inside without_generation_scores(): the GAN section skips the discriminative and
# predictive scores (each trains a post-hoc GRU; the demo computes them itself).
_GENERATION_SCORES = contextvars.ContextVar("ursa_report_generation_scores", default=True)


@contextlib.contextmanager
def _switched_off(switch: contextvars.ContextVar):
    token = switch.set(False)
    try:
        yield
    finally:
        switch.reset(token)


def without_figures():
    """Context manager: compute report sections without drawing their figures."""
    return _switched_off(_FIGURES)


def without_generation_scores():
    """Context manager: build GAN sections without the (costly) TimeGAN discriminative and
    predictive scores."""
    return _switched_off(_GENERATION_SCORES)


def _figs(caption: str, draw: Callable) -> list:
    """``[(caption, figure)]``, or ``[]`` without drawing inside :func:`without_figures`."""
    return [(caption, draw())] if _FIGURES.get() else []


def _rows(metrics) -> list:
    """:class:`ursa.metrics.Metric` rows as the report's (name, value text, note) rows."""
    return [(m.name, m.text, m.note) for m in metrics]


# ------------------------------------------------------------------------------------------
# job sections


def _autoencoder_sections(model, X, y, random_state, verbose):
    from . import plots
    from .metrics._evaluate import embedding_metrics, reconstruction_metrics

    reconstruction = model.reconstruct(X)
    recon = Section(
        "Reconstruction",
        "The error is the mean squared error over valid steps, divided by the variance of the "
        "data (1.0 = predicting each feature's mean).",
        figures=_figs("Four sequences (solid) and their reconstruction (dashed).",
                      lambda: plots.reconstructions(X, reconstruction, n=4)),
        metrics=_rows(reconstruction_metrics(X, reconstruction, model.decision_function(X))),
        narrow=True,
    )
    codes = model.transform(X)
    embed = Section(
        "Embeddings",
        f"{codes.shape[1]}-dimensional embeddings (the output of transform).",
        figures=_figs("The embeddings in 2-D (PCA)"
                      + (", coloured by the given labels." if y is not None else "."),
                      lambda: plots.embedding_map(codes, labels=y)),
        metrics=_rows(embedding_metrics(codes, y)),
        narrow=True,
    )
    errors = np.asarray(model.decision_function(X))
    worst = np.argsort(-errors, kind="stable")[:3]
    explained = model.explain(_rows_of(X, worst))
    recon.figures += _figs(
        f"The sequences rebuilt worst, with each step's share of the error (explain, method "
        f"{explained.method!r}): red steps add most to it.",
        lambda: plots.attributions(_rows_of(X, worst), explained.attributions, n=len(worst),
                                   titles=[f"sequence {i}: error {errors[i]:.3g}" for i in worst]))
    return [recon, embed]


def _rows_of(X, rows):
    """The sequences ``rows`` of ``X`` (a list or an array), in the same layout."""
    if isinstance(X, (list, tuple)):
        return [X[int(i)] for i in rows]
    return np.asarray(X)[np.asarray(rows)]


def _clusterer_sections(model, X, y, random_state, verbose):
    from . import plots
    from .data import as_sequences
    from .metrics._evaluate import cluster_metrics

    labels = np.asarray(model.predict(X))
    proba = np.asarray(model.predict_proba(X))
    codes = model.transform(X)
    counts = np.bincount(labels.astype(int), minlength=proba.shape[1])
    section = Section(
        "Clusters",
        f"{proba.shape[1]} clusters; sizes {', '.join(str(int(c)) for c in counts)}.",
        figures=_figs("The latent space in 2-D (PCA), coloured by cluster.",
                      lambda: plots.embedding_map(codes, labels=labels,
                                                  title="latent space by cluster")),
        metrics=_rows(cluster_metrics(labels, proba, codes, y)),
    )
    if y is not None:
        section.figures += _figs("The same latent space, coloured by the given labels.",
                                 lambda: plots.embedding_map(codes, labels=y,
                                                             title="latent space by label"))
    prototypes = model.prototypes(as_sequences(X, allow_nan=True).max_length)
    section.figures += _figs("Each cluster's mean sequence, ±1 standard deviation, and the "
                             "model's prototype (its centre, decoded; dashed).",
                             lambda: plots.cluster_prototypes(X, labels, prototypes=prototypes))
    # One sequence per cluster (the most confident member), for up to three clusters.
    confident = [int(np.flatnonzero(labels == k)[np.argmax(proba[labels == k, k])])
                 for k in range(proba.shape[1]) if (labels == k).any()][:3]
    explained = model.explain(_rows_of(X, confident))
    section.figures += _figs(
        f"The most confident member of each cluster (up to three) and the steps that tie it to "
        f"its cluster (explain, method {explained.method!r}): red steps raise the log "
        "probability of the cluster, blue ones lower it.",
        lambda: plots.attributions(_rows_of(X, confident), explained.attributions,
                                   n=len(confident),
                                   titles=[f"sequence {i}: cluster {labels[i]}"
                                           for i in confident]))
    return [section]


def _gan_sections(model, X, y, random_state, verbose):
    from . import plots
    from .metrics._evaluate import generation_metrics, generation_samples

    real, synthetic, equal = generation_samples(model, X, random_state)
    n = len(synthetic)
    return [Section(
        "Real vs synthetic",
        f"{n} synthetic sequences sampled from the model, compared with {n} real ones.",
        figures=_figs("Both sets in 2-D (PCA), and three sequences of each (first channel).",
                      lambda: plots.real_vs_synthetic(
            real, synthetic, random_state=random_state or 0)),
        metrics=_rows(generation_metrics(model, real, synthetic, equal=equal,
                                         random_state=random_state,
                                         scores=_GENERATION_SCORES.get(), verbose=verbose)),
    )]


def _detector_sections(model, X, y, random_state, verbose):
    from . import plots
    from .data import as_series
    from .metrics._evaluate import detection_metrics, detector_outputs

    several = len(as_series(X)[0]) > 1
    threshold = getattr(model, "threshold_", None)
    sections = []
    for i, (values, scores, flags, truth) in enumerate(detector_outputs(model, X, y, limit=3)):
        shares = None
        explain = getattr(model, "explain", None)
        if explain is not None and len(values) <= 200_000:  # explain holds window x step shares
            explained = explain(values)
            if np.shape(explained.channel_shares) == values.shape:
                shares = np.asarray(explained.channel_shares)
        sections.append(Section(
            f"Series {i}" if several else "Anomaly timeline",
            f"{len(values)} steps x {values.shape[1]} channel(s).",
            figures=_figs("Upper panel: the series, flagged regions shaded (the channel that "
                          "drove each is written above it). Lower panel: the per-step score and "
                          "the threshold.", lambda: plots.anomaly_timeline(
                values, scores, threshold=threshold, flags=flags, channel_shares=shares,
                labels=truth)),
            metrics=_rows(detection_metrics(scores, flags, threshold, truth)),
        ))
    return sections


_SECTIONS = {"autoencoder": _autoencoder_sections, "cluster": _clusterer_sections,
             "gan": _gan_sections, "detect": _detector_sections}


def _entry(estimator) -> EstimatorEntry:
    try:
        return entry_for(estimator)
    except TypeError as exc:
        raise TypeError(f"ursa has no report for {type(estimator).__name__}: {exc}") from None


# ------------------------------------------------------------------------------------------
# the document


def _fmt(value) -> str:
    from .metrics._evaluate import format_value

    return format_value(value)


def data_section(model, X, y=None, *, title: str = "Data") -> Section:
    """A table describing ``X`` (and ``y``) as ``model`` reads it: sizes, value range, labels.

    Parameters
    ----------
    model : ursa estimator
        Says how ``X`` is read: sequences, or long series for an anomaly detector.
    X, y
        As in :func:`build_report`.
    title : str, default="Data"
        The section's title.
    """
    from .data import as_sequences

    entry = _entry(model)
    rows = []
    if entry.series_input:
        from .data import as_series

        series, _, sizes = as_series(X)
        rows += [("series", str(len(series)), ""),
                 ("steps per series", f"{min(sizes)} .. {max(sizes)}", f"{sum(sizes)} in all"),
                 ("channels", str(series[0].shape[1]), "")]
        flat = np.concatenate([s.reshape(-1) for s in series]).astype(np.float64)
    else:
        seqs = as_sequences(X, name="X", allow_nan=True)
        lengths = seqs.lengths
        rows += [("sequences", str(len(lengths)), ""),
                 ("length", f"{lengths.min()} .. {lengths.max()}",
                  "equal length" if lengths.min() == lengths.max() else
                  f"median {int(np.median(lengths))}"),
                 ("features", str(seqs.n_features), "")]
        flat = seqs.values[seqs.mask()].reshape(-1)
    finite = flat[np.isfinite(flat)]
    if len(finite):
        rows.append(("value range", f"{_fmt(finite.min())} .. {_fmt(finite.max())}",
                     f"mean {_fmt(finite.mean())}, std {_fmt(finite.std())}"))
    if y is not None and not entry.series_input:
        values, counts = np.unique(np.asarray(y), return_counts=True)
        shown = ", ".join(f"{v}: {c}" for v, c in list(zip(values, counts))[:12])
        rows.append(("labels", f"{len(values)} classes", shown))
    return Section(title, metrics=rows)


def _parameter_rows(model) -> tuple[list, list]:
    """``(changed, every)``: ``name=value`` texts of the parameters set away from their defaults,
    and table rows (name, value, note) of every parameter, the note giving a changed one's
    default."""
    import inspect

    defaults = {name: p.default for name, p in
                inspect.signature(type(model).__init__).parameters.items()}
    changed, every = [], []
    for name, value in sorted(model.get_params(deep=False).items()):
        if name == "callbacks":
            continue
        default = defaults.get(name, inspect.Parameter.empty)
        same = default is not inspect.Parameter.empty and repr(default) == repr(value)
        if not same:
            changed.append(f"{name}={value!r}")
        every.append((name, repr(value), "" if same or default is inspect.Parameter.empty
                      else f"default {default!r}"))
    return changed, every


def _training_summary(history) -> str:
    """How long each training stage ran: epochs, or iterations for iteration phases."""
    from .plots import _stages

    parts = []
    for label, records in _stages(history):
        if all("iteration" in r for r in records):
            amount = f"{records[-1]['iteration']} iterations"
        else:
            amount = f"{len(records)} epoch{'s' if len(records) != 1 else ''}"
        parts.append(f"{label} {amount}" if label else amount)
    return ", ".join(parts)


def _curves(model, history) -> tuple[str, str]:
    """``(caption, note)`` of the training-curve figure: what a point and the x axis count, and
    (for the section's text) why stages have panels of their own."""
    from .plots import _stages

    stages = [label for label, _ in _stages(history)]
    iterations = any("iteration" in r for r in history)
    word = "phase" if iterations else "stage"
    caption = ("Training losses by iteration; each point averages the iterations since the "
               "previous one." if iterations else "Training losses by epoch (pass over the data)")
    if len(stages) < 2:
        return caption + ("" if iterations else "."), ""
    if not iterations:
        caption += f", counted from 1 in each {word}."
    note = f" Each training {word} minimises its own loss and has its own panel and y axis"
    contrastive, gamma = getattr(model, "contrastive", None), getattr(model, "gamma", None)
    if _entry(model).task == "cluster" and contrastive is not None and gamma is not None:
        note += (": pretraining reconstruction error"
                 + (f" + {contrastive!r} x a contrastive term" if contrastive else "")
                 + f", then reconstruction error + {gamma!r} x KL(p || q)")
    return caption, note + "."


def _model_section(model, entry: EstimatorEntry) -> Section:
    changed, every = _parameter_rows(model)
    history = getattr(model, "history_", None) or []
    text = f"ursa.{entry.class_name}: {entry.description}."
    figures = []
    if history:
        from . import plots

        seconds = sum(float(r.get("seconds", 0.0)) for r in history)
        text += f" Trained {_training_summary(history)} ({seconds:.1f} s)."
        caption, note = _curves(model, history)
        try:
            figures += _figs(caption, lambda: plots.training_curves(history))
            text += note
        except ValueError:
            pass
    spent = getattr(model, "privacy_spent_", None)
    if spent:
        text += (f" Trained with differential privacy: epsilon {spent['epsilon']:.3g} spent of "
                 f"{spent.get('epsilon_budget')}, delta {spent['delta']:.3g}, per training "
                 "sequence (" + " and ".join(
                     (["DP-SGD"] if spent.get("steps") else [])
                     + (["noisy releases of the data's statistics"] if spent.get("releases")
                        else [])) + ").")
    text += (f" Parameters set away from their defaults: {', '.join(changed)}." if changed
             else " Every parameter has its default value.")
    return Section("Model and training", text, figures=figures,
                   folded=[(f"all {len(every)} parameters", every)])


def build_report(model, X, y=None, *, title: str | None = None, random_state=0,
                 verbose: bool = True) -> str:
    """The report as an HTML string (self-contained: images embedded as base64 PNG).

    Parameters
    ----------
    model : fitted ursa estimator
        Any estimator of ursa's estimator table.
    X : array-like or list of array-like
        The data to describe it on: sequences, or long series for an anomaly detector.
    y : array-like, optional
        One label per sequence (classes), or per-step 0/1 anomaly labels for a detector (an
        array per series).
    title : str, optional
        The page title; default ``"ursa report: <class name>"``.
    random_state : int, default=0
        Seed of a GAN's samples and of the post-hoc networks of its scores.
    verbose : bool, default=True
        Progress bars of the GAN's scores (standard error, shown once a score has run two
        seconds).

    Returns
    -------
    str
        The HTML page.

    Raises
    ------
    TypeError
        ``model`` is not an ursa estimator.
    sklearn.exceptions.NotFittedError
        ``model`` is not fitted.
    """
    entry = _entry(model)
    return render(report_sections(model, X, y, random_state=random_state, verbose=verbose),
                  title or f"ursa report: {entry.class_name}")


def report_sections(model, X, y=None, *, random_state=0, prefix: str = "",
                    data: bool = True, verbose: bool = True) -> list[Section]:
    """The sections :func:`build_report` renders: data, model and training, then the job's own.

    Parameters are those of :func:`build_report`; ``prefix`` is put before each title, to
    combine several models in one page, and ``data=False`` leaves out the data section (for a
    page that describes the data once, with :func:`data_section`).
    """
    entry = _entry(model)
    model._check_is_fitted()
    if getattr(model, "vocabulary_", None) is not None:
        # Token sequences: the model, its training and its metrics (the figures plot numbers).
        from .metrics import metric_table

        rows = [(r.name, r.text, r.note) for r in metric_table(
            model, X, y, random_state=random_state, verbose=verbose)]
        sections = [_model_section(model, entry),
                    Section(f"Metrics on {len(X)} token sequences "
                            f"({len(model.vocabulary_.tokens_)} known tokens)", metrics=rows)]
    else:
        sections = [data_section(model, X, y)] if data else []
        sections.append(_model_section(model, entry))
        sections += _SECTIONS[entry.task](model, X, y, random_state, verbose)
    if prefix:
        for section in sections:
            section.title = f"{prefix}: {section.title}"
    return sections


def render(sections: list[Section], title: str) -> str:
    """The HTML page of ``sections`` under ``title``; figures are rendered to PNG and embedded."""
    from . import __version__

    return _render(sections, title, __version__)


def _table(rows) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td>"
                    f"<td class='note'>{html.escape(str(note))}</td></tr>"
                    for name, value, note in rows)
    return f"<table>{cells}</table>"


def _section_html(section: Section, png: Callable) -> str:
    # The text and tables form one column; the figures follow it in the same row, beside it where
    # the page is wide enough, below it otherwise.
    lead = [f"<p>{html.escape(section.text)}</p>"] if section.text else []
    lead += [_table(section.metrics)] if section.metrics else []
    lead += [f"<details><summary>{html.escape(summary)}</summary>{_table(rows)}</details>"
             for summary, rows in section.folded]
    items = [f"<div class=lead>{''.join(lead)}</div>"] if lead else []
    for caption, fig in section.figures:
        data = base64.b64encode(png(fig)).decode("ascii")
        items.append(f"<figure><img alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>"
                     f"{html.escape(caption)}</figcaption></figure>")
    return (f"<section><h2>{html.escape(section.title)}</h2>"
            f"<div class=row>{''.join(items)}</div></section>")


def _render(sections: list[Section], title: str, version: str) -> str:
    from .plots import figure_to_png

    parts, row = [], []
    for section in sections:
        if not section.narrow and row:
            parts.append(f"<div class=row>{''.join(row)}</div>")
            row = []
        (row if section.narrow else parts).append(_section_html(section, figure_to_png))
    if row:
        parts.append(f"<div class=row>{''.join(row)}</div>")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _PAGE.format(title=html.escape(title), body="\n".join(parts),
                        footer=html.escape(f"ursa {version}, {stamp}"))


def write_report(path, model, X, y=None, **kwargs) -> Path:
    """Write :func:`build_report`'s HTML to ``path`` (UTF-8) and return the path."""
    text = build_report(model, X, y, **kwargs)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px system-ui, sans-serif; max-width: 980px; margin: 1.5em auto; padding: 0 1em;
       color: #222; }}
h1 {{ font-size: 1.6em; margin: 0 0 .5em; }}
h2 {{ font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: .15em;
      margin: 1em 0 .4em; }}
p {{ margin: .3em 0; }}
.row {{ display: flex; flex-wrap: wrap; gap: 0 1.5em; align-items: flex-start; }}
.row > section {{ flex: 1 1 280px; }} .lead {{ flex: 1 1 240px; }}
table {{ border-collapse: collapse; margin: .3em 0 .5em; font-size: .92em; }}
th, td {{ text-align: left; padding: .15em .6em; border-bottom: 1px solid #eee;
          vertical-align: top; }}
td.note {{ color: #666; font-size: .9em; }}
details {{ margin: 0 0 .5em; }} summary {{ cursor: pointer; color: #444; }}
figure {{ display: table; margin: .3em 0 .6em; }} img {{ max-width: 100%; }}
figcaption {{ display: table-caption; caption-side: bottom; color: #666; font-size: .9em; }}
footer {{ color: #888; font-size: .85em; margin-top: 2em; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
<footer>{footer}</footer>
</body>
</html>
"""
