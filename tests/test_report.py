"""The HTML report: self-contained, compact, and every image renders in a real headless Chromium."""

import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import ursa
from ursa.datasets import load_ucr
from ursa.report import build_report, report_sections, without_figures, write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage"]

# Appended to a copy of the report: after load, count the images that decoded and measure the
# page's height as laid out.
PROBE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-rendered', ok + '/' + images.length);
  document.body.setAttribute('data-height', document.documentElement.scrollHeight);
});
</script>"""
# The window the height is measured in: chromium's default width, no scrollbar.
WINDOW = ["--window-size=800,600", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def fitted():
    X, y = load_ucr("UnitTest")
    model = ursa.SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, n_threads=1,
                                     random_state=0).fit(X)
    return model, X, y


@pytest.fixture(scope="module")
def report_file(fitted, tmp_path_factory):
    model, X, y = fitted
    return write_report(tmp_path_factory.mktemp("report") / "report.html", model, X, y)


def _images(text):
    return re.findall(r"<img [^>]*src='([^']*)'", text)


def test_report_is_self_contained(report_file):
    from PIL import Image

    text = report_file.read_text(encoding="utf-8")
    sources = _images(text)
    assert len(sources) >= 3  # training curves, reconstructions, embedding map
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert image.width > 100 and image.height > 100
    # No external resource of any kind.
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", text)
    for heading in ("Data", "Model and training", "Reconstruction", "Embeddings"):
        assert f"<h2>{heading}</h2>" in text
    assert "42</td>" in text  # 42 sequences in the data summary
    assert "k-means NMI on embeddings (k=2)" in text


def test_report_folds_the_parameters(fitted, report_file):
    model, _, _ = fitted
    text = report_file.read_text(encoding="utf-8")
    # The parameters set away from their defaults are named in the text...
    shown = re.search(r"Parameters set away from their defaults: ([^<]*)\.</p>", text).group(1)
    assert shown.split(", ") == ["epochs=2", "hidden_size=4", "latent_dim=2", "n_threads=1",
                                 "random_state=0"]
    # ... and the full list is folded: one collapsed table, a row per parameter.
    (folded,) = re.findall(r"<details><summary>all (\d+) parameters</summary>(.*?)</details>", text)
    n_params = len(model.get_params()) - 1  # callbacks are not shown
    assert int(folded[0]) == n_params and folded[1].count("<tr>") == n_params
    assert "<details open" not in text and text.count("<th>latent_dim</th>") == 1
    assert "<td class='note'>default 16</td>" in folded[1]


def test_report_sections_without_figures(fitted):
    model, X, y = fitted
    with without_figures():
        sections = report_sections(model, X, None)
    assert all(not s.figures for s in sections)
    names = [name for s in sections for name, _, _ in s.metrics]
    assert "relative reconstruction error" in names and not any("NMI" in n for n in names)


def test_report_refuses_unknown_and_unfitted_models(fitted):
    _, X, _ = fitted
    with pytest.raises(TypeError, match="no report for"):
        build_report(object(), X)
    with pytest.raises(Exception, match="not fitted"):
        build_report(ursa.SequenceAutoencoder(), X)


def test_report_escapes_text(fitted):
    model, X, _ = fitted
    text = build_report(model, X, np.array(["<b>x</b>"] * 21 + ["y"] * 21), title="a<script>")
    assert "<script>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text


def test_the_report_metrics_are_those_of_metrics_evaluate(fitted):
    model, X, y = fitted
    with without_figures():
        sections = report_sections(model, X, y)
    shown = {name: value for s in sections[2:] for name, value, _ in s.metrics}
    rows = ursa.metrics.metric_table(model, X, y)
    assert shown == {row.name: row.text for row in rows}
    assert shown["relative reconstruction error"] == f"{rows[0].value:.4g}"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser():
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium); required in CI")
    return browser


def rendered(text, tmp_path, name="page"):
    """Open the HTML ``text`` in headless chromium (an 800 px wide window): (images decoded,
    images, page height in px)."""
    browser = _browser()
    page = tmp_path / f"{name}.html"
    page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, *WINDOW, f"--user-data-dir={tmp_path / ('profile-' + name)}",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'data-rendered="(\d+)/(\d+)" data-height="(\d+)"', result.stdout)
    assert match, f"chromium gave no result: {result.stderr[-2000:]}"
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def test_every_image_renders_in_headless_chromium(report_file, tmp_path):
    text = report_file.read_text(encoding="utf-8")
    expected = len(_images(text))
    ok, total, height = rendered(text, tmp_path, "probed")
    assert (ok, total) == (expected, expected)
    # The page is compact: parameters folded, figures beside their text where there is room
    # (this report was 3100 px tall with every parameter listed and the figures stacked).
    assert 800 < height < 1600, height
    # A broken image must be caught, and the height measure sees what is added to the page.
    broken = text.replace("</body>", "<img src='data:image/png;base64,AAAA'>"
                          "<div style='height:3000px'></div></body>")
    ok, total, taller = rendered(broken, tmp_path, "broken")
    assert (ok, total) == (expected, expected + 1)
    assert taller >= height + 3000


# ---------------------------------------------------------------------- ursa.metrics.evaluate


def test_evaluate_an_autoencoder_with_and_without_labels(fitted):
    model, X, y = fitted
    plain = ursa.metrics.evaluate(model, X)
    assert list(plain) == ["relative reconstruction error", "per-sequence error (scaled), median"]
    assert all(isinstance(v, float) for v in plain.values())
    assert plain["per-sequence error (scaled), median"] == float(
        np.median(model.decision_function(X)))
    labelled = ursa.metrics.evaluate(model, X, y)
    assert 0 <= labelled["k-means NMI on embeddings (k=2)"] <= 1
    assert labelled == ursa.metrics.evaluate(model, X, y)  # deterministic


def test_evaluate_a_clusterer_against_labels():
    X, y = load_ucr("UnitTest")
    model = ursa.RecurrentClusterer(n_clusters=2, hidden_size=4, latent_dim=2, epochs=2,
                                    clustering_epochs=1, n_threads=1, random_state=0).fit(X)
    with without_figures():
        training = report_sections(model, X, y)[1]
    # Its two stages, each with its own loss, are named with their lengths.
    assert "Trained pretrain stage 2 epochs, cluster stage 1 epoch (" in training.text
    assert "reconstruction error + 1.0 x KL(p || q)" in training.text
    metrics = ursa.metrics.evaluate(model, X, y)
    labels = model.predict(X)
    assert metrics["NMI vs labels"] == ursa.metrics.normalized_mutual_info_score(y, labels)
    assert metrics["cluster accuracy vs labels"] == ursa.metrics.cluster_accuracy(y, labels)
    assert 0.5 <= metrics["mean assignment confidence"] <= 1
    assert "NMI vs labels" not in ursa.metrics.evaluate(model, X)


def test_evaluate_a_detector_per_series():
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(300) * 0.3)[:, None] + 0.05 * rng.normal(size=(300, 1))
    series[200:205] += 3
    truth = np.zeros(300, dtype=int)
    truth[200:205] = 1
    model = ursa.SequenceAnomalyDetector(window=16, hidden_size=4, epochs=1, n_threads=1,
                                         random_state=0).fit(series)
    one = ursa.metrics.evaluate(model, series, truth)
    scores = model.decision_function(series)
    assert one["AUC-ROC"] == ursa.metrics.auc_roc(truth, scores)
    assert one["flagged steps"] == int(model.predict(series).sum())
    assert one["threshold"] == float(model.threshold_)
    two = ursa.metrics.evaluate(model, [series, series[:150]], [truth, truth[:150]])
    assert two["series 0: AUC-ROC"] == one["AUC-ROC"]
    assert "series 1: AUC-ROC" not in two  # no anomaly in the second series' labels
    assert two["series 1: flagged steps"] == int(model.predict(series[:150]).sum())


def test_evaluate_a_gan_without_the_post_hoc_scores():
    from ursa.datasets import make_sines

    X = make_sines(16, 8, 2, random_state=0)
    model = ursa.RecurrentGAN(hidden_size=4, latent_dim=2, num_layers=1, iterations=2,
                              pretrain_iterations=2, batch_size=8, n_threads=1,
                              random_state=0).fit(X)
    metrics = ursa.metrics.evaluate(model, X, random_state=3, generation_scores=False)
    synthetic = model.sample(16, n_timesteps=8, random_state=3)
    assert list(metrics) == ["mean, real / synthetic", "std, real / synthetic"]
    assert metrics["mean, real / synthetic"] == (float(np.mean(X)), float(np.mean(synthetic)))


def test_evaluate_refuses_unknown_and_unfitted_estimators(fitted):
    from sklearn.exceptions import NotFittedError

    _, X, _ = fitted
    with pytest.raises(TypeError, match="not an ursa estimator"):
        ursa.metrics.evaluate(object(), X)
    with pytest.raises(NotFittedError):
        ursa.metrics.evaluate(ursa.SequenceAutoencoder(), X)


def test_metric_text_is_what_the_report_shows():
    Metric = ursa.metrics.Metric
    assert Metric("a", 0.123456).text == "0.1235" and Metric("a", 12).text == "12"
    assert Metric("a", (1.0, 0.5)).text == "1 / 0.5" and Metric("a", None).text == "-"


def test_every_estimator_has_a_report_and_an_evaluation():
    from ursa.estimators import task_names
    from ursa.metrics._evaluate import _JOBS
    from ursa.report import _SECTIONS

    assert list(_SECTIONS) == list(_JOBS) == task_names()
