"""Shared fixtures: generated data and the location of the benchmark data folder."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from ursa.persistence import _checksum
from ursa.training import Callback

# Tiny models run fastest on one thread, and a second busy process cannot make the OpenMP
# pool spin-wait against it.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# The device the tests' estimators train on: `URSA_TEST_DEVICE=cuda python -m pytest` runs the
# suite on a GPU (with a CUDA build of torch). Estimators the tests build without a device use
# their default, "auto", which also picks CUDA where it is present.
DEVICE = os.environ.get("URSA_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda"):
    # cuBLAS gives the same sums run after run only with a fixed workspace, which must be set
    # before CUDA starts; child processes of the tests inherit it.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # The tests' tolerances are float32's; cuDNN's recurrent layers run in TF32 by default.
    torch.backends.cudnn.allow_tf32 = False


def pytest_configure(config):
    if DEVICE != "cpu" and not (DEVICE.startswith("cuda") and torch.cuda.is_available()):
        raise pytest.UsageError(
            f"URSA_TEST_DEVICE={DEVICE!r}: only 'cpu', or 'cuda' / 'cuda:N' on a machine where "
            "torch.cuda.is_available() is true; unset it to test on the CPU.")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data folder {SHARED_DATA} is not present")
    return SHARED_DATA


def make_sines(n=40, n_timesteps=20, n_features=2, seed=0):
    """Sines with random frequency and phase per sequence and feature: (n, T, C) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_timesteps)[None, :, None]
    freq = rng.uniform(0.1, 0.6, size=(n, 1, n_features))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, n_features))
    return np.sin(freq * t + phase).astype(np.float32)


def make_variable(n=30, max_len=20, n_features=2, seed=1):
    """A list of (T_i, C) sine sequences with lengths between 5 and max_len."""
    rng = np.random.default_rng(seed)
    full = make_sines(n, max_len, n_features, seed)
    return [full[i, : rng.integers(5, max_len + 1)] for i in range(n)]


@pytest.fixture
def sines():
    return make_sines()


@pytest.fixture
def variable():
    return make_variable()


# ----------------------------------------------------------------- helpers shared by test modules
def fit_tiny(estimator, X, y=None, **fit_params):
    """``estimator.fit(X, y, **fit_params)`` without its UserWarnings: a tiny GAN always warns of
    mode collapse (that warning is tested on a trained model in test_gan.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return estimator.fit(X, y, **fit_params)


def rewrite(data: bytes, tmp_path, metadata_changes=None, document_changes=None,
            recompute_checksum=True) -> bytes:
    """Rewrite a saved file's header, optionally with a freshly computed (valid) checksum."""
    source = tmp_path / "source.ursa"
    source.write_bytes(data)
    with safe_open(str(source), framework="numpy") as fh:
        meta = dict(fh.metadata())
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    if document_changes is not None:
        document = json.loads(meta["document"])
        document_changes(document)
        meta["document"] = json.dumps(document, allow_nan=True)
    meta.update(metadata_changes or {})
    if recompute_checksum:
        meta["checksum"] = _checksum(meta.get("class", "") + meta["document"], arrays)
    out = tmp_path / "rewritten.ursa"
    save_file(arrays, str(out), metadata=meta)
    return out.read_bytes()


class LearningRates(Callback):
    """A training callback that records the optimiser's learning rate at every epoch end."""

    def __init__(self):
        self.rates = []

    def on_epoch_end(self, state, record):
        self.rates.append(state.optimizer.param_groups[0]["lr"])


def pytest_sessionfinish(session, exitstatus):
    """Keep docs/reliability.md current: compare it with what the reliability tests recorded."""
    import reliability_log as log

    ran = {entry[2] for entry in log.RECORDS.values()}
    if exitstatus != 0 or not set(log.MODULES) <= ran or session.config.option.keyword:
        return  # a partial or failing run cannot speak for the whole table
    if os.environ.get("URSA_UPDATE_RELIABILITY") == "1":
        log.write_table()
        return
    if log.documented_table() != log.table():
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = ("docs/reliability.md is out of date with the reliability tests; run "
                   "`URSA_UPDATE_RELIABILITY=1 .venv/bin/python -m pytest -q` and commit it.\n"
                   f"The tests recorded:\n{log.table()}")
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = 1
