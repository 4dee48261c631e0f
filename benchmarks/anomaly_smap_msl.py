"""Anomaly detection on the 18 SMAP/MSL telemetry channels of ../shared/data/anomaly/smap_msl.

Protocol (../shared/data/README.md; Hundman et al., KDD 2018): each channel is fitted on its
``train`` series and scores its ``test`` series; point labels from ``labeled_anomalies.csv``
(inclusive index ranges), no point adjustment. A channel is a (T, 25) (SMAP) or (T, 55) (MSL)
series whose dimension 0 is the telemetry value and the others one-hot command flags. Per channel
and averaged: AUC-ROC, AUC-PR and VUS-PR (TSB-AD's definition, max buffer 128, 250 thresholds) of

* ``ursa-all``: SequenceAnomalyDetector with its defaults, ``random_state`` 0 and
  ``channels="all"`` (every dimension modelled);
* ``ursa-continuous``: the same with ``channels="continuous"`` (the binary command flags left
  out, so the telemetry value alone);
* ``iforest``: IsolationForest (200 trees, seed 0) on 64-step windows of all dimensions
  (z-normalised with the training statistics, flattened), window scores mapped to steps;
* ``iforest-value``: the same on the telemetry value alone;
* ``random``: uniform random scores (seed 0).

Usage::

    python benchmarks/anomaly_smap_msl.py            # full run, rewrites its section
    python benchmarks/anomaly_smap_msl.py --quick    # 3 channels, 2 epochs, writes nothing
"""

from __future__ import annotations

import argparse
import ast
import csv
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

DATA = ROOT.parent / "shared" / "data" / "anomaly" / "smap_msl"
WINDOW = 64
MAX_BUFFER = 2 * WINDOW


def load_channels():
    """Yield (spacecraft, channel, train (T, C), test (T', C), labels (T',))."""
    with open(DATA / "labeled_anomalies.csv", newline="") as fh:
        rows = {r["chan_id"]: r for r in csv.DictReader(fh)}
    for path in sorted((DATA / "test").glob("*.npy")):
        channel = path.stem
        test = np.load(path).astype(np.float32)
        train = np.load(DATA / "train" / path.name).astype(np.float32)
        labels = np.zeros(len(test), dtype=np.int8)
        for first, last in ast.literal_eval(rows[channel]["anomaly_sequences"]):
            labels[first : last + 1] = 1
        yield rows[channel]["spacecraft"], channel, train, test, labels


def score_ursa(train, test, quick, channels):
    params = dict(random_state=0, device="cpu", channels=channels, verbose=False)
    if quick:
        params["epochs"] = 2
    det = ursa.SequenceAnomalyDetector(**params).fit(train)
    return det.decision_function(test)


def score_iforest(train, test, quick, value_only=False):
    from sklearn.ensemble import IsolationForest

    if value_only:
        train, test = train[:, :1], test[:, :1]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    flat = lambda x: sliding_windows((x - mean) / std, WINDOW).reshape(  # noqa: E731
        -1, WINDOW * x.shape[1])
    forest = IsolationForest(n_estimators=200, random_state=0).fit(flat(train))
    return windows_to_steps(-forest.score_samples(flat(test)), len(test), WINDOW, reduce="mean")


METHODS = {
    "ursa-all": lambda tr, te, q: score_ursa(tr, te, q, "all"),
    "ursa-continuous": lambda tr, te, q: score_ursa(tr, te, q, "continuous"),
    "iforest": score_iforest,
    "iforest-value": lambda tr, te, q: score_iforest(tr, te, q, value_only=True),
    "random": lambda tr, te, q: np.random.default_rng(0).random(len(te)),
}
METRICS = ("auc_roc", "auc_pr", "vus_pr")


def render(rows, runtime) -> str:
    methods = list(METHODS)
    channels = list(dict.fromkeys((r["spacecraft"], r["channel"]) for r in rows))
    by = {(r["channel"], r["method"]): r for r in rows}
    lines = [
        f"Runtime: {runtime:.0f} s. Protocol: see the script's docstring (fit on train, score "
        "test, no point adjustment; VUS-PR max buffer 128). Cells: AUC-ROC / AUC-PR / VUS-PR.",
        "",
        "| spacecraft | channel | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for craft, channel in channels:
        cells = [" / ".join(f"{by[(channel, m)][k]:.3f}" for k in METRICS) for m in methods]
        lines.append(f"| {craft} | {channel} | " + " | ".join(cells) + " |")
    means = {m: {k: np.mean([by[(c, m)][k] for _, c in channels]) for k in METRICS}
             for m in methods}
    cells = [" / ".join(f"{means[m][k]:.3f}" for k in METRICS) for m in methods]
    lines.append(f"| **mean** | {len(channels)} channels | " + " | ".join(cells) + " |")
    seconds = {m: np.median([by[(c, m)]["seconds"] for _, c in channels]) for m in methods}
    lines += ["", "Median fit + score seconds per channel (one thread): " + ", ".join(
        f"{m} {s:.1f}" for m, s in seconds.items()) + "."]
    default = "ursa-" + ursa.SequenceAnomalyDetector().channels
    ratio = means[default]["auc_pr"] / means["random"]["auc_pr"]
    best_forest = max(means["iforest"]["auc_pr"], means["iforest-value"]["auc_pr"])
    lines.append(f"Target: the default detector's ({default}) mean AUC-PR at least 1.5x random's "
                 f"({ratio:.2f}x) and above IsolationForest's ({means[default]['auc_pr']:.3f} "
                 f"against {best_forest:.3f}, the better of its two inputs).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 channels, 2 epochs; writes nothing unless --record")
    parser.add_argument("--only", default=None, help="comma-separated channel names")
    _results.add_write_options(parser)
    args = parser.parse_args()
    trial = _results.trial_options(parser, args)
    torch.set_num_threads(1)
    began = time.perf_counter()
    rows = []
    for n, (craft, channel, train, test, labels) in enumerate(load_channels()):
        if (args.quick and n >= 3) or (args.only and channel not in args.only.split(",")):
            continue
        for method, fn in METHODS.items():
            start = time.perf_counter()
            scores = fn(train, test, args.quick)
            row = dict(spacecraft=craft, channel=channel, method=method,
                       seconds=time.perf_counter() - start, auc_roc=auc_roc(labels, scores),
                       auc_pr=auc_pr(labels, scores),
                       vus_pr=vus_pr(labels, scores, max_buffer=MAX_BUFFER))
            rows.append(row)
            print(f"{craft} {channel:6s} {method:14s} ROC {row['auc_roc']:.3f} PR "
                  f"{row['auc_pr']:.3f} VUS {row['vus_pr']:.3f} {row['seconds']:6.1f}s",
                  flush=True)
    report = render(rows, time.perf_counter() - began)
    print(report)
    if _results.should_write(args.write, trial):
        _results.write_section(
            "anomaly-smap_msl", report,
            f"python benchmarks/anomaly_smap_msl.py "
            f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}".strip(),
            machine=f"{_results.this_machine()}, ursa {ursa.__version__}, "
                    f"{torch.get_num_threads()} torch thread",
            title="Anomaly detection on 18 SMAP/MSL channels — `benchmarks/anomaly_smap_msl.py`")


if __name__ == "__main__":
    main()
