"""Clustering quality and fit time of ursa.RecurrentClusterer against classic baselines.

Protocol (../shared/data/README.md): merge the TRAIN and TEST files, z-normalise each series (each
channel over its own valid steps), k = number of classes, several seeds; report NMI, ARI and the
wall time of ``fit`` for every method, all in the same run on the same machine
(``--normalisation`` series or none prepares the multivariate sets differently; see NORMALISATIONS):

- ``ursa``: ``ursa.RecurrentClusterer`` with its default parameters (plus ``n_clusters`` and the seed);
- ``kmeans``: scikit-learn ``KMeans`` on the raw series (variable-length series are first resampled
  to the longest length by linear interpolation, as tslearn's ``TimeSeriesResampler`` does);
- ``kshape``: tslearn ``KShape`` (same resampling);
- ``kmeans_dtw``: tslearn ``TimeSeriesKMeans(metric="dtw")`` (DBA barycentres), variable length natively.

tslearn is a benchmark-only extra: ``pip install -r benchmarks/requirements.txt``.

Usage::

    python benchmarks/clustering.py                 # full run (3 seeds), rewrites its section of RESULTS.md
    python benchmarks/clustering.py --normalisation series   # full run, its own section
    python benchmarks/clustering.py --quick         # UnitTest + BasicMotions, 1 seed, writes nothing
    python benchmarks/clustering.py --datasets OSULeaf --methods ursa --no-write
    python benchmarks/clustering.py --datasets JapaneseVowels --normalisation none
    python benchmarks/clustering.py --collection ucr-broad --jobs 2   # 62 sets, its own section
    python benchmarks/clustering.py --collection ucr-broad --quick    # 12 sets, 1 seed

Each ``--normalisation`` has its own section of RESULTS.md (``clustering``, ``clustering-series``,
``clustering-none``), rewritten by a full run (every data set, method and seed, the clusterer's
defaults; ``--threads``, ``--jobs`` and ``--json`` may be given). Any other option makes a trial,
which prints its tables and leaves RESULTS.md alone unless given ``--record``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # measure this checkout, installed or not

import ursa  # noqa: E402
from ursa.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ucr"
DATASETS = ("ArrowHead", "BasicMotions", "JapaneseVowels", "OSULeaf")
METHODS = ("ursa", "kmeans", "kshape", "kmeans_dtw")
# Published or protocol targets (issue 3): NMI the clusterer must reach on each set.
TARGETS = {"BasicMotions": 0.90, "JapaneseVowels": 0.78, "ArrowHead": 0.30, "OSULeaf": 0.35}


def _z(x: np.ndarray, axis) -> np.ndarray:
    std = x.std(axis=axis)
    return (x - x.mean(axis=axis)) / np.where(std > 0, std, 1.0)


# How each series is normalised before clustering (--normalisation). "channel" is the protocol's
# z-normalisation, each channel of each series on its own. For multivariate data it also removes
# every series' per-channel levels, which on JapaneseVowels carry most of the speaker information
# (NMI of every method drops from ~0.8 to ~0.4). The reference results the JapaneseVowels target
# comes from (Lafabregue et al. 2022) used the multivariate archive files as they are: "none".
# "series" z-normalises each series with one mean and deviation over all its channels, which keeps
# the channels' levels relative to each other (the scores under it are in benchmarks/RESULTS.md).
NORMALISATIONS = {
    "channel": lambda x: _z(x, 0),
    "series": lambda x: _z(x, None),
    "none": lambda x: x,
}


PREPARED = {"channel": "each channel of each series z-normalised",
            "series": "each series z-normalised over all its channels together",
            "none": "series as in the files (no normalisation)"}


def load(name: str, normalisation: str = "channel"):
    """Merged TRAIN + TEST as a list of (T_i, C) float arrays, normalised per series, and labels."""
    X, y = [], []
    for part in ("TRAIN", "TEST"):
        values, labels = ursa.data.read_ts(DATA / name / f"{name}_{part}.ts")
        seqs = ursa.data.as_sequences(values)
        X.extend(seqs.to_list())
        y.extend(labels)
    norm = NORMALISATIONS[normalisation]
    out = [norm(x.astype(np.float64)).astype(np.float32) for x in X]
    _, codes = np.unique(np.asarray(y), return_inverse=True)
    return out, codes


def resampled(X: list[np.ndarray]) -> np.ndarray:
    """Every series linearly resampled to the longest length: (n, T_max, C)."""
    longest = max(len(x) for x in X)
    grid = np.linspace(0, 1, longest)
    out = np.empty((len(X), longest, X[0].shape[1]), dtype=np.float64)
    for i, x in enumerate(X):
        source = np.linspace(0, 1, len(x))
        for c in range(x.shape[1]):
            out[i, :, c] = np.interp(grid, source, x[:, c])
    return out


def nan_padded(X: list[np.ndarray]) -> np.ndarray:
    longest = max(len(x) for x in X)
    out = np.full((len(X), longest, X[0].shape[1]), np.nan, dtype=np.float64)
    for i, x in enumerate(X):
        out[i, : len(x)] = x
    return out


def run_method(method: str, X, k: int, seed: int, ursa_params: dict):
    """Fit one method; return (labels, seconds of fit, including any input conversion)."""
    started = time.perf_counter()
    if method == "ursa":
        model = ursa.RecurrentClusterer(n_clusters=k, random_state=seed, verbose=False,
                                        **ursa_params)
        labels = model.fit_predict(X)
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        flat = resampled(X).reshape(len(X), -1)
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(flat)
    elif method == "kshape":
        from tslearn.clustering import KShape

        labels = KShape(n_clusters=k, random_state=seed).fit_predict(resampled(X))
    elif method == "kmeans_dtw":
        from tslearn.clustering import TimeSeriesKMeans

        labels = TimeSeriesKMeans(n_clusters=k, metric="dtw", random_state=seed).fit_predict(
            nan_padded(X))
    else:
        raise ValueError(f"unknown method {method!r}")
    return np.asarray(labels), time.perf_counter() - started


def warm_up() -> None:
    """Compile tslearn's numba kernels and import torch's optimiser machinery once, so that no
    method's time includes JIT compilation or first-use imports."""
    rng = np.random.default_rng(0)
    ursa.RecurrentClusterer(n_clusters=2, hidden_size=4, epochs=1, clustering_epochs=1,
                            random_state=0).fit(rng.normal(size=(8, 12, 1)))
    try:
        from tslearn.clustering import KShape, TimeSeriesKMeans
    except ImportError:
        return
    tiny = rng.normal(size=(8, 12, 1))
    TimeSeriesKMeans(n_clusters=2, metric="dtw", max_iter=2, random_state=0).fit(tiny)
    KShape(n_clusters=2, max_iter=2, random_state=0).fit(tiny)


