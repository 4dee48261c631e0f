"""Faithfulness of explanations: deleting the steps an explanation ranks highest should change the
explained score more than deleting as many random steps.

For each estimator and attribution method, on benchmark data the defaults were not tuned on:

* ``SequenceAutoencoder`` and ``RecurrentClusterer`` (plain and attention encoders) on the 12 UCR
  sets of ``benchmarks/clustering.py --collection ucr-broad --quick`` (train and test pooled, at
  most ``--max-sequences`` per set, each series z-normalised); the autoencoder's score is its
  reconstruction error, the clusterer's the log soft assignment to each sequence's cluster;
* ``SequenceAnomalyDetector`` on the NAB and UCR series of ``benchmarks/anomaly.py``, fitted on
  each series' training part; the score is the mean per-step score of the whole series.

:func:`ursa.metrics.deletion_check` deletes (sets to the training mean, the attributions'
baseline) the top 10 % of each sequence's steps, and 10 % random steps (5 draws), and compares the
mean absolute changes of the score. The target is a ratio of at least 2 for each estimator, on
average (the mean of the per-data-set ratios).

    python benchmarks/explain.py            # full run, rewrites its section of RESULTS.md
    python benchmarks/explain.py --quick    # 3 UCR sets, 2 anomaly series, nothing written
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402
import _ucr_broad  # noqa: E402
import anomaly  # noqa: E402

import ursa  # noqa: E402
from ursa.metrics import deletion_check  # noqa: E402

SECTION = "explanations"
FRACTION = 0.1
TARGET_RATIO = 2.0
# (estimator, encoder, methods): what is explained, and how.
CASES = (
    ("SequenceAutoencoder", "rnn", ("error", "integrated-gradients", "occlusion")),
    ("RecurrentClusterer", "rnn", ("integrated-gradients", "occlusion")),
    ("RecurrentClusterer", "rnn-attention", ("attention", "integrated-gradients")),
    ("SequenceAnomalyDetector", "rnn", ("error",)),
)


def _ucr_cases(names, max_sequences: int, quick: bool):
    """Yield result rows for the autoencoder and the clusterer on each UCR set."""
    rng = np.random.default_rng(0)
    for name in names:
        X, y = _ucr_broad.load(name)
        if len(X) > max_sequences:
            keep = np.sort(rng.choice(len(X), max_sequences, replace=False))
            X, y = X[keep], y[keep]
        for estimator, encoder, methods in CASES:
            if estimator == "SequenceAnomalyDetector":
                continue
            params = dict(encoder=encoder, random_state=0, verbose=False, device="cpu")
            if estimator == "RecurrentClusterer":
                params["n_clusters"] = len(np.unique(y))
            if quick:
                params["epochs"] = 5
            start = time.perf_counter()
            model = getattr(ursa, estimator)(**params).fit(X)
            fit_seconds = time.perf_counter() - start
            for method in methods:
                start = time.perf_counter()
                explanation = model.explain(X, method)
                seconds = time.perf_counter() - start
                if estimator == "RecurrentClusterer":
                    target = explanation.target

                    def score(Z, model=model, target=target):
                        q = model.predict_proba(Z)[np.arange(len(target)), target]
                        return np.log(np.maximum(q, 1e-12))
                else:
                    score = model.decision_function
                check = deletion_check(score, X, explanation.attributions, fraction=FRACTION,
                                       baseline=model.scaler_.offset_)
                yield dict(estimator=estimator, encoder=encoder, method=method, data=name,
                           fit_seconds=fit_seconds, explain_seconds=seconds, **check)


def _anomaly_cases(limit: int | None, quick: bool):
    """Yield result rows for the detector on each anomaly series."""
    for count, (_, name, values, train, _) in enumerate(anomaly.load_series()):
        if limit is not None and count >= limit:
            break
        params = dict(random_state=0, verbose=False, device="cpu")
        if quick:
            params["epochs"] = 2
        start = time.perf_counter()
        model = ursa.SequenceAnomalyDetector(**params).fit(values[:train])
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        explanation = model.explain(values)
        seconds = time.perf_counter() - start

        def score(series, model=model):
            return np.array([float(np.mean(model.decision_function(series[0])))])

        check = deletion_check(score, [values], [explanation.attributions], fraction=FRACTION,
                               baseline=model.scaler_.offset_)
        yield dict(estimator="SequenceAnomalyDetector", encoder="rnn", method="error", data=name,
                   fit_seconds=fit_seconds, explain_seconds=seconds, **check)


def render(rows: list[dict]) -> str:
    lines = ["| estimator | encoder | method | data sets | mean ratio | median ratio | "
             f"sets with ratio >= {TARGET_RATIO:g} | mean change, top | mean change, random | "
             "explain s (median) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for estimator, encoder, methods in CASES:
        for method in methods:
            group = [r for r in rows if (r["estimator"], r["encoder"], r["method"])
                     == (estimator, encoder, method)]
            if not group:
                continue
            ratios = np.array([r["ratio"] for r in group])
            lines.append(
                f"| {estimator} | {encoder} | {method} | {len(group)} | {ratios.mean():.2f} | "
                f"{np.median(ratios):.2f} | {(ratios >= TARGET_RATIO).sum()} | "
                f"{np.mean([r['top'] for r in group]):.4g} | "
                f"{np.mean([r['random'] for r in group]):.4g} | "
                f"{np.median([r['explain_seconds'] for r in group]):.2f} |")
    lines += ["", "Per data set (ratio of the mean absolute score change, top-10 % steps deleted "
              "against 10 % random steps):", "",
              "| data | " + " | ".join(f"{e} {n} {m}" for e, n, ms in CASES for m in ms) + " |",
              "|---|" + "---|" * sum(len(ms) for _, _, ms in CASES)]
    for name in dict.fromkeys(r["data"] for r in rows):
        cells = []
        for estimator, encoder, methods in CASES:
            for method in methods:
                key = (estimator, encoder, method, name)
                found = [r["ratio"] for r in rows
                         if (r["estimator"], r["encoder"], r["method"], r["data"]) == key]
                cells.append(f"{found[0]:.2f}" if found else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 UCR sets and 2 anomaly series, short fits; writes nothing")
    parser.add_argument("--max-sequences", type=int, default=300,
                        help="sequences explained per UCR set (a random subset)")
    _results.add_write_options(parser)
    args = parser.parse_args()
    trial = _results.trial_options(parser, args)
    torch.set_num_threads(1)
    began = time.perf_counter()
    names = _ucr_broad.QUICK[:3] if args.quick else _ucr_broad.QUICK
    rows = []
    for row in itertools.chain(_ucr_cases(names, args.max_sequences, args.quick),
                               _anomaly_cases(2 if args.quick else None, args.quick)):
        rows.append(row)
        print(f"{row['estimator']:24s} {row['encoder']:14s} {row['method']:21s} {row['data']:30s} "
              f"ratio {row['ratio']:6.2f} (top {row['top']:.4g}, random {row['random']:.4g}) "
              f"explain {row['explain_seconds']:.1f} s", flush=True)
    body = render(rows)
    print()
    print(body)
    print(f"{time.perf_counter() - began:.0f} s")
    if _results.should_write(args.write, trial):
        _results.write_section(
            SECTION,
            f"Deletion check ({FRACTION:.0%} of each sequence's steps set to the training mean; "
            f"5 random draws); target: mean ratio >= {TARGET_RATIO:g} for each estimator. "
            f"The run took {time.perf_counter() - began:.0f} s on one torch thread.\n\n{body}",
            "python benchmarks/explain.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            machine=f"{_results.this_machine()}, ursa {ursa.__version__}",
            title="Explanations: deletion faithfulness — `benchmarks/explain.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
