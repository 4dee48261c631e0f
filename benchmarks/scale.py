"""Training past one process and past memory: data-parallel throughput and streamed fits.

Three measurements of ``SequenceAutoencoder`` (GRU, the default shape otherwise), each fit in a
fresh process with one intra-op thread per process:

1. **Data parallel.** The same fit (batch 256) in one process and in two launched by
   ``torchrun --nproc-per-node 2`` (gloo). Throughput is training sequences per second of an
   epoch (median over the epochs after the first); scaling efficiency is the two-process
   throughput over twice the one-process throughput.
2. **Streamed against in memory.** One fit on sequences held in memory and one streamed from
   the same sequences in a Parquet file (``ursa.data.ParquetDataset``), same settings, the epoch
   times compared the same way.
3. **A large streamed fit.** One epoch over a generated Parquet dataset of ``--large`` sequences
   (5 million by default), with the whole fit's wall time (the scaler's pass included) and the
   process's peak resident memory.

Usage::

    python benchmarks/scale.py            # full run, rewrites its section of RESULTS.md
    python benchmarks/scale.py --quick    # small sizes, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # measure this checkout, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

# The data-parallel shape: the batch of 256, sequences of 100 steps.
DDP_SHAPE = dict(n=16_384, length=100)
# The streaming shapes: short windows (as in the generation benchmarks) so that millions of
# sequences train in minutes on one core.
STREAM_SHAPE = dict(n=500_000, length=24)
STREAM_PARAMS = dict(hidden_size=32, latent_dim=8)
BLOCK_ROWS = 65_536


def sines(n: int, length: int, seed: int) -> np.ndarray:
    """(n, length) noisy sines of random phase, frequency and amplitude, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float32)[None, :]
    freq = rng.uniform(0.05, 0.3, (n, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1)).astype(np.float32)
    amp = rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32)
    noise = 0.1 * rng.standard_normal((n, length), dtype=np.float32)
    return amp * np.sin(freq * t + phase) + noise


