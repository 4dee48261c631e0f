"""ursa.data.read_audio: audio files as MFCC / log-mel frame sequences (the audio extra)."""

import json
import sys

import numpy as np
import pytest
import soundfile

import ursa
from ursa.data import AudioSequences, read_audio

RATE = 8000


def _write(path, seconds, rate=RATE, kind="tone", freq=440.0, channels=1):
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    if kind == "tone":
        x = 0.5 * np.sin(2 * np.pi * freq * t)
    else:
        x = 0.1 * np.random.default_rng(int(freq)).standard_normal(n)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    soundfile.write(str(path), x, rate, subtype="PCM_16")
    return path


@pytest.fixture
def folder(tmp_path):
    """Four 8 kHz WAV files: tones and noise of different lengths."""
    _write(tmp_path / "b_tone.wav", 0.5, freq=300.0)
    _write(tmp_path / "a_tone.wav", 0.25, freq=1200.0)
    _write(tmp_path / "c_noise.wav", 0.4, kind="noise", freq=7.0)
    _write(tmp_path / "d_noise.wav", 0.3, kind="noise", freq=8.0)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def _frames(seconds, window=200, hop=80):
    return 1 + (int(round(seconds * RATE)) - window) // hop


def test_folder_shapes_frame_counts_and_order(folder):
    X = read_audio(folder)
    assert isinstance(X, AudioSequences) and isinstance(X, list)
    names = [p.rsplit("/", 1)[-1] for p in X.paths]
    assert names == ["a_tone.wav", "b_tone.wav", "c_noise.wav", "d_noise.wav"]
    # 25 ms window = 200 samples, 10 ms hop = 80 samples at 8 kHz; no padding past the end.
    assert [x.shape for x in X] == [(_frames(s), 13) for s in (0.25, 0.5, 0.4, 0.3)]
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in X)
    assert X.frontend == {"kind": "audio", "version": 1, "features": "mfcc", "n_mfcc": 13,
                          "n_mels": 40, "frame_length": 0.025, "hop_length": 0.010,
                          "pre_emphasis": 0.97, "sample_rate": 8000, "normalize": None,
                          "n_fft": 256, "window": "hamming"}
    assert "4 files" in repr(X)
    # one path, and a list of paths, read the same frames
    one = read_audio(folder / "b_tone.wav")
    assert len(one) == 1 and np.array_equal(one[0], X[1])
    two = read_audio([folder / "d_noise.wav", str(folder / "a_tone.wav")])
    assert np.array_equal(two[0], X[3]) and np.array_equal(two[1], X[0])


def test_logmel_width_and_mfcc_is_its_cepstrum(folder):
    import scipy.fft

    logmel = read_audio(folder, features="logmel", n_mels=24)
    mfcc = read_audio(folder, n_mels=24, n_mfcc=10)
    assert [x.shape[1] for x in logmel] == [24] * 4
    assert [x.shape[1] for x in mfcc] == [10] * 4
    assert [len(x) for x in logmel] == [len(x) for x in mfcc]
    expected = scipy.fft.dct(logmel[1].astype(np.float64), type=2, norm="ortho", axis=1)[:, :10]
    np.testing.assert_allclose(mfcc[1], expected, rtol=1e-4, atol=1e-3)
    # A 300 Hz tone puts its energy in a low band, a 1200 Hz one higher up.
    assert logmel[1].mean(axis=0).argmax() < logmel[0].mean(axis=0).argmax()


def test_stereo_is_mixed_down(tmp_path):
    _write(tmp_path / "mono.wav", 0.3)
    _write(tmp_path / "stereo.wav", 0.3, channels=2)
    X = read_audio(tmp_path)
    np.testing.assert_allclose(X[0], X[1], atol=1e-5)


def test_frontend_reproduces_the_features(folder, tmp_path):
    X = read_audio(folder, features="logmel", n_mels=20, frame_length=0.032, hop_length=0.016,
                   pre_emphasis=0.0)
    assert X.frontend["n_fft"] == 256 and X.frontend["sample_rate"] == RATE
    frontend = json.loads(json.dumps(X.frontend))  # JSON-able, and survives the round trip
    again = read_audio(X.paths, frontend=frontend)
    assert again.frontend == X.frontend
    assert all(np.array_equal(a, b) for a, b in zip(X, again))
    # a setting that agrees with the front-end is fine; one that contradicts it is not
    read_audio(X.paths[:1], frontend=frontend, n_mels=20)
    with pytest.raises(ValueError, match=r"n_mels=30 \(the front-end has 20\)"):
        read_audio(X.paths[:1], frontend=frontend, n_mels=30)
    # the front-end fixes the sample rate
    other = _write(tmp_path / "rate16k.wav", 0.3, rate=16000)
    with pytest.raises(ValueError, match="16000 Hz.*front-end.*8000 Hz.*[Rr]esample"):
        read_audio([other], frontend=frontend)


