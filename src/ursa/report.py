"""One self-contained HTML report describing a fitted estimator on a data set.

The report holds a data summary, the model's parameters, its training curves, and the figures and
metrics of its task; every image is a PNG embedded as base64, so the file opens anywhere, offline.

The estimators plug in through :data:`TASKS`: one :class:`Task` per job, naming the estimator class
(imported on first use, so a job whose module is absent is simply unavailable) and a function that
returns the task's report sections. The command line (``ursa fit KIND``) uses the same table.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as _dt
import html
import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["Section", "Task", "TASKS", "available_tasks", "build_report", "estimator_class",
           "render", "report_sections", "task_of", "without_figures", "without_generation_scores",
           "write_report"]


@dataclass
class Section:
    """A part of the report: a title, a paragraph, figures and rows of metrics."""

    title: str
    text: str = ""
    figures: list = field(default_factory=list)   # (caption, matplotlib Figure)
    metrics: list = field(default_factory=list)   # (name, value, note)


@dataclass(frozen=True)
class Task:
    """One job of the library: how the command line names it and how the report shows it."""

    name: str            # as typed after `ursa fit`
    class_name: str      # public class in the `ursa` namespace
    module: str          # where the class lives (imported on first use)
    job: str             # one-line description
    sections: Callable   # (estimator, X, y, random_state) -> list[Section]
    series_input: bool = False   # fit/score take long series (T, C), not a set of sequences


# ------------------------------------------------------------------------------------------
# small helpers

# False inside without_figures(): the metrics alone (ursa evaluate), no matplotlib.
_FIGURES = contextvars.ContextVar("ursa_report_figures", default=True)


@contextlib.contextmanager
def without_figures():
    """Compute report sections without drawing their figures."""
    token = _FIGURES.set(False)
    try:
        yield
    finally:
        _FIGURES.reset(token)


# False inside without_generation_scores(): the GAN section skips the discriminative and
# predictive scores (each trains a post-hoc GRU; the demo computes them itself).
_GENERATION_SCORES = contextvars.ContextVar("ursa_report_generation_scores", default=True)


@contextlib.contextmanager
def without_generation_scores():
    """Build GAN sections without the (costly) TimeGAN discriminative / predictive scores."""
    token = _GENERATION_SCORES.set(False)
    try:
        yield
    finally:
        _GENERATION_SCORES.reset(token)


def _figs(caption: str, draw: Callable) -> list:
    """``[(caption, figure)]``, or ``[]`` without drawing inside :func:`without_figures`."""
    return [(caption, draw())] if _FIGURES.get() else []


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def _nmi(labels, predicted) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels, predicted))


def _metric(name: str):
    """A function of ``ursa.metrics`` when its helper has written it, else None."""
    from . import metrics

    return getattr(metrics, name, None)


def _lengths(X) -> np.ndarray:
    from .data import as_sequences

    return as_sequences(X, name="X", allow_nan=True).lengths


def _series_list(X) -> list[np.ndarray]:
    """A detector's input as a list of (T, C) float arrays."""
    if isinstance(X, (list, tuple)):
        items = list(X)
    else:
        array = np.asarray(X)
        items = list(array) if array.ndim == 3 else [array]
    out = []
    for item in items:
        a = np.asarray(item, dtype=np.float64)
        out.append(a[:, None] if a.ndim == 1 else a)
    return out


# ------------------------------------------------------------------------------------------
# task sections


