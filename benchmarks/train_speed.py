"""Training and inference speed of ursa.SequenceAutoencoder against a minimal hand-written model.

The reference is the smallest reasonable PyTorch sequence autoencoder: encoder RNN/GRU/LSTM
(batch first) -> output at the last step -> Linear to the latent code -> code repeated over time ->
decoder RNN/GRU/LSTM -> Linear to the features -> MSE -> Adam(lr=1e-3), shuffled minibatches
indexed out of one pre-built tensor. Whatever ursa adds on top (validation, scaling, length
handling, gradient clipping, divergence checks, an initial-state projection in the decoder) shows
up as the ratio ursa_time / reference_time.

Training: ursa is timed with the real estimator ``fit`` (validation_fraction=0.0, patience=None)
using the per-epoch ``seconds`` in ``history_`` after a warm-up epoch (epoch 1 is dropped); the
reference is timed per epoch the same way over the same number of sequences and batches, with the
same intra-op thread count. ursa and the reference alternate (the order flips every repeat) and
medians over repeats are reported.

Inference (shape c only): ``transform`` + ``reconstruct`` at ``predict_batch_size`` (1024) against
the reference's encoder forward and full forward under ``torch.inference_mode`` at batch 1024.

Usage::

    python benchmarks/train_speed.py                  # full run, rewrites its section of RESULTS.md
    python benchmarks/train_speed.py --quick          # smoke run, writes nothing
    python benchmarks/train_speed.py --compare-threads --no-write
    python benchmarks/train_speed.py --device cuda    # both sides on the GPU (its own section)
    python benchmarks/train_speed.py --cost           # each estimator against the GEMM peak

``--cost`` (its own section) fits each estimator on its benchmark's shape, in float32 and, where
the CPU has native bfloat16, in bfloat16, counting the FLOPs of its recurrent and linear layers
(``benchmarks/_cost.py``), and sets the achieved GFLOP/s beside this thread count's measured
GEMM peak in float32 and bfloat16.

A run with other options than these (``--repeats``, ``--shapes``, ...) is a trial: it prints its
tables and leaves RESULTS.md alone unless given ``--record``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # measure this checkout, installed or not

import ursa  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cost  # noqa: E402
import _results  # noqa: E402

LATENT_DIM = 16
TRAIN_TARGET = 1.15  # ursa time per step / reference time per step
INFER_TARGET = 1.0
INFER_BATCH = 1024
CELLS = ("rnn", "gru", "lstm")


@dataclass(frozen=True)
class Shape:
    name: str
    n_steps: int
    n_features: int
    hidden: int
    batch: int

    def label(self) -> str:
        return f"({self.name}) T={self.n_steps} C={self.n_features} H={self.hidden} B={self.batch}"


SHAPES = (
    Shape("a", 24, 5, 64, 128),
    Shape("b", 150, 1, 64, 64),
    Shape("c", 100, 38, 128, 256),
)


# --------------------------------------------------------------------------- data
def make_data(n: int, n_steps: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Sines with random frequency, phase and amplitude per sequence and channel, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_steps, dtype=np.float64)[None, :, None]
    freq = rng.uniform(1.0, 6.0, size=(n, 1, n_features))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, n_features))
    amp = rng.uniform(0.5, 2.0, size=(n, 1, n_features))
    x = amp * np.sin(2 * np.pi * freq * t + phase) + 0.1 * rng.standard_normal((n, n_steps, n_features))
    return x.astype(np.float32)


# --------------------------------------------------------------------------- reference model
def _rnn(cell: str, input_size: int, hidden: int) -> nn.Module:
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
    return cls(input_size, hidden, batch_first=True)


class ReferenceAE(nn.Module):
    def __init__(self, cell: str, n_features: int, hidden: int, latent: int):
        super().__init__()
        self.enc = _rnn(cell, n_features, hidden)
        self.to_latent = nn.Linear(hidden, latent)
        self.dec = _rnn(cell, latent, hidden)
        self.readout = nn.Linear(hidden, n_features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.enc(x)
        return self.to_latent(out[:, -1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        out, _ = self.dec(z.unsqueeze(1).expand(-1, x.size(1), -1))
        return self.readout(out)


def _sync(device: str) -> None:
    """Wait for queued GPU work, so that a timer read after it counts that work."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reference_epoch_times(cell, shape: Shape, data: torch.Tensor, epochs: int, seed: int,
                          device: str = "cpu") -> list[float]:
    """Per-epoch seconds of the reference training loop (all epochs, warm-up included)."""
    torch.manual_seed(seed)
    model = ReferenceAE(cell, shape.n_features, shape.hidden, LATENT_DIM).to(device)
    data = data.to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    n = data.size(0)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n, shape.batch):
            xb = data[perm[i : i + shape.batch]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), xb)
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - started)
    return times


