"""The HTML report: self-contained, and every image renders in a real headless Chromium."""

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
from ursa.report import TASKS, build_report, report_sections, task_of, without_figures, write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage"]

# Appended to a copy of the report: after load, count the images that decoded.
PROBE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-rendered', ok + '/' + images.length);
});
</script>"""


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


def test_task_table_covers_the_four_jobs():
    assert set(TASKS) == {"autoencoder", "cluster", "gan", "detect"}
    assert task_of(ursa.SequenceAutoencoder()).name == "autoencoder"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_every_image_renders_in_headless_chromium(report_file, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium); required in CI")
    text = report_file.read_text(encoding="utf-8")
    expected = len(_images(text))
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    # A broken image must be caught: the same probe on a page with one bad image.
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("</body>", "<img src='data:image/png;base64,AAAA'>"
                                   + PROBE + "</body>"), encoding="utf-8")

    def rendered(page):
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / ('profile-' + page.stem)}",
             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120)
        match = re.search(r'data-rendered="(\d+)/(\d+)"', result.stdout)
        assert match, f"chromium gave no result: {result.stderr[-2000:]}"
        return int(match.group(1)), int(match.group(2))

    assert rendered(probed) == (expected, expected)
    assert rendered(broken) == (expected, expected + 1)
