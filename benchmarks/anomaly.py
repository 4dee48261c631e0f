"""Anomaly detection on the 11 NAB and UCR series of ../shared/data/anomaly.

Protocol (../shared/data/README.md): NAB series are fitted on their first 15 % (the probationary
period), UCR series on their clean training prefix (from the file name); every point is scored.
Labels: NAB points inside a window of combined_windows.json; UCR steps BEGIN..END of the file name
(1-based, inclusive). Per series and averaged: AUC-ROC, AUC-PR (average precision) and VUS-PR
(max buffer 2 x window = 128, 250 thresholds) of

* ``ursa``: SequenceAnomalyDetector with its defaults (window 64, 20 epochs) and
  ``random_state`` 0;
* ``random``: uniform random scores (seed 0);
* ``iforest``: scikit-learn IsolationForest (200 trees, seed 0) on sliding windows of 64 steps
  (stride 1) of the z-normalised series, fitted on the training windows; window scores are
  mapped to steps with ``windows_to_steps(reduce="mean")``.

It also measures ``decision_function`` throughput (points/s, one torch thread) on a univariate
series with window 64, and the peak memory of scoring a 10-million-point series.

Usage::

    python benchmarks/anomaly.py            # full run, rewrites its section of RESULTS.md
    python benchmarks/anomaly.py --quick    # 2 series, short training, writes nothing

Any other option (``--only``, ``--score-reduction``, ``--window``, ``--param``,
``--memory-points``) makes a trial, which prints its table and leaves RESULTS.md alone unless
given ``--record``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import ursa  # noqa: E402
from ursa.data import sliding_windows, windows_to_steps  # noqa: E402
from ursa.metrics import auc_pr, auc_roc, vus_pr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "anomaly"
WINDOW = 64
MAX_BUFFER = 2 * WINDOW
TARGETS = {"auc_pr": 0.60, "auc_roc": 0.87, "vus_pr": 0.55}
MEDIAN_NAB_SECONDS_TARGET = 3.0


def load_series():
    """Yield (group, name, values (T,), train_length, labels (T,))."""
    windows = json.loads((DATA / "nab" / "combined_windows.json").read_text())
    for path in sorted((DATA / "nab").glob("*.csv")):
        rows = path.read_text().strip().splitlines()[1:]
        stamps = np.array([r.split(",")[0] for r in rows], dtype="datetime64[s]")
        values = np.array([float(r.split(",")[1]) for r in rows])
        labels = np.zeros(len(values), dtype=np.int8)
        for start, end in windows[f"realKnownCause/{path.name}"]:
            lo = np.datetime64(start.split(".")[0].replace(" ", "T"))
            hi = np.datetime64(end.split(".")[0].replace(" ", "T"))
            labels[(stamps >= lo) & (stamps <= hi)] = 1
        yield "NAB", path.stem, values, int(0.15 * len(values)), labels
    for path in sorted((DATA / "ucr").glob("*.txt")):
        values = np.array(path.read_text().split(), dtype=np.float64)
        parts = path.stem.split("_")
        train, begin, end = int(parts[-3]), int(parts[-2]), int(parts[-1])
        labels = np.zeros(len(values), dtype=np.int8)
        labels[begin - 1 : end] = 1  # 1-based, inclusive
        yield "UCR", "_".join(parts[:1] + parts[3:-3]), values, train, labels


SCORE_REDUCTION = "window"
DETECTOR_WINDOW: int | str = WINDOW
DETECTOR_PARAMS: dict = {}


def score_ursa(values, train, quick):
    params = {**dict(window=DETECTOR_WINDOW, random_state=0, device="cpu", verbose=False,
                     score_reduction=SCORE_REDUCTION), **DETECTOR_PARAMS}
    if quick:
        params["epochs"] = 2
    det = ursa.SequenceAnomalyDetector(**params).fit(values[:train])
    scores = det.decision_function(values)
    FITTED.append((det, scores))
    return scores


FITTED: list = []  # (detector, scores of the whole series) per series, for the threshold table

# Threshold rules compared on each fitted detector: (label, detector parameters). The first is
# the detector's default.
THRESHOLD_RULES = (
    ("pot (default)", dict(threshold="pot")),
    ("pot, risk 1e-2", dict(threshold="pot", pot_risk=1e-2)),
    ("contamination 0.1", dict(threshold="contamination", contamination=0.1)),
    ("contamination 0.01", dict(threshold="contamination", contamination=0.01)),
    ("contamination 0.001", dict(threshold="contamination", contamination=0.001)),
)


def _events(labels):
    """(start, end) of each run of 1s, end exclusive."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels, [0]])))
    return list(zip(edges[::2], edges[1::2]))


