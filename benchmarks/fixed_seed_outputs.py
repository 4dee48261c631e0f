"""Record, or compare against a record, what fixed-seed fits of every estimator and cell produce.

A refactoring that should change no result is checked with it: record on the code before the
change, compare on the code after, on the same machine (float rounding differs between CPUs).

    python benchmarks/fixed_seed_outputs.py --record before.npz     # on the old code
    python benchmarks/fixed_seed_outputs.py --compare before.npz    # on the new code

Covered: SequenceAutoencoder, RecurrentClusterer and SequenceAnomalyDetector with each cell;
RecurrentGAN (TimeGAN) with each cell and one or two step threads; RCGAN with class conditions
and the MMD term; a conditional TimeGAN on variable-length data with generator_steps=2 and the
covariance and per-feature MMD terms; the autoencoder and an n_init=2 clusterer on variable-length
data. Each fit contributes its weights, its loss curve and its outputs (transform, reconstruct,
predict_proba, decision_function, thresholds, samples). Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import torch

import ursa

CELLS = ("rnn", "gru", "lstm")
TINY = dict(hidden_size=8, batch_size=16, random_state=0)


def _put(out: dict, key: str, est, outputs: dict) -> None:
    for name, value in est.network_.state_dict().items():
        out[f"{key}/w/{name}"] = value.detach().cpu().numpy()
    out[f"{key}/loss"] = np.array([r.get("train_loss", np.nan) for r in est.history_])
    for name, value in outputs.items():
        if isinstance(value, list):
            value = np.concatenate([np.asarray(a).ravel() for a in value])
        out[f"{key}/{name}"] = np.asarray(value)


def outputs() -> dict:
    """Every fit's weights, losses and outputs, by name."""
    out: dict = {}
    X = ursa.datasets.make_sines(48, n_timesteps=14, n_features=2, random_state=0)
    rng = np.random.default_rng(1)
    Xv = [x[: int(rng.integers(6, 15))] for x in X]
    series = np.concatenate([X[i] for i in range(10)])
    y = np.arange(48) % 2
    for cell in CELLS:
        ae = ursa.SequenceAutoencoder(cell=cell, latent_dim=3, epochs=3, **TINY).fit(X)
        _put(out, f"ae-{cell}", ae, {"t": ae.transform(X), "r": ae.reconstruct(X),
                                     "d": ae.decision_function(X)})
        cl = ursa.RecurrentClusterer(n_clusters=2, cell=cell, latent_dim=3, epochs=2,
                                     clustering_epochs=3, **TINY).fit(X)
        _put(out, f"cl-{cell}", cl, {"p": cl.predict_proba(X), "l": cl.labels_})
        ad = ursa.SequenceAnomalyDetector(cell=cell, window=8, latent_dim=3, epochs=2,
                                          **TINY).fit(series)
        _put(out, f"ad-{cell}", ad, {"d": ad.decision_function(series),
                                     "th": np.array(ad.threshold_)})
        for threads in (1, 2):
            gan = ursa.RecurrentGAN(cell=cell, latent_dim=4, num_layers=2, iterations=30,
                                    pretrain_iterations=20, step_threads=threads, **TINY).fit(X)
            _put(out, f"gan-{cell}-{threads}", gan, {"s": gan.sample(5, random_state=1),
                                                     "d": gan.decision_function(X)})
    ae = ursa.SequenceAutoencoder(latent_dim=3, epochs=3, **TINY).fit(Xv)
    _put(out, "ae-var", ae, {"t": ae.transform(Xv), "r": ae.reconstruct(Xv)})
    cl = ursa.RecurrentClusterer(n_clusters=3, latent_dim=3, epochs=2, n_init=2,
                                 clustering_epochs=4, **TINY).fit(Xv)
    _put(out, "cl-var", cl, {"p": cl.predict_proba(Xv)})
    gan = ursa.RecurrentGAN(architecture="rcgan", latent_dim=4, iterations=30,
                            distribution_weight=1.0, **TINY).fit(X, y)
    _put(out, "gan-rcgan", gan, {"s": gan.sample(5, y=[0, 1, 0, 1, 1], random_state=1)})
    gan = ursa.RecurrentGAN(latent_dim=4, iterations=20, pretrain_iterations=10,
                            generator_steps=2, covariance_weight=1.0,
                            feature_distribution_weight=1.0, **TINY).fit(Xv, y)
    _put(out, "gan-cond-var", gan, {"s": gan.sample(5, y=[0, 1, 0, 1, 1], random_state=1),
                                    "d": gan.decision_function(Xv, y)})
    return out


def compare(reference: dict, current: dict) -> list[str]:
    """One line per array that is missing or differs (NaN equals NaN)."""
    lines = []
    for key, expected in reference.items():
        got = current.get(key)
        if got is None:
            lines.append(f"{key}: missing")
        elif got.shape != expected.shape:
            lines.append(f"{key}: shape {got.shape}, recorded {expected.shape}")
        elif not np.array_equal(got, expected, equal_nan=True):
            gap = np.nanmax(np.abs(got.astype(np.float64) - expected.astype(np.float64)))
            lines.append(f"{key}: differs by up to {gap:.3g}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", metavar="FILE", help="write the outputs to FILE (.npz)")
    mode.add_argument("--compare", metavar="FILE", help="compare the outputs with FILE (.npz)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # tiny fits warn of mode collapse; irrelevant here
    torch.set_num_threads(1)  # a thread count of its own would round differently
    current = outputs()
    if args.record:
        np.savez(args.record, **current)
        print(f"recorded {len(current)} arrays to {args.record}")
        return 0
    with np.load(args.compare) as recorded:
        reference = {key: recorded[key] for key in recorded.files}
    lines = compare(reference, current)
    print(f"{len(reference)} arrays compared, {len(lines)} differ")
    for line in lines:
        print("  " + line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
