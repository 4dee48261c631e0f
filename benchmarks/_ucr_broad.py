"""The broad clustering benchmark: 62 UCR univariate sets (``clustering.py --collection ucr-broad``).

Protocol (../shared/data/README.md, Paparrizos & Reddy, PVLDB 2025): TRAIN and TEST pooled, each
series z-normalised over its observed values, k = number of classes, NMI and ARI, seeds 0-2.
Methods run here:

- ``ursa``: ``ursa.RecurrentClusterer`` with its defaults; NaN-padded ends are padding and gaps
  inside a series are missing values, as the estimator reads them;
- ``kmeans``: scikit-learn ``KMeans(n_init=10)`` on the series, gaps filled by linear
  interpolation and every series resampled to the longest length: a sanity check that the
  published k-means figures (``pooled_k-AVG``) are comparable with this run's data;
- ``kshape``: tslearn ``KShape`` on the same gap-filled series, on ``TIMING_SETS`` only (its fit
  time against ursa's in the same run; its published NMI is the reference everywhere).

Published figures come from ``published_nmi.csv`` (52 sets with the pooled protocol's k-Shape,
KASBA and k-means; 49 with k-means-DBA, MSM, k-SC, shape-DBA and others). Every finished fit is
appended to a JSON-lines file (``--out``), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

import _results
import clustering
from ursa.metrics import adjusted_rand_score, normalized_mutual_info_score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucr-broad"
SECTION = "clustering-ucr-broad"
DEFAULT_OUT = Path(__file__).resolve().parent / ".ucr-broad-run.jsonl"
METHODS = ("ursa", "kmeans", "kshape")
# A fixed subset to iterate on (--quick): short and long, few and many classes, a set with gaps
# (DodgerLoopDay) and one with ragged ends (GesturePebbleZ1); ten of them have published figures.
QUICK = ("CBF", "SyntheticControl", "ECG200", "Coffee", "Plane", "GunPointAgeSpan",
         "ItalyPowerDemand", "DistalPhalanxOutlineAgeGroup", "FaceFour", "Meat", "DodgerLoopDay",
         "GesturePebbleZ1")
# k-Shape is fitted here, for its fit time, on these sets (its NMI is taken from the published file).
TIMING_SETS = ("CBF", "SyntheticControl", "ECG200", "Coffee", "Plane", "FaceFour", "Beef", "Meat",
               "UMD", "GunPointAgeSpan")
# Published methods, by column of published_nmi.csv: the 52 pooled-protocol sets and the 49 others.
POOLED = {"k-Shape": "pooled_k-Shape", "KASBA": "pooled_KASBA", "k-means": "pooled_k-AVG"}
S51 = {"k-means-DBA": "s51_DBA", "Euclidean k-means": "s51_Euclid", "KASBA (s51)": "s51_KASBA",
       "MSM": "s51_MSM", "k-SC": "s51_k-SC", "k-Shape (s51)": "s51_k-shape",
       "shape-DBA": "s51_shape-DBA"}
# Two NMI figures closer than this count as a tie in the wins / ties / losses count.
TIE = 0.005


def datasets() -> list[str]:
    return sorted(p.name for p in DATA.iterdir() if p.is_dir())


def published() -> dict[str, dict[str, float]]:
    """NMI by data set and column of published_nmi.csv (only the figures present)."""
    with open(DATA / "published_nmi.csv", newline="") as handle:
        return {row["name"]: {k: float(v) for k, v in row.items() if k != "name" and v}
                for row in csv.DictReader(handle)}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """TRAIN + TEST as a NaN-padded (n, T) array, each series z-normalised over its observed
    values, and integer labels."""
    parts = [np.genfromtxt(DATA / name / f"{name}_{part}.tsv", delimiter="\t", dtype=np.float64)
             for part in ("TRAIN", "TEST")]
    width = max(p.shape[1] for p in parts)
    rows = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.nan)
                           for p in parts])
    labels, X = rows[:, 0], rows[:, 1:]
    mean = np.nanmean(X, axis=1, keepdims=True)
    std = np.nanstd(X, axis=1, keepdims=True)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    return X.astype(np.float32), np.unique(labels, return_inverse=True)[1]


def gap_filled(X: np.ndarray) -> list[np.ndarray]:
    """What the classic baselines read: each series' valid part as a (T_i, 1) array, gaps inside
    it filled by linear interpolation (``clustering.run_method`` then resamples every series to
    the longest length, as tslearn's resampler does)."""
    out = []
    for row in X.astype(np.float64):
        observed = np.flatnonzero(~np.isnan(row))
        steps = np.arange(observed[-1] + 1)
        out.append(np.interp(steps, observed, row[observed])[:, None])
    return out


def run_job(name: str, seed: int, methods, ursa_params: dict, threads: int) -> list[dict]:
    """Every method on one data set and seed; a failure becomes a row with its error."""
    X, y = load(name)
    k = len(np.unique(y))
    rows = []
    for method in methods:
        if method == "kshape" and name not in TIMING_SETS:
            continue
        torch.set_num_threads(threads)  # tslearn can leave OpenMP at one thread per core
        row = {"dataset": name, "method": method, "seed": seed, "params": ursa_params,
               "n": int(len(X)), "length": int(X.shape[1]), "k": int(k)}
        try:
            # ursa reads the gaps as missing values; the baselines read them filled.
            labels, seconds = clustering.run_method(
                method, X if method == "ursa" else gap_filled(X), k, seed, ursa_params)
        except Exception as exc:  # noqa: BLE001 (recorded and reported, the run goes on)
            row["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        else:
            row.update(seconds=seconds,
                       nmi=float(normalized_mutual_info_score(y, labels)),
                       ari=float(adjusted_rand_score(y, labels)))
        rows.append(row)
        print(f"{name:30s} seed {seed} {method:7s} "
              + (f"NMI {row['nmi']:.3f} ARI {row['ari']:.3f} {row['seconds']:7.1f} s"
                 if "nmi" in row else f"ERROR {row['error']}"), flush=True)
    return rows


def _worker(job) -> list[dict]:
    name, seed, methods, ursa_params, threads = job
    if not getattr(_worker, "warm", False):  # once per process
        torch.set_num_threads(threads)
        clustering.warm_up()
        _worker.warm = True
    return run_job(name, seed, methods, ursa_params, threads)


def read_rows(path: Path, ursa_params: dict) -> list[dict]:
    """Rows of an earlier run with the same ursa parameters (a resumed run keeps them)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("params") == ursa_params and "error" not in row:
                rows.append(row)
    return rows


def run(names, seeds: int, methods, ursa_params: dict, threads: int, jobs: int,
        out: Path) -> tuple[list[dict], list[dict], float]:
    """Fit what ``out`` does not hold yet (largest sets first, ``jobs`` processes), appending
    each finished job's rows to it; returns every row for ``names``, the rows of fits that
    failed, and the seconds spent."""
    rows = [r for r in read_rows(out, ursa_params) if r["dataset"] in names]
    done = {(r["dataset"], r["seed"], r["method"]) for r in rows}
    todo = [(name, seed) for name in names for seed in range(seeds)
            if any((name, seed, m) not in done for m in methods
                   if m != "kshape" or name in TIMING_SETS)]
    if rows:
        print(f"Resuming from {out}: {len(rows)} fits done, {len(todo)} (data set, seed) jobs left.")
    todo.sort(key=lambda job: -sum((DATA / job[0] / f"{job[0]}_{part}.tsv").stat().st_size
                                   for part in ("TRAIN", "TEST")))
    work = [(name, seed, [m for m in methods if (name, seed, m) not in done], ursa_params,
             threads) for name, seed in todo]
    began = time.perf_counter()
    errors: list[dict] = []
    with open(out, "a") as handle:
        def keep(new_rows):
            for row in new_rows:
                handle.write(json.dumps(row) + "\n")
            handle.flush()
            rows.extend(r for r in new_rows if "error" not in r)
            errors.extend(r for r in new_rows if "error" in r)

        if jobs > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for new_rows in pool.imap_unordered(_worker, work):
                    keep(new_rows)
        else:
            for job in work:
                keep(_worker(job))
    return rows, errors, time.perf_counter() - began


# ----------------------------------------------------------------------------------- summary
def _by(rows, method, key="nmi") -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    for r in rows:
        if r["method"] == method:
            out.setdefault(r["dataset"], []).append(r[key])
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each method (column) per data set (row), 1 the best, ties averaged."""
    from scipy.stats import rankdata

    return np.vstack([rankdata(-row) for row in scores])


def summarise(rows: list[dict], names, seeds: int, errors: list[dict]) -> tuple[str, dict]:
    """The per-data-set table and the summary against the published figures (markdown), and
    the headline numbers."""
    from scipy.stats import wilcoxon

    pub = published()
    ours = {k: v for k, v in _by(rows, "ursa").items() if len(v) >= seeds}
    ari = _by(rows, "ursa", "ari")
    secs = _by(rows, "ursa", "seconds")
    km = _by(rows, "kmeans")
    ks_secs = _by(rows, "kshape", "seconds")
    ks_nmi = _by(rows, "kshape")
    shape = {r["dataset"]: (r["n"], r["length"], r["k"]) for r in rows}
    lines = ["| data set | n | T | k | ursa NMI (mean ± sd) | ursa ARI | k-means here | "
             "k-Shape | KASBA | k-means | ursa fit s | k-Shape fit s here |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(value, digits=3):
        return "" if value is None or np.isnan(value) else f"{value:.{digits}f}"

    for name in names:
        if name not in ours:
            continue
        n, length, k = shape[name]
        p = pub.get(name, {})
        lines.append(
            f"| {name} | {n} | {length} | {k} | {ours[name].mean():.3f} ± {ours[name].std():.3f} | "
            f"{ari[name].mean():.3f} | {fmt(km[name].mean()) if name in km else ''} | "
            f"{fmt(p.get(POOLED['k-Shape'], np.nan))} | {fmt(p.get(POOLED['KASBA'], np.nan))} | "
            f"{fmt(p.get(POOLED['k-means'], np.nan))} | {secs[name].mean():.1f} | "
            f"{fmt(ks_secs[name].mean(), 1) if name in ks_secs else ''} |")
    table = "\n".join(lines)

    mean = {name: ours[name].mean() for name in ours}
    head: dict = {"datasets": len(ours), "errors": len({e["dataset"] for e in errors})}
    out = [f"Data sets finished: {len(ours)} of {len(names)} ({seeds} seeds each); data sets "
           f"with an error: {head['errors']}"
           + (" (" + ", ".join(sorted({e['dataset'] for e in errors})) + ")" if errors else "")
           + ".", ""]
    out.append(f"- ursa mean NMI over all {len(ours)} finished sets: "
               f"{np.mean(list(mean.values())):.3f}"
               + (f"; in-run k-means {np.mean([km[n].mean() for n in ours if n in km]):.3f}"
                  if km else ""))
    with_pooled = [n for n in ours if all(c in pub.get(n, {}) for c in POOLED.values())]
    if with_pooled:
        table_scores = np.array([[mean[n]] + [pub[n][c] for c in POOLED.values()]
                                 for n in with_pooled])
        ranks = _ranks(table_scores).mean(0)
        names_ = ["ursa", *POOLED]
        head["mean_nmi_52"] = float(table_scores[:, 0].mean())
        out.append(f"- Over the {len(with_pooled)} sets with pooled-protocol figures, mean NMI: "
                   + ", ".join(f"{m} {v:.3f}" for m, v in zip(names_, table_scores.mean(0)))
                   + "; mean rank (1 = best): "
                   + ", ".join(f"{m} {r:.2f}" for m, r in zip(names_, ranks)))
        diff = table_scores[:, 0] - table_scores[:, 1]
        wins, losses = int((diff > TIE).sum()), int((diff < -TIE).sum())
        ties = len(diff) - wins - losses
        p_value = float(wilcoxon(table_scores[:, 0], table_scores[:, 1]).pvalue) \
            if np.any(diff != 0) else 1.0
        head.update(wins=wins, ties=ties, losses=losses, p=p_value)
        out.append(f"- Against k-Shape: {wins} wins / {ties} ties / {losses} losses (ties: "
                   f"within {TIE} NMI); Wilcoxon signed-rank two-sided p = {p_value:.3g}")
        target_met = head["mean_nmi_52"] > max(0.365, 0.374) and p_value < 0.05
        out.append(f"- Target (mean NMI above k-Shape's 0.365 and KASBA's 0.374 over the 52, "
                   f"p < 0.05 against k-Shape): {'met' if target_met else '**not met**'}")
        kmeans_here = [n for n in with_pooled if n in km]
        if kmeans_here:
            here = np.array([km[n].mean() for n in kmeans_here])
            there = np.array([pub[n][POOLED["k-means"]] for n in kmeans_here])
            out.append(f"- Sanity check: k-means in this run {here.mean():.3f} against the "
                       f"published k-means {there.mean():.3f} on the same {len(kmeans_here)} sets "
                       f"(mean absolute difference {np.abs(here - there).mean():.3f}, correlation "
                       f"{np.corrcoef(here, there)[0, 1]:.2f})")
    with_s51 = [n for n in ours if all(c in pub.get(n, {}) for c in S51.values())]
    if with_s51:
        scores = np.array([[mean[n]] + [pub[n][c] for c in S51.values()] for n in with_s51])
        ranks = _ranks(scores).mean(0)
        out.append(f"- Over the {len(with_s51)} sets with the other published methods, mean NMI "
                   "(mean rank): " + ", ".join(
                       f"{m} {v:.3f} ({r:.2f})"
                       for m, v, r in zip(["ursa", *S51], scores.mean(0), ranks)))
    collapsed = [(n, mean[n], pub[n][POOLED["k-Shape"]]) for n in ours
                 if pub.get(n, {}).get(POOLED["k-Shape"], 0) >= 0.3
                 and mean[n] < 0.5 * pub[n][POOLED["k-Shape"]]]
    eligible = sum(pub.get(n, {}).get(POOLED["k-Shape"], 0) >= 0.3 for n in ours)
    head["collapsed"] = len(collapsed)
    failed = ", ".join(f"{n} ({a:.3f} against {b:.3f})" for n, a, b in collapsed)
    out.append(f"- No collapse (NMI at least half k-Shape's wherever k-Shape scores 0.3 or more, "
               f"{eligible} sets): {'**not met** on ' + failed if collapsed else 'met'}")
    all_secs = np.array([secs[n].mean() for n in ours])
    head["median_seconds"] = float(np.median(all_secs)) if len(all_secs) else float("nan")
    out.append(f"- ursa fit time per data set: median {np.median(all_secs):.1f} s, "
               f"largest {all_secs.max():.1f} s")
    timed = [n for n in ours if n in ks_secs]
    if timed:
        a = np.array([secs[n].mean() for n in timed])
        b = np.array([ks_secs[n].mean() for n in timed])
        faster = int((a < b).sum())
        out.append(f"- Fit time against tslearn k-Shape on {len(timed)} sets (same run): median "
                   f"{np.median(a):.1f} s against {np.median(b):.1f} s (median ratio "
                   f"{np.median(a / b):.2f}; ursa faster on {faster} of {len(timed)}); k-Shape's NMI "
                   f"here {np.mean([ks_nmi[n].mean() for n in timed]):.3f}, ursa's "
                   f"{np.mean([mean[n] for n in timed]):.3f} on these sets")
    return table + "\n\n" + "\n".join(out), head


def main(args, ursa_params: dict, trial: list, argv) -> int:
    names = args.datasets or (list(QUICK) if args.quick else datasets())
    unknown = sorted(set(names) - set(datasets()))
    if unknown:
        raise SystemExit(f"unknown data sets for --collection ucr-broad: {unknown}")
    seeds = 1 if args.quick and args.seeds == 3 else args.seeds
    methods = [m for m in dict.fromkeys(args.methods) if m in METHODS]
    out = Path(args.out) if args.out else DEFAULT_OUT
    rows, errors, seconds = run(names, seeds, methods, ursa_params, args.threads, args.jobs, out)
    body, head = summarise(rows, names, seeds, errors)
    print()
    print(body)
    if _results.should_write(args.write, trial):
        command = "python benchmarks/clustering.py " + " ".join(
            shlex.quote(a) for a in (argv or sys.argv[1:]))
        _results.write_section(
            SECTION,
            f"Protocol: TRAIN and TEST pooled, each series z-normalised over its observed values, "
            f"k = number of classes, seeds 0..{seeds - 1}, NMI and ARI; published figures from "
            f"`../shared/data/ucr-broad/published_nmi.csv`. The last invocation fitted for "
            f"{seconds:.0f} s in {args.jobs} process(es) of {args.threads} torch thread(s) "
            f"(a resumed run counts only its own part); ursa parameters: defaults"
            f"{' + ' + json.dumps(ursa_params) if ursa_params else ''}.\n\n{body}",
            command, machine=f"{_results.this_machine()}, {args.jobs} parallel process(es)",
            title="Clustering across 62 UCR sets — `benchmarks/clustering.py --collection ucr-broad`")
    return 0
