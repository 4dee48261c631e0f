"""ursa.plots: every function writes a non-empty PNG that decodes, and bad input is refused."""

import io
import subprocess
import sys

import numpy as np
import pytest

from ursa import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_width=200):
    from PIL import Image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.width >= min_width and image.height >= 100
        # Not a blank canvas: a drawn figure has many distinct colours.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


@pytest.fixture(scope="module")
def sequences():
    rng = np.random.default_rng(0)
    t = np.arange(30)
    X = np.stack([np.stack([np.sin(0.2 * (k + 1) * t + p), np.cos(0.1 * t + p)], axis=1)
                  for k in range(3) for p in rng.uniform(0, 3, 8)]).astype(np.float32)
    labels = np.repeat([0, 1, 2], 8)
    return X, labels


def test_training_curves(tmp_path):
    history = [{"epoch": i, "train_loss": 1 / (i + 1), "val_loss": 1.2 / (i + 1), "seconds": 0.1}
               for i in range(6)]
    fig = plots.training_curves(history, path=tmp_path / "curves.png")
    _check_png(tmp_path / "curves.png")
    (ax,) = fig.axes
    assert {line.get_label() for line in ax.get_lines()} == {"train_loss", "val_loss"}
    assert ax.get_xlabel() == "epoch" and list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5, 6]
    assert ax.get_yscale() == "linear"  # 1.2 / 0.17: less than a factor of 10
    with pytest.raises(ValueError, match="non-empty list"):
        plots.training_curves([])
    with pytest.raises(TypeError, match=r"history\[1\]"):
        plots.training_curves([{"loss": 1.0}, 3])
    with pytest.raises(ValueError, match="no numeric loss"):
        plots.training_curves([{"phase": "joint", "seconds": 1.0}])


def test_training_curves_log_axis_only_over_a_wide_range():
    narrow = [{"epoch": i + 1, "train_loss": 1.0 - 0.07 * i / 9} for i in range(10)]  # 0.93-1
    assert plots.training_curves(narrow).axes[0].get_yscale() == "linear"
    wide = [{"epoch": i + 1, "train_loss": 10.0 ** -i} for i in range(4)]
    assert plots.training_curves(wide).axes[0].get_yscale() == "log"
    with_zero = [{"epoch": 1, "train_loss": 5.0}, {"epoch": 2, "train_loss": 0.0}]
    assert plots.training_curves(with_zero).axes[0].get_yscale() == "linear"


def test_training_curves_one_panel_per_stage(tmp_path):
    # The clusterer: two stages of different objectives, epochs counted from 1 in each.
    staged = ([{"epoch": i, "train_loss": 2.0 - 0.01 * i, "stage": "pretrain"}
               for i in range(1, 101)]
              + [{"epoch": i, "train_loss": 0.4, "label_change": 0.1, "stage": "cluster"}
                 for i in range(1, 21)])
    fig = plots.training_curves(staged, path=tmp_path / "staged.png")
    _check_png(tmp_path / "staged.png")
    pretrain, cluster = fig.axes
    assert [pretrain.get_title(), cluster.get_title()] == ["pretrain stage", "cluster stage"]
    assert pretrain.get_xlabel() == cluster.get_xlabel() == "epoch"
    assert pretrain.get_lines()[0].get_xdata()[-1] == 100
    assert list(cluster.get_lines()[0].get_xdata()) == list(range(1, 21))
    assert [line.get_label() for line in cluster.get_lines()] == ["train_loss"]
    # The GAN: iteration phases, one record per 100 iterations; the x axis is the iteration.
    phased = ([{"epoch": k + 1, "phase": "embedding", "iteration": 100 * (k + 1),
                "train_loss": 0.1, "reconstruction_loss": 0.1} for k in range(3)]
              + [{"epoch": k + 4, "phase": "joint", "iteration": it, "train_loss": 1.0,
                  "generator_loss": 1.0, "discriminator_loss": 0.7, "seconds": 1.0}
                 for k, it in enumerate((100, 200, 250))])
    fig = plots.training_curves(phased, path=tmp_path / "phased.png")
    _check_png(tmp_path / "phased.png")
    embedding, joint = fig.axes
    assert joint.get_title() == "joint phase" and joint.get_xlabel() == "iteration"
    assert list(joint.get_lines()[0].get_xdata()) == [100, 200, 250]
    # train_loss repeats generator_loss (reconstruction_loss): drawn once.
    assert [line.get_label() for line in joint.get_lines()] == ["generator_loss",
                                                                 "discriminator_loss"]
    assert [line.get_label() for line in embedding.get_lines()] == ["reconstruction_loss"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["reconstruction_loss", "generator_loss", "discriminator_loss"]


def test_reconstructions(tmp_path, sequences):
    X, _ = sequences
    fig = plots.reconstructions(X, X + 0.1, n=3, path=tmp_path / "rec.png")
    _check_png(tmp_path / "rec.png")
    assert len(fig.axes) == 3  # two per row, the fourth slot left empty
    np.testing.assert_allclose(fig.axes[2].get_lines()[1].get_ydata(), X[2, :, 0] + 0.1,
                               rtol=1e-6)
    # Variable length: a list of arrays.
    seqs = [X[0, :12], X[1, :30]]
    fig = plots.reconstructions(seqs, [s * 0.9 for s in seqs], path=tmp_path / "var.png")
    _check_png(tmp_path / "var.png")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="X_hat must have the shape of X"):
        plots.reconstructions(X, X[:, :10])
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        plots.reconstructions(X, X, n=0)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_map(tmp_path, sequences, method):
    X, labels = sequences
    Z = X.reshape(len(X), -1)
    fig = plots.embedding_map(Z, labels=labels, method=method, path=tmp_path / "map.png")
    _check_png(tmp_path / "map.png")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="method must be 'pca' or 'tsne'"):
        plots.embedding_map(Z, method="umap")
    with pytest.raises(ValueError, match=r"labels must have shape \(24,\)"):
        plots.embedding_map(Z, labels=labels[:5])
    bad = Z.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"Z\[4\] holds NaN"):
        plots.embedding_map(bad)