def ursa_estimator(cell: str, shape: Shape, epochs: int, threads: int,
                   device: str = "cpu") -> "ursa.SequenceAutoencoder":
    return ursa.SequenceAutoencoder(
        cell=cell,
        hidden_size=shape.hidden,
        latent_dim=LATENT_DIM,
        epochs=epochs,
        batch_size=shape.batch,
        validation_fraction=0.0,
        patience=None,
        random_state=0,
        n_threads=threads,
        device=device,
        verbose=False,
    )


def ursa_epoch_times(cell, shape: Shape, X: np.ndarray, epochs: int, threads: int,
                     device: str = "cpu") -> list[float]:
    # An epoch's record reads its loss back from the device, so its seconds include the GPU work.
    est = ursa_estimator(cell, shape, epochs, threads, device).fit(X)
    return [r["seconds"] for r in est.history_]


def _timed(times: list[float]) -> float:
    """Mean seconds per epoch after dropping the warm-up epoch."""
    kept = times[1:] if len(times) > 1 else times
    return sum(kept) / len(kept)


# --------------------------------------------------------------------------- training benchmark
def bench_training(shapes, cells, args, log) -> list[dict]:
    rows = []
    for shape in shapes:
        n = shape.batch * args.batches_per_epoch
        X = make_data(n, shape.n_steps, shape.n_features, seed=1)
        data = torch.from_numpy(X)
        for cell in cells:
            ursa_t, ref_t, ratios = [], [], []
            for rep in range(args.repeats):
                order = ("ursa", "ref") if rep % 2 == 0 else ("ref", "ursa")
                got = {}
                for who in order:
                    if who == "ursa":
                        got[who] = _timed(ursa_epoch_times(cell, shape, X, args.epochs, args.threads,
                                                            args.device))
                    else:
                        torch.set_num_threads(args.threads)
                        got[who] = _timed(reference_epoch_times(cell, shape, data, args.epochs, seed=rep,
                                                                 device=args.device))
                ursa_t.append(got["ursa"])
                ref_t.append(got["ref"])
                ratios.append(got["ursa"] / got["ref"])
            row = {
                "shape": shape,
                "cell": cell,
                "n": n,
                "ursa_sps": statistics.median(n / t for t in ursa_t),
                "ref_sps": statistics.median(n / t for t in ref_t),
                "ratio": statistics.median(ratios),
            }
            rows.append(row)
            log(f"  train {shape.label()} {cell:4s}: ursa {row['ursa_sps']:9.1f} seq/s  "
                f"ref {row['ref_sps']:9.1f} seq/s  ratio {row['ratio']:.3f}  "
                f"(per-repeat ratios {', '.join(f'{r:.3f}' for r in ratios)})")
    return rows


# --------------------------------------------------------------------------- inference benchmark
def _reference_infer(model: ReferenceAE, X: np.ndarray, full: bool, device: str = "cpu") -> np.ndarray:
    data = torch.from_numpy(X)
    out = []
    with torch.inference_mode():
        for start in range(0, len(data), INFER_BATCH):
            xb = data[start : start + INFER_BATCH].to(device)
            out.append((model(xb) if full else model.encode(xb)).cpu().numpy())
    return np.concatenate(out)