@pytest.mark.parametrize("change, key", [
    ({"colour": 1}, "colour"),
    ({"n_mels": 0}, "n_mels"),
    ({"frame_length": -1.0}, "frame_length"),
    ({"pre_emphasis": 1.5}, "pre_emphasis"),
    ({"n_fft": 512}, "n_fft"),
    ({"window": "hann"}, "window"),
    ({"features": "spectrogram"}, "features"),
    ({"version": 2}, "version"),
    ({"kind": "text"}, "kind"),
    ({"sample_rate": None}, "sample_rate"),
])
def test_bad_frontend_names_the_key(folder, change, key):
    frontend = dict(read_audio(folder / "a_tone.wav").frontend, **change)
    with pytest.raises(ValueError, match=key):
        read_audio(folder / "a_tone.wav", frontend=frontend)
    missing = dict(frontend)
    missing.pop("hop_length")
    with pytest.raises(ValueError, match="hop_length"):
        read_audio(folder / "a_tone.wav", frontend=missing)


def test_fits_an_estimator_unchanged_and_the_model_keeps_the_frontend(folder, tmp_path):
    X = read_audio(folder)
    model = ursa.SequenceAutoencoder(hidden_size=8, latent_dim=2, epochs=1, device="cpu",
                                     verbose=False, random_state=0).fit(X)
    codes = model.transform(X)
    assert codes.shape == (4, 2) and np.isfinite(codes).all()
    assert model.audio_frontend_ == X.frontend
    loaded = ursa.load(model.save(tmp_path / "audio.ursa"))
    assert loaded.audio_frontend_ == X.frontend
    again = read_audio(X.paths, frontend=loaded.audio_frontend_)
    np.testing.assert_array_equal(loaded.transform(again), codes)
    assert not hasattr(model.fit(np.zeros((3, 5))), "audio_frontend_")


def test_cmvn_standardises_each_file_and_is_part_of_the_frontend(folder):
    X = read_audio(folder, normalize="cmvn")
    for frames in X:
        np.testing.assert_allclose(frames.mean(axis=0), 0.0, atol=1e-4)
        assert np.all((np.abs(frames.std(axis=0) - 1.0) < 1e-3) | (frames.std(axis=0) < 1e-6))
    assert X.frontend["normalize"] == "cmvn"
    np.testing.assert_array_equal(read_audio(X.paths, frontend=X.frontend)[0], X[0])
    with pytest.raises(ValueError, match="normalize must be None or 'cmvn'"):
        read_audio(folder, normalize="zscore")


def test_another_sample_rate_is_refused(folder):
    _write(folder / "e_fast.wav", 0.3, rate=16000)
    with pytest.raises(ValueError) as info:
        read_audio(folder)
    message = str(info.value)
    assert "e_fast.wav" in message and "16000 Hz" in message and "8000 Hz" in message
    assert "a_tone.wav" in message and "sox" in message and "librosa.resample" in message
    with pytest.raises(ValueError, match="16000 Hz, but sample_rate=8000"):
        read_audio([folder / "e_fast.wav"], sample_rate=8000)
    assert read_audio([folder / "e_fast.wav"]).frontend["sample_rate"] == 16000


def test_corrupt_empty_and_short_files(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match=r"corrupt\.wav.*cannot decode"):
        read_audio(bad)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0), RATE)
    with pytest.raises(ValueError, match=r"empty\.wav.*no audio samples"):
        read_audio(empty)
    short = _write(tmp_path / "short.wav", 0.02)  # 160 samples < a 200-sample frame
    with pytest.raises(ValueError, match=r"short\.wav.*shorter than one frame"):
        read_audio(short)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio([tmp_path / "missing.wav"])


def test_bad_source_and_settings(tmp_path, folder):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="without .wav files"):
        read_audio(tmp_path / "nothing")
    with pytest.raises(ValueError, match="empty list"):
        read_audio([])
    with pytest.raises(TypeError, match="source"):
        read_audio(3)
    with pytest.raises(ValueError, match="features must be one of 'mfcc', 'logmel'"):
        read_audio(folder, features="mel")
    with pytest.raises(ValueError, match="n_mfcc=13 is more than n_mels=10"):
        read_audio(folder, n_mels=10)
    with pytest.raises(ValueError, match="hop_length"):
        read_audio(folder, hop_length=0)
    with pytest.raises(ValueError, match="sample_rate"):
        read_audio(folder, sample_rate=8000.5)


def test_missing_extra_says_how_to_install(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(ImportError, match=r"pip install 'ursa\[audio\]'"):
        read_audio(folder)
