"""Data larger than memory: Parquet datasets read block by block, a scaler fitted in one pass,
an autoencoder trained from the stream, and streamed inference from the command line."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import ursa
from ursa.data import ParquetDataset, SequenceScaler, as_sequences


def _variable(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(3, 9)), 2)).astype(np.float32) for _ in range(n)]


def _sines(n=120, length=16, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6, length)
    X = np.sin(t[None, :] + rng.uniform(0, 3, (n, 1)))[..., None] * np.array([1.0, 2.0])
    return (X + 0.1 * rng.normal(size=X.shape)).astype(np.float32)


@pytest.fixture
def long_files(tmp_path):
    """The same 60 variable-length sequences as one file with small row groups (sequences run
    across them) and as two shards split inside a sequence."""
    X = _variable()
    ursa.data.write_parquet(tmp_path / "all.parquet", X)
    table = pq.read_table(tmp_path / "all.parquet")
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=23)
    (tmp_path / "shards").mkdir()
    pq.write_table(table.slice(0, 151), tmp_path / "shards" / "a.parquet", row_group_size=40)
    pq.write_table(table.slice(151), tmp_path / "shards" / "b.parquet", row_group_size=50)
    return X, tmp_path


@pytest.mark.parametrize("name", ["all.parquet", "groups.parquet", "shards"])
@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_blocks_hold_every_sequence_once_and_whole(long_files, name, block_size):
    X, root = long_files
    dataset = ParquetDataset(root / name, block_size=block_size)
    reference = as_sequences(X)
    assert dataset.n_sequences == 60 and dataset.n_features == 2
    assert dataset.feature_names == ["f0", "f1"]
    whole = dataset.read()
    np.testing.assert_array_equal(whole.lengths, reference.lengths)
    np.testing.assert_allclose(whole.values, reference.values)
    blocks = list(dataset.blocks())
    assert [b.start for b in blocks] == list(dataset.block_starts)
    assert all(b.sequences.n_sequences >= min(block_size, 60) or b is blocks[-1]
               for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.ids for b in blocks]), np.arange(60))


def test_wide_dataset_and_errors(tmp_path):
    W = np.random.default_rng(1).normal(size=(50, 12)).astype(np.float32)
    ursa.data.write_parquet(tmp_path / "wide.parquet", W, layout="wide")
    pq.write_table(pq.read_table(tmp_path / "wide.parquet"), tmp_path / "wide.parquet",
                   row_group_size=10)
    dataset = ParquetDataset(tmp_path / "wide.parquet", layout="wide", block_size=16)
    assert list(dataset.block_sizes) == [20, 20, 10] and dataset.n_features == 1
    np.testing.assert_allclose(dataset.read().values[..., 0], W)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ParquetDataset(tmp_path / "missing.parquet")
    with pytest.raises(ValueError, match="time_column"):
        ParquetDataset(tmp_path / "wide.parquet")  # long form needs its time column
    with pytest.raises(ValueError, match="block_size"):
        ParquetDataset(tmp_path / "wide.parquet", layout="wide", block_size=0)
    frame = pd.DataFrame({"id": [0, 0, 1, 1, 0], "time": [0, 1, 0, 1, 2], "x": np.arange(5.0)})
    frame.to_parquet(tmp_path / "scattered.parquet", index=False)
    with pytest.raises(ValueError, match="not consecutive"):
        ParquetDataset(tmp_path / "scattered.parquet")


@pytest.mark.parametrize("method", ["standard", "minmax", None])
def test_scaler_partial_fit_equals_fit(method):
    X = _variable(n=80)
    X[3][1, 0] = np.nan  # a missing value is left out of the statistics either way
    whole = SequenceScaler(method).fit(as_sequences(X, allow_nan=True))
    parts = SequenceScaler(method)
    for start in range(0, 80, 13):
        parts.partial_fit(as_sequences(X[start:start + 13], allow_nan=True))
    np.testing.assert_allclose(parts.offset_, whole.offset_, rtol=1e-6)
    np.testing.assert_allclose(parts.scale_, whole.scale_, rtol=1e-6)
    # Two scalers fed halves and merged: the same again.
    a = SequenceScaler(method).partial_fit(as_sequences(X[:30], allow_nan=True))
    b = SequenceScaler(method).partial_fit(as_sequences(X[30:], allow_nan=True))
    a.merge_statistics(b.statistics())
    np.testing.assert_allclose(a.scale_, whole.scale_, rtol=1e-6)
    assert a.n_samples_seen_.tolist() == [sum(len(x) for x in X) - 1, sum(len(x) for x in X)]


FIT = dict(hidden_size=8, latent_dim=3, epochs=3, batch_size=16, random_state=0,
           verbose=False, n_threads=1)


def test_streamed_fit_equals_in_memory_fit(tmp_path):
    X = _sines()
    ursa.data.write_parquet(tmp_path / "d.parquet", X)
    pq.write_table(pq.read_table(tmp_path / "d.parquet"), tmp_path / "d.parquet",
                   row_group_size=333)  # row groups end inside sequences
    memory = ursa.SequenceAutoencoder(**FIT, validation_fraction=0.0).fit(X)
    streamed = ursa.SequenceAutoencoder(**FIT, validation_fraction=0.0).fit(
        ParquetDataset(tmp_path / "d.parquet"))
    for key, value in memory.network_.state_dict().items():
        torch.testing.assert_close(streamed.network_.state_dict()[key], value)
    assert streamed.history_[-1]["train_loss"] == pytest.approx(
        memory.history_[-1]["train_loss"], rel=1e-6)
    np.testing.assert_allclose(streamed.scaler_.offset_, memory.scaler_.offset_, rtol=1e-6)
    assert list(streamed.feature_names_in_) == ["f0", "f1"]


def test_streamed_fit_over_blocks_learns_validates_and_resumes(tmp_path):
    X = _sines(n=200)
    ursa.data.write_parquet(tmp_path / "d.parquet", X, layout="long")
    pq.write_table(pq.read_table(tmp_path / "d.parquet"), tmp_path / "d.parquet",
                   row_group_size=20 * 16)  # a block ends with a row group: 20 sequences each
    dataset = ParquetDataset(tmp_path / "d.parquet", block_size=20)
    assert dataset.n_blocks == 10
    params = dict(FIT, epochs=6, patience=None, validation_fraction=0.2)
    whole = ursa.SequenceAutoencoder(**params).fit(dataset)
    losses = [r["train_loss"] for r in whole.history_]
    assert losses[-1] < 0.6 * losses[0]  # it learns
    assert all("val_loss" in r for r in whole.history_)  # two blocks held out
    # Interrupted after 3 epochs (as a shorter run), then resumed: the same fit.
    ckpt = dict(params, checkpoint_dir=str(tmp_path / "ckpt"))
    ursa.SequenceAutoencoder(**{**ckpt, "epochs": 3}).fit(dataset)
    resumed = ursa.SequenceAutoencoder(**ckpt).fit(dataset, resume=True)
    for key, value in whole.network_.state_dict().items():
        torch.testing.assert_close(resumed.network_.state_dict()[key], value)
    with pytest.raises(ValueError, match="ParquetDataset"):
        ursa.SequenceAutoencoder(**FIT, privacy={"epsilon": 3.0}, scaling=None).fit(dataset)


def test_streamed_embeddings_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from ursa.cli import app

    X = _sines(n=90)
    ursa.data.write_parquet(tmp_path / "d.parquet", X)
    pq.write_table(pq.read_table(tmp_path / "d.parquet"), tmp_path / "d.parquet",
                   row_group_size=320)
    runner = CliRunner()
    model, out = str(tmp_path / "m.ursa"), str(tmp_path / "codes.parquet")
    done = runner.invoke(app, ["fit", "autoencoder", str(tmp_path / "d.parquet"), "--stream",
                               "--block-size", "20", "--out", model, "--set", "epochs=2",
                               "--set", "random_state=0"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["embed", model, str(tmp_path / "d.parquet"), "-o", out,
                               "--stream", "--block-size", "20"])
    assert done.exit_code == 0, done.output
    codes = pd.read_parquet(out)
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # written block by block
    np.testing.assert_array_equal(codes["id"], np.arange(90))
    np.testing.assert_allclose(codes.iloc[:, 1:].to_numpy(), ursa.load(model).transform(X),
                               rtol=1e-5, atol=1e-6)
    done = runner.invoke(app, ["fit", "cluster", str(tmp_path / "d.parquet"), "--stream",
                               "--out", model])
    assert done.exit_code != 0 and "autoencoder" in done.output


MEMORY_RUN = """
import resource, sys
import ursa
from ursa.data import ParquetDataset
for path in sys.argv[1:]:
    ursa.SequenceAutoencoder(hidden_size=8, latent_dim=4, epochs=1, batch_size=256,
                             verbose=False, random_state=0, n_threads=1).fit(
        ParquetDataset(path, layout="wide", block_size=2048))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_streamed_fit_memory_stays_flat_as_data_grows(tmp_path):
    """In one process, the peak memory of a streamed fit on 10x the sequences exceeds that of
    the first fit by far less than the data grew."""
    rng = np.random.default_rng(0)
    (tmp_path / "run.py").write_text(textwrap.dedent(MEMORY_RUN))
    paths = []
    for n in (5_000, 50_000):
        paths.append(str(tmp_path / f"wide{n}.parquet"))
        frame = pd.DataFrame(rng.normal(size=(n, 64)).astype(np.float32),
                             columns=[str(i) for i in range(64)])
        frame.to_parquet(paths[-1], index=False, row_group_size=1024)
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), *paths],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    small, large = (int(v) * 1024 for v in done.stdout.split())  # ru_maxrss: KiB on Linux
    data_growth = (50_000 - 5_000) * 64 * 4  # the float32 values alone: 11.5 MB
    assert large - small < 0.25 * data_growth, (small, large)


