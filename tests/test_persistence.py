"""One model format: round trips and hostile files."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import ursa
from ursa import ModelFileError, SequenceAutoencoder
from conftest import DEVICE, make_sines

X = make_sines(16, 10, 2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    est = SequenceAutoencoder(hidden_size=8, latent_dim=3, epochs=2, random_state=0, device=DEVICE).fit(X)
    path = tmp_path_factory.mktemp("m") / "model.ursa"
    est.save(path)
    return est, path


def test_round_trip_reproduces_outputs(saved):
    est, path = saved
    loaded = ursa.load(path)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    np.testing.assert_array_equal(loaded.scaler_.offset_, est.scaler_.offset_)
    assert loaded.n_features_in_ == 2 and loaded.history_ == est.history_


def test_a_loaded_model_computes_where_its_device_parameter_says(saved):
    est, path = saved
    loaded = ursa.load(path)
    assert loaded.device == DEVICE
    assert next(loaded.network_.parameters()).device == next(est.network_.parameters()).device


def test_load_device_overrides_placement_and_parameter(saved):
    est, path = saved
    on_cpu = ursa.load(path, device="cpu")
    assert on_cpu.device == "cpu" and next(on_cpu.network_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(on_cpu.transform(X), est.transform(X), rtol=1e-3, atol=1e-4)
    assert ursa.load(path, device="auto").device == "auto"


@pytest.mark.parametrize("device", ["tpu", "gpu", 3, "cuda:x"])
def test_load_refuses_an_unknown_device(saved, device):
    with pytest.raises(ValueError, match=r"load\(device=.*'cpu', 'cuda' or 'cuda:N'"):
        ursa.load(saved[1], device=device)


def test_a_model_saved_for_a_gpu_loads_on_a_machine_without_one(saved, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    est, _ = saved
    gpu_file = tmp_path / "gpu.ursa"
    est.set_params(device="cuda").save(gpu_file)  # as a GPU fit would have saved it
    est.set_params(device=DEVICE)
    loaded = ursa.load(gpu_file)
    assert loaded.device == "cuda" and next(loaded.network_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    with pytest.raises(ValueError, match="CUDA is not available"):
        ursa.load(gpu_file, device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):  # a refit asks for the GPU
        loaded.fit(X)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        ursa.load(tmp_path / "nothing.ursa")


def test_save_into_a_missing_folder_names_it(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*absent' does not exist"):
        saved[0].save(tmp_path / "absent" / "model.ursa")
    assert not (tmp_path / "absent").exists()


def test_truncated_file(saved, tmp_path):
    data = saved[1].read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.ursa"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated|corrupted"):
            ursa.load(bad)


def test_flipped_weight_byte_fails_checksum(saved, tmp_path):
    data = bytearray(saved[1].read_bytes())
    data[-3] ^= 0x40
    bad = tmp_path / "flipped.ursa"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        ursa.load(bad)


def _rewrite_metadata(path, out, **changes):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = dict(fh.metadata())
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    meta.update(changes)
    save_file(arrays, str(out), metadata=meta)
    return out


def test_wrong_format_version(saved, tmp_path):
    bad = _rewrite_metadata(saved[1], tmp_path / "v.ursa", format_version="99")
    with pytest.raises(ModelFileError, match="format version '99'"):
        ursa.load(bad)


def test_edited_document_fails_checksum(saved, tmp_path):
    from safetensors import safe_open

    with safe_open(str(saved[1]), framework="numpy") as fh:
        doc = json.loads(fh.metadata()["document"])
    doc["params"]["hidden_size"] = 999
    bad = _rewrite_metadata(saved[1], tmp_path / "d.ursa", document=json.dumps(doc))
    with pytest.raises(ModelFileError, match="checksum"):
        ursa.load(bad)


def test_unknown_class_is_refused(saved, tmp_path):
    bad = _rewrite_metadata(saved[1], tmp_path / "c.ursa", **{"class": "os.system"})
    with pytest.raises(ModelFileError, match="checksum|unknown estimator class"):
        ursa.load(bad)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not an ursa model"):
        ursa.load(path)


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle payload ran')",))


def test_pickle_payload_never_runs(tmp_path):
    path = tmp_path / "evil.ursa"
    path.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ModelFileError):
        ursa.load(path)


def test_oversized_header_length(tmp_path):
    path = tmp_path / "huge.ursa"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(ModelFileError):
        ursa.load(path)


def test_save_is_atomic_and_leaves_no_temporary(saved, tmp_path):
    est, _ = saved
    path = tmp_path / "m.ursa"
    est.save(path)
    est.save(path)  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["m.ursa"]


# ------------------------------------------------------------------ the one estimator table


def test_every_estimator_of_the_table_is_public_registered_and_found_by_each_key():
    from ursa.estimators import ESTIMATORS, entry_for, estimator_class, task_names

    assert task_names() == ["autoencoder", "cluster", "gan", "detect"]
    for entry in ESTIMATORS:
        cls = estimator_class(entry.task)
        assert cls is estimator_class(entry.class_name) is getattr(ursa, entry.class_name)
        assert cls.__module__ == entry.module and entry.class_name in ursa.__all__
        assert entry_for(cls) is entry_for(cls()) is entry_for(entry.class_name) is entry


def test_the_table_refuses_unknown_names_and_classes():
    from ursa.estimators import entry_for
    from ursa.persistence import register

    with pytest.raises(ValueError, match="'forest' is not an ursa estimator; known: "
                                         "SequenceAutoencoder"):
        entry_for("forest")
    with pytest.raises(TypeError, match="'object' is not an ursa estimator"):
        entry_for(object())

    class Impostor:
        pass

    with pytest.raises(TypeError, match="not in ursa's estimator table"):
        register(Impostor)


def test_load_imports_the_module_the_table_names_and_import_ursa_stays_light(tmp_path):
    """`import ursa` imports neither matplotlib nor the lazily imported estimators; loading a
    model of one imports its module from the table, and nothing else."""
    import subprocess
    import sys

    from ursa import RecurrentClusterer

    path = tmp_path / "cl.ursa"
    RecurrentClusterer(n_clusters=2, hidden_size=4, latent_dim=2, epochs=1, clustering_epochs=1,
                       random_state=0, device=DEVICE).fit(X).save(path)
    code = ("import sys, ursa\n"
            "lazy = ('matplotlib', 'ursa.estimators.gan', 'ursa.estimators.clusterer', "
            "'ursa.estimators.anomaly', 'ursa.report')\n"
            "assert not [m for m in lazy if m in sys.modules], sys.modules.keys()\n"
            f"model = ursa.load({str(path)!r})\n"
            "assert type(model).__name__ == 'RecurrentClusterer'\n"
            "assert 'ursa.estimators.clusterer' in sys.modules\n"
            "assert 'ursa.estimators.gan' not in sys.modules and 'matplotlib' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_describe_model_reads_the_header(saved):
    est, path = saved
    summary = ursa.persistence.describe_model(path)
    assert summary["class"] == "SequenceAutoencoder" and summary["kind"] == "autoencoder"
    assert summary["format_version"] == ursa.persistence.FORMAT_VERSION
    assert summary["n_features_in"] == 2 and summary["epochs_trained"] == len(est.history_)
    assert summary["params"]["latent_dim"] == 3 and summary["n_weights"] > 0
    assert summary["feature_names_in"] is None


def test_feature_names_round_trip_and_show_in_the_header(saved, tmp_path):
    est, _ = saved
    named = tmp_path / "named.ursa"
    est.feature_names_in_ = np.array(["speed", "heading"], dtype=object)
    try:
        est.save(named)
    finally:
        del est.feature_names_in_
    assert list(ursa.load(named).feature_names_in_) == ["speed", "heading"]
    assert ursa.persistence.describe_model(named)["feature_names_in"] == ["speed", "heading"]
    est.feature_names_in_ = np.array(["speed"], dtype=object)  # one name for two features
    try:
        with pytest.raises(ValueError, match="feature_names_in_ must be 2 distinct strings"):
            est.save(tmp_path / "bad.ursa")
    finally:
        del est.feature_names_in_
    assert not (tmp_path / "bad.ursa").exists()


def test_refit_forgets_the_earlier_datas_feature_names():
    X = np.random.default_rng(0).normal(size=(8, 5, 2)).astype(np.float32)
    est = ursa.SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=1, random_state=0,
                                   verbose=False).fit(X)
    est.feature_names_in_ = np.array(["a", "b"], dtype=object)
    est.fit(X[:, :, :1])
    assert not hasattr(est, "feature_names_in_")