def threshold_table(series_rows) -> list[dict]:
    """Each threshold rule on each fitted detector: the share of steps flagged in the clean
    training part and after it, the share of labelled events with a flagged step, point F1 after
    the training part, and the number of flagged regions there."""
    rows = []
    for (name, train, labels), (det, scores) in zip(series_rows, FITTED):
        for label, params in THRESHOLD_RULES:
            judge = ursa.SequenceAnomalyDetector(**{**det.get_params(), **params})
            level = judge._threshold_of(det.decision_scores_)
            flags = (scores > level).astype(np.int8)
            rest, truth = flags[train:], labels[train:]
            events = _events(labels)
            found = [flags[a:b].any() for a, b in events if b > train]
            tp = int((rest & truth).sum())
            precision = tp / max(1, rest.sum())
            recall = tp / max(1, truth.sum())
            rows.append(dict(series=name, rule=label,
                             clean_flagged=float(flags[:train].mean()),
                             flagged=float(rest.mean()),
                             event_recall=float(np.mean(found)) if found else float("nan"),
                             f1=2 * precision * recall / max(1e-12, precision + recall),
                             regions=len(_events(rest))))
    return rows


def render_thresholds(rows) -> list[str]:
    lines = ["Threshold rules on the same fitted detectors (`threshold_` set from the training "
             "scores; after the training part unless said): mean over the series of the share of "
             "the clean training part flagged, the share flagged after it, the share of labelled "
             "events with a flagged step, point F1, and the median number of flagged regions.",
             "",
             "| rule | clean part flagged | flagged after | event recall | point F1 | regions |",
             "|---|---|---|---|---|---|"]
    for label, _ in THRESHOLD_RULES:
        chosen = [r for r in rows if r["rule"] == label]
        lines.append(
            f"| {label} | {np.mean([r['clean_flagged'] for r in chosen]):.4f} | "
            f"{np.mean([r['flagged'] for r in chosen]):.4f} | "
            f"{np.nanmean([r['event_recall'] for r in chosen]):.2f} | "
            f"{np.mean([r['f1'] for r in chosen]):.3f} | "
            f"{np.median([r['regions'] for r in chosen]):.0f} |")
    return lines


def score_random(values, train, quick):
    return np.random.default_rng(0).random(len(values))


def score_iforest(values, train, quick):
    from sklearn.ensemble import IsolationForest

    mean, std = values[:train].mean(), values[:train].std() or 1.0
    z = ((values - mean) / std)[:, None]
    windows = sliding_windows(z, WINDOW)[:, :, 0]  # (n_windows, WINDOW)
    n_train = len(sliding_windows(z[:train], WINDOW))
    forest = IsolationForest(n_estimators=200, random_state=0).fit(windows[:n_train])
    return windows_to_steps(-forest.score_samples(windows), len(values), WINDOW, reduce="mean")


METHODS = {"ursa": score_ursa, "random": score_random, "iforest": score_iforest}


def _fitted_for_speed():
    rng = np.random.default_rng(0)
    t = np.arange(5000)
    series = (np.sin(2 * np.pi * t / 50) + 0.1 * rng.standard_normal(len(t))).astype(np.float32)
    return ursa.SequenceAnomalyDetector(window=WINDOW, epochs=1, random_state=0, device="cpu",
                                        verbose=False,
                                        n_threads=1, max_train_windows=2000).fit(series)


