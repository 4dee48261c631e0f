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
    assert (params["hidden_size"], params["latent_dim"], params["epochs"],
            params["random_state"], params["verbose"]) == (4, 2, 2, 0, False)
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
    assert 0 <= float(metrics["relative reconstruction error"]) < 5
    assert 0 <= float(metrics["k-means NMI on embeddings (k=2)"]) <= 1
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
def test_generate_command(work, tmp_path):
    root, _, _ = work
    model = tmp_path / "gan.ursa"
    result = invoke("-q", "--seed", "0", "fit", "gan", root / "data.csv", "--out", model,
                    "--set", "iterations=2", "--set", "hidden_size=4", "--set", "num_layers=1",
                    "--set", "batch_size=8", "--set", "n_threads=1")
    assert result.exit_code == 0, result.output
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
                    "--set", "num_layers=1", "--set", "batch_size=8", "--set", "n_threads=1")
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
                    "--set", "iterations=1", "--set", "hidden_size=4", "--set", "num_layers=1")
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
    assert 0.5 < float(metrics["AUC-ROC"]) <= 1  # the spike outscores the sine
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
