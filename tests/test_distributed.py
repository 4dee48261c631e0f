"""Training across processes: a 2-process gloo fit launched by torchrun matches a one-process
fit with the same global batch and seed, and its model loads and predicts in a plain process."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import ursa
from ursa.training import distributed

# Parameters of the tiny fits both runs make. With equal-length data a batch's loss is the mean
# of its shards' losses weighted by their sizes, so these fits match to rounding, except
# TimeGAN's: its square-root and moment terms are statistics of each process's share of the
# batch (as under DistributedDataParallel), so its fit is checked for replicas kept identical
# and a model that samples, not against the one-process fit.
FITS = {
    "autoencoder": ("SequenceAutoencoder", dict(
        hidden_size=8, latent_dim=4, epochs=3, batch_size=16, validation_fraction=0.2,
        patience=2, learning_rate=1e-2)),
    "clusterer": ("RecurrentClusterer", dict(
        n_clusters=2, hidden_size=8, latent_dim=4, epochs=2, clustering_epochs=2, batch_size=16,
        encoder="rnn", pool=1, contrastive=0.0, validation_fraction=0.0)),
    "detector": ("SequenceAnomalyDetector", dict(hidden_size=8, window=8, stride=1, epochs=2,
                                                batch_size=16)),
    "rcgan": ("RecurrentGAN", dict(
        architecture="rcgan", hidden_size=8, latent_dim=4, iterations=6, batch_size=16)),
    "diffusion": ("RecurrentGAN", dict(
        architecture="diffusion", hidden_size=8, iterations=6, batch_size=16, sampling_steps=4)),
    "timegan": ("RecurrentGAN", dict(
        hidden_size=8, latent_dim=4, num_layers=1, iterations=4, pretrain_iterations=4,
        batch_size=15, step_threads=1)),
}
EXACT = ("autoencoder", "clusterer", "detector", "rcgan", "diffusion")
COMMON = dict(random_state=3, verbose=False, n_threads=1, device="cpu")

WORKER = """
import json, sys
import numpy as np
import torch
import ursa
from ursa.training import distributed

out, names = sys.argv[1], sys.argv[2].split(",")
fits = json.loads(open(out + "/fits.json").read())
X = np.load(out + "/X.npy")
for name in names:
    cls, params = fits[name]
    est = getattr(ursa, cls)(**params).fit(X)
    assert distributed.world_size() == 2, "the fit did not run across processes"
    est.save(out + "/" + name + ".ursa")
    torch.save(est.network_.state_dict(), f"{out}/{name}.rank{distributed.rank()}.pt")
# Streamed from a Parquet file of 5 row groups: each process reads its blocks.
from ursa.data import ParquetDataset
streamed = ursa.SequenceAutoencoder(**fits["autoencoder"][1]).fit(
    ParquetDataset(out + "/X.parquet", block_size=10))
torch.save({"weights": streamed.network_.state_dict(), "history": list(streamed.history_)},
           f"{out}/streamed.rank{distributed.rank()}.pt")
try:  # one block for two processes: refused (a process would have nothing to train on)
    ursa.SequenceAutoencoder(**fits["autoencoder"][1]).fit(ParquetDataset(out + "/X.parquet"))
except ValueError as exc:
    assert "training block" in str(exc), exc
else:
    raise AssertionError("a streamed fit with fewer blocks than processes ran")
try:  # private training adds noise per process: refused across processes
    ursa.SequenceAutoencoder(privacy={"epsilon": 3.0}, scaling=None, epochs=1,
                             verbose=False).fit(X)
except ValueError as exc:
    assert "across processes" in str(exc), exc
else:
    raise AssertionError("a private fit ran across processes")
