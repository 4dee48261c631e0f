"""Audio files as feature sequences: log-mel or MFCC frames, one sequence per file.

Needs the ``audio`` extra (``pip install 'ursa[audio]'``: soundfile decodes, librosa builds the
mel filters and the cepstrum). The front-end of version 1, for a sample rate ``sr``:

1. decode the file to float samples in [-1, 1]; a file with several channels is mixed down to
   mono by averaging them (a recording's channels carry the same speech, and averaging keeps
   every file one sequence of one kind of frame);
2. pre-emphasis ``y[n] = x[n] - pre_emphasis * x[n - 1]`` (``y[0] = x[0]``);
3. frames of ``round(frame_length * sr)`` samples every ``round(hop_length * sr)`` samples,
   the first at sample 0 and none padded past the end, so a file of ``n`` samples gives
   ``1 + (n - window) // hop`` frames;
4. a symmetric Hamming window (``numpy.hamming``), then the power spectrum of a
   ``n_fft``-point FFT, ``n_fft`` the next power of two at least the window (the frame
   zero-padded at its end);
5. ``n_mels`` mel bands from 0 Hz to ``sr / 2`` (``librosa.feature.melspectrogram`` on that
   spectrum: librosa's default Slaney mel scale and area-normalised filters), natural log with a
   floor of ``1e-10`` (``"logmel"``);
6. for ``"mfcc"``, the first ``n_mfcc`` coefficients of the orthonormal DCT-II of the log-mel
   frame (``librosa.feature.mfcc`` on it), the 0th (overall level) included;
7. with ``normalize="cmvn"``, each feature standardised over the file's own frames (cepstral
   mean and variance normalisation).

Every setting that changes the numbers is in :attr:`AudioSequences.frontend`, a JSON-able dict;
``read_audio(files, frontend=that_dict)`` computes the same features for new files.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np

from ._files import _as_path, _existing_file

__all__ = ["AudioSequences", "read_audio"]

FEATURES = ("mfcc", "logmel")
WINDOWS = ("hamming",)
FRONTEND_VERSION = 1
# The log's floor: a band with (nearly) no energy reads log(1e-10) = -23 rather than -inf.
# librosa's power_to_db uses the same floor (its amin).
LOG_FLOOR = 1e-10
_DEFAULTS = {"features": "mfcc", "n_mfcc": 13, "n_mels": 40, "frame_length": 0.025,
             "hop_length": 0.010, "pre_emphasis": 0.97, "sample_rate": None, "normalize": None}
_FRONTEND_KEYS = ("kind", "version", "features", "n_mfcc", "n_mels", "frame_length",
                  "hop_length", "pre_emphasis", "sample_rate", "normalize", "n_fft", "window")
NORMALIZATIONS = (None, "cmvn")
_MISSING_EXTRA = ("read_audio needs the audio extra: pip install 'ursa[audio]' "
                  "(soundfile and librosa)")
_RESAMPLE_ADVICE = ("Resample the files to one rate first (for example `sox in.wav -r {rate} "
                    "out.wav`, or librosa.resample), or pass only files of one rate.")


class AudioSequences(list):
    """Feature sequences read from audio files, one float32 ``(n_frames, n_features)`` array per
    file, in the order of :attr:`paths`.

    A ``list`` of arrays, so every estimator that accepts a list of ``(T_i, n_features)``
    arrays takes it as it is.

    Attributes
    ----------
    paths : list of str
        The file each sequence was read from.
    frontend : dict
        Every setting that produced the features (JSON-able); pass it back as
        ``read_audio(..., frontend=...)`` to compute the same features for other files.
    """

    def __init__(self, arrays=(), paths=(), frontend=None):
        super().__init__(arrays)
        self.paths = [str(p) for p in paths]
        self.frontend = dict(frontend or {})

    def __repr__(self) -> str:
        width = self[0].shape[1] if len(self) else 0
        kind = self.frontend.get("features", "?")
        rate = self.frontend.get("sample_rate", "?")
        return (f"AudioSequences({len(self)} files, {kind}, {width} features per frame, "
                f"{rate} Hz)")


def read_audio(source, *, features="mfcc", n_mfcc=13, n_mels=40, frame_length=0.025,
               hop_length=0.010, pre_emphasis=0.97, sample_rate=None, normalize=None,
               frontend=None):
    """Read audio files as sequences of log-mel or MFCC frames, one sequence per file.

    The defaults are the common speech front-end: speech is close to stationary over a 25 ms
    window, a 10 ms hop gives 100 frames per second, 40 mel bands cover 8 to 16 kHz audio, and 13
    cepstral coefficients keep the spectral envelope (what is said) while dropping the fine
    harmonic structure (the pitch). The module docstring gives every step.

    Parameters
    ----------
    source : str, os.PathLike or list of them
        A folder (every ``*.wav`` in it, any case, sorted by name; subfolders are not read), one
        audio file, or a list of files (any format soundfile reads: WAV, FLAC, OGG, ...).
        A file with several channels is mixed down to mono by averaging them.
    features : {"mfcc", "logmel"}, default="mfcc"
        ``"mfcc"``: ``n_mfcc`` cepstral coefficients per frame, decorrelated and compact, the
        usual input of speech models. ``"logmel"``: the ``n_mels`` log band energies.
    n_mfcc : int, default=13
        Cepstral coefficients kept (with ``"mfcc"``); at most ``n_mels``.
    n_mels : int, default=40
        Mel bands between 0 Hz and half the sample rate.
    frame_length : float, default=0.025
        Window length in seconds (25 ms); the FFT size is the next power of two at least the
        window's samples (256 at 8 kHz).
    hop_length : float, default=0.010
        Seconds between the starts of two frames (10 ms).
    pre_emphasis : float, default=0.97
        Coefficient ``a`` of the filter ``y[n] = x[n] - a x[n-1]``, which lifts the high
        frequencies that voiced speech loses at about 6 dB per octave; 0 turns it off.
    sample_rate : int, optional
        The sample rate (Hz) every file must have. None takes the first file's. Files are never
        resampled: a file at another rate is an error.
    normalize : {None, "cmvn"}, default=None
        ``"cmvn"`` standardises each feature over the file's own frames (cepstral mean and
        variance normalisation): it removes what is constant over a recording (the channel,
        the loudness, much of the speaker's voice), so that recordings group by what is said
        rather than by who says it or with what microphone (docs/audio.md). None keeps the
        features as computed, which is what grouping by speaker needs.
    frontend : dict, optional
        The :attr:`AudioSequences.frontend` of an earlier call: its settings replace the ones
        above (a setting passed as well must agree with it), so new files get exactly the same
        features, and every file must have its sample rate.

    Returns
    -------
    AudioSequences
        A list of float32 arrays of shape ``(n_frames, n_features)``, frames in time order, with
        ``paths`` and ``frontend``.

    Raises
    ------
    ImportError
        soundfile or librosa is not installed.
    FileNotFoundError
        A path that does not exist.
    ValueError
        An empty folder or list; a file that cannot be decoded, is empty, shorter than one
        frame, or at another sample rate than the others; an invalid setting or ``frontend``.
    """
    given = {"features": features, "n_mfcc": n_mfcc, "n_mels": n_mels,
             "frame_length": frame_length, "hop_length": hop_length,
             "pre_emphasis": pre_emphasis, "sample_rate": sample_rate, "normalize": normalize}
    if frontend is None:
        settings = _check_settings(given, "")
    else:
        settings = _check_frontend(frontend)
        clash = [k for k, v in given.items() if v != _DEFAULTS[k] and v != settings[k]]
        if clash:
            raise ValueError(
                "frontend= fixes every setting, and "
                + ", ".join(f"{k}={given[k]!r} (the front-end has {settings[k]!r})"
                            for k in clash)
                + " disagree; drop them or drop frontend=.")
    paths = _audio_paths(source)
    try:
        import librosa
        import soundfile
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA) from exc

    arrays, sizes = [], None
    rate = settings["sample_rate"]
    if frontend is not None:
        expected = f"the front-end (frontend=) is for {rate} Hz"
    else:
        expected = f"sample_rate={rate}"
    for path in paths:
        samples, file_rate = _decode(soundfile, path)
        if rate is None:
            rate, expected = file_rate, f"the first file, '{paths[0]}', has {file_rate} Hz"
        if file_rate != rate:
            raise ValueError(f"'{path}': sample rate {file_rate} Hz, but {expected}; every file "
                             f"must share one sample rate. {_RESAMPLE_ADVICE.format(rate=rate)}")
        if sizes is None:
            sizes = _frame_sizes(settings, rate, frontend)
        frames = _features(librosa, samples, path, rate, settings, *sizes)
        if settings["normalize"] == "cmvn":
            frames = frames.astype(np.float64)
            deviation = frames.std(axis=0)
            frames = (frames - frames.mean(axis=0)) / np.where(deviation > 0, deviation, 1.0)
        arrays.append(frames.astype(np.float32, copy=False))
    window, hop, n_fft = sizes
    out = dict(settings, kind="audio", version=FRONTEND_VERSION, sample_rate=int(rate),
               n_fft=n_fft, window="hamming")
    return AudioSequences(arrays, paths, {k: out[k] for k in _FRONTEND_KEYS})


# --------------------------------------------------------------------------------------------
# settings


def _check_settings(values: dict, where: str) -> dict:
    """The front-end settings of ``values`` checked and normalised; ``where`` prefixes the names
    in messages (``"frontend"`` for a dict)."""

    def name(key):
        return f"{where}[{key!r}]" if where else key

    out = {}
    features = values["features"]
    if not isinstance(features, str) or features not in FEATURES:
        raise ValueError(f"{name('features')} must be one of {', '.join(map(repr, FEATURES))}, "
                         f"got {features!r}.")
    out["features"] = features
    for key in ("n_mfcc", "n_mels"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name(key)} must be a positive integer, got {value!r}.")
        out[key] = int(value)
    if features == "mfcc" and out["n_mfcc"] > out["n_mels"]:
        raise ValueError(f"{name('n_mfcc')}={out['n_mfcc']} is more than "
                         f"{name('n_mels')}={out['n_mels']}: the cepstrum of {out['n_mels']} "
                         "bands has that many coefficients. Lower n_mfcc or raise n_mels.")
    for key in ("frame_length", "hop_length"):
        value = values[key]
        if (isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
                or value <= 0):
            raise ValueError(f"{name(key)} must be a positive number of seconds (e.g. "
                             f"{_DEFAULTS[key]}), got {value!r}.")
        out[key] = float(value)
    value = values["pre_emphasis"]
    if (isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
            or not 0 <= value < 1):
        raise ValueError(f"{name('pre_emphasis')} must be a number in [0, 1) (0 turns it off), "
                         f"got {value!r}.")
    out["pre_emphasis"] = float(value)
    value = values["sample_rate"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)
                              or value < 1):
        raise ValueError(f"{name('sample_rate')} must be a positive integer (Hz)"
                         f"{'' if where else ' or None'}, got {value!r}.")
    out["sample_rate"] = None if value is None else int(value)
    if values["normalize"] not in NORMALIZATIONS:
        raise ValueError(f"{name('normalize')} must be None or 'cmvn', got "
                         f"{values['normalize']!r}.")
    out["normalize"] = values["normalize"]
    return out


def _check_frontend(frontend) -> dict:
    """A ``frontend`` dict checked key by key; the settings it fixes."""
    if not isinstance(frontend, dict):
        raise TypeError(f"frontend must be a dict (an AudioSequences.frontend), got "
                        f"{type(frontend).__name__}.")
    unknown = [k for k in frontend if k not in _FRONTEND_KEYS]
    if unknown:
        raise ValueError(f"frontend has unknown key(s) {', '.join(map(repr, unknown))}; it holds "
                         f"exactly {', '.join(map(repr, _FRONTEND_KEYS))}.")
    missing = [k for k in _FRONTEND_KEYS if k not in frontend]
    if missing:
        raise ValueError(f"frontend lacks the key(s) {', '.join(map(repr, missing))}; pass the "
                         "frontend of an AudioSequences as it is.")
    if frontend["kind"] != "audio":
        raise ValueError(f"frontend['kind'] must be 'audio', got {frontend['kind']!r}: this is "
                         "not an audio front-end.")
    version = frontend["version"]
    integer = isinstance(version, Integral) and not isinstance(version, bool)
    if not integer or version != FRONTEND_VERSION:
        newer = " (upgrade ursa to read a newer one)" if integer and version > 1 else ""
        raise ValueError(f"frontend['version'] is {version!r}; this ursa reads version "
                         f"{FRONTEND_VERSION}{newer}.")
    if frontend["window"] not in WINDOWS:
        raise ValueError(f"frontend['window'] must be one of {', '.join(map(repr, WINDOWS))}, "
                         f"got {frontend['window']!r}.")
    if frontend["sample_rate"] is None:
        raise ValueError("frontend['sample_rate'] must be a positive integer (Hz), got None.")
    settings = _check_settings(frontend, "frontend")
    _frame_sizes(settings, settings["sample_rate"], frontend)  # checks n_fft
    return settings


def _frame_sizes(settings: dict, rate: int, frontend) -> tuple[int, int, int]:
    """(window, hop, n_fft) in samples at ``rate``; ValueError when a frame or hop is shorter
    than a sample, or when a ``frontend``'s n_fft is not the one the window implies."""
    window = int(round(settings["frame_length"] * rate))
    hop = int(round(settings["hop_length"] * rate))
    where = "frontend['{}']" if frontend is not None else "{}"
    if window < 2:
        raise ValueError(f"{where.format('frame_length')}={settings['frame_length']} s is "
                         f"{window} sample(s) at {rate} Hz; a frame needs at least 2. Use a "
                         "longer frame_length.")
    if hop < 1:
        raise ValueError(f"{where.format('hop_length')}={settings['hop_length']} s is less than "
                         f"one sample at {rate} Hz. Use a longer hop_length.")
    n_fft = 1 << (window - 1).bit_length()
    if frontend is not None:
        given = frontend["n_fft"]
        if isinstance(given, bool) or not isinstance(given, Integral) or given != n_fft:
            raise ValueError(f"frontend['n_fft'] is {given!r}, but a window of {window} samples "
                             f"({settings['frame_length']} s at {rate} Hz) takes n_fft={n_fft}, "
                             "the next power of two; pass the front-end as read_audio made it.")
    return window, hop, n_fft


# --------------------------------------------------------------------------------------------
# files


def _audio_paths(source) -> list[str]:
    """The files ``source`` names, as strings: a folder's ``*.wav`` sorted by name, one file, or
    a list of files."""
    if isinstance(source, (str, os.PathLike)):
        p = _as_path(source, "source")
        if p.is_dir():
            files = sorted((f for f in p.iterdir() if f.suffix.lower() == ".wav" and f.is_file()),
                           key=lambda f: f.name)
            if not files:
                raise ValueError(f"source '{p}' is a folder without .wav files; pass a folder "
                                 "that holds them, or the audio files themselves.")
            return [str(f) for f in files]
        return [str(_existing_file(p))]
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("source is an empty list; pass at least one audio file.")
        out = []
        for i, item in enumerate(source):
            if not isinstance(item, (str, os.PathLike)):
                raise TypeError(f"source[{i}] must be a str or os.PathLike path, got "
                                f"{type(item).__name__}.")
            out.append(str(_existing_file(item)))
        return out
    raise TypeError(f"source must be a folder, a file path or a list of file paths, got "
                    f"{type(source).__name__}.")


def _decode(soundfile, path: str) -> tuple[np.ndarray, int]:
    """The samples of one file, mono float64, and its sample rate."""
    try:
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise ValueError(f"'{path}': cannot decode this audio file ({reason}). Check that it is a "
                         "complete WAV (or another format libsndfile reads).") from None
    if data.size == 0:
        raise ValueError(f"'{path}': holds no audio samples. Drop the empty file.")
    samples = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    if not np.isfinite(samples).all():
        raise ValueError(f"'{path}': holds non-finite samples (NaN or inf) at sample "
                         f"{int(np.flatnonzero(~np.isfinite(samples))[0])}. Repair the file.")
    return samples, int(rate)


def _features(librosa, samples: np.ndarray, path: str, rate: int, settings: dict, window: int,
              hop: int, n_fft: int) -> np.ndarray:
    """One file's frames as float32 (n_frames, n_features)."""
    if len(samples) < window:
        raise ValueError(
            f"'{path}': {len(samples)} samples ({1000 * len(samples) / rate:.1f} ms) is shorter "
            f"than one frame ({window} samples, frame_length={settings['frame_length']} s at "
            f"{rate} Hz). Drop the file or use a shorter frame_length.")
    a = settings["pre_emphasis"]
    if a:
        samples = np.concatenate([samples[:1], samples[1:] - a * samples[:-1]])
    frames = librosa.util.frame(np.ascontiguousarray(samples), frame_length=window,
                                hop_length=hop, axis=0) * np.hamming(window)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    mel = librosa.feature.melspectrogram(S=power.T, sr=rate, n_fft=n_fft,
                                         n_mels=settings["n_mels"])
    values = np.log(np.maximum(mel, LOG_FLOOR))
    if settings["features"] == "mfcc":
        values = librosa.feature.mfcc(S=values, n_mfcc=settings["n_mfcc"])
    return np.ascontiguousarray(values.T, dtype=np.float32)
