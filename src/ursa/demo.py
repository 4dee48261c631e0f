"""The main job on built-in data: ``ursa demo`` (``make demo``; also ``python -m ursa.demo``).

Fits every estimator this build has on data shipped inside the package, prints each figure next to
its published reference (or a baseline measured in the same run), and writes one HTML report:

- SequenceAutoencoder on BasicMotions (UEA, 6 channels): k-means NMI and 1-NN accuracy of the
  embeddings; on generated sines: reconstruction error.
- RecurrentClusterer on BasicMotions: NMI / ARI against the classes (Lafabregue et al. 2022).
- RecurrentGAN on sines (TimeGAN protocol): discriminative and predictive scores (Yoon et al. 2019).
- SequenceAnomalyDetector on series 135 of the UCR Anomaly Archive: AUC-ROC / AUC-PR beside an
  IsolationForest on sliding windows and a random score in the same run.

The table ends with the wall time of each step and of the whole run, as measured by the run
itself; ``--quick`` runs tiny sizes that only check that everything works, and ``--quiet`` prints
the table alone (no progress bars or messages). Which estimators exist comes from ursa's one
estimator table; a job whose module is absent from this build is listed as not available.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier

from . import SequenceAutoencoder, load
from .datasets import load_ucr, make_sines


def _kmeans_nmi(features: np.ndarray, labels: np.ndarray, k: int, seeds=(0, 1, 2)) -> float:
    return float(np.mean([
        normalized_mutual_info_score(labels, KMeans(k, n_init=10, random_state=s).fit_predict(features))
        for s in seeds
    ]))


def _relative_error(X: np.ndarray, reconstruction: np.ndarray) -> float:
    """Reconstruction MSE divided by the MSE of predicting the per-step mean sequence."""
    return float(np.mean((reconstruction - X) ** 2) / np.mean((X - X.mean(axis=0)) ** 2))


def run(epochs: int = 60, out=sys.stdout, seed: int = 0,
        verbose: bool = True) -> list[tuple[str, str, str]]:
    """The autoencoder part alone (``python -m ursa.demo --epochs N``): fit, score, print its table.

    Parameters
    ----------
    epochs : int, default=60
        Training epochs of the BasicMotions autoencoder (the sines one trains a third of them).
    out : text stream, default=sys.stdout
        Where the table goes.
    seed : int, default=0
        ``random_state`` of the fits.
    verbose : bool, default=True
        A line about the data, and the fits' progress bars (standard error).

    Returns
    -------
    list of (str, str, str)
        The table rows ``(figure, ursa, reference)``.
    """
    rows, _ = _autoencoder_part(epochs, out, seed, verbose)
    _print_table(rows, out)
    return rows


def _autoencoder_part(epochs: int, out, seed: int, verbose: bool = True):
    rows = []
    X_train, y_train = load_ucr("BasicMotions", "train")
    X_test, y_test = load_ucr("BasicMotions", "test")
    X = np.concatenate([X_train, X_test])
    y = np.concatenate([y_train, y_test])
    if verbose:
        print(f"BasicMotions: {X.shape[0]} sequences x {X.shape[1]} steps x {X.shape[2]} "
              f"channels, {len(set(y))} classes (labels used only to score)", file=out)

    started = time.perf_counter()
    ae = SequenceAutoencoder(cell="lstm", latent_dim=8, epochs=epochs, validation_fraction=0.0,
                             random_state=seed, verbose=verbose).fit(X)
    fit_seconds = time.perf_counter() - started
    codes = ae.transform(X)
    n_train = len(X_train)

    def one_nn(train_features, test_features):
        return KNeighborsClassifier(1).fit(train_features, y_train).score(test_features, y_test)

    flat = X.reshape(len(X), -1)
    rows += [
        ("fit time, s (60 epochs, 80 sequences)" if epochs == 60 else f"fit time, s ({epochs} epochs)",
         f"{fit_seconds:.1f}", "-"),
        ("k-means NMI on embeddings (k=4, 3 seeds)", f"{_kmeans_nmi(codes, y, 4):.3f}",
         f"raw-series k-means {_kmeans_nmi(flat, y, 4):.3f} (this run); "
         "k-means-DTW 0.786, dilated-RNN+DEC 0.969 (Lafabregue et al. 2022)"),
        ("1-NN accuracy on embeddings (train -> test)",
         f"{one_nn(codes[:n_train], codes[n_train:]):.3f}",
         f"1-NN Euclidean on raw series {one_nn(flat[:n_train], flat[n_train:]):.3f} (this run)"),
        ("relative reconstruction error", f"{_relative_error(X, ae.reconstruct(X)):.3f}",
         "1.0 = predicting the mean sequence"),
    ]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "basicmotions.ursa"
        ae.save(path)
        same = np.array_equal(load(path).transform(X), codes)
        rows.append(("save -> load -> transform reproduces embeddings",
                     "yes" if same else "NO", f"{path.stat().st_size / 1024:.0f} KiB file"))

    sines = make_sines(1000, 24, 5, random_state=seed)
    started = time.perf_counter()
    ae_sines = SequenceAutoencoder(latent_dim=8, epochs=max(1, epochs // 3), scaling="minmax",
                                   random_state=seed, verbose=verbose).fit(sines)
    rows.append((f"sines (1000 x 24 x 5): relative reconstruction error, {ae_sines.n_iter_} epochs",
                 f"{_relative_error(sines, ae_sines.reconstruct(sines)):.3f}",
                 f"fit {time.perf_counter() - started:.1f} s"))
    return rows, [("Autoencoder, BasicMotions", "BasicMotions", ae, X, y)]


# ------------------------------------------------------------------------------------------
# the other estimators: each part takes (quick, seed, out, verbose) and returns
# (rows, [(heading, data set name, model, X, y)]) for the report

# Sizes per part: (full, --quick). The GAN gets most of the run (its fit and the protocol's
# post-hoc networks) and still stays far from TimeGAN's figures, which need tens of thousands of
# iterations (benchmarks/generation.py).
SIZES = {
    "autoencoder": {"epochs": (60, 2)},
    "cluster": {"epochs": (100, 2), "clustering_epochs": (20, 2)},
    "gan": {"n_sequences": (1000, 64), "iterations": (400, 20), "metric_repeats": (1, 1),
            # post-hoc GRU steps of the discriminative / predictive scores (protocol: 2000 / 5000)
            "discriminative_iterations": (2000, 20), "predictive_iterations": (5000, 20)},
    "detect": {"epochs": (15, 1)},
}


def _size(part: str, key: str, quick: bool):
    return SIZES[part][key][1 if quick else 0]


def _mean(value) -> float:
    """A metric that returns a number, a (mean, std) pair or a dict with 'mean'."""
    if isinstance(value, dict):
        value = value.get("mean", next(iter(value.values())))
    if isinstance(value, (tuple, list)):
        value = value[0]
    return float(value)


def _cluster_part(quick: bool, seed: int, out, verbose: bool = True):
    from sklearn.metrics import adjusted_rand_score

    from . import RecurrentClusterer

    X, y = load_ucr("BasicMotions")
    k = len(set(y))
    started = time.perf_counter()
    model = RecurrentClusterer(n_clusters=k, epochs=_size("cluster", "epochs", quick),
                               clustering_epochs=_size("cluster", "clustering_epochs", quick),
                               random_state=seed, verbose=verbose).fit(X)
    seconds = time.perf_counter() - started
    labels = model.labels_
    flat = X.reshape(len(X), -1)
    rows = [
        (f"RecurrentClusterer on BasicMotions (k={k}): NMI", f"{normalized_mutual_info_score(y, labels):.3f}",
         f"k-means on raw series {_kmeans_nmi(flat, y, k):.3f} (this run); k-means-DTW 0.786, "
         "dilated-RNN+DEC 0.969 (Lafabregue et al. 2022)"),
        ("RecurrentClusterer on BasicMotions: ARI", f"{adjusted_rand_score(y, labels):.3f}",
         f"fit {seconds:.1f} s"),
    ]
    return rows, [("Clusterer, BasicMotions", "BasicMotions", model, X, y)]


def _gan_part(quick: bool, seed: int, out, verbose: bool = True):
    from . import RecurrentGAN, metrics

    n = _size("gan", "n_sequences", quick)
    X = make_sines(n, 24, 5, random_state=seed)
    started = time.perf_counter()
    iterations = _size("gan", "iterations", quick)
    model = RecurrentGAN(iterations=iterations, pretrain_iterations=iterations,
                         random_state=seed, verbose=verbose).fit(X)
    seconds = time.perf_counter() - started
    synthetic = model.sample(n, random_state=seed)
    rows = []
    references = {"discriminative_score": ".011 +/- .008 (TimeGAN paper)",
                  "predictive_score": ".093 +/- .019 (TimeGAN paper; real data .094)"}
    for name, reference in references.items():
        fn = getattr(metrics, name, None)
        if fn is None:
            continue
        iterations = _size("gan", f"{name.split('_')[0]}_iterations", quick)
        value = _mean(fn(X, synthetic, n_repeats=_size("gan", "metric_repeats", quick),
                         iterations=iterations, random_state=seed, verbose=verbose))
        rows.append((f"RecurrentGAN on sines ({n} x 24 x 5): {name.replace('_', ' ')}",
                     f"{value:.3f}", reference))
    rows.append(("RecurrentGAN: mean / std, real vs synthetic",
                 f"{synthetic.mean():.3f} / {synthetic.std():.3f}",
                 f"real {X.mean():.3f} / {X.std():.3f}; fit {seconds:.1f} s "
                 f"({model.iterations} iterations; the paper runs 3 x 50,000)"))
    return rows, [("GAN, sines", f"sines ({n} x 24 x 5)", model, X, None)]


def _window_scores_to_steps(scores, n_timesteps, window):
    from .data import windows_to_steps

    return windows_to_steps(scores, n_timesteps, window, 1, reduce="mean")


def _detect_part(quick: bool, seed: int, out, verbose: bool = True):
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import average_precision_score, roc_auc_score

    from . import SequenceAnomalyDetector
    from .data import sliding_windows
    from .datasets import load_ucr_anomaly

    series, labels, train_length = load_ucr_anomaly("InternalBleeding16")
    window = 64
    started = time.perf_counter()
    model = SequenceAnomalyDetector(window=window, epochs=_size("detect", "epochs", quick),
                                    random_state=seed, verbose=verbose).fit(series[:train_length])
    scores = np.asarray(model.decision_function(series), dtype=np.float64)
    seconds = time.perf_counter() - started
    # Baselines in the same run: IsolationForest on sliding windows (fit on the same prefix,
    # window scores averaged over the steps they cover) and a random score.
    forest = IsolationForest(random_state=seed).fit(
        sliding_windows(series[:train_length], window).reshape(-1, window))
    forest_scores = _window_scores_to_steps(
        -forest.score_samples(sliding_windows(series, window).reshape(-1, window)), len(series),
        window)
    finite = np.isfinite(scores)
    rows = [
        ("SequenceAnomalyDetector on UCR 135 (7501 points): AUC-ROC",
         f"{roc_auc_score(labels[finite], scores[finite]):.3f}",
         f"IsolationForest on windows {roc_auc_score(labels, forest_scores):.3f} (this run); "
         "LSTM encoder-decoder 0.988 on UCR series 135-138 (measured, unpublished)"),
        ("SequenceAnomalyDetector on UCR 135: AUC-PR",
         f"{average_precision_score(labels[finite], scores[finite]):.3f}",
         f"IsolationForest {average_precision_score(labels, forest_scores):.3f}, random "
         f"{labels.mean():.4f} (this run); fit + score {seconds:.1f} s"),
    ]
    from . import metrics

    if hasattr(metrics, "vus_pr") and finite.all():
        rows.append(("SequenceAnomalyDetector on UCR 135: VUS-PR",
                     f"{metrics.vus_pr(labels, scores):.3f}",
                     f"IsolationForest {metrics.vus_pr(labels, forest_scores):.3f} (this run)"))
    return rows, [("Detector, UCR anomaly 135", "UCR anomaly 135", model, series, labels)]


# The demo's part of each job of the estimator table (by task name): the function that fits and
# scores it, and what the progress message says it runs on.
PARTS = {
    "autoencoder": (lambda quick, seed, out, verbose=True: _autoencoder_part(
        _size("autoencoder", "epochs", quick), out, seed, verbose), " on BasicMotions and sines"),
    "cluster": (_cluster_part, ""),
    "gan": (_gan_part, ""),
    "detect": (_detect_part, ""),
}


def run_all(quick: bool = False, seed: int = 0, report_path="ursa-demo.html", verbose: bool = True,
            out=sys.stdout, parts=None):
    """Fit every available estimator on built-in data, print the table and write the report.

    Parameters
    ----------
    quick : bool, default=False
        Tiny sizes: checks that everything runs; the figures mean nothing.
    seed : int, default=0
        ``random_state`` of every fit, sample and score.
    report_path : str, path-like or None, default="ursa-demo.html"
        Where to write the HTML report; None writes none.
    verbose : bool, default=True
        Progress messages, and the progress bars of the fits and scores, on standard error;
        False prints nothing but the table (and the report's path).
    out : text stream, default=sys.stdout
        Where the table goes.
    parts : sequence of str, optional
        Task names to run, in order; default every task of the estimator table.

    Returns
    -------
    list of (str, str, str)
        The table rows ``(figure, ursa, reference)``; the last rows are the wall time of each
        step (wall and CPU seconds) and of the whole run, report included.
    """
    from ._registry import available_tasks, entry_for, task_names

    def say(message):
        if verbose:
            print(message, file=sys.stderr, flush=True)

    parts = task_names() if parts is None else list(parts)
    available = set(available_tasks())
    rows, times, reported = [], [], []
    started, cpu_started = time.perf_counter(), time.process_time()
    for step, part in enumerate(parts, 1):
        part_started, part_cpu = time.perf_counter(), time.process_time()
        class_name = entry_for(part).class_name
        function, what = PARTS[part]
        if part not in available:
            rows.append((f"{class_name}", "not available", "not in this build"))
            continue
        say(f"[{step}/{len(parts)}] {class_name}{what} ...")
        part_rows, part_models = function(quick, seed, out, verbose)
        rows += part_rows
        reported += part_models
        seconds, cpu = time.perf_counter() - part_started, time.process_time() - part_cpu
        times.append((f"wall time, s: {class_name} step", f"{seconds:.0f}",
                      f"{cpu:.0f} s of CPU"))
        say(f"      done in {seconds:.0f} s ({cpu:.0f} s of CPU)")
    results = list(rows)
    rows += times
    if report_path is not None:
        say("writing the report ...")
        report_started, report_cpu = time.perf_counter(), time.process_time()
        _write_report(report_path, results, times, reported, seed, verbose)
        rows.append(("wall time, s: HTML report", f"{time.perf_counter() - report_started:.0f}",
                     f"{time.process_time() - report_cpu:.0f} s of CPU"))
    rows.append(("demo wall time, s (all steps)", f"{time.perf_counter() - started:.0f}",
                 f"{time.process_time() - cpu_started:.0f} s of CPU; "
                 + ("--quick sizes" if quick else "full sizes")))
    _print_table(rows, out)
    if report_path is not None:
        print(f"\nreport: {report_path}", file=out)
    return rows


def _write_report(path, rows, times, reported, seed, verbose) -> None:
    """The demo's page: the table (the step times folded), each data set once, then each model's
    sections."""
    from .report import Section, data_section, render, report_sections, without_generation_scores

    sections = [Section("Summary", "Each figure of this run beside its published reference or a "
                        "baseline measured in the same run.", metrics=list(rows),
                        folded=[("wall time of each step", times)])]
    described = {}
    for heading, dataset, model, X, y in reported:
        described.setdefault(dataset, []).append((heading, model, X, y))
    for dataset, uses in described.items():
        _, model, X, y = uses[0]
        section = data_section(model, X, y, title=f"Data: {dataset}")
        facts = "; ".join(f"{name}: {value}" + (f" ({note})" if note else "")
                          for name, value, note in section.metrics)
        users = ", ".join(heading.split(",")[0] for heading, *_ in uses)
        section.text = f"{facts}. Used by: {users}."
        section.metrics = []
        sections.append(section)
    with without_generation_scores():  # already in the summary, computed above
        for heading, dataset, model, X, y in reported:
            sections += report_sections(model, X, y, random_state=seed, prefix=heading,
                                        data=False, verbose=verbose)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render(sections, "ursa demo"), encoding="utf-8")


def _print_table(rows, out) -> None:
    headers = ("figure", "ursa", "reference")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths))
    print("\n" + line, file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)


def main(argv=None) -> int:
    """``python -m ursa.demo``: the whole demo, or the autoencoder part alone with ``--epochs``;
    returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ursa.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="autoencoder epochs; runs the autoencoder part alone (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--report", default="ursa-demo.html", help="HTML report to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print the table alone: no progress bars or messages")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        run(epochs=args.epochs, seed=args.seed, verbose=not args.quiet)
    else:
        run_all(quick=args.quick, seed=args.seed, report_path=args.report,
                verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