def _autoencoder_sections(model, X, y, random_state):
    from . import plots
    from .data import as_sequences

    seqs = as_sequences(X, name="X")
    reconstruction = model.reconstruct(X)
    values = seqs.to_padded()
    rebuilt = as_sequences(reconstruction, name="reconstruction").to_padded()
    mask = seqs.mask()
    total = values[mask]
    # Relative error: 1.0 is what predicting each feature's mean would score.
    relative = float(np.mean((rebuilt[mask] - total) ** 2) / max(np.var(total, axis=0).mean(), 1e-12))
    errors = model.decision_function(X)
    recon = Section(
        "Reconstruction",
        "Original sequences beside the autoencoder's reconstruction; the error is the mean "
        "squared error over valid steps, divided by the variance of the data (1.0 = predicting "
        "each feature's mean).",
        figures=_figs("original vs reconstruction",
                      lambda: plots.reconstructions(X, reconstruction, n=4)),
        metrics=[
            ("relative reconstruction error", _fmt(relative), "1.0 = per-feature mean"),
            ("per-sequence error (scaled), median", _fmt(np.median(errors)),
             f"max {_fmt(np.max(errors))} (sequence {int(np.argmax(errors))})"),
        ],
    )
    codes = model.transform(X)
    embed = Section(
        "Embeddings",
        f"{codes.shape[1]}-dimensional embeddings, projected to 2-D by PCA"
        + (", coloured by the given labels." if y is not None else "."),
        figures=_figs("embedding map", lambda: plots.embedding_map(codes, labels=y)),
    )
    if y is not None:
        from sklearn.cluster import KMeans

        k = len(np.unique(y))
        if 1 < k < len(codes):
            predicted = KMeans(k, n_init=10, random_state=0).fit_predict(codes)
            embed.metrics.append((f"k-means NMI on embeddings (k={k})", _fmt(_nmi(y, predicted)),
                                  "1.0 = labels recovered"))
    return [recon, embed]


def _clusterer_sections(model, X, y, random_state):
    from . import plots

    labels = np.asarray(model.predict(X))
    proba = np.asarray(model.predict_proba(X))
    codes = model.transform(X)
    counts = np.bincount(labels.astype(int), minlength=proba.shape[1])
    section = Section(
        "Clusters",
        f"{proba.shape[1]} clusters; sizes {', '.join(str(int(c)) for c in counts)}. Left: the "
        "latent space coloured by cluster; right: each cluster's mean sequence and ±1 standard "
        "deviation.",
        figures=_figs("latent space by cluster",
                      lambda: plots.embedding_map(codes, labels=labels,
                                                  title="latent space by cluster"))
        + _figs("cluster prototypes", lambda: plots.cluster_prototypes(X, labels)),
        metrics=[("mean assignment confidence", _fmt(proba.max(axis=1).mean()),
                  "mean of the largest predict_proba per sequence")],
    )
    if len(np.unique(labels)) > 1:
        from sklearn.metrics import silhouette_score

        section.metrics.append(("silhouette (latent space)", _fmt(silhouette_score(codes, labels)),
                                "-1 .. 1, higher = better separated"))
    if y is not None:
        from sklearn.metrics import adjusted_rand_score

        section.metrics += [("NMI vs labels", _fmt(_nmi(y, labels)), ""),
                            ("ARI vs labels", _fmt(adjusted_rand_score(y, labels)), "")]
        accuracy = _metric("cluster_accuracy")
        if accuracy is not None:
            section.metrics.append(("cluster accuracy vs labels", _fmt(accuracy(y, labels)),
                                    "Hungarian matching"))
    if y is not None:
        section.figures += _figs("latent space by label", lambda: plots.embedding_map(
            codes, labels=y, title="latent space by label"))
    return [section]


def _gan_sections(model, X, y, random_state):
    from . import plots
    from .data import as_sequences

    seqs = as_sequences(X, name="X")
    n = int(min(len(seqs), 500))
    equal = bool(np.all(seqs.lengths == seqs.lengths[0]))
    synthetic = model.sample(n, n_timesteps=int(seqs.lengths[0]) if equal else None,
                             random_state=random_state)
    real = X[:n] if not isinstance(X, (list, tuple)) else list(X)[:n]
    section = Section(
        "Real vs synthetic",
        f"{n} synthetic sequences sampled from the model beside {n} real ones: a 2-D projection "
        "(PCA) of both, and a few traces of each.",
        figures=_figs("real vs synthetic", lambda: plots.real_vs_synthetic(
            real, synthetic, random_state=random_state or 0)),
    )
    R = as_sequences(real, name="real").to_padded()
    S = as_sequences(synthetic, name="synthetic").to_padded()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        section.metrics += [
            ("mean, real / synthetic", f"{_fmt(np.nanmean(R))} / {_fmt(np.nanmean(S))}", ""),
            ("std, real / synthetic", f"{_fmt(np.nanstd(R))} / {_fmt(np.nanstd(S))}", ""),
        ]
    if equal and _GENERATION_SCORES.get():
        for name, note in (("discriminative_score", "|accuracy - 0.5| of a post-hoc GRU "
                            "classifier; 0 = indistinguishable"),
                           ("predictive_score", "MAE of a GRU trained on synthetic, tested on "
                            "real (one step ahead)")):
            score = _metric(name)
            if score is None:
                continue
            # The post-hoc network trains where the model's networks are.
            value = score(R, S, n_repeats=1, random_state=random_state or 0,
                          device=next(model.network_.parameters()).device)
            mean = value[0] if isinstance(value, tuple) else value
            section.metrics.append((name.replace("_", " ") + " (1 repeat)", _fmt(mean), note))
    return [section]


