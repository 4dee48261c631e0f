"""The README's main job and the built-in data it runs on."""

import io
import subprocess
import sys

import numpy as np
import pytest

from ursa.datasets import load_ucr, make_sines
from ursa.demo import run


def test_shipped_sets_load_with_their_shapes():
    X, y = load_ucr("BasicMotions")
    assert X.shape == (80, 100, 6) and len(y) == 80 and len(set(y)) == 4
    X_train, _ = load_ucr("UnitTest", "train")
    assert X_train.shape == (20, 24, 1)
    with pytest.raises(ValueError, match="name must be one of"):
        load_ucr("OSULeaf")
    with pytest.raises(ValueError, match="split must be"):
        load_ucr("UnitTest", "validation")


def test_make_sines_follows_the_timegan_protocol():
    X = make_sines(50, 24, 5, random_state=0)
    assert X.shape == (50, 24, 5) and X.dtype == np.float32
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(X, make_sines(50, 24, 5, random_state=0))


def test_demo_runs_end_to_end(capsys):
    out = io.StringIO()
    rows = run(epochs=2, out=out, verbose=False)
    figures = dict((r[0], r[1]) for r in rows)
    assert figures["save -> load -> transform reproduces embeddings"] == "yes"
    assert "k-means NMI on embeddings" in out.getvalue()
    assert out.getvalue().startswith("\nfigure ")  # quiet: the table alone
    assert capsys.readouterr().err == ""
    assert 0.0 <= float(figures["1-NN accuracy on embeddings (train -> test)"]) <= 1.0


def test_demo_command_line_usage_error():
    result = subprocess.run([sys.executable, "-m", "ursa.demo", "--epochs", "many"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid int value" in result.stderr


def test_shipped_anomaly_series_and_its_labels():
    from ursa.datasets import load_ucr_anomaly

    series, labels, train_length = load_ucr_anomaly()
    assert series.shape == labels.shape == (7501,) and series.dtype == np.float32
    assert train_length == 1200
    # The archive's 1-based range 4187..4199 is 0-based 4186..4198.
    np.testing.assert_array_equal(np.flatnonzero(labels), np.arange(4186, 4199))
    with pytest.raises(ValueError, match="name must be one of"):
        load_ucr_anomaly("InternalBleeding99")


def test_full_demo_in_quick_mode_writes_table_and_report(tmp_path, monkeypatch, capsys):
    import re

    import ursa
    from test_report import rendered
    from ursa.demo import PARTS, run_all
    from ursa.estimators import ESTIMATORS, available_tasks

    # The GAN part's scores get the demo's verbose.
    asked = []
    for name in ("discriminative_score", "predictive_score"):
        def score(*args, _original=getattr(ursa.metrics, name), **kwargs):
            asked.append(kwargs.get("verbose", "not passed"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(ursa.metrics, name, score)
    out = io.StringIO()
    report = tmp_path / "demo.html"
    rows = run_all(quick=True, report_path=report, verbose=False, out=out)
    names = [r[0] for r in rows]
    available = set(available_tasks())
    assert set(PARTS) == {entry.task for entry in ESTIMATORS}  # a part for every estimator
    for entry in ESTIMATORS[1:]:  # the autoencoder's rows name what they measure (below)
        part, class_name = entry.task, entry.class_name
        mine = [r for r in rows if r[0].startswith(class_name)]
        if part in available:
            assert mine and all(r[1] not in ("", "not available") for r in mine), rows
        else:
            assert mine == [(class_name, "not available", "not in this build")]
    assert any("k-means NMI on embeddings" in n for n in names)
    # The table ends with the time of each step and of the whole run.
    steps = [entry.class_name for entry in ESTIMATORS if entry.task in available]
    assert names[-len(steps) - 2:] == ([f"wall time, s: {c} step" for c in steps]
                                       + ["wall time, s: HTML report",
                                          "demo wall time, s (all steps)"])
    assert float(rows[-1][1]) >= sum(float(r[1]) for r in rows[-len(steps) - 2:-1]) - len(steps) - 1
    assert capsys.readouterr().err == ""  # verbose=False: no message, no progress bar
    text = report.read_text(encoding="utf-8")
    # One summary table plus, per fitted model, its training curves and task figures.
    assert "<h2>Summary</h2>" in text and len(re.findall(r"<img ", text)) >= 3
    assert f"report: {report}" in out.getvalue()
    # Each data set is described once, whichever models used it.
    assert text.count("<h2>Data: BasicMotions</h2>") == 1 and ": Data</h2>" not in text
    # Every fit was quiet (verbose is the only setting the demo passes for it), and so was
    # every score.
    fitted = re.findall(r"Parameters set away from their defaults: ([^<]*)\.</p>", text)
    assert len(fitted) == len(steps) and all("verbose=False" in p for p in fitted)
    if "gan" in available:
        assert asked == [False, False]
    # Short enough to read: under 5500 px in an 800 px wide window (11,600 px before
    # parameters were folded and figures placed beside their text; about 4600 px before the
    # autoencoder's and the clusterer's explanation figures were added).
    _, _, height = rendered(text, tmp_path, "demo")
    assert height < 5500, height


def test_example_files_read_back_with_their_ids_names_and_labels(tmp_path):
    from ursa.data import read_dataset, read_labels
    from ursa.datasets import load_ucr_anomaly, write_examples
    from ursa.datasets.__main__ import main

    written = write_examples(tmp_path / "examples")
    assert sorted(written) == sorted(
        ["BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts", "motions.csv", "sines.npy",
         "bleeding_train.csv", "bleeding.csv", "bleeding_labels.csv"])
    X, y = load_ucr("BasicMotions")
    motions = read_dataset(written["motions.csv"], label_column="activity", return_names=True)
    np.testing.assert_allclose(np.asarray(motions.X), X, rtol=1e-6)
    assert list(motions.y) == list(y)
    assert motions.feature_names == ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y",
                                     "gyro_z"]
    assert len(set(motions.ids)) == 80 and motions.ids[0] == f"{y[0].lower()}_01"
    assert np.load(written["sines.npy"]).shape == (1000, 24, 5)
    series, labels, train = load_ucr_anomaly()
    whole, _ = read_dataset(written["bleeding.csv"])
    head, _ = read_dataset(written["bleeding_train.csv"])
    np.testing.assert_allclose(np.asarray(whole).ravel(), series, rtol=1e-6)
    assert np.asarray(head).size == train
    np.testing.assert_array_equal(read_labels(written["bleeding_labels.csv"]), labels)
    assert main([str(tmp_path / "again")]) == 0 and (tmp_path / "again" / "motions.csv").exists()
    assert main(["a", "b"]) == 2