def run_dataset(name: str, methods, seeds: int, ursa_params: dict, threads,
                normalisation: str = "channel") -> dict:
    """Every method on one data set, seeds in turn (methods interleaved within a seed)."""
    threads = threads or torch.get_num_threads()
    warm_up()
    X, y = load(name, normalisation)
    k = len(np.unique(y))
    results = {m: [] for m in methods}
    for seed in range(seeds):
        for method in methods:
            # tslearn's KShape leaves the shared OpenMP runtime at one thread per core when it
            # returns (torch.get_num_threads() goes from 1 to 2); on a busy machine the torch fit
            # that followed ran 60x slower (ArrowHead: 45 s instead of 0.7 s for three epochs).
            # Every method starts from the same setting.
            torch.set_num_threads(threads)
            labels, seconds = run_method(method, X, k, seed, ursa_params)
            row = {"seed": seed, "seconds": seconds,
                   "nmi": float(normalized_mutual_info_score(y, labels)),
                   "ari": float(adjusted_rand_score(y, labels))}
            results[method].append(row)
            print(f"{name:15s} seed {seed} {method:11s} NMI {row['nmi']:.3f} "
                  f"ARI {row['ari']:.3f} {seconds:7.1f} s", flush=True)
    return results


LINE = re.compile(r"^(\S+)\s+seed (\d+) (\S+)\s+NMI (\S+) ARI (\S+)\s+(\S+) s$")