def _detector_sections(model, X, y, random_state):
    from . import plots

    series = _series_list(X)
    labels = None if y is None else _series_list(y)
    sections = []
    for i, values in enumerate(series[:3]):
        scores = np.asarray(model.decision_function(values), dtype=np.float64).reshape(-1)
        flags = np.asarray(model.predict(values)).reshape(-1)
        shares = None
        explain = getattr(model, "explain", None)
        if explain is not None and len(values) <= 200_000:  # explain holds window x step shares
            explained = explain(values)
            channel = (explained.get("channel_shares") if isinstance(explained, dict)
                       else getattr(explained, "channel_shares", None))
            if channel is not None and np.shape(channel) == values.shape:
                shares = np.asarray(channel)
        threshold = getattr(model, "threshold_", None)
        truth = None
        if labels is not None and i < len(labels) and labels[i].size == len(scores):
            truth = labels[i].reshape(-1).astype(int)
        section = Section(
            f"Series {i}" if len(series) > 1 else "Anomaly timeline",
            f"{len(values)} steps x {values.shape[1]} channel(s). Top: the series, flagged regions "
            "shaded (the channel that drove each is written above it); bottom: the per-step score "
            "and the threshold.",
            figures=_figs("anomaly timeline", lambda: plots.anomaly_timeline(
                values, scores, threshold=threshold, flags=flags, channel_shares=shares,
                labels=truth)),
            metrics=[("flagged steps", f"{int(flags.sum())} of {len(flags)}",
                      f"{flags.mean():.2%}"),
                     ("threshold", _fmt(threshold) if threshold is not None else "-", "")],
        )
        if truth is not None:
            if 0 < truth.sum() < len(truth):
                from sklearn.metrics import average_precision_score, roc_auc_score

                finite = np.isfinite(scores)
                section.metrics += [
                    ("AUC-ROC", _fmt(roc_auc_score(truth[finite], scores[finite])), ""),
                    ("AUC-PR", _fmt(average_precision_score(truth[finite], scores[finite])),
                     f"random = {truth.mean():.3f}"),
                ]
                vus_pr = _metric("vus_pr")
                if vus_pr is not None and finite.all():
                    section.metrics.append(("VUS-PR", _fmt(vus_pr(truth, scores)),
                                            "Paparrizos et al. 2022"))
        sections.append(section)
    return sections


TASKS: dict[str, Task] = {
    "autoencoder": Task("autoencoder", "SequenceAutoencoder", "ursa.estimators.autoencoder",
                        "represent / compress: embeddings and reconstructions",
                        _autoencoder_sections),
    "cluster": Task("cluster", "RecurrentClusterer", "ursa.estimators.clusterer",
                    "cluster sequences (deep temporal clustering)", _clusterer_sections),
    "gan": Task("gan", "RecurrentGAN", "ursa.estimators.gan",
                "generate synthetic sequences (TimeGAN)", _gan_sections),
    "detect": Task("detect", "SequenceAnomalyDetector", "ursa.estimators.anomaly",
                   "detect anomalies in long series", _detector_sections, series_input=True),
}


def estimator_class(task: str | Task):
    """The estimator class of ``task``; ``ImportError`` naming the job when it is not available."""
    task = TASKS[task] if isinstance(task, str) else task
    try:
        module = importlib.import_module(task.module)
    except ModuleNotFoundError as exc:
        if exc.name != task.module:
            raise
        raise ImportError(f"'{task.name}' ({task.class_name}) is not available in this version "
                          "of ursa.") from None
    return getattr(module, task.class_name)


def available_tasks() -> list[str]:
    """Names of the tasks whose estimator can be imported here."""
    names = []
    for name in TASKS:
        try:
            estimator_class(name)
        except ImportError:
            continue
        names.append(name)
    return names