def bench_inference(shape: Shape, cells, args, log) -> list[dict]:
    X = make_data(args.infer_n, shape.n_steps, shape.n_features, seed=2)
    X_fit = make_data(shape.batch * 2, shape.n_steps, shape.n_features, seed=3)
    rows = []
    for cell in cells:
        est = ursa_estimator(cell, shape, 1, args.threads, args.device).fit(X_fit)
        assert est.predict_batch_size == INFER_BATCH, est.predict_batch_size
        torch.manual_seed(0)
        ref = ReferenceAE(cell, shape.n_features, shape.hidden, LATENT_DIM).to(args.device).eval()
        torch.set_num_threads(args.threads)
        est.transform(X[:INFER_BATCH])  # warm-up
        est.reconstruct(X[:INFER_BATCH])
        _reference_infer(ref, X[:INFER_BATCH], full=True, device=args.device)
        times = {k: [] for k in ("u_enc", "r_enc", "u_full", "r_full")}
        for rep in range(args.infer_repeats):
            jobs = [
                ("u_enc", lambda: est.transform(X)),
                ("r_enc", lambda: _reference_infer(ref, X, full=False, device=args.device)),
                ("u_full", lambda: est.reconstruct(X)),
                ("r_full", lambda: _reference_infer(ref, X, full=True, device=args.device)),
            ]
            if rep % 2:
                jobs = [jobs[1], jobs[0], jobs[3], jobs[2]]
            for key, job in jobs:
                torch.set_num_threads(args.threads)
                started = time.perf_counter()
                job()
                times[key].append(time.perf_counter() - started)
        n = len(X)
        for what, u, r in (("transform / encoder", "u_enc", "r_enc"), ("reconstruct / full", "u_full", "r_full")):
            row = {
                "shape": shape,
                "cell": cell,
                "what": what,
                "ursa_sps": statistics.median(n / t for t in times[u]),
                "ref_sps": statistics.median(n / t for t in times[r]),
                "ratio": statistics.median(a / b for a, b in zip(times[u], times[r])),
            }
            rows.append(row)
            log(f"  infer {shape.label()} {cell:4s} {what:20s}: ursa {row['ursa_sps']:9.1f} seq/s  "
                f"ref {row['ref_sps']:9.1f} seq/s  ratio {row['ratio']:.3f}")
    return rows


# --------------------------------------------------------------------------- thread comparison
def bench_threads(shapes, cells, args, log, thread_counts=(1, 2)) -> list[dict]:
    rows = []
    for shape in shapes:
        n = shape.batch * args.batches_per_epoch
        X = make_data(n, shape.n_steps, shape.n_features, seed=1)
        for cell in cells:
            per = {k: [] for k in thread_counts}
            for rep in range(args.repeats):
                order = thread_counts if rep % 2 == 0 else tuple(reversed(thread_counts))
                for k in order:
                    per[k].append(_timed(ursa_epoch_times(cell, shape, X, args.epochs, k)))
            row = {"shape": shape, "cell": cell}
            for k in thread_counts:
                row[k] = statistics.median(n / t for t in per[k])
            rows.append(row)
            log(f"  threads {shape.label()} {cell:4s}: "
                + "  ".join(f"{k} thr {row[k]:9.1f} seq/s" for k in thread_counts))
    return rows


