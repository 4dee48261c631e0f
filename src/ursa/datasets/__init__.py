"""Built-in data: small UCR/UEA sets shipped with the package, and generated sequences.

Shipped sets (public research data from the UCR/UEA archive; cite the original authors):
``"BasicMotions"`` (80 cases, 100 steps, 6 channels, 4 classes) and ``"UnitTest"`` (42 cases,
24 steps, 1 channel, 2 classes); and for anomaly detection, series 135 of the UCR Anomaly Archive
(KDD Cup 2021, Wu and Keogh), ``"InternalBleeding16"``: 7501 points, a clean training prefix of 1200
points and one labelled anomaly.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from ..data import read_ts

__all__ = ["SHIPPED", "load_ucr", "load_ucr_anomaly", "make_sines", "write_examples"]

SHIPPED = ("BasicMotions", "UnitTest")
# UCR Anomaly Archive file names: NNN_UCR_Anomaly_NAME_TRAINEND_BEGIN_END (1-based, inclusive).
_ANOMALY_FILES = {"InternalBleeding16": "135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt"}


def load_ucr(name: str, split: str = "all"):
    """Load a shipped UCR/UEA set.

    Parameters
    ----------
    name : {"BasicMotions", "UnitTest"}
    split : {"all", "train", "test"}
        "all" concatenates the train and test files (the clustering protocol).

    Returns
    -------
    X : ndarray of shape (n_sequences, n_timesteps, n_features)
    y : ndarray of str, shape (n_sequences,)
    """
    if name not in SHIPPED:
        raise ValueError(f"name must be one of {SHIPPED}, got {name!r}. Read other files with "
                         "ursa.data.read_ts(path).")
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}.")
    parts = ["TRAIN", "TEST"] if split == "all" else [split.upper()]
    folder = resources.files(__package__) / "data"
    loaded = []
    for part in parts:
        with resources.as_file(folder / f"{name}_{part}.ts") as path:
            loaded.append(read_ts(path))
    X = np.concatenate([x for x, _ in loaded])
    y = np.concatenate([y for _, y in loaded])
    return X, y


def load_ucr_anomaly(name: str = "InternalBleeding16"):
    """Load a shipped series of the UCR Anomaly Archive.

    Returns
    -------
    series : ndarray of shape (T,), float32
    labels : ndarray of shape (T,), int64
        1 on the labelled anomaly (the archive's 1-based inclusive range, here 0-based).
    train_length : int
        Length of the clean prefix to fit on (the archive's protocol).
    """
    if name not in _ANOMALY_FILES:
        raise ValueError(f"name must be one of {tuple(_ANOMALY_FILES)}, got {name!r}.")
    filename = _ANOMALY_FILES[name]
    train_end, begin, end = (int(v) for v in filename[:-4].split("_")[-3:])
    with resources.as_file(resources.files(__package__) / "data" / filename) as path:
        series = np.loadtxt(path, dtype=np.float64).astype(np.float32)
    labels = np.zeros(len(series), dtype=np.int64)
    labels[begin - 1:end] = 1
    return series, labels, train_end


def make_sines(n_sequences: int = 1000, n_timesteps: int = 24, n_features: int = 5,
               random_state=None) -> np.ndarray:
    """Sines as in the TimeGAN protocol: each feature sin(f t + p), f and p ~ U(0, 0.1), then
    rescaled to [0, 1] by (x + 1) / 2. Returns float32 (n_sequences, n_timesteps, n_features)."""
    rng = np.random.default_rng(random_state)
    t = np.arange(n_timesteps)[None, :, None]
    freq = rng.uniform(0, 0.1, size=(n_sequences, 1, n_features))
    phase = rng.uniform(0, 0.1, size=(n_sequences, 1, n_features))
    return ((np.sin(freq * t + phase) + 1) / 2).astype(np.float32)


# BasicMotions' six channels (UEA: a smartwatch's accelerometer and gyroscope).
_MOTION_CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")


def write_examples(folder) -> dict[str, str]:
    """Write the files the README's command-line examples read into ``folder`` (created if
    needed) and return ``{file name: path}``.

    * ``BasicMotions_TRAIN.ts``, ``BasicMotions_TEST.ts``: the shipped UEA set as it is;
    * ``motions.csv``: the same 80 recordings in long form, one row per step: ``id``
      (``walk_03``, ...), ``time``, the channels by name (``accel_x`` ... ``gyro_z``) and
      ``activity``, the class;
    * ``sines.npy``: 1000 sines of 24 steps x 5 features (TimeGAN's protocol, seed 0);
    * ``bleeding_train.csv``: the clean training prefix of the shipped UCR anomaly series
      (``time``, ``value``); ``bleeding.csv``: the whole series; ``bleeding_labels.csv``: its
      0/1 anomaly label per step (column ``label``).
    """
    import pandas as pd
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    source = resources.files(__package__) / "data"
    for part in ("TRAIN", "TEST"):
        name = f"BasicMotions_{part}.ts"
        (folder / name).write_bytes((source / name).read_bytes())
        written[name] = str(folder / name)

    X, y = load_ucr("BasicMotions")
    counts: dict[str, int] = {}
    frames = []
    for values, label in zip(X, y):
        counts[label] = counts.get(label, 0) + 1
        frame = pd.DataFrame(values, columns=list(_MOTION_CHANNELS))
        frame.insert(0, "time", np.arange(len(values)))
        frame.insert(0, "id", f"{str(label).lower()}_{counts[label]:02d}")
        frame["activity"] = label
        frames.append(frame)
    pd.concat(frames).to_csv(folder / "motions.csv", index=False)
    written["motions.csv"] = str(folder / "motions.csv")

    np.save(folder / "sines.npy", make_sines(1000, random_state=0))
    written["sines.npy"] = str(folder / "sines.npy")

    series, labels, train = load_ucr_anomaly()
    whole = pd.DataFrame({"time": np.arange(len(series)), "value": series})
    for name, frame in (("bleeding_train.csv", whole.iloc[:train]), ("bleeding.csv", whole),
                        ("bleeding_labels.csv", pd.DataFrame({"label": labels}))):
        frame.to_csv(folder / name, index=False)
        written[name] = str(folder / name)
    return written
