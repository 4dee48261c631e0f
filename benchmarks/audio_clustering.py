"""Spoken-digit clustering (FSDD): ursa.RecurrentClusterer on MFCC frame sequences against k-means
on pooled MFCC statistics.

Protocol (../shared/data/audio/README.md): the 2000 recordings of ../shared/data/audio/fsdd
(8 kHz; 4 speakers x 10 digits x 50 takes), read with ``ursa.data.read_audio`` (13 MFCCs from
40 log-mel bands, 25 ms Hamming window, 10 ms hop, pre-emphasis 0.97). The digit and the speaker
come from the file name only and are never fed to a method. Each method clusters the recordings
twice: into k = 10 groups, scored (NMI, ARI) against the digit, and into k = 4, scored against
the speaker. Seeds 0, 1, 2; every fit runs on one torch thread, one after another, and its wall
time is reported (the features are read once, before any fit, and not counted).

- ``baseline``: per file, the mean and standard deviation of each MFCC over its frames (26
  values), standardised over the files; scikit-learn ``KMeans`` with 10 restarts (the README's
  reference, re-run here on the same machine);
- ``ursa``: ``ursa.RecurrentClusterer`` with its default parameters (plus ``n_clusters``, the
  seed and ``device="cpu"``) on the frame sequences as read; its ``scaling="standard"`` default
  standardises each MFCC over all training frames (one mean and deviation for the whole set);
- ``ursa_cmvn``: the same clusterer on the frames of ``read_audio(..., normalize="cmvn")``:
  cepstral mean and variance normalisation, each MFCC standardised over each file's own frames
  (the per-series, per-channel z-normalisation that benchmarks/clustering.py applies to the UCR
  sets). It takes out what is
  constant over a recording (the channel and much of the speaker), so it helps the digit and
  costs the speaker. The pooled baseline is not run on these frames: their per-file mean and
  deviation are 0 and 1 by construction.

Usage::

    python benchmarks/audio_clustering.py  # full run, 3 seeds; rewrites its RESULTS.md section
    python benchmarks/audio_clustering.py --quick  # takes 0-9 (400 files), 1 seed, writes nothing
    python benchmarks/audio_clustering.py --ursa-params '{"hidden_size": 64}' --no-write
    python benchmarks/audio_clustering.py --features logmel --methods baseline ursa_cmvn

A full run (every method, 3 seeds, the protocol's features, the clusterer's defaults; ``--threads``
and ``--json`` may be given) rewrites the section ``audio-fsdd`` of RESULTS.md. Any other option
makes a trial, which prints its table and leaves RESULTS.md alone unless given ``--record``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # measure this checkout, installed or not

import ursa  # noqa: E402
from ursa.data import read_audio  # noqa: E402
from ursa.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "audio" / "fsdd"
METHODS = ("baseline", "ursa", "ursa_cmvn")
# k and the label each clustering is scored against.
TARGETS = {"digit": 10, "speaker": 4}
# The target for the digit NMI; the README's reference figures of the baseline.
DIGIT_NMI_TARGET = 0.60
REFERENCE = {"digit": (0.379, 0.176), "speaker": (0.687, 0.629)}
QUICK_TAKES = 10  # --quick: takes 0-9 of every speaker and digit (400 files)


def _z(x: np.ndarray, axis) -> np.ndarray:
    std = x.std(axis=axis, keepdims=True)
    return (x - x.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)


def load(features: str = "mfcc", quick: bool = False):
    """The frame sequences, their labels (digit and speaker codes from the file names) and the
    seconds read_audio took."""
    files = sorted(DATA.glob("*.wav"))
    if not files:
        raise SystemExit(f"no WAV files in {DATA}: see ../shared/data/audio/README.md")
    if quick:
        files = [f for f in files if int(f.stem.split("_")[2]) < QUICK_TAKES]
    started = time.perf_counter()
    X = read_audio(files, features=features)
    seconds = time.perf_counter() - started
    normalized = read_audio(files, frontend=dict(X.frontend, normalize="cmvn"))
    digits, speakers, _ = zip(*(Path(p).stem.split("_") for p in X.paths))
    labels = {"digit": np.unique(digits, return_inverse=True)[1],
              "speaker": np.unique(speakers, return_inverse=True)[1]}
    return {"ursa": X, "ursa_cmvn": normalized}, labels, X.frontend, seconds


def pooled(X) -> np.ndarray:
    """Per file the mean and standard deviation of each feature over its frames, standardised
    over the files: (n_files, 2 * n_features)."""
    stats = np.stack([np.concatenate([x.mean(axis=0), x.std(axis=0)]) for x in X])
    return _z(stats.astype(np.float64), 0)


def run_method(method: str, X, k: int, seed: int, ursa_params: dict):
    """Fit one method; return (labels, seconds of fit including its own input preparation)."""
    started = time.perf_counter()
    if method == "baseline":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(
            pooled(X["ursa"]))
    elif method in ("ursa", "ursa_cmvn"):
        params = {"device": "cpu", **ursa_params}
        model = ursa.RecurrentClusterer(n_clusters=k, random_state=seed, verbose=False, **params)
        labels = model.fit_predict(X[method])
    else:
        raise ValueError(f"unknown method {method!r}")
    return np.asarray(labels), time.perf_counter() - started


def warm_up() -> None:
    """Import torch's optimiser machinery and scikit-learn's k-means once, so that no fit's time
    includes first-use imports."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    ursa.RecurrentClusterer(n_clusters=2, hidden_size=4, epochs=1, clustering_epochs=1,
                            random_state=0, device="cpu", verbose=False).fit(
        rng.normal(size=(8, 12, 3)))
    KMeans(n_clusters=2, n_init=1, random_state=0).fit(rng.normal(size=(8, 3)))