def write_wide(path: Path, n: int, length: int, chunk: int = 262_144) -> None:
    """A wide Parquet file of ``n`` sines, written a chunk at a time (row groups of
    BLOCK_ROWS)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [str(i) for i in range(length)]
    writer = None
    for number, start in enumerate(range(0, n, chunk)):
        values = sines(min(chunk, n - start), length, seed=number)
        table = pa.Table.from_arrays([pa.array(values[:, i]) for i in range(length)], names=names)
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table, row_group_size=BLOCK_ROWS)
    writer.close()


# ------------------------------------------------------------------ one fit, in its own process
def reference_worker(spec: dict) -> None:
    """The plain PyTorch baseline of the data-parallel measurement: train_speed's hand-written
    GRU autoencoder (same hidden size and code) in torch's own DistributedDataParallel, each
    process taking its half of every global batch."""
    import torch
    import torch.distributed as dist
    from torch import nn
    from train_speed import LATENT_DIM, ReferenceAE

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(0)
    data = torch.from_numpy(np.load(spec["data"]))
    model = ReferenceAE("gru", data.size(2), 64, LATENT_DIM)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batch, times = spec.get("batch_size", 256), []
    for _ in range(spec["epochs"]):
        started = time.perf_counter()
        perm = torch.randperm(data.size(0), generator=gen)
        for i in range(0, data.size(0), batch):
            xb = data[perm[i:i + batch].tensor_split(world)[rank]]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(trained(xb), xb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        times.append(time.perf_counter() - started)
    if rank == 0:
        print(json.dumps({"epoch_seconds": times, "n_sequences": int(data.size(0))}))
    if world > 1:
        dist.destroy_process_group()


def worker(spec: dict) -> None:
    if spec.get("reference"):
        return reference_worker(spec)
    import resource

    import ursa
    from ursa.data import ParquetDataset
    from ursa.training import distributed

    params = {**dict(batch_size=256, epochs=spec["epochs"], validation_fraction=0.0,
                     patience=None, random_state=0, n_threads=1, verbose=False),
              **spec.get("params", {})}
    if spec["data"].endswith(".npy"):
        X = np.load(spec["data"])
    elif spec.get("stream"):
        X = ParquetDataset(spec["data"], layout="wide", block_size=BLOCK_ROWS)
    else:
        X = ursa.data.read_parquet(spec["data"], layout="wide")
    started = time.perf_counter()
    model = ursa.SequenceAutoencoder(**params).fit(X)
    wall = time.perf_counter() - started
    if distributed.is_writer():
        print(json.dumps({
            "epoch_seconds": [r["seconds"] for r in model.history_],
            "wall": wall, "processes": distributed.world_size(),
            "n_sequences": int(X.n_sequences if hasattr(X, "n_sequences") else len(X)),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "loss": [r["train_loss"] for r in model.history_]}))


def run_worker(spec: dict, processes: int = 1) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(processes)]
    done = subprocess.run([*launcher, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def throughput(result: dict) -> float:
    """Training sequences per second: the median epoch after the first."""
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return result["n_sequences"] / statistics.median(seconds)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes; writes nothing")
    p.add_argument("--large", type=int, default=5_000_000,
                   help="sequences in the large streamed fit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    _results.add_write_options(p)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    trial = _results.trial_options(p, args)
    scale = 16 if args.quick else 1
    ddp_n, stream_n = DDP_SHAPE["n"] // scale, STREAM_SHAPE["n"] // scale
    large_n = args.large // (100 if args.quick else 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 1. Data parallel: one process against two.
        np.save(tmp / "ddp.npy", sines(ddp_n, DDP_SHAPE["length"], seed=0)[..., None])
        spec = {"data": str(tmp / "ddp.npy"), "epochs": 4}
        # ursa at a global batch of 256 (128 per process) and of 512 (256 per process), and
        # torch's DistributedDataParallel on a hand-written model at 256, for what this machine
        # allows.
        cases = [("ursa, global batch 256 (128 per process)", {**spec, "params": {}}),
                 ("ursa, global batch 512 (256 per process)",
                  {**spec, "params": {"batch_size": 512}}),
                 ("plain PyTorch DDP, global batch 256", {**spec, "reference": True})]
        single = {}
        for label, case in cases:
            rate1, rate2 = throughput(run_worker(case, 1)), throughput(run_worker(case, 2))
            batch = case.get("params", {}).get("batch_size", 256)
            single[case.get("reference", False), batch] = rate1
            efficiency = rate2 / (2 * rate1)
            verdict = f"scaling efficiency {efficiency:.1%} (same global batch)"
            if batch != 256:  # also against one process at the per-process batch
                per_process = rate2 / (2 * single[False, 256])
                verdict += f"; {per_process:.1%} against one process at batch 256"
            print(f"{label}: 1 process {rate1:.0f} seq/s, 2 processes {rate2:.0f} seq/s, "
                  f"{verdict}", flush=True)
            rows.append((f"{label}; GRU 64, T=100", f"1 process: {rate1:,.0f} seq/s",
                         f"2 processes: {rate2:,.0f} seq/s", verdict))
        # 2. Streamed against in memory, the same sequences.
        path = tmp / "stream.parquet"
        write_wide(path, stream_n, STREAM_SHAPE["length"])
        spec = {"data": str(path), "epochs": 3, "params": STREAM_PARAMS}
        memory = run_worker(spec)
        streamed = run_worker({**spec, "stream": True})
        rate_m, rate_s = throughput(memory), throughput(streamed)
        print(f"in memory {rate_m:.0f} seq/s, streamed {rate_s:.0f} seq/s "
              f"({rate_s / rate_m:.1%})", flush=True)
        rows.append((f"{stream_n:,} sequences, T=24, GRU 32",
                     f"in memory: {rate_m:,.0f} seq/s", f"streamed: {rate_s:,.0f} seq/s",
                     f"streamed / in memory {rate_s / rate_m:.1%}"))
        path.unlink()
        # 3. One epoch streamed over a large dataset.
        path = tmp / "large.parquet"
        started = time.perf_counter()
        write_wide(path, large_n, STREAM_SHAPE["length"])
        written = time.perf_counter() - started
        size = path.stat().st_size
        large = run_worker({"data": str(path), "epochs": 1, "params": STREAM_PARAMS,
                            "stream": True})
        rate_l = large["n_sequences"] / large["epoch_seconds"][0]
        peak = large["peak_rss"] / 2**30
        print(f"large: {large_n} sequences ({size / 2**30:.2f} GiB on disk, written in "
              f"{written:.0f} s), fit {large['wall']:.0f} s, {rate_l:.0f} seq/s, peak "
              f"{peak:.2f} GiB", flush=True)
        rows.append((f"{large_n:,} sequences streamed, T=24, GRU 32, 1 epoch "
                     f"({size / 2**30:.2f} GiB Parquet)",
                     f"fit {large['wall']:.0f} s (scaler pass included)",
                     f"{rate_l:,.0f} seq/s in the epoch", f"peak memory {peak:.2f} GiB"))
    table = ["| fit | | | |", "|---|---|---|---|",
             *("| " + " | ".join(r) + " |" for r in rows)]
    print("\n".join(table))
    if _results.should_write(args.write, trial):
        command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/scale.py",
                                                                *(argv or sys.argv[1:])])
        _results.write_section(
            "scale", "\n".join([
                "Every fit in a fresh process with one intra-op thread per process; throughput "
                "is training sequences per second, the median epoch after the first. "
                "Targets: scaling efficiency >= 85 %, streamed within 15 % of in memory, "
                "peak memory under 2 GB.", "", *table]),
            command, machine=_results.this_machine(),
            title="Training across processes and from Parquet streams — `benchmarks/scale.py`")


if __name__ == "__main__":
    main()
