"""The `ursa` command line through its real entry points: typer's CliRunner on the app, and the
installed console script in a subprocess for the exit codes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ursa
from ursa.cli import app
from ursa.datasets import make_sines

runner = CliRunner()
TINY = ["--set", "hidden_size=4", "--set", "latent_dim=2", "--set", "epochs=2",
        "--set", "batch_size=16", "--set", "n_threads=1"]


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Tiny data in several formats and one autoencoder fitted through `ursa fit`."""
    root = tmp_path_factory.mktemp("cli")
    X = make_sines(24, 12, 2, random_state=0)
    ursa.data.write_csv(root / "data.csv", X)
    ursa.data.write_parquet(root / "data.parquet", X)
    ursa.data.write_numpy(root / "data.npy", X)
    labels = np.repeat(["a", "b"], 12)
    pd.DataFrame({"label": labels}).to_csv(root / "labels.csv", index=False)
    model = root / "ae.ursa"
    result = invoke("--quiet", "--seed", "0", "fit", "autoencoder", root / "data.csv",
                    "--out", model, *TINY)
    assert result.exit_code == 0, result.output
    return root, X, model


def test_fit_saves_a_model_that_matches_the_library(work):
    root, X, model = work
    loaded = ursa.load(model)
    assert type(loaded).__name__ == "SequenceAutoencoder"
    params = loaded.get_params()
    # --quiet silences this fit only: the saved model keeps the estimator's own verbose.
    assert (params["hidden_size"], params["latent_dim"], params["epochs"],
            params["random_state"], params["verbose"]) == (4, 2, 2, 0, True)
    # The same fit through the library gives the same weights (the CLI adds nothing).
    same = ursa.SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, batch_size=16,
                                    n_threads=1, random_state=0).fit(X)
    np.testing.assert_array_equal(same.transform(X), loaded.transform(X))


def test_fit_with_a_config_file_and_set_overrides(work, tmp_path):
    root, X, _ = work
    config = tmp_path / "params.toml"
    config.write_text('epochs = 5\n[autoencoder]\nhidden_size = 3\nlatent_dim = 2\n'
                      'cell = "rnn"\nbatch_size = 16\n[gan]\niterations = 7\n')
    out = tmp_path / "m.ursa"
    result = invoke("-q", "fit", "autoencoder", root / "data.npy", "--out", out,
                    "--config", config, "--set", "epochs=1", "--set", "scaling=minmax")
    assert result.exit_code == 0, result.output
    params = ursa.load(out).get_params()
    assert (params["epochs"], params["hidden_size"], params["cell"], params["scaling"]) == \
        (1, 3, "rnn", "minmax")


def test_fit_progress_and_summary_go_to_stderr(work, tmp_path):
    root, _, _ = work
    result = invoke("fit", "autoencoder", root / "data.csv", "--out", tmp_path / "m.ursa", *TINY)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "fitted SequenceAutoencoder" in result.stderr and "epoch" in result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_embed_writes_each_format(work, tmp_path, suffix):
    root, X, model = work
    out = tmp_path / f"codes{suffix}"
    result = invoke("-q", "embed", model, root / "data.parquet", "-o", out)
    assert result.exit_code == 0, result.output
    expected = ursa.load(model).transform(X)
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out), expected)
        return
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["id", "z0", "z1"]
    np.testing.assert_allclose(frame[["z0", "z1"]].to_numpy(), expected, rtol=1e-6)


def test_embed_reads_standard_input_and_writes_standard_output(work):
    root, X, model = work
    result = invoke("-q", "embed", model, "-", "-o", "-", input=(root / "data.csv").read_bytes())
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert frame.shape == (24, 3)
    np.testing.assert_allclose(frame[["z0", "z1"]].to_numpy(), ursa.load(model).transform(X),
                               rtol=1e-6)