def table(results: dict, methods) -> str:
    lines = ["| target | k | method | NMI mean ± sd | ARI mean ± sd | fit seconds (mean) |",
             "|---|---:|---|---:|---:|---:|"]
    for target in results:
        k = TARGETS[target]
        for method in methods:
            rows = results[target][method]
            nmi = np.array([r["nmi"] for r in rows])
            ari = np.array([r["ari"] for r in rows])
            sec = np.array([r["seconds"] for r in rows])
            lines.append(f"| {target} | {k} | {method} | {nmi.mean():.3f} ± {nmi.std():.3f} | "
                         f"{ari.mean():.3f} ± {ari.std():.3f} | {sec.mean():.2f} |")
    return "\n".join(lines)


def checks(results: dict, methods) -> str:
    def mean(target, method, key="nmi"):
        return float(np.mean([r[key] for r in results[target][method]]))

    lines = []
    if "baseline" in methods:
        for target in results:
            nmi, ari = REFERENCE[target]
            lines.append(f"- baseline {target}: NMI {mean(target, 'baseline'):.3f}, ARI "
                         f"{mean(target, 'baseline', 'ari'):.3f} here; the data README's "
                         f"reference {nmi:.3f} / {ari:.3f}")
    for method in (m for m in methods if m != "baseline"):
        if "digit" in results:
            got = mean("digit", method)
            lines.append(f"- {method} digit NMI {got:.3f} >= {DIGIT_NMI_TARGET:.2f}: "
                         f"{'met' if got >= DIGIT_NMI_TARGET else '**not met**'}")
        if "baseline" in methods:
            for target in results:
                ours, theirs = mean(target, method), mean(target, "baseline")
                lines.append(f"- {target} NMI: {method} {ours:.3f} vs baseline {theirs:.3f}: "
                             f"{method + ' higher' if ours > theirs else '**baseline higher**'}")
    return "\n".join(lines)


def machine(threads: int) -> str:
    import librosa
    import soundfile
    import sklearn

    return (f"{_results.this_machine()}, scikit-learn {sklearn.__version__}, librosa "
            f"{librosa.__version__}, soundfile {soundfile.__version__}, torch threads {threads}; "
            "every fit ran in the same process, one after another, so fit times compare within "
            "the run")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS),
                        help="what to cluster by (default: digit and speaker)")
    parser.add_argument("--quick", action="store_true",
                        help=f"takes 0-{QUICK_TAKES - 1} of every speaker and digit "
                             f"({QUICK_TAKES * 40} files), one seed; writes nothing unless "
                             "--record")
    parser.add_argument("--features", default="mfcc", choices=("mfcc", "logmel"),
                        help="read_audio's features: 13 MFCCs (the protocol, default) or the 40 "
                             "log-mel bands they come from")
    parser.add_argument("--ursa-params", default="{}",
                        help="JSON of extra RecurrentClusterer parameters (default: none)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1)")
    parser.add_argument("--json", help="also write the raw per-seed results to this file")
    _results.add_write_options(parser)
    args = parser.parse_args(argv)
    trial = _results.trial_options(parser, args, ignore={"threads", "json"})
    if args.quick:
        args.seeds = 1
    ursa_params = json.loads(args.ursa_params)
    methods = list(dict.fromkeys(args.methods))
    torch.set_num_threads(args.threads)

    began = time.perf_counter()
    inputs, labels, frontend, read_seconds = load(args.features, args.quick)
    X = inputs["ursa"]
    lengths = np.array([len(x) for x in X])
    print(f"{len(X)} files, {X[0].shape[1]} {args.features} features per frame, frames per file "
          f"median {int(np.median(lengths))} (min {lengths.min()}, max {lengths.max()}); "
          f"read_audio {read_seconds:.1f} s", flush=True)
    warm_up()
    targets = {t: TARGETS[t] for t in TARGETS if t in args.targets}
    results = {target: {m: [] for m in methods} for target in targets}
    for seed in range(args.seeds):
        for target, k in targets.items():
            for method in methods:
                torch.set_num_threads(args.threads)
                found, seconds = run_method(method, inputs, k, seed, ursa_params)
                row = {"seed": seed, "seconds": seconds,
                       "nmi": float(normalized_mutual_info_score(labels[target], found)),
                       "ari": float(adjusted_rand_score(labels[target], found))}
                results[target][method].append(row)
                print(f"{target:8s} seed {seed} {method:9s} NMI {row['nmi']:.3f} "
                      f"ARI {row['ari']:.3f} {seconds:7.1f} s", flush=True)
    runtime = time.perf_counter() - began

    body = table(results, methods) + "\n\n" + checks(results, methods)
    print()
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if _results.should_write(args.write, trial):
        command = ("python benchmarks/audio_clustering.py "
                   + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
        _results.write_section(
            "audio-fsdd",
            f"Runtime: {runtime:.0f} s. Protocol: {len(X)} FSDD recordings; read_audio front-end "
            f"`{json.dumps(frontend)}` (read in {read_seconds:.1f} s, not counted in "
            f"the fit times); k = 10 scored against the digit, k = 4 against the speaker; seeds "
            f"0..{args.seeds - 1}; ursa parameters: defaults"
            f"{' + ' + json.dumps(ursa_params) if ursa_params else ''}.\n\n{body}",
            command, machine=machine(args.threads),
            title="Spoken-digit clustering (FSDD) — `benchmarks/audio_clustering.py`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