# --------------------------------------------------------------------------- cost against the limit
def _cost_cases(quick: bool):
    """(estimator, shape, builder(precision), X, layer) at each benchmark's shape (``quick``:
    tiny); ``layer`` is the (cell, steps, batch, input size, hidden size, bidirectional) of the
    estimator's main recurrent layer, as a bare torch layer would train it."""
    c = next(s for s in SHAPES if s.name == "c")
    n_c = c.batch * (2 if quick else 8)
    motions, _ = ursa.datasets.load_ucr("BasicMotions")
    series, _, train = ursa.datasets.load_ucr_anomaly()
    sines = ursa.datasets.make_sines(1000, random_state=0)
    short = 20 if quick else 300
    common = dict(random_state=0, device="cpu", verbose=False)
    cases = []
    for cell in ("lstm", "gru"):
        cases.append((f"SequenceAutoencoder ({cell})", f"{c.label()}, {n_c} sequences, 3 epochs",
                      lambda p, cell=cell: ursa.SequenceAutoencoder(
                          cell=cell, hidden_size=c.hidden, latent_dim=LATENT_DIM, epochs=3,
                          batch_size=c.batch, validation_fraction=0.0, patience=None,
                          precision=p, **common),
                      make_data(n_c, c.n_steps, c.n_features, seed=1),
                      (cell, c.n_steps, c.batch, c.n_features, c.hidden, False)))
    cases.append(("RecurrentClusterer", "BasicMotions, 80 x 100 x 6, defaults",
                  lambda p: ursa.RecurrentClusterer(n_clusters=4, precision=p, **common),
                  motions, ("gru", 100, 128, 12, 32, True)))
    # The detector's recurrence reads the convolutional front end's 32 channels at a quarter of
    # the window's 64 steps.
    cases.append(("SequenceAnomalyDetector", f"UCR 135's training part ({train} points), defaults",
                  lambda p: ursa.SequenceAnomalyDetector(precision=p, **common), series[:train],
                  ("gru", 64 // ursa.networks.FRONT_STRIDE, 128, 32, 32, False)))
    cases.append(("RecurrentGAN", f"sines 1000 x 24 x 5, {short} + {short} iterations",
                  lambda p: ursa.RecurrentGAN(iterations=short, pretrain_iterations=short,
                                              precision=p, **common), sines,
                  ("gru", 24, 128, 32, 32, False)))
    return cases


def bench_cost(args, log) -> tuple[dict, list[dict]]:
    torch.set_num_threads(args.threads)
    peaks = {"float32": _cost.gemm_peak(torch.float32),
             "bfloat16": _cost.gemm_peak(torch.bfloat16)}
    log(f"  GEMM peak, {args.threads} thread(s): float32 {peaks['float32']:.0f} GFLOP/s, "
        f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    precisions = ["float32"] + (["bfloat16"] if ursa.training.bf16_native("cpu") else [])
    rows = []
    for name, shape, build, X, layer in _cost_cases(args.quick):
        for precision in precisions:
            if name == "RecurrentGAN" and precision != "float32":
                continue  # the GAN trains in float32 only
            est = build(precision).set_params(n_threads=args.threads)
            with _cost.count_flops() as counted:
                started = time.perf_counter()
                est.fit(X)
                seconds = time.perf_counter() - started
            rate = counted["flops"] / seconds / 1e9
            gates = {"rnn": 1, "gru": 3, "lstm": 4}[est.cell]
            step = (est.batch_size, est.hidden_size, gates * est.hidden_size)
            ceiling = _cost.gemm_rate(*step) if precision == "float32" else None
            bare = _cost.layer_rate(*layer) if precision == "float32" else None
            rows.append(dict(name=name, shape=shape, precision=precision, seconds=seconds,
                             loss=est.history_[-1]["train_loss"],
                             gflop=counted["flops"] / 1e9, rate=rate,
                             share32=rate / peaks["float32"], share16=rate / peaks["bfloat16"],
                             step=step, ceiling=ceiling, layer=layer, bare=bare))
            log(f"  cost {name:28s} {precision:8s}: {seconds:6.1f} s, {rate:6.1f} GFLOP/s, "
                f"{100 * rate / peaks['float32']:.0f} % of the float32 peak")
    return peaks, rows


def bench_precision_quality(args, log, seeds=(0, 1, 2)) -> list[dict]:
    """The demo's LSTM autoencoder on BasicMotions (latent 8, 60 epochs) fitted with each seed
    in float32 and bfloat16: final training loss and k-means NMI of the embeddings against the
    classes, to compare the gap between precisions with the spread across seeds."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    X, y = ursa.datasets.load_ucr("BasicMotions")
    rows = []
    for precision in ("float32", "bfloat16"):
        for seed in seeds:
            est = ursa.SequenceAutoencoder(
                cell="lstm", latent_dim=8, epochs=6 if args.quick else 60,
                validation_fraction=0.0, random_state=seed, device="cpu", verbose=False,
                n_threads=args.threads, precision=precision).fit(X)
            codes = est.transform(X)
            nmi = normalized_mutual_info_score(
                y, KMeans(4, n_init=10, random_state=0).fit_predict(codes))
            rows.append(dict(precision=precision, seed=seed, loss=est.history_[-1]["train_loss"],
                             nmi=nmi))
            log(f"  quality BasicMotions LSTM autoencoder, {precision}, seed {seed}: loss "
                f"{rows[-1]['loss']:.4f}, NMI {nmi:.3f}")
    return rows


def precision_table(rows: list[dict]) -> str:
    lines = ["| precision | final training loss, mean ± sd | k-means NMI of the embeddings, "
             "mean ± sd |", "|---|---:|---:|"]
    for precision in ("float32", "bfloat16"):
        chosen = [r for r in rows if r["precision"] == precision]
        cells = [f"{statistics.mean(v):.4f} ± {statistics.pstdev(v):.4f}"
                 for v in ([r["loss"] for r in chosen], [r["nmi"] for r in chosen])]
        lines.append(f"| {precision} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def cost_table(peaks: dict, rows: list[dict]) -> str:
    lines = [f"GEMM peak on this thread count (2048 x 2048 products, best of 5): float32 "
             f"{peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s.", "",
             "| estimator | shape | precision | fit s | final training loss | GFLOP counted "
             "| GFLOP/s | share of the float32 peak | share of the bfloat16 peak |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['shape']} | {r['precision']} | {r['seconds']:.1f} "
                     f"| {r['loss']:.4g} "
                     f"| {r['gflop']:.0f} | {r['rate']:.1f} | {100 * r['share32']:.0f} % "
                     f"| {100 * r['share16']:.0f} % |")
    lines += ["", "The ceilings a recurrent step's shape sets. One step multiplies the batch's "
              "hidden states by the recurrent weights, (batch x H) @ (H x g H), and the next step "
              "waits for it: the float32 rate of that product alone (`torch.mm`, median of 5 "
              "timings). A bare torch recurrent layer of the estimator's main shape (one layer, "
              "forward and backward of the sum of its outputs, FLOPs counted as above, median of "
              "5 timings): the fastest torch's fused kernels train at that shape, before any "
              "model, loss or optimiser around them.", "",
              "| estimator | step product | float32 GFLOP/s | share of the float32 peak "
              "| bare layer (cell, T, batch, input, H) | GFLOP/s | share of the float32 peak |",
              "|---|---|---:|---:|---|---:|---:|"]
    for r in rows:
        if r["ceiling"] is not None:
            m, k, n = r["step"]
            cell, steps, batch, inputs, hidden, both = r["layer"]
            layer = (f"{'bidirectional ' if both else ''}{cell}, {steps}, {batch}, {inputs}, "
                     f"{hidden}")
            lines.append(f"| {r['name']} | ({m} x {k}) @ ({k} x {n}) | {r['ceiling']:.1f} "
                         f"| {100 * r['ceiling'] / peaks['float32']:.0f} % | {layer} "
                         f"| {r['bare']:.1f} | {100 * r['bare'] / peaks['float32']:.0f} % |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- reporting
def _verdict(ratio: float, target: float) -> str:
    return "meets target" if ratio <= target else "**slower than target**"


def training_table(rows) -> str:
    lines = [
        f"| shape | cell | ursa seq/s | reference seq/s | ratio (ursa/ref time) | verdict (<= {TRAIN_TARGET}) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['shape'].label()} | {r['cell']} | {r['ursa_sps']:.1f} | {r['ref_sps']:.1f} "
                     f"| {r['ratio']:.3f} | {_verdict(r['ratio'], TRAIN_TARGET)} |")
    return "\n".join(lines)


def inference_table(rows) -> str:
    lines = [
        f"| shape | cell | ursa call / reference | ursa seq/s | reference seq/s | ratio (ursa/ref time) "
        f"| verdict (<= {INFER_TARGET}) |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['shape'].label()} | {r['cell']} | {r['what']} | {r['ursa_sps']:.1f} "
                     f"| {r['ref_sps']:.1f} | {r['ratio']:.3f} | {_verdict(r['ratio'], INFER_TARGET)} |")
    return "\n".join(lines)


def threads_table(rows, thread_counts=(1, 2)) -> str:
    head = " | ".join(f"ursa seq/s, {k} thread{'s' if k > 1 else ''}" for k in thread_counts)
    lines = [f"| shape | cell | {head} | speed-up {thread_counts[-1]} vs {thread_counts[0]} |",
             "|---|---|" + "---:|" * len(thread_counts) + "---:|"]
    for r in rows:
        vals = " | ".join(f"{r[k]:.1f}" for k in thread_counts)
        lines.append(f"| {r['shape'].label()} | {r['cell']} | {vals} "
                     f"| {r[thread_counts[-1]] / r[thread_counts[0]]:.2f}x |")
    return "\n".join(lines)


def check_device(parser: argparse.ArgumentParser, device: str, option: str = "--device") -> None:
    """Refuse a device option other than cpu, or cuda / cuda:N where CUDA is available."""
    if device != "cpu" and (not device.startswith("cuda") or not torch.cuda.is_available()):
        parser.error(f"{option} {device!r}: use cpu, or cuda / cuda:N where CUDA is available")


def machine_description(threads: int, device: str = "cpu") -> str:
    gpu = ""
    if device.startswith("cuda"):
        gpu = (f"; device {device}: {torch.cuda.get_device_name(torch.device(device))}, "
               f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    return (f"{_results.this_machine()}, ursa {ursa.__version__}, "
            f"torch.set_num_threads({threads}){gpu}")


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for both sides (default 1)")
    p.add_argument("--device", default="cpu",
                   help="where both sides train and infer: cpu (default), cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 5; 1 with --quick)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per fit, the first is a dropped warm-up (default 2: one warm-up + one timed)")
    p.add_argument("--batches-per-epoch", type=int, default=None,
                   help="n_sequences = batch_size * this (default 8; 2 with --quick)")
    p.add_argument("--infer-n", type=int, default=None, help="sequences for inference (default 4096)")
    p.add_argument("--infer-repeats", type=int, default=None, help="inference repeats (default 5)")
    p.add_argument("--shapes", default="a,b,c", help="comma-separated subset of a,b,c")
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of rnn,gru,lstm")
    p.add_argument("--compare-threads", action="store_true",
                   help="also measure ursa's training throughput at 1 and 2 threads")
    p.add_argument("--only-threads", action="store_true",
                   help="with --compare-threads: skip the reference and inference comparisons")
    p.add_argument("--skip-inference", action="store_true", help="skip the inference comparison")
    p.add_argument("--skip-training", action="store_true",
                   help="skip the training comparison (inference only, shape c)")
    p.add_argument("--cost", action="store_true",
                   help="only the cost table: each estimator's achieved GFLOP/s against the "
                        "GEMM peak (its own section of RESULTS.md)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 repeat, writes nothing")
    _results.add_write_options(p)
    args = p.parse_args(argv)
    # --device picks the section (CPU or GPU); --compare-threads only adds a table.
    args.trial = _results.trial_options(p, args, ignore={"device", "compare_threads", "cost"})
    q = args.quick
    defaults = dict(repeats=1 if q else 5, epochs=2, batches_per_epoch=2 if q else 8,
                    infer_n=INFER_BATCH if q else 4096, infer_repeats=1 if q else 5)
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.epochs < 2:
        p.error("--epochs must be >= 2 (epoch 1 is a warm-up and is dropped)")
    if args.only_threads and not args.compare_threads:
        p.error("--only-threads needs --compare-threads")
    check_device(p, args.device)
    if args.device != "cpu" and args.compare_threads:
        p.error("--compare-threads measures CPU thread counts; run it with --device cpu")
    names = {s.name: s for s in SHAPES}
    try:
        args.shape_list = [names[s.strip()] for s in args.shapes.split(",") if s.strip()]
    except KeyError as exc:
        p.error(f"unknown shape {exc}")
    args.cell_list = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not set(args.cell_list) <= set(CELLS):
        p.error(f"--cells must be a subset of {CELLS}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT) if argv is None else
                                       "benchmarks/train_speed.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    when = _results.now()
    machine = machine_description(args.threads, args.device)

    def log(msg):
        print(msg, flush=True)

    log(f"{when} | {machine}")
    log(f"latent_dim={LATENT_DIM}; n_sequences = batch_size x {args.batches_per_epoch}; "
        f"{args.epochs} epochs per fit (epoch 1 dropped); {args.repeats} repeats")

    sections = []
    if args.cost:
        log("Cost against the GEMM peak (each estimator's fit)")
        peaks, cost_rows = bench_cost(args, log)
        parts = [cost_table(peaks, cost_rows)]
        if ursa.training.bf16_native("cpu"):
            quality = bench_precision_quality(args, log)
            parts += ["", "Quality, bfloat16 against float32: the demo's LSTM autoencoder on "
                      "BasicMotions (latent 8, 60 epochs), seeds 0-2:", "",
                      precision_table(quality)]
        text = "\n".join([f"Runtime: {time.perf_counter() - started:.0f} s", "",
                          _cost.__doc__.split("\n\n")[1].replace("\n", " "), "", *parts, ""])
        print(text)
        if _results.should_write(args.write, args.trial):
            _results.write_section(
                "train_speed-cost", text, command, machine=machine, date=when,
                title="Each estimator's fit against the GEMM peak (CPU) — "
                      "`benchmarks/train_speed.py --cost`")
        return 0
    settings = (
        f"latent_dim={LATENT_DIM}, n_sequences = batch_size x {args.batches_per_epoch} "
        f"({args.batches_per_epoch} batches per epoch), {args.epochs} epochs per fit with epoch 1 "
        f"dropped as warm-up, {args.repeats} interleaved repeats (order alternates), medians reported. "
        f"ursa: `SequenceAutoencoder.fit` with its defaults otherwise (learning_rate=5e-3, "
        f"max_grad_norm=1.0, scaling='standard'), seconds from `history_`. Reference: "
        f"encoder -> last step -> Linear -> repeat -> decoder -> Linear, MSE, Adam(lr=1e-3), no clipping. "
        f"Ratio = median over repeats of ursa time per epoch / reference time per epoch."
    )
    if not args.only_threads:
        if not args.skip_training:
            log("Training (ursa fit vs reference loop)")
            train_rows = bench_training(args.shape_list, args.cell_list, args, log)
            sections.append(("Training throughput", settings, training_table(train_rows)))
        if not args.skip_inference and any(s.name == "c" for s in args.shape_list):
            log("Inference (shape c)")
            shape_c = next(s for s in SHAPES if s.name == "c")
            infer_rows = bench_inference(shape_c, args.cell_list, args, log)
            sections.append((
                "Inference throughput",
                f"{args.infer_n} sequences at batch {INFER_BATCH}, {args.infer_repeats} interleaved "
                f"repeats, medians. ursa: `transform` / `reconstruct` on a numpy array (validation, "
                f"scaling and unscaling included); reference: encoder / full forward under "
                f"`torch.inference_mode` from a numpy array, outputs collected as numpy.",
                inference_table(infer_rows),
            ))
    if args.compare_threads:
        log("Thread comparison (ursa fit, 1 vs 2 intra-op threads)")
        thread_rows = bench_threads(args.shape_list, args.cell_list, args, log)
        sections.append((
            "ursa training throughput by thread count",
            f"ursa `fit` with n_threads=1 and 2, interleaved, {args.repeats} repeats, "
            f"{args.batches_per_epoch} batches per epoch, epoch 1 dropped, medians.",
            threads_table(thread_rows),
        ))

    elapsed = time.perf_counter() - started
    body = [f"Runtime: {elapsed:.0f} s", ""]
    for title, note, table in sections:
        body += [f"### {title}", "", note, "", table, ""]
    text = "\n".join(body)
    print()
    print(f"{when}{' (quick)' if args.quick else ''} | {command}")
    print(text)
    if _results.should_write(args.write, args.trial):
        gpu = args.device.startswith("cuda")
        _results.write_section(
            "train_speed-cuda" if gpu else "train_speed", text, command, machine=machine, date=when,
            title=("Training and inference speed on a GPU" if gpu else
                   "Training and inference speed (CPU)") + " — `benchmarks/train_speed.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
