"""Differentially private fits: utility and leakage against non-private ones, per epsilon.

For each epsilon in {1, 3, 10, none} (delta = 1 / n, the number of training sequences):

* Generation (Stocks, ETTh1 in ../shared/data/generation; TimeGAN protocol: min-max scaled
  columns, windows of 24 steps at stride 1, shuffled): ``RecurrentGAN`` (TimeGAN) fitted on the
  member half of the windows (private fits with ``data_bound`` 1: the generator learns from
  the released statistics), then the discriminative and predictive scores of as many samples
  against those members, the predictive score of training on the members themselves (the
  floor on this split), and the membership-inference AUC of the distance from each window to
  its closest sample (members against the held-out half).
* Representation (the same windows): ``SequenceAutoencoder``: held-out reconstruction error and
  the membership-inference AUC of the reconstruction error.
* Detection (the NAB series of the anomaly benchmark): ``SequenceAnomalyDetector`` fitted on the
  member blocks of the first 30 % of each series, AUC-PR on the whole series, and the
  membership-inference AUC of its window scores (member blocks' windows against the held-out
  blocks' windows; blocks holding a labelled anomaly are left out of both).

Members and held-out windows come from blocks of two windows' length, a random half of them
members, and only windows inside one block are kept, so that no held-out window shares a step
with a training window. The windows are scaled with the whole
series' minimum and maximum (the published protocols' preprocessing; a private release would
take those bounds from outside the data), and each NAB series with its training part's mean and
spread: these few statistics are outside the privacy budget, the networks are inside it. Every
fit runs on one thread, one after another; "time x" is a private fit's wall time over the
non-private fit's at the same settings. ``--quick`` runs Stocks only, with short fits.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))
sys.path.insert(0, str(ROOT))

import ursa  # noqa: E402
from ursa.data import sliding_windows  # noqa: E402
from ursa.metrics import (  # noqa: E402
    auc_pr,
    closest_distances,
    discriminative_score,
    membership_inference_auc,
    predictive_score,
)

import _results  # noqa: E402
from anomaly import load_series  # noqa: E402
from generation import STOCKS  # noqa: E402

ETTH1 = STOCKS.parent / "ETTh1.csv"
WINDOW = 24
BLOCK = 2 * WINDOW
DETECTOR_WINDOW = 64
EPSILONS = (1.0, 3.0, 10.0, None)
TARGETS = {"stocks_disc": 0.15, "stocks_pred": 0.045, "mia": 0.55, "time": 3.0}
# The published non-private figures the table is read against (discriminative / predictive).
PUBLISHED = {"stocks": ("TimeGAN", 0.102, 0.038), "etth1": ("TimeGAN", 0.114, 0.124)}


def load_table(name: str) -> np.ndarray:
    """The series of a generation data set, oldest first, each column min-max scaled."""
    import pandas as pd

    if name == "stocks":
        data = pd.read_csv(STOCKS).to_numpy(dtype=np.float64)[::-1]
    else:
        data = pd.read_csv(ETTH1).drop(columns=["date"]).to_numpy(dtype=np.float64)
    low, high = data.min(axis=0), data.max(axis=0)
    return ((data - low) / (high - low + 1e-7)).astype(np.float32)


def member_split(series: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(members, held out): the windows of a random half of the blocks each, shuffled."""
    rng = np.random.default_rng(seed)
    starts = np.arange(len(series) - WINDOW + 1)
    inside = starts // BLOCK == (starts + WINDOW - 1) // BLOCK
    block_is_member = rng.random(len(series) // BLOCK + 1) < 0.5
    windows = sliding_windows(series, WINDOW, 1)
    member = inside & block_is_member[starts // BLOCK]
    held = inside & ~block_is_member[starts // BLOCK]
    pick = [np.ascontiguousarray(windows[starts[m]]) for m in (member, held)]
    return tuple(p[rng.permutation(len(p))] for p in pick)


def _privacy(epsilon, **more):
    return None if epsilon is None else {"epsilon": epsilon, **more}


def _timed(fit):
    started = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - started


def run_generation(name, epsilon, args, log) -> dict:
    members, held = member_split(load_table(name), args.seed)
    if args.quick:
        members, held = members[:1000], held[:1000]
    # The windows are min-max scaled: no value beyond 1, which lets TimeGAN match noisy moments.
    params = dict(scaling=None, privacy=_privacy(epsilon, data_bound=1.0),
                  iterations=args.gan_iterations,
                  pretrain_iterations=args.gan_pretrain, batch_size=args.gan_batch,
                  random_state=args.seed, n_threads=1, step_threads=1, verbose=False,
                  **args.gan_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a possible collapse shows in the scores
        gan, seconds = _timed(lambda: ursa.RecurrentGAN(**params).fit(members))
    synthetic = gan.sample(len(members), random_state=args.seed + 1)
    disc = discriminative_score(members, synthetic, n_repeats=args.repeats, random_state=args.seed,
                                verbose=False)
    pred = predictive_score(members, synthetic, n_repeats=args.repeats, random_state=args.seed,
                            verbose=False)
    mia = membership_inference_auc(closest_distances(members, synthetic),
                                   closest_distances(held, synthetic))
    real_pred = None
    if epsilon is None:  # what training on the members themselves scores: this split's floor
        real_pred = predictive_score(members, members, n_repeats=args.repeats,
                                     random_state=args.seed, verbose=False).mean
    spent = getattr(gan, "privacy_spent_", None)
    row = dict(data=name, model="RecurrentGAN", epsilon=epsilon, n=len(members),
               spent=None if spent is None else spent["epsilon"],
               noise=None if spent is None else (spent["noise_multiplier"]
                                                 or spent.get("release_noise_multiplier")),
               disc=disc.mean, disc_std=disc.std, pred=pred.mean, pred_std=pred.std, mia=mia,
               real_pred=real_pred, seconds=seconds)
    log(row)
    return row


def run_autoencoder(name, epsilon, args, log) -> dict:
    members, held = member_split(load_table(name), args.seed)
    if args.quick:
        members, held = members[:1000], held[:1000]
    params = dict(scaling=None, privacy=_privacy(epsilon), epochs=args.ae_epochs,
                  batch_size=args.ae_batch, learning_rate=args.ae_learning_rate,
                  validation_fraction=0.0, random_state=args.seed, n_threads=1, verbose=False)
    model, seconds = _timed(lambda: ursa.SequenceAutoencoder(**params).fit(members))
    train_errors, held_errors = model.decision_function(members), model.decision_function(held)
    spent = getattr(model, "privacy_spent_", None)
    row = dict(data=name, model="SequenceAutoencoder", epsilon=epsilon, n=len(members),
               spent=None if spent is None else spent["epsilon"],
               noise=None if spent is None else spent["noise_multiplier"],
               error=float(held_errors.mean()),
               mia=membership_inference_auc(train_errors, held_errors), seconds=seconds)
    log(row)
    return row


def run_detector(epsilon, args, log) -> dict:
    prs, mias, seconds, spent = [], [], 0.0, []
    series = [s for s in load_series() if s[0] == "NAB"][: 2 if args.quick else None]
    rng = np.random.default_rng(args.seed)
    block = 2 * DETECTOR_WINDOW
    for _, name, values, train, labels in series:
        mean, std = values[:train].mean(), values[:train].std() + 1e-8
        scaled = ((values - mean) / std).astype(np.float32)
        starts = np.arange(0, 2 * train - block + 1, block)
        clean = np.array([not labels[s:s + block].any() for s in starts])
        member = clean & (rng.random(len(starts)) < 0.5)
        held = clean & ~member
        params = dict(window=DETECTOR_WINDOW, channels="all", scaling=None,
                      privacy=_privacy(epsilon), random_state=args.seed, n_threads=1,
                      verbose=False, **({"epochs": 2} if args.quick else {}))
        blocks = [scaled[s:s + block] for s in starts[member]]
        det, took = _timed(lambda: ursa.SequenceAnomalyDetector(**params).fit(blocks))
        seconds += took
        prs.append(auc_pr(labels, det.decision_function(scaled)))
        scores = [np.concatenate([pair[1] for pair in det.window_scores(
            [scaled[s:s + block] for s in starts[chosen]])]) for chosen in (member, held)]
        mias.append(membership_inference_auc(*scores))
        if getattr(det, "privacy_spent_", None):
            spent.append(det.privacy_spent_["epsilon"])
    row = dict(data="NAB", model="SequenceAnomalyDetector", epsilon=epsilon, n=len(series),
               spent=max(spent) if spent else None, auc_pr=float(np.mean(prs)),
               mia=float(np.mean(mias)), seconds=seconds)
    log(row)
    return row


def _eps(value) -> str:
    return "none" if value is None else f"{value:g}"


def _num(value, digits=3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(rows: list[dict], runtime: float, args) -> str:
    base = {(r["data"], r["model"]): r["seconds"] for r in rows if r["epsilon"] is None}

    def ratio(r):
        b = base.get((r["data"], r["model"]))
        return "–" if r["epsilon"] is None or not b else f"{r['seconds'] / b:.2f}"

    lines = [f"Runtime of the command: {runtime:.0f} s. Settings: GAN iterations "
             f"{args.gan_iterations} (pretraining {args.gan_pretrain}), batch {args.gan_batch}; "
             f"autoencoder {args.ae_epochs} epochs, batch {args.ae_batch}, learning rate "
             f"{args.ae_learning_rate}; detector defaults but window 64, channels all, "
             f"scaling None; metrics {args.repeats} repeats. Membership-inference AUC near 0.5: "
             "no leakage this attack sees.", "",
             "| data | model | epsilon (spent) | noise multiplier (gradients, or releases "
             "where no step reads the data) | utility | "
             "membership-inference AUC | fit time (s) | time x |",
             "|---|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        if r["model"] == "RecurrentGAN":
            utility = (f"discriminative {r['disc']:.3f} ± {r['disc_std']:.3f}, predictive "
                       f"{r['pred']:.4f} ± {r['pred_std']:.4f}")
        elif r["model"] == "SequenceAutoencoder":
            utility = f"held-out reconstruction error {r['error']:.5f}"
        else:
            utility = f"AUC-PR {r['auc_pr']:.3f} (mean of {r['n']} series)"
        spent = "" if r.get("spent") is None else f" ({r['spent']:.2f})"
        lines.append(f"| {r['data']} (n={r['n']}) | {r['model']} | {_eps(r['epsilon'])}{spent} | "
                     f"{_num(r.get('noise'), 2)} | {utility} | {_num(r.get('mia'))} | "
                     f"{r['seconds']:.0f} | {ratio(r)} |")
    lines += ["", "Published, non-private, on all windows (discriminative / predictive): "
              + "; ".join(f"{d} {m} {a} / {b}" for d, (m, a, b) in PUBLISHED.items()) + "."]
    floors = [r for r in rows if r.get("real_pred") is not None]
    if floors:
        lines.append("Predictive score of training on the member windows themselves (the floor "
                     "on this split): " + "; ".join(f"{r['data']} {r['real_pred']:.4f}"
                                                    for r in floors) + ".")
    stocks = [r for r in rows if r["data"] == "stocks" and r["model"] == "RecurrentGAN"
              and r["epsilon"] == 10.0]
    if stocks:
        r = stocks[0]
        met = r["disc"] <= TARGETS["stocks_disc"] and r["pred"] <= TARGETS["stocks_pred"]
        lines.append(f"Target at epsilon 10 on Stocks: discriminative <= {TARGETS['stocks_disc']} "
                     f"and predictive <= {TARGETS['stocks_pred']}: "
                     f"{'met' if met else 'not met'}.")
    private = [r for r in rows if r["epsilon"] is not None and r["epsilon"] <= 3
               and r.get("mia") is not None]
    if private:
        worst = max(private, key=lambda r: abs(r["mia"] - 0.5))
        lines.append(f"Membership inference at epsilon <= 3: AUC {min(r['mia'] for r in private):.3f}"
                     f"-{max(r['mia'] for r in private):.3f} (target <= {TARGETS['mia']}; "
                     f"furthest from 0.5: {worst['model']} on {worst['data']}).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Stocks only, short fits")
    parser.add_argument("--datasets", default="stocks,etth1",
                        help="data sets of the autoencoder")
    parser.add_argument("--gan-datasets", default="stocks,etth1",
                        help="data sets of the GAN (each fit takes minutes: ETTh1's about as "
                             "long as Stocks', with its metrics longer)")
    parser.add_argument("--models", default="gan,autoencoder,detector")
    parser.add_argument("--epsilons", default="1,3,10,none")
    parser.add_argument("--gan-iterations", type=int, default=3000)
    parser.add_argument("--gan-pretrain", type=int, default=500)
    parser.add_argument("--gan-batch", type=int, default=128)
    parser.add_argument("--gan-params", type=json.loads, default={},
                        help="JSON of further RecurrentGAN parameters (default: none)")
    parser.add_argument("--ae-epochs", type=int, default=30)
    parser.add_argument("--ae-batch", type=int, default=256)
    parser.add_argument("--ae-learning-rate", type=float, default=1e-2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows here")
    _results.add_write_options(parser)
    args = parser.parse_args()
    trial = _results.trial_options(parser, args, ignore=("json",))
    if args.quick:
        args.datasets, args.gan_datasets = "stocks", "stocks"
        args.gan_iterations, args.gan_pretrain = 300, 100
        args.ae_epochs, args.repeats = 5, 1
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    epsilons = [None if e == "none" else float(e) for e in args.epsilons.split(",")]
    models = args.models.split(",")
    began = time.perf_counter()
    rows = []

    def log(row):
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v)
                          for k, v in row.items()}), flush=True)

    for epsilon in sorted(epsilons, key=lambda e: -1 if e is None else e):
        if "gan" in models:
            for name in args.gan_datasets.split(","):
                rows.append(run_generation(name, epsilon, args, log))
        if "autoencoder" in models:
            for name in args.datasets.split(","):
                rows.append(run_autoencoder(name, epsilon, args, log))
        if "detector" in models:
            rows.append(run_detector(epsilon, args, log))
    order = {m: i for i, m in enumerate(("RecurrentGAN", "SequenceAutoencoder",
                                          "SequenceAnomalyDetector"))}
    rows.sort(key=lambda r: (r["data"], order[r["model"]],
                             np.inf if r["epsilon"] is None else r["epsilon"]))
    report = render(rows, time.perf_counter() - began, args)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if _results.should_write(args.write, trial):
        _results.write_section(
            "privacy", report,
            f"python benchmarks/privacy.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}",
            machine=f"{_results.this_machine()}, ursa {ursa.__version__}, opacus "
                    f"{__import__('opacus').__version__}, 1 torch thread",
            title="Differentially private fits — `benchmarks/privacy.py`")


if __name__ == "__main__":
    main()