def test_cluster_prototypes(tmp_path, sequences):
    X, labels = sequences
    fig = plots.cluster_prototypes(X, labels, path=tmp_path / "proto.png")
    _check_png(tmp_path / "proto.png")
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "cluster 1 (n=8)"
    # The drawn mean is the cluster mean.
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(),
                               X[labels == 2, :, 0].mean(axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="one per sequence"):
        plots.cluster_prototypes(X, labels[:3])
    six = plots.cluster_prototypes(X, np.arange(24) % 6)
    assert [ax.get_title() for ax in six.axes] == [f"cluster {k} (n=4)" for k in range(6)]


def test_real_vs_synthetic(tmp_path, sequences):
    X, _ = sequences
    synthetic = X[::-1] + 0.05
    fig = plots.real_vs_synthetic(X, synthetic, path=tmp_path / "rvs.png")
    _check_png(tmp_path / "rvs.png")
    scatter = fig.axes[0].collections
    assert len(scatter) == 2 and [len(c.get_offsets()) for c in scatter] == [24, 24]
    plots.real_vs_synthetic(X, synthetic, method="tsne", path=tmp_path / "rvs_tsne.png")
    _check_png(tmp_path / "rvs_tsne.png")


def test_anomaly_timeline(tmp_path):
    rng = np.random.default_rng(1)
    series = rng.normal(size=(300, 2))
    series[150:160, 1] += 6
    scores = np.abs(series).mean(axis=1)
    shares = np.abs(series) / np.abs(series).sum(axis=1, keepdims=True)
    fig = plots.anomaly_timeline(series, scores, threshold=2.5, channel_shares=shares,
                                 path=tmp_path / "timeline.png")
    _check_png(tmp_path / "timeline.png", min_width=600)
    top = fig.axes[0]
    annotations = [t.get_text() for t in top.texts]
    assert "ch 1" in annotations  # the shifted channel drove the flag
    assert "flagged region" in top.get_title()
    truth = np.zeros(300, dtype=int)
    truth[150:160] = 1
    fig = plots.anomaly_timeline(series[:, 0], scores, labels=truth, path=tmp_path / "plain.png")
    assert "labelled anomaly" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    _check_png(tmp_path / "plain.png", min_width=600)
    with pytest.raises(ValueError, match=r"scores must have shape \(300,\)"):
        plots.anomaly_timeline(series, scores[:10])
    with pytest.raises(ValueError, match=r"labels must have shape \(300,\)"):
        plots.anomaly_timeline(series, scores, labels=truth[:5])
    with pytest.raises(ValueError, match="channel_shares must have shape"):
        plots.anomaly_timeline(series, scores, channel_shares=shares[:, :1])


def test_figure_to_png_rejects_a_bad_path(sequences):
    X, labels = sequences
    fig = plots.cluster_prototypes(X, labels)
    assert plots.figure_to_png(fig).startswith(PNG_MAGIC)
    with pytest.raises(TypeError, match="path must be a str"):
        plots.figure_to_png(fig, path=3)


def test_import_ursa_does_not_import_matplotlib():
    code = ("import sys, ursa; assert 'matplotlib' not in sys.modules; ursa.plots; "
            "assert 'matplotlib' not in sys.modules; "
            "ursa.plots.training_curves([{'train_loss': 1.0}]); "
            "import matplotlib; assert matplotlib.get_backend().lower() == 'agg' "
            "or 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