def task_of(estimator) -> Task:
    """The task of a fitted estimator (by class name)."""
    for task in TASKS.values():
        if type(estimator).__name__ == task.class_name:
            return task
    raise TypeError(f"ursa has no report for {type(estimator).__name__}; expected one of "
                    f"{', '.join(t.class_name for t in TASKS.values())}.")


# ------------------------------------------------------------------------------------------
# the document


def _data_summary(model, X, y, task: Task) -> Section:
    rows = []
    if task.series_input:
        series = _series_list(X)
        sizes = [len(s) for s in series]
        rows += [("series", str(len(series)), ""),
                 ("steps per series", f"{min(sizes)} .. {max(sizes)}", f"{sum(sizes)} in all"),
                 ("channels", str(series[0].shape[1]), "")]
        flat = np.concatenate([s.reshape(-1) for s in series])
    else:
        lengths = _lengths(X)
        from .data import as_sequences

        seqs = as_sequences(X, name="X", allow_nan=True)
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
    if y is not None and not task.series_input:
        values, counts = np.unique(np.asarray(y), return_counts=True)
        shown = ", ".join(f"{v}: {c}" for v, c in list(zip(values, counts))[:12])
        rows.append(("labels", f"{len(values)} classes", shown))
    return Section("Data", "The data the report was computed on.", metrics=rows)


def _model_section(model, task: Task) -> Section:
    params = model.get_params(deep=False)
    rows = [(k, repr(v), "") for k, v in sorted(params.items())
            if k not in ("callbacks",)]
    history = getattr(model, "history_", None) or []
    figures = []
    if history:
        from . import plots

        try:
            figures += _figs("training curves", lambda: plots.training_curves(history))
        except ValueError:
            pass
        seconds = sum(float(r.get("seconds", 0.0)) for r in history)
        rows.insert(0, ("training", f"{len(history)} epochs", f"{seconds:.1f} s"))
    rows.insert(0, ("estimator", f"ursa.{task.class_name}", task.job))
    return Section("Model and training", "", figures=figures, metrics=rows)


def build_report(model, X, y=None, *, title: str | None = None, random_state=0) -> str:
    """The report as an HTML string (self-contained: images embedded as base64 PNG).

    Parameters
    ----------
    model : fitted ursa estimator
    X : the data to describe it on (sequences, or long series for an anomaly detector)
    y : labels, optional: one per sequence (classes), or per-step 0/1 anomaly labels for a
        detector (an array per series)
    """
    task = task_of(model)
    return render(report_sections(model, X, y, random_state=random_state),
                  title or f"ursa report: {task.class_name}")


def report_sections(model, X, y=None, *, random_state=0, prefix: str = "") -> list[Section]:
    """The sections :func:`build_report` renders (data, model and training, the task's own);
    ``prefix`` is put before each title, to combine several models in one page."""
    task = task_of(model)
    model._check_is_fitted()
    sections = [_data_summary(model, X, y, task), _model_section(model, task)]
    sections += task.sections(model, X, y, random_state)
    if prefix:
        for section in sections:
            section.title = f"{prefix}: {section.title}"
    return sections


def render(sections: list[Section], title: str) -> str:
    """HTML page from sections; figures are rendered to PNG and embedded."""
    from . import __version__

    return _render(sections, title, __version__)


def _render(sections: list[Section], title: str, version: str) -> str:
    from .plots import figure_to_png

    parts = []
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.metrics:
            parts.append("<table>")
            for name, value, note in section.metrics:
                parts.append(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td>"
                             f"<td class='note'>{html.escape(str(note))}</td></tr>")
            parts.append("</table>")
        for caption, fig in section.figures:
            data = base64.b64encode(figure_to_png(fig)).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(caption)}' "
                         f"src='data:image/png;base64,{data}'><figcaption>"
                         f"{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
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
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em;
       color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ text-align: left; padding: .25em .8em; border-bottom: 1px solid #eee;
          vertical-align: top; }}
td.note {{ color: #666; font-size: .9em; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #666; font-size: .9em; }}
footer {{ color: #888; font-size: .85em; margin-top: 3em; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
<footer>{footer}</footer>
</body>
</html>
"""