def test_detector_trains_from_a_stream_of_windows(tmp_path):
    """A detector fitted on series streamed from Parquet (each sequence one series) chooses the
    same windows and learns the same weights as one fitted on the series in memory; it scores
    only once calibrated."""
    rng = np.random.default_rng(0)
    t = np.arange(300)
    series = [np.c_[np.sin(t / 6 + p), rng.integers(0, 2, 300)].astype(np.float32)
              for p in rng.uniform(0, 3, 6)]  # a value and a binary flag per step
    frame = pd.concat([pd.DataFrame({"id": i, "time": t, "value": s[:, 0], "flag": s[:, 1]})
                       for i, s in enumerate(series)])
    frame.to_parquet(tmp_path / "series.parquet", index=False, row_group_size=450)
    dataset = ParquetDataset(tmp_path / "series.parquet", block_size=2)
    assert dataset.n_blocks == 3
    params = dict(window=16, hidden_size=8, latent_dim=4, epochs=2, max_train_windows=500,
                  random_state=0, verbose=False, n_threads=1, device="cpu")
    memory = ursa.SequenceAnomalyDetector(**params).fit(series)
    streamed = ursa.SequenceAnomalyDetector(**params).fit(dataset)
    assert streamed.channels_.tolist() == [0] == memory.channels_.tolist()  # the flag left out
    for key, value in memory.network_.state_dict().items():
        torch.testing.assert_close(streamed.network_.state_dict()[key], value)
    assert streamed.threshold_ is None and not hasattr(streamed, "decision_scores_")
    np.testing.assert_allclose(streamed.decision_function(series[0]),
                               memory.decision_function(series[0]), rtol=1e-5)
    with pytest.raises(ValueError, match="calibrate"):
        streamed.predict(series[0])
    streamed.calibrate(series[:2])
    assert streamed.predict(series[0]).shape == (300,)
    with pytest.raises(ValueError, match="window"):
        ursa.SequenceAnomalyDetector(**{**params, "window": "auto"}).fit(dataset)
    with pytest.raises(ValueError, match="calibrate"):
        ursa.SequenceAnomalyDetector(**params).fit_predict(dataset)