def test_info_reads_the_header(work):
    _, _, model = work
    result = invoke("info", model, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["class"] == "SequenceAutoencoder" and info["kind"] == "autoencoder"
    assert info["format_version"] == ursa.persistence.FORMAT_VERSION
    assert info["n_features_in"] == 2 and info["epochs_trained"] == 2
    assert info["params"]["hidden_size"] == 4 and info["n_weights"] > 0
    text = invoke("info", model)
    assert text.exit_code == 0 and "class: SequenceAutoencoder" in text.stdout
    assert "hidden_size = 4" in text.stdout


def test_evaluate_prints_metrics_against_labels(work):
    root, _, model = work
    result = invoke("-q", "evaluate", model, root / "data.csv", "--labels", root / "labels.csv",
                    "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert isinstance(metrics["relative reconstruction error"], float)  # a number, not text
    assert 0 <= metrics["relative reconstruction error"] < 5
    assert 0 <= metrics["k-means NMI on embeddings (k=2)"] <= 1
    table = invoke("-q", "evaluate", model, root / "data.csv")
    assert table.exit_code == 0 and "relative reconstruction error" in table.stdout
    assert "NMI" not in table.stdout  # no labels, no NMI


def test_report_command_writes_html(work, tmp_path):
    root, _, model = work
    out = tmp_path / "r.html"
    result = invoke("-q", "report", model, root / "data.csv", "-o", out,
                    "--labels", root / "labels.csv")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.count("<img ") >= 3 and "data:image/png;base64," in text
    bad = invoke("-q", "report", model, root / "data.csv", "-o", tmp_path / "r.pdf")
    assert bad.exit_code == 2 and "*.html" in bad.output


# ------------------------------------------------------------------------------ error paths


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ursa: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_files_exit_1(work, tmp_path):
    root, _, model = work
    _one_line_error(invoke("embed", model, tmp_path / "nope.csv"), "No such file", "nope.csv")
    _one_line_error(invoke("embed", tmp_path / "nope.ursa", root / "data.csv"),
                    "No model file", "nope.ursa")
    _one_line_error(invoke("fit", "autoencoder", tmp_path / "nope.npy", "--out",
                           tmp_path / "m.ursa"), "No such file")


def test_unreadable_data_and_model_exit_1(work, tmp_path):
    root, _, model = work
    odd = tmp_path / "data.xyz"
    odd.write_text("1,2,3\n")
    _one_line_error(invoke("embed", model, odd), "Cannot tell the format", ".xyz")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not numpy at all")
    _one_line_error(invoke("embed", model, broken), "broken.npy")
    fake = tmp_path / "fake.ursa"
    fake.write_bytes(model.read_bytes()[:-40])
    _one_line_error(invoke("info", fake), "truncated")
    _one_line_error(invoke("embed", fake, root / "data.csv"), "truncated")
    # --format overrides the extension: read as CSV, the file has a header and no rows.
    _one_line_error(invoke("-q", "embed", model, odd, "--format", "csv"), "no rows")


def test_wrong_feature_count_exit_1(work, tmp_path):
    _, _, model = work
    one = tmp_path / "one.npy"
    np.save(one, np.zeros((3, 12, 5), dtype=np.float32))
    _one_line_error(invoke("embed", model, one), "feature")


@pytest.mark.parametrize("command", [["cluster"], ["detect"]])
def test_wrong_model_kind_exit_1(work, command):
    root, _, model = work
    _one_line_error(invoke(*command, model, root / "data.csv"), "needs a model fitted with",
                    "SequenceAutoencoder")


def test_generate_needs_a_gan(work):
    _, _, model = work
    _one_line_error(invoke("generate", model, "-n", "3"), "`ursa fit gan`")


@pytest.mark.parametrize("args, fragment", [
    (["fit", "forest", "DATA", "--out", "m.ursa"], "must be one of"),
    (["fit", "autoencoder", "DATA", "--out", "m.ursa", "--set", "colour=blue"], "no parameter"),
    (["fit", "autoencoder", "DATA", "--out", "m.ursa", "--set", "epochs"], "key=value"),
    (["fit", "autoencoder", "DATA", "--out", "m.ursa", "--set", "cell=tree"], "cell"),
    (["fit", "autoencoder", "DATA"], "--out"),
    (["embed", "MODEL", "DATA", "-o", "codes.txt"], "output format"),
    (["--device", "tpu", "info", "MODEL"], "--device"),
    (["generate", "MODEL", "-n", "0"], "-n"),
    (["frobnicate"], "No such command"),
])
def test_usage_errors_exit_2(work, args, fragment):
    root, _, model = work
    args = [str(model) if a == "MODEL" else str(root / "data.csv") if a == "DATA" else a
            for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_debug_shows_the_exception(work, tmp_path):
    _, _, model = work
    result = invoke("--debug", "embed", model, tmp_path / "nope.csv")
    assert result.exit_code == 1 and isinstance(result.exception, FileNotFoundError)


# -------------------------------------------------------------- the installed console script


def _script():
    path = Path(sys.executable).with_name("ursa")
    return str(path) if path.exists() else shutil.which("ursa")


def test_console_script_exit_codes(work, tmp_path):
    script = _script()
    if script is None:
        pytest.fail("the `ursa` console script is not installed: pip install -e . (make venv)")
    root, _, model = work
    env = {**os.environ, "COLUMNS": "100"}
    missing = subprocess.run([script, "embed", str(model), str(tmp_path / "x.csv")],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("ursa: error: No such file")
    usage = subprocess.run([script, "fit", "autoencoder"], capture_output=True, text=True,
                           env=env)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr


def test_python_dash_m_runs_the_command(work, tmp_path):
    """``python -m ursa`` is the same command: version, exit codes and one-line errors."""
    import sys

    root, _, model = work
    version = subprocess.run([sys.executable, "-m", "ursa", "--version"], capture_output=True,
                             text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"ursa {ursa.__version__}"
    missing = subprocess.run([sys.executable, "-m", "ursa", "embed", str(model),
                              str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("ursa: error: No such file")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"ursa {ursa.__version__}"


# ------------------------------------------------------- the other estimators, once they exist


@pytest.mark.skipif(not _importable("ursa.estimators.clusterer"),
                    reason="RecurrentClusterer is not in this build yet")
def test_cluster_command(work, tmp_path):
    root, X, _ = work
    model = tmp_path / "cl.ursa"
    result = invoke("-q", "--seed", "0", "fit", "cluster", root / "data.csv", "--out", model,
                    "--set", "n_clusters=2", "--set", "hidden_size=4", "--set", "epochs=2",
                    "--set", "clustering_epochs=1", "--set", "n_threads=1")
    assert result.exit_code == 0, result.output
    out = tmp_path / "labels.csv"
    result = invoke("-q", "cluster", model, root / "data.csv", "-o", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "label", "p0", "p1"] and len(frame) == 24
    fitted = ursa.load(model)
    np.testing.assert_array_equal(frame["label"], fitted.predict(X))
    np.testing.assert_allclose(frame[["p0", "p1"]].sum(axis=1), 1, rtol=1e-5)
    assert invoke("-q", "embed", model, root / "data.csv", "-o", tmp_path / "z.npy").exit_code == 0
    _one_line_error(invoke("generate", model, "-n", "2"), "RecurrentClusterer")


@pytest.mark.skipif(not _importable("ursa.estimators.gan"),
                    reason="RecurrentGAN is not in this build yet")
@pytest.mark.parametrize("architecture", [[], ["--set", "architecture=diffusion",
                                              "--set", "sampling_steps=3"]])
def test_generate_command(work, tmp_path, architecture):
    root, _, _ = work
    model = tmp_path / "gan.ursa"
    result = invoke("-q", "--seed", "0", "fit", "gan", root / "data.csv", "--out", model,
                    "--set", "iterations=2", "--set", "hidden_size=4", "--set", "num_layers=1",
                    "--set", "pretrain_iterations=20",
                    "--set", "batch_size=8", "--set", "n_threads=1", *architecture)
    assert result.exit_code == 0, result.output
    assert ursa.load(model).architecture == ("diffusion" if architecture else "timegan")
    out = tmp_path / "fake.npy"
    result = invoke("-q", "--seed", "1", "generate", model, "-n", "5", "-o", out)
    assert result.exit_code == 0, result.output
    fake = np.load(out)
    assert fake.shape == (5, 12, 2) and np.isfinite(fake).all()
    again = invoke("-q", "--seed", "1", "generate", model, "-n", "5", "-o", "-",
                   "--n-timesteps", "7")
    frame = pd.read_csv(pd.io.common.StringIO(again.stdout))
    assert list(frame.columns) == ["id", "time", "f0", "f1"] and len(frame) == 35


@pytest.mark.skipif(not _importable("ursa.estimators.gan"),
                    reason="RecurrentGAN is not in this build yet")
def test_conditional_gan_from_a_label_column(work, tmp_path):
    root, X, _ = work
    frame = pd.read_csv(root / "data.csv")
    frame["kind"] = np.where(frame["id"] < 12, "up", "down")  # one label per sequence
    frame.to_csv(tmp_path / "labelled.csv", index=False)
    model = tmp_path / "cgan.ursa"
    result = invoke("-q", "--seed", "0", "fit", "gan", tmp_path / "labelled.csv", "--out", model,
                    "--label-column", "kind", "--set", "iterations=2", "--set", "hidden_size=4",
                    "--set", "num_layers=1", "--set", "batch_size=8", "--set", "n_threads=1",
                    "--set", "pretrain_iterations=20")
    assert result.exit_code == 0, result.output
    gan = ursa.load(model)
    assert gan.condition_kind_ == "labels" and list(gan.classes_) == ["down", "up"]
    assert gan.n_features_in_ == 2  # the label column is not a feature
    result = invoke("-q", "--seed", "1", "generate", model, "-n", "4", "--label", "up",
                    "-o", tmp_path / "up.csv")
    assert result.exit_code == 0, result.output
    up = pd.read_csv(tmp_path / "up.csv")
    assert list(up.columns) == ["id", "time", "label", "f0", "f1"] and len(up) == 4 * 12
    assert set(up["label"]) == {"up"}
    # Library and command line agree: the same seed and class give the same sequences.
    expected = gan.sample(4, y=np.repeat("up", 4), random_state=1)
    np.testing.assert_allclose(up[["f0", "f1"]].to_numpy().reshape(4, 12, 2), expected,
                               rtol=1e-6)
    drawn = pd.read_csv(pd.io.common.StringIO(
        invoke("-q", "--seed", "2", "generate", model, "-n", "6").stdout))
    assert set(drawn["label"]) <= {"up", "down"} and drawn.groupby("id")["label"].nunique().eq(1).all()
    refused = [
        (invoke("generate", model, "-n", "2", "--label", "sideways"), "not a class"),
        (invoke("generate", plain_gan(root, tmp_path), "-n", "2", "--label", "up"), "drop --label"),
        (invoke("fit", "gan", root / "data.csv", "--out", tmp_path / "x.ursa", "--conditional"),
         "has none"),
        (invoke("fit", "cluster", root / "data.csv", "--out", tmp_path / "x.ursa",
                "--conditional"), "only a GAN"),
    ]
    for result, fragment in refused:
        message = " ".join(result.output.replace("│", " ").split())  # unwrap rich's box
        assert result.exit_code == 2 and fragment in message, result.output
    assert not (tmp_path / "x.ursa").exists()


def plain_gan(root, tmp_path):
    path = tmp_path / "gan.ursa"
    result = invoke("-q", "fit", "gan", root / "data.csv", "--out", path,
                    "--set", "iterations=1", "--set", "hidden_size=4", "--set", "num_layers=1",
                    "--set", "pretrain_iterations=2")
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.skipif(not _importable("ursa.estimators.anomaly"),
                    reason="SequenceAnomalyDetector is not in this build yet")
def test_detect_command(tmp_path):
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(400) * 0.3)[:, None] + 0.05 * rng.normal(size=(400, 1))
    series[300:305] += 3
    frame = pd.DataFrame({"value": series[:, 0]})
    frame.to_csv(tmp_path / "series.csv", index=False)  # no id column: one series
    model = tmp_path / "det.ursa"
    result = invoke("-q", "--seed", "0", "fit", "detect", tmp_path / "series.csv", "--out", model,
                    "--set", "window=16", "--set", "hidden_size=4", "--set", "epochs=1",
                    "--set", "n_threads=1")
    assert result.exit_code == 0, result.output
    result = invoke("-q", "detect", model, tmp_path / "series.csv", "-o", tmp_path / "s.parquet")
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert list(scores.columns) == ["series", "time", "score", "flag"] and len(scores) == 400
    fitted = ursa.load(model)
    np.testing.assert_allclose(scores["score"], fitted.decision_function(series), rtol=1e-6)
    assert set(scores["flag"]) <= {0, 1}
    truth = np.zeros(400, dtype=np.int64)
    truth[300:305] = 1
    np.save(tmp_path / "truth.npy", truth)
    evaluated = invoke("-q", "evaluate", model, tmp_path / "series.csv", "--labels",
                       tmp_path / "truth.npy", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert 0.5 < metrics["AUC-ROC"] <= 1  # the spike outscores the sine
    assert type(metrics["flagged steps"]) is int and isinstance(metrics["threshold"], float)
    report = invoke("-q", "report", model, tmp_path / "series.csv", "-o", tmp_path / "d.html",
                    "--labels", tmp_path / "truth.npy")
    assert report.exit_code == 0, report.output
    assert "AUC-PR" in (tmp_path / "d.html").read_text()
    _one_line_error(invoke("embed", model, tmp_path / "series.csv"), "SequenceAnomalyDetector")


def test_fit_resume_continues_a_checkpointed_fit(work, tmp_path):
    """A fit with checkpoints, then the same command with more epochs and --resume: the model
    equals one fitted for the larger number of epochs in one go."""
    root, X, _ = work
    checkpoints = tmp_path / "ckpt"
    args = ["-q", "--seed", "0", "fit", "autoencoder", root / "data.csv", "--out",
            tmp_path / "m.ursa", *TINY, "--set", f"checkpoint_dir={checkpoints}"]
    assert invoke(*args).exit_code == 0
    result = invoke(*args, "--set", "epochs=4", "--resume")
    assert result.exit_code == 0, result.output
    resumed = ursa.load(tmp_path / "m.ursa")
    assert len(resumed.history_) == 4
    straight = ursa.SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=4, batch_size=16,
                                        n_threads=1, random_state=0).fit(X)
    np.testing.assert_array_equal(resumed.transform(X), straight.transform(X))


def test_fit_resume_needs_a_checkpoint_dir(work, tmp_path):
    root, _, _ = work
    result = invoke("-q", "fit", "autoencoder", root / "data.csv", "--out", tmp_path / "m.ursa",
                    *TINY, "--resume")
    assert result.exit_code == 2
    assert "--set checkpoint_dir=DIR" in result.output


def test_fit_interrupted_says_how_to_resume(work, tmp_path, monkeypatch):
    """Ctrl-C during `ursa fit` (raised from inside the training loop) ends with exit code 130
    and a message naming the checkpoint and --resume, not typer's bare 'Aborted!'."""
    import torch

    root, _, _ = work
    real = torch.optim.Adam.step
    calls = []

    def interrupt_in_epoch_two(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # 24 sequences in batches of 16: the first step of epoch two
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupt_in_epoch_two)
    result = invoke("-q", "fit", "autoencoder", root / "data.csv", "--out", tmp_path / "m.ursa",
                    *TINY, "--set", "validation_fraction=0", "--set",
                    f"checkpoint_dir={tmp_path / 'ckpt'}")
    assert result.exit_code == 130
    assert "checkpoint.safetensors" in result.stderr and "--resume" in result.stderr
    assert not (tmp_path / "m.ursa").exists()


def test_validate_params_is_the_check_fit_runs_first():
    from ursa.estimators import validate_params

    validate_params(ursa.SequenceAutoencoder())
    with pytest.raises(ValueError, match="cell"):
        validate_params(ursa.SequenceAutoencoder(cell="tree"))


def test_set_values_are_toml_else_strings():
    from ursa._cli_support import parse_value

    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value('"gru"') == "gru"
    assert parse_value("gru") == "gru" and parse_value("None") is None


# ------------------------------------------- names: DATA's ids and columns survive to the output

TRIPS = ["trip_2", "trip_5", "trip_11", "trip_7"]  # the file's order, which is not sorted
TRIP_OPTIONS = ["--id-column", "trip", "--time-column", "t"]


@pytest.fixture(scope="module")
def trips(tmp_path_factory):
    """A long table with text ids, a time column in steps of 10, the features speed and
    heading and a text column (driver), its rows shuffled; and one tiny model of each kind
    fitted on it through `ursa fit`."""
    root = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(0)
    rows = [{"trip": trip, "t": 10 * step, "speed": np.sin(0.5 * step + k) + 0.1 * rng.normal(),
             "heading": np.cos(0.3 * step + k), "driver": f"d{k % 2}"}
            for k, trip in enumerate(TRIPS) for step in range(10)]
    frame = pd.DataFrame(rows)
    order = np.concatenate([[0], 1 + rng.permutation(len(frame) - 1)])  # trip_2's row stays first
    frame = frame.iloc[order]
    first_seen = list(dict.fromkeys(frame["trip"]))
    frame.to_csv(root / "trips.csv", index=False)
    tiny = ["--set", "hidden_size=4", "--set", "n_threads=1"]
    fits = {
        "autoencoder": ["--set", "epochs=1", "--set", "latent_dim=2"],
        "cluster": ["--set", "n_clusters=2", "--set", "epochs=1", "--set", "clustering_epochs=1"],
        "detect": ["--set", "window=4", "--set", "epochs=1"],
        "gan": ["--label-column", "driver", "--set", "iterations=2", "--set", "num_layers=1",
                "--set", "pretrain_iterations=2", "--set", "latent_dim=2", "--set",
                "batch_size=4"],
    }
    models = {}
    for kind, settings in fits.items():
        models[kind] = root / f"{kind}.ursa"
        result = invoke("-q", "fit", kind, root / "trips.csv", "--out", models[kind],
                        *TRIP_OPTIONS, "--feature-columns", "speed,heading", *tiny, *settings)
        assert result.exit_code == 0, result.output
    return root, frame, first_seen, models


def test_fit_saves_the_feature_names(trips, work):
    _, _, _, models = trips
    for path in models.values():
        assert list(ursa.load(path).feature_names_in_) == ["speed", "heading"]
    _, _, model = work  # fitted on data.csv: long form, its features named f0, f1
    assert list(ursa.load(model).feature_names_in_) == ["f0", "f1"]


def test_a_model_from_unnamed_data_has_no_feature_names(work, tmp_path):
    root, _, _ = work
    result = invoke("-q", "fit", "autoencoder", root / "data.npy", "--out", tmp_path / "m.ursa",
                    *TINY)
    assert result.exit_code == 0, result.output
    assert not hasattr(ursa.load(tmp_path / "m.ursa"), "feature_names_in_")


def test_embed_and_cluster_write_the_input_sequence_ids(trips, tmp_path):
    root, frame, first_seen, models = trips
    assert first_seen != sorted(first_seen)  # ids come back in the file's order, as text
    # The model reads its own columns (speed, heading), so the text column driver is no
    # obstacle and needs no --feature-columns.
    for command, model, columns in [("embed", models["autoencoder"], ["id", "z0", "z1"]),
                                    ("cluster", models["cluster"], ["id", "label", "p0", "p1"])]:
        out = tmp_path / f"{command}.parquet"
        result = invoke("-q", command, model, root / "trips.csv", *TRIP_OPTIONS, "-o", out)
        assert result.exit_code == 0, result.output
        written = pd.read_parquet(out)
        assert list(written.columns) == columns and written["id"].tolist() == first_seen
    # CSV on standard output, and the ids join back to the input.
    result = invoke("-q", "embed", models["autoencoder"], root / "trips.csv", *TRIP_OPTIONS)
    codes = pd.read_csv(pd.io.common.StringIO(result.stdout))
    joined = frame.merge(codes, left_on="trip", right_on="id")
    assert len(joined) == len(frame) and codes["id"].tolist() == first_seen


def test_detect_writes_the_input_ids_and_time_values(trips):
    root, frame, first_seen, models = trips
    result = invoke("-q", "detect", models["detect"], root / "trips.csv", *TRIP_OPTIONS)
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(scores.columns) == ["series", "time", "score", "flag"]
    assert list(dict.fromkeys(scores["series"])) == first_seen
    assert scores.loc[scores["series"] == "trip_5", "time"].tolist() == list(range(0, 100, 10))
    joined = frame.merge(scores, left_on=["trip", "t"], right_on=["series", "time"])
    assert len(joined) == len(frame)  # one score per row of the input


def test_generate_names_the_features_as_the_training_data(trips, tmp_path):
    _, _, _, models = trips
    result = invoke("-q", "--seed", "1", "generate", models["gan"], "-n", "3",
                    "-o", tmp_path / "fake.csv")
    assert result.exit_code == 0, result.output
    fake = pd.read_csv(tmp_path / "fake.csv")
    assert list(fake.columns) == ["id", "time", "label", "speed", "heading"]
    assert fake["id"].tolist() == list(np.repeat([0, 1, 2], 10))
    assert set(fake["label"]) <= {"d0", "d1"}


def test_ids_of_files_without_an_id_column(work, tmp_path):
    """.npy files have no ids (0, 1, ...); a wide table's id column names its rows."""
    root, X, model = work
    result = invoke("-q", "embed", model, root / "data.npy")
    assert pd.read_csv(pd.io.common.StringIO(result.stdout))["id"].tolist() == list(range(24))
    wide = tmp_path / "wide.csv"
    pd.DataFrame({"name": ["w9", "w3"], "0": [0.1, 0.5], "1": [0.2, 0.4], "2": [0.3, np.nan]}) \
        .to_csv(wide, index=False)
    one = tmp_path / "one.ursa"
    assert invoke("-q", "fit", "autoencoder", wide, "--layout", "wide", "--id-column", "name",
                  "--out", one, *TINY).exit_code == 0
    assert not hasattr(ursa.load(one), "feature_names_in_")  # wide columns are time steps
    result = invoke("-q", "embed", one, wide, "--layout", "wide", "--id-column", "name")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(pd.io.common.StringIO(result.stdout))["id"].tolist() == ["w9", "w3"]


def test_feature_names_that_differ_from_the_model_are_refused(trips, tmp_path):
    root, frame, _, models = trips
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"speed": "velocity"}).drop(columns="driver").to_csv(renamed,
                                                                            index=False)
    result = invoke("embed", models["autoencoder"], renamed, *TRIP_OPTIONS)
    _one_line_error(result, "(velocity, heading)", "(speed, heading", "no column 'speed'",
                    "--feature-columns")
    # Chosen with --feature-columns, other names are used by position, with a warning.
    with pytest.warns(UserWarning, match="velocity as speed"):
        result = invoke("-q", "embed", models["autoencoder"], renamed, *TRIP_OPTIONS,
                        "--feature-columns", "velocity", "--feature-columns", "heading")
    assert result.exit_code == 0, result.output


def test_a_text_column_error_names_it_and_the_options(trips):
    root, _, _, _ = trips
    result = invoke("fit", "autoencoder", root / "trips.csv", "--out", root / "x.ursa", *TINY)
    _one_line_error(result, "column 'trip' is not numeric", "row 0", "'trip_2'",
                    "--id-column trip", "--feature-columns t,speed,heading")
    assert "feature_columns=" not in result.stderr and "id_column=" not in result.stderr
    # With the id and time named, the next text column: its id needs no advice.
    result = invoke("fit", "autoencoder", root / "trips.csv", "--out", root / "x.ursa",
                    *TRIP_OPTIONS, *TINY)
    _one_line_error(result, "column 'driver' is not numeric", "--feature-columns speed,heading")
    assert "--id-column" not in result.stderr
    assert not (root / "x.ursa").exists()


@pytest.mark.parametrize("values, message", [(["speed,,heading"], "empty column name"),
                                             (["speed", "speed"], "named twice")])
def test_feature_columns_usage_errors(trips, values, message):
    root, _, _, models = trips
    options = [arg for value in values for arg in ("--feature-columns", value)]
    result = invoke("embed", models["autoencoder"], root / "trips.csv", *TRIP_OPTIONS, *options)
    assert result.exit_code == 2 and message in result.output


# ------------------------------------------------------ global options after the subcommand


def test_global_options_before_or_after_the_command(trips, tmp_path):
    _, _, _, models = trips
    before = invoke("--seed", "1", "-q", "generate", models["gan"], "-n", "3", "-o",
                    tmp_path / "before.csv")
    after = invoke("generate", models["gan"], "-n", "3", "-o", tmp_path / "after.csv",
                   "--seed", "1", "--quiet")
    assert before.exit_code == after.exit_code == 0, after.output
    assert before.stderr == after.stderr == ""  # --quiet in either place
    assert (tmp_path / "before.csv").read_bytes() == (tmp_path / "after.csv").read_bytes()
    other = invoke("generate", models["gan"], "-n", "3", "-o", tmp_path / "other.csv", "--seed",
                   "2")
    assert (tmp_path / "other.csv").read_bytes() != (tmp_path / "after.csv").read_bytes()
    # After the command, the value given there wins over the one before it.
    both = invoke("-q", "--seed", "2", "generate", models["gan"], "-n", "3", "-o",
                  tmp_path / "both.csv", "--seed", "1")
    assert both.exit_code == 0
    assert (tmp_path / "both.csv").read_bytes() == (tmp_path / "after.csv").read_bytes()


def test_seed_debug_and_device_after_the_command(work, tmp_path):
    root, _, _ = work
    result = invoke("fit", "autoencoder", root / "data.npy", "--out", tmp_path / "m.ursa", *TINY,
                    "--seed", "7", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert ursa.load(tmp_path / "m.ursa").get_params()["random_state"] == 7
    debug = invoke("embed", tmp_path / "m.ursa", tmp_path / "nope.csv", "--debug")
    assert debug.exit_code == 1 and isinstance(debug.exception, FileNotFoundError)
    device = invoke("info", tmp_path / "m.ursa", "--device", "tpu")
    assert device.exit_code == 2 and "--device" in device.output


@pytest.mark.parametrize("command", ["fit", "embed", "cluster", "detect", "generate", "evaluate",
                                     "info", "report", "demo"])
def test_every_command_documents_the_global_options(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--seed", "--quiet", "--device", "--debug"):
        assert option in result.stdout
    if command not in ("generate", "info", "demo"):
        assert "--feature-columns" in result.stdout


# ---------------------------------------------------------------- evaluate --json value types


def test_evaluate_json_writes_numbers(work, monkeypatch):
    """Floats and ints as JSON numbers, pairs as 2-element arrays, None and NaN as null."""
    import ursa.metrics
    from ursa.metrics import Metric

    root, _, model = work
    rows = [Metric("a float", np.float32(0.25)), Metric("an int", np.int64(12), shown="12 of 40"),
            Metric("a pair", (0.5, np.float64(0.75))), Metric("none", None),
            Metric("nan", float("nan")), Metric("inf pair", (np.inf, 1.0))]
    monkeypatch.setattr(ursa.metrics, "metric_table", lambda *args, **kwargs: rows)
    result = invoke("-q", "evaluate", model, root / "data.csv", "--json")
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout  # strict JSON
    metrics = json.loads(result.stdout)
    assert list(metrics) == ["a float", "an int", "a pair", "none", "nan", "inf pair"]
    assert type(metrics["a float"]) is float and metrics["a float"] == 0.25
    assert type(metrics["an int"]) is int and metrics["an int"] == 12
    assert metrics["a pair"] == [0.5, 0.75] and all(type(v) is float for v in metrics["a pair"])
    assert metrics["none"] is None and metrics["nan"] is None
    assert metrics["inf pair"] == [None, 1.0]


def test_token_sessions_through_fit_detect_and_generate(tmp_path):
    sessions = tmp_path / "sessions.txt"
    sessions.write_text("".join(f"open read{i % 3} close\n" for i in range(40)), encoding="utf-8")
    new = tmp_path / "new.txt"
    new.write_text("open read1 close\nclose open\nopen read9 close\n", encoding="utf-8")
    model = tmp_path / "s.ursa"
    result = invoke("--quiet", "fit", "detect", sessions, "--tokens", "whitespace", "--out",
                    model, "--set", "window=None", *TINY)
    assert result.exit_code == 0, result.output
    out = tmp_path / "scores.csv"
    assert invoke("--quiet", "detect", model, new, "-o", out).exit_code == 0  # .txt: tokens
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["id", "score", "flag"] and len(rows) == 3
    assert np.isfinite(rows["score"]).all() and set(rows["flag"]) <= {0, 1}
    assert invoke("--quiet", "fit", "autoencoder", sessions, "--out", tmp_path / "a.ursa",
                  *TINY).exit_code != 0  # .txt is not guessed without --tokens
    gan = tmp_path / "g.ursa"
    assert invoke("--quiet", "fit", "gan", sessions, "--tokens", "whitespace", "--out", gan,
                  "--set", "iterations=3", "--set", "pretrain_iterations=3",
                  "--set", "hidden_size=4", "--set", "latent_dim=2").exit_code == 0
    lines = tmp_path / "fake.txt"
    assert invoke("--quiet", "generate", gan, "-n", "5", "-o", lines).exit_code == 0
    generated = lines.read_text(encoding="utf-8").splitlines()
    assert len(generated) == 5 and all(set(g.split()) <= {"open", "close", "read0", "read1",
                                                           "read2"} for g in generated)
    info = invoke("info", gan)
    assert "vocabulary size: 5" in info.output


def test_a_folder_of_wav_files_is_data(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    folder = tmp_path / "wavs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        t = np.arange(2400) / 8000
        soundfile.write(folder / f"tone_{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)
                        + 0.01 * rng.standard_normal(len(t)), 8000)
    model = tmp_path / "c.ursa"
    result = invoke("--quiet", "fit", "cluster", folder, "--out", model, "--set", "n_clusters=2",
                    *TINY)
    assert result.exit_code == 0, result.output
    assert ursa.load(model).audio_frontend_["sample_rate"] == 8000
    out = tmp_path / "labels.csv"
    assert invoke("--quiet", "cluster", model, folder, "-o", out).exit_code == 0
    assert pd.read_csv(out)["id"].tolist() == [f"tone_{i}" for i in range(6)]