def summarise_log(args, methods, trial: list, argv) -> int:
    """Table of the per-seed lines of an earlier run's output (for a run cut short)."""
    results: dict = {}
    for line in Path(args.from_log).read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            name, seed, method, nmi, ari, seconds = match.groups()
            results.setdefault(name, {}).setdefault(method, []).append(
                {"seed": int(seed), "nmi": float(nmi), "ari": float(ari), "seconds": float(seconds)})
    datasets = [n for n in args.datasets if n in results]
    missing = [f"{n}/{m}: {len(results.get(n, {}).get(m, []))} of {args.seeds} seeds"
               for n in args.datasets for m in methods
               if len(results.get(n, {}).get(m, [])) < args.seeds]
    complete = [n for n in datasets if all(results[n].get(m) for m in methods)]
    body = table(results, complete, methods) + "\n\n" + summary(results, complete, methods)
    note = ("Seeds finished per cell are those listed in the log; missing: "
            + ("; ".join(missing) if missing else "none"))
    print(body + "\n\n" + note)
    if _results.should_write(args.write, trial):
        command = "python benchmarks/clustering.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        _results.write_section(
            section_name(args.normalisation),
            f"Summarised from the log of an earlier run, which may have been cut short. {note}. "
            f"Means are over the seeds that finished.\n\n"
            f"Protocol: TRAIN+TEST merged, {PREPARED[args.normalisation]} (as this command's "
            f"--normalisation says; the log does not record it).\n\n{body}",
            command, machine=machine(args.threads), title=section_title(args.normalisation))
    return 0


def section_name(normalisation: str) -> str:
    return "clustering" if normalisation == "channel" else f"clustering-{normalisation}"


def section_title(normalisation: str) -> str:
    return f"Clustering, {PREPARED[normalisation]} — `benchmarks/clustering.py`"


def machine(threads: int | None = None) -> str:
    try:
        import tslearn

        tsl = f"tslearn {tslearn.__version__}"
    except ImportError:
        tsl = "tslearn not installed"
    return (f"{_results.this_machine()}, {tsl}, torch threads {threads or torch.get_num_threads()}; "
            "every method ran in the same process, interleaved per seed, so fit times compare "
            "within the run")


def table(results: dict, datasets, methods) -> str:
    lines = ["| data set | method | NMI mean ± sd | ARI mean ± sd | fit seconds (mean) |",
             "|---|---|---:|---:|---:|"]
    for name in datasets:
        for method in methods:
            rows = results[name][method]
            nmi = np.array([r["nmi"] for r in rows])
            ari = np.array([r["ari"] for r in rows])
            sec = np.array([r["seconds"] for r in rows])
            lines.append(f"| {name} | {method} | {nmi.mean():.3f} ± {nmi.std():.3f} | "
                         f"{ari.mean():.3f} ± {ari.std():.3f} | {sec.mean():.1f} |")
    return "\n".join(lines)