def throughput(n_points: int, repeats: int = 3) -> tuple[float, float]:
    """decision_function points/s on one thread, univariate, window 64, default score_stride:
    (by wall-clock time, by CPU time of this process), best of ``repeats``."""
    rng = np.random.default_rng(1)
    t = np.arange(n_points)
    series = (np.sin(2 * np.pi * t / 50) + 0.1 * rng.standard_normal(n_points)).astype(np.float32)
    det = _fitted_for_speed()
    det.decision_function(series[:20000])  # warm-up
    wall, cpu = np.inf, np.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        det.decision_function(series)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return n_points / wall, n_points / cpu


def peak_memory(n_points: int) -> tuple[float, float, float]:
    """Score ``n_points`` in a fresh process: (input MiB, peak RSS growth MiB, seconds)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--memory-child", str(n_points)],
                         capture_output=True, text=True, check=True).stdout
    return tuple(float(v) for v in out.split()[-3:])


def _memory_child(n_points: int) -> None:
    torch.set_num_threads(1)
    det = _fitted_for_speed()
    series = np.sin(np.arange(n_points, dtype=np.float32) / 8.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    scores = det.decision_function(series)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert scores.shape == (n_points,) and np.isfinite(scores).all()
    print(series.nbytes / 2**20, after - before, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 series, 2 epochs; writes nothing unless --record")
    parser.add_argument("--only", default=None, help="comma-separated series names")
    parser.add_argument("--memory-points", type=int, default=10_000_000,
                        help="length of the series scored for the memory check (0 skips it)")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--score-reduction", default="window", choices=("window", "step"),
                        help="the detector's window-to-step reduction (default: its default)")
    parser.add_argument("--window", default=str(WINDOW),
                        help="the detector's window: an integer or 'auto' (default: 64); the "
                             "baselines keep 64 and VUS-PR its max buffer of 128")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another detector parameter for a trial (repeatable), e.g. "
                             "--param max_steps=300")
    _results.add_write_options(parser)
    args = parser.parse_args()
    trial = _results.trial_options(parser, args)
    global SCORE_REDUCTION, DETECTOR_WINDOW
    for item in args.param:
        name, _, value = item.partition("=")
        DETECTOR_PARAMS[name] = json.loads(value) if value not in ("", "None") else None
    SCORE_REDUCTION = args.score_reduction
    DETECTOR_WINDOW = args.window if args.window == "auto" else int(args.window)
    if args.memory_child:
        _memory_child(args.memory_child)
        return
    torch.set_num_threads(1)
    began = time.perf_counter()

    rows, series_rows = [], []
    for group, name, values, train, labels in load_series():
        if args.only and name not in args.only.split(","):
            continue
        if args.quick and len(rows) >= 2 * len(METHODS):
            break
        series_rows.append((name, train, labels))
        for method, fn in METHODS.items():
            start = time.perf_counter()
            scores = fn(values, train, args.quick)
            seconds = time.perf_counter() - start
            row = dict(group=group, series=name, method=method, seconds=seconds,
                       auc_roc=auc_roc(labels, scores), auc_pr=auc_pr(labels, scores),
                       vus_pr=vus_pr(labels, scores, max_buffer=MAX_BUFFER))
            rows.append(row)
            print(f"{group} {name:40s} {method:8s} ROC {row['auc_roc']:.3f} PR {row['auc_pr']:.3f} "
                  f"VUS {row['vus_pr']:.3f} {seconds:6.1f}s", flush=True)

    n_points = 100_000 if args.quick else 300_000
    speed = throughput(n_points)
    print(f"throughput: {speed[0]:,.0f} points/s (wall), {speed[1]:,.0f} points per CPU second",
          flush=True)
    memory = None
    if args.memory_points and not args.quick:
        memory = peak_memory(args.memory_points)
        print(f"{args.memory_points:,} points: input {memory[0]:.0f} MiB, peak RSS growth "
              f"{memory[1]:.0f} MiB, {memory[2]:.0f} s", flush=True)

    thresholds = threshold_table(series_rows)
    report = render(rows, speed, n_points, memory, args.memory_points,
                    time.perf_counter() - began)
    report += "\n" + "\n".join(render_thresholds(thresholds)) + "\n"
    print(report)
    if _results.should_write(args.write, trial):
        _results.write_section(
            "anomaly", report,
            f"python benchmarks/anomaly.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}",
            machine=f"{_results.this_machine()}, ursa {ursa.__version__}, "
                    f"{torch.get_num_threads()} torch thread",
            title="Anomaly detection on 11 NAB and UCR series — `benchmarks/anomaly.py`")


def render(rows, speed, n_points, memory, memory_points, runtime) -> str:
    methods = list(METHODS)
    series = list(dict.fromkeys((r["group"], r["series"]) for r in rows))
    by = {(r["series"], r["method"]): r for r in rows}
    metrics = ("auc_roc", "auc_pr", "vus_pr")
    lines = [
        f"Runtime: {runtime:.0f} s. Protocol: see the script's docstring (NAB fit on the first "
        "15 %, UCR on the clean prefix; VUS-PR max buffer 128).",
        "",
        "| group | series | " + " | ".join(f"{m} ROC / PR / VUS" for m in methods)
        + " | " + " | ".join(f"{m} s" for m in methods) + " |",  # s: per series; total in means
        "|---|---|" + "---|" * (2 * len(methods)),
    ]
    for group, name in series:
        cells = [" / ".join(f"{by[(name, m)][k]:.3f}" for k in metrics) for m in methods]
        times = [f"{by[(name, m)]['seconds']:.1f}" for m in methods]
        lines.append(f"| {group} | {name} | " + " | ".join(cells + times) + " |")
    for label, keep in (("mean NAB", "NAB"), ("mean UCR", "UCR"), ("**mean (all)**", None)):
        chosen = [n for g, n in series if keep is None or g == keep]
        if not chosen:
            continue
        cells, times = [], []
        for m in methods:
            cells.append(" / ".join(
                f"{np.mean([by[(n, m)][k] for n in chosen]):.3f}" for k in metrics))
            times.append(f"{np.sum([by[(n, m)]['seconds'] for n in chosen]):.1f}")
        lines.append(f"| {label} | {len(chosen)} series | " + " | ".join(cells + times) + " |")
    lines.append("")
    ursa_all = {k: np.mean([by[(n, "ursa")][k] for _, n in series]) for k in metrics}
    lines.append("Targets (mean over the series): " + ", ".join(
        f"{k} {ursa_all[k]:.3f} {'>=' if ursa_all[k] >= TARGETS[k] else '<'} {TARGETS[k]}"
        for k in metrics) + ".")
    nab = [n for g, n in series if g == "NAB"]
    if nab:
        medians = {m: float(np.median([by[(n, m)]["seconds"] for n in nab])) for m in methods}
        lines.append("Median fit + score per NAB series (one thread): " + ", ".join(
            f"{m} {v:.1f} s" for m, v in medians.items()) + f" (target for ursa: under "
            f"{MEDIAN_NAB_SECONDS_TARGET:.0f} s).")
    lines.append("")
    stride = ursa.SequenceAnomalyDetector().score_stride
    lines.append(f"Scoring throughput (`decision_function`, univariate, window {WINDOW}, "
                 f"default score_stride {stride}, 1 torch thread, best of 3 on {n_points:,} "
                 "points): "
                 f"**{speed[1]:,.0f} points per CPU second** (one core's throughput; target "
                 f">= 50,000), {speed[0]:,.0f} points/s by wall clock.")
    if memory:
        lines.append(f"Scoring {memory_points:,} points in a fresh process: input "
                     f"{memory[0]:.0f} MiB, peak RSS growth {memory[1]:.0f} MiB (windows are cut "
                     f"in batches of 1024), {memory[2]:.0f} s.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
