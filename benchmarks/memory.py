"""Working memory of batched inference as the input grows 10x.

For every inference method of every estimator, a fresh process loads a small fitted model,
builds the input, warms the method up on a few sequences, resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), runs the method on the whole input and reads the peak (``VmHWM``).
Working memory = peak - resident memory before the call - size of the returned output: what the
method needs beyond its input and its result. Batched inference keeps it flat as the input grows.

Usage::

    python benchmarks/memory.py            # sizes n and 10n, rewrites its section of RESULTS.md
    python benchmarks/memory.py --quick    # small sizes, writes nothing (unless --record)
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ursa  # noqa: E402
import _results  # noqa: E402
from train_speed import machine_description  # noqa: E402

T, C = 50, 4  # sequence shape for the sequence estimators
MB = 2**20

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch
    import ursa

    torch.set_num_threads(1)
    model_path, kind, method, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(field)

    model = ursa.load(model_path)
    rng = np.random.default_rng(0)
    if kind == "sequences":
        t = np.arange({T})[None, :, None]
        X = np.sin(0.3 * t + rng.uniform(0, 6, (size, 1, {C}))).astype(np.float32)
        call = lambda data: getattr(model, method)(data)
        small = X[:8]
    elif kind == "series":
        X = np.sin(0.05 * np.arange(size, dtype=np.float32))[:, None]
        X += 0.1 * rng.standard_normal(X.shape).astype(np.float32)
        call = lambda data: getattr(model, method)(data)
        small = X[:1000]
    else:  # sampling: the size is the number of sequences asked for
        X = None
        call = lambda n: model.sample(n, random_state=0)
        small = 8
    call(small)  # warm-up: torch's allocator and kernels
    before = rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    out = call(X if X is not None else size)
    peak = rss("VmHWM")
    out_bytes = sum(np.asarray(o).nbytes for o in (out if isinstance(out, (list, tuple)) else [out]))
    in_bytes = 0 if X is None else X.nbytes
    print(json.dumps({{"before": before, "peak": peak, "out": out_bytes, "in": in_bytes}}))
""").format(T=T, C=C)


def fitted_models(tmp: Path) -> list[tuple[str, Path, str, list[str]]]:
    """(name, model path, input kind, methods) for every estimator that exists."""
    rng = np.random.default_rng(0)
    X = np.sin(0.3 * np.arange(T)[None, :, None] + rng.uniform(0, 6, (64, 1, C))).astype(np.float32)
    small = dict(hidden_size=16, latent_dim=4, random_state=0, device="cpu", verbose=False)
    specs = [
        ("SequenceAutoencoder", lambda: ursa.SequenceAutoencoder(epochs=2, **small).fit(X),
         "sequences", ["transform", "reconstruct", "decision_function", "step_errors"]),
        ("RecurrentClusterer", lambda: ursa.RecurrentClusterer(
            n_clusters=2, epochs=2, clustering_epochs=1, **small).fit(X),
         "sequences", ["predict", "predict_proba"]),
        ("SequenceAnomalyDetector", lambda: ursa.SequenceAnomalyDetector(
            window=32, epochs=2, **small).fit(np.sin(0.05 * np.arange(4000))[:, None]),
         "series", ["decision_function"]),
        ("RecurrentGAN", lambda: ursa.RecurrentGAN(
            iterations=2, pretrain_iterations=2, **small).fit(X), "sampling", ["sample"]),
    ]
    models = []
    for name, make, kind, methods in specs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
        path = tmp / f"{name}.ursa"
        model.save(path)
        models.append((name, path, kind, methods))
    return models


def measure(path, kind, method, size) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), kind, method, str(size)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes; writes nothing unless --record")
    _results.add_write_options(p)
    args = p.parse_args(argv)
    trial = _results.trial_options(p, args)
    base = {"sequences": 2_000, "series": 100_000, "sampling": 2_000} if args.quick else \
        {"sequences": 20_000, "series": 1_000_000, "sampling": 20_000}
    header = ("| estimator | method | input | input MB (n / 10n) | output MB (n / 10n) | "
              "working MB at n | working MB at 10n | ratio |")
    rows = [header, "|---|---|---|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, kind, methods in fitted_models(Path(tmp)):
            for method in methods:
                small, large = (measure(path, kind, method, s * f)
                                for s, f in ((base[kind], 1), (base[kind], 10)))
                work = [(m["peak"] - m["before"] - m["out"]) / MB for m in (small, large)]
                unit = {"sequences": f"{base[kind]} x ({T}, {C})",
                        "series": f"{base[kind]} points", "sampling": f"{base[kind]} samples"}[kind]
                row = (f"| {name} | {method} | {unit} | {small['in'] / MB:.0f} / "
                       f"{large['in'] / MB:.0f} | {small['out'] / MB:.0f} / "
                       f"{large['out'] / MB:.0f} | {work[0]:.1f} | {work[1]:.1f} | "
                       f"{(work[1] / work[0]) if work[0] > 0.5 else float('nan'):.2f} |")
                rows.append(row)
                print(row, flush=True)
    table = "\n".join(rows)
    print(table)
    if _results.should_write(args.write, trial):
        command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/memory.py",
                                                                *(argv or sys.argv[1:])])
        _results.write_section(
            "memory", "\n".join([
                "Working memory = peak RSS during the call - RSS before it - the output's size. "
                "Batched inference keeps it flat while input and output grow 10x (memory figures "
                "do not depend on CPU load).", "", table]),
            command, machine=machine_description(1),
            title="Working memory of batched inference — `benchmarks/memory.py`")


if __name__ == "__main__":
    main()