def summary(results: dict, datasets, methods) -> str:
    def mean_nmi(name, method):
        return float(np.mean([r["nmi"] for r in results[name][method]]))

    def mean_sec(name, method):
        return float(np.mean([r["seconds"] for r in results[name][method]]))

    lines = ["| method | mean NMI over the data sets | mean ARI |", "|---|---:|---:|"]
    for method in methods:
        nmi = np.mean([mean_nmi(n, method) for n in datasets])
        ari = np.mean([np.mean([r["ari"] for r in results[n][method]]) for n in datasets])
        lines.append(f"| {method} | {nmi:.3f} | {ari:.3f} |")
    checks = []
    if "ursa" in methods:
        baselines = [m for m in methods if m != "ursa"]
        if baselines:
            best = max(baselines, key=lambda m: np.mean([mean_nmi(n, m) for n in datasets]))
            ours = np.mean([mean_nmi(n, "ursa") for n in datasets])
            theirs = np.mean([mean_nmi(n, best) for n in datasets])
            checks.append(f"- mean NMI: ursa {ours:.3f} vs best baseline ({best}) {theirs:.3f}: "
                          f"{'met' if ours > theirs else '**not met**'}")
        for name in datasets:
            if name in TARGETS:
                got = mean_nmi(name, "ursa")
                checks.append(f"- {name} NMI {got:.3f} >= {TARGETS[name]:.2f}: "
                              f"{'met' if got >= TARGETS[name] else '**not met**'}")
            if "kmeans_dtw" in methods:
                ours, dtw = mean_sec(name, "ursa"), mean_sec(name, "kmeans_dtw")
                checks.append(f"- {name} fit time {ours:.1f} s < k-means-DTW {dtw:.1f} s: "
                              f"{'met' if ours < dtw else '**not met**'}")
    return "\n".join(lines + ([""] + checks if checks else []))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="ucr", choices=("ucr", "ucr-broad"),
                        help="the four UCR/UEA sets of ../shared/data/ucr (default), or the 62 "
                             "univariate sets of ../shared/data/ucr-broad against their published "
                             "figures (its own section of RESULTS.md; see benchmarks/_ucr_broad.py)")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="data sets of the collection (default: all of them)")
    parser.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                        help="default: ursa, kmeans, kshape, kmeans_dtw (ucr); ursa, kmeans and "
                             "kshape on its timing subset (ucr-broad)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="ucr: UnitTest and BasicMotions; ucr-broad: a fixed subset of 12 "
                             "sets; one seed; writes nothing unless --record")
    parser.add_argument("--out", help="ucr-broad: the JSON-lines file every finished fit is "
                                      "appended to, and a rerun resumes from (default "
                                      "benchmarks/.ucr-broad-run.jsonl)")
    parser.add_argument("--ursa-params", default="{}",
                        help="JSON of extra RecurrentClusterer parameters (default: none)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own setting)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="data sets run in this many parallel processes (default 1)")
    parser.add_argument("--from-log", metavar="LOG",
                        help="summarise the per-seed lines a (possibly unfinished) run printed to LOG "
                             "instead of running; the section says which results are missing")
    parser.add_argument("--normalisation", default="channel", choices=list(NORMALISATIONS),
                        help="per-series preparation: z-normalise each channel (the protocol, "
                             "default), the whole series, or none (the files as they are)")
    parser.add_argument("--json", help="also write the raw per-seed results to this file")
    _results.add_write_options(parser)
    args = parser.parse_args(argv)
    # --normalisation picks the section; threads, jobs and --json leave the figures comparable.
    trial = _results.trial_options(parser, args, ignore={
        "normalisation", "threads", "jobs", "json", "collection", "out"})
    if args.collection == "ucr-broad":
        import _ucr_broad

        args.methods = args.methods or list(_ucr_broad.METHODS)
        args.threads = args.threads or 1
        return _ucr_broad.main(args, json.loads(args.ursa_params), trial, argv)
    args.datasets = args.datasets or list(DATASETS)
    args.methods = args.methods or list(METHODS)
    if args.quick:
        args.datasets, args.seeds = ["UnitTest", "BasicMotions"], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()  # restored before every method (see run_dataset)
    ursa_params = json.loads(args.ursa_params)
    methods = list(dict.fromkeys(args.methods))
    if any(m != "ursa" for m in methods):
        try:
            import tslearn  # noqa: F401
        except ImportError:
            if "kshape" in methods or "kmeans_dtw" in methods:
                parser.error("k-Shape and k-means-DTW need tslearn: "
                             "pip install -r benchmarks/requirements.txt")
    if args.from_log:
        return summarise_log(args, methods, trial, argv)
    began = time.perf_counter()
    jobs = [(name, methods, args.seeds, ursa_params, args.threads, args.normalisation)
            for name in args.datasets]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            results = dict(zip(args.datasets, pool.starmap(run_dataset, jobs)))
    else:
        results = {job[0]: run_dataset(*job) for job in jobs}
    runtime = time.perf_counter() - began

    body = (table(results, args.datasets, methods) + "\n\n"
            + summary(results, args.datasets, methods))
    print()
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if _results.should_write(args.write, trial):
        command = "python benchmarks/clustering.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        _results.write_section(
            section_name(args.normalisation),
            f"Runtime: {runtime:.0f} s. Protocol: TRAIN+TEST merged, "
            f"{PREPARED[args.normalisation]}, k = number of classes, seeds 0..{args.seeds - 1}; "
            f"data sets in {min(args.jobs, len(jobs))} parallel process(es); ursa parameters: "
            f"defaults{' + ' + json.dumps(ursa_params) if ursa_params else ''}.\n\n{body}",
            command, machine=machine(args.threads), title=section_title(args.normalisation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