"""


def _data():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 12)
    phase = rng.uniform(0, 2 * np.pi, size=(50, 1))
    return (np.sin(t + phase) + 0.1 * rng.normal(size=(50, 12)))[..., None].astype(np.float32)


def _torchrun(tmp_path, *args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *args]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.filterwarnings("ignore:Possible mode collapse")
def test_two_process_fit_matches_one_process_fit(tmp_path):
    import json

    X = _data()
    np.save(tmp_path / "X.npy", X)
    ursa.data.write_parquet(tmp_path / "X.parquet", X)
    pq.write_table(pq.read_table(tmp_path / "X.parquet"), tmp_path / "X.parquet",
                   row_group_size=10 * 12)
    fits = {name: (cls, {**params, **COMMON}) for name, (cls, params) in FITS.items()}
    (tmp_path / "fits.json").write_text(json.dumps(fits))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    _torchrun(tmp_path, "worker.py", str(tmp_path), ",".join(FITS))
    for name, (cls, params) in fits.items():
        spread = ursa.load(tmp_path / f"{name}.ursa")
        replicas = [torch.load(tmp_path / f"{name}.rank{r}.pt") for r in (0, 1)]
        theirs = spread.network_.state_dict()
        for key in theirs:  # every process ends with the same weights, those saved
            assert torch.equal(replicas[0][key], replicas[1][key]), (name, key)
            assert torch.equal(replicas[0][key], theirs[key]), (name, key)
        if name not in EXACT:
            assert all(np.isfinite(r["train_loss"]) for r in spread.history_)
            assert np.isfinite(spread.sample(5, n_timesteps=12)).all()
            continue
        single = getattr(ursa, cls)(**params).fit(X)
        mine = single.network_.state_dict()
        assert mine.keys() == theirs.keys()
        for key in mine:
            torch.testing.assert_close(theirs[key], mine[key], rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"{name} {key}: {m}")
        assert len(spread.history_) == len(single.history_)
        for a, b in zip(spread.history_, single.history_):
            assert a.get("train_loss") == pytest.approx(b.get("train_loss"), rel=1e-4, abs=1e-6)
            if "val_loss" in b:
                assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, abs=1e-6)
    # The streamed fit: the processes stepped together (one history, one set of weights) and
    # learned.
    a, b = (torch.load(tmp_path / f"streamed.rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    losses = [[{k: v for k, v in r.items() if k != "seconds"} for r in h["history"]]
              for h in (a, b)]
    assert losses[0] == losses[1] and len(losses[0]) >= 2
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]


def test_outside_a_process_group_nothing_is_shared():
    assert not distributed.active()
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_writer()
    index = np.arange(7)
    assert distributed.shard(index)[0] is index
    assert distributed.global_means({"loss": 2.5}) == {"loss": 2.5}
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    distributed.average_gradients([p])
    assert torch.equal(p.grad, torch.full((3,), 2.0))


def test_torchrun_cli_fit_resumes_and_loads_in_one_process(tmp_path):
    X = _data()
    ursa.data.write_parquet(tmp_path / "d.parquet", X)
    fit = ["-m", "ursa", "fit", "autoencoder", "d.parquet", "--set", "random_state=0",
           "--set", "hidden_size=8", "--set", "latent_dim=4", "--set", "batch_size=16"]
    whole = _torchrun(tmp_path, *fit, "--out", "whole.ursa", "--set", "epochs=4",
                      "--set", "patience=null")
    assert whole.stderr.count("fitted SequenceAutoencoder") == 1  # rank 0 speaks for both
    # A run stopped after two epochs, then resumed from its checkpoint by both processes.
    part = [*fit, "--out", "resumed.ursa", "--set", "patience=null",
            "--set", "checkpoint_dir=ckpt"]
    _torchrun(tmp_path, *part, "--set", "epochs=2")
    _torchrun(tmp_path, *part, "--set", "epochs=4", "--resume")
    a, b = ursa.load(tmp_path / "whole.ursa"), ursa.load(tmp_path / "resumed.ursa")
    for key, value in a.network_.state_dict().items():
        torch.testing.assert_close(b.network_.state_dict()[key], value)
    assert [r["epoch"] for r in b.history_] == [1, 2, 3, 4]
    codes = a.transform(X)  # a plain process, no process group
    assert codes.shape == (50, 4) and np.isfinite(codes).all()
