"""Tests for the readers and writers of ursa.data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ursa.data import (
    read_csv,
    read_numpy,
    read_parquet,
    read_sequences,
    read_ts,
    to_frame,
    write_csv,
    write_numpy,
    write_parquet,
)
from ursa.data._sequences import as_sequences

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# name: (train cases, test cases, (min length, max length), channels, classes)
UCR_TABLE = {
    "ArrowHead": (36, 175, (251, 251), 1, 3),
    "BasicMotions": (40, 40, (100, 100), 6, 4),
    "JapaneseVowels": (270, 370, (7, 29), 12, 9),
    "OSULeaf": (200, 242, (427, 427), 1, 6),
    "UnitTest": (20, 22, (24, 24), 1, 2),
}


@pytest.fixture(scope="module")
def ucr_dir() -> Path:
    path = SHARED_DATA / "ucr"
    if not path.is_dir():
        pytest.skip(f"shared benchmark data not found at {path} (expected next to the repository)")
    return path


def _first_case(path: Path):
    """The first case of a .ts file, parsed by hand: list of channel value lists and the label."""
    lines = path.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().lower() == "@data") + 1
    line = next(l for l in lines[start:] if l.strip() and l[0] not in "#%")
    *channels, label = line.strip().split(":")
    return [[float(v) for v in ch.split(",")] for ch in channels], label


def _lengths(X) -> list[int]:
    return [len(a) for a in X]


def _assert_same_sequences(a, b):
    """Both inputs hold the same sequences (any form); values compared exactly, NaN == NaN."""
    la, lb = as_sequences(a, allow_nan=True).to_list(), as_sequences(b, allow_nan=True).to_list()
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# ==========================================================================================
# .ts: the shared UCR/UEA files


@pytest.mark.parametrize("name", sorted(UCR_TABLE))
@pytest.mark.parametrize("split", ["TRAIN", "TEST"])
def test_ucr_files_match_table(ucr_dir, name, split):
    n_train, n_test, (min_len, max_len), n_channels, n_classes = UCR_TABLE[name]
    X, y = read_ts(ucr_dir / name / f"{name}_{split}.ts")
    n = n_train if split == "TRAIN" else n_test
    assert len(X) == n and len(y) == n
    assert y.dtype.kind == "U"
    if min_len == max_len:
        assert isinstance(X, np.ndarray)
        assert X.shape == (n, max_len, n_channels)
        assert X.dtype == np.float32
    else:
        assert isinstance(X, list)
        assert all(a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == n_channels for a in X)
        lengths = _lengths(X)
        assert min_len <= min(lengths) and max(lengths) <= max_len
    assert not any(np.isnan(a).any() for a in X)  # none of these files has missing values
    assert len(set(y)) == n_classes


def test_every_shared_ts_file_reads(ucr_dir):
    files = sorted(ucr_dir.glob("*/*.ts"))
    assert len(files) >= 10
    for path in files:
        X, y = read_ts(path)
        channels, label = _first_case(path)
        first = np.asarray(X[0])
        assert first.shape == (len(channels[0]), len(channels)), path.name
        expected = np.array(channels, dtype=np.float32).T
        np.testing.assert_array_equal(first, expected, err_msg=path.name)
        assert y[0] == label


def test_ucr_known_values(ucr_dir):
    X, y = read_ts(ucr_dir / "ArrowHead" / "ArrowHead_TRAIN.ts")
    assert X[0, 0, 0] == np.float32(-1.9630089)
    assert set(y) == {"0", "1", "2"}

    X, y = read_ts(ucr_dir / "UnitTest" / "UnitTest_TRAIN.ts")
    np.testing.assert_array_equal(X[0, :3, 0], [573.0, 375.0, 301.0])
    assert y[0] == "1" and set(y) == {"1", "2"}

    X, y = read_ts(ucr_dir / "BasicMotions" / "BasicMotions_TEST.ts")
    assert X[0, 20, 0] == np.float32(-5.8e-5)  # written as -5.8E-5 in the file
    assert set(y) == {"Standing", "Running", "Walking", "Badminton"}


def test_japanese_vowels_variable_length(ucr_dir):
    X_train, y_train = read_ts(ucr_dir / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    X_test, _ = read_ts(ucr_dir / "JapaneseVowels" / "JapaneseVowels_TEST.ts")
    assert isinstance(X_train, list) and isinstance(X_test, list)
    assert (min(_lengths(X_train)), max(_lengths(X_train))) == (7, 26)
    assert (min(_lengths(X_test)), max(_lengths(X_test))) == (7, 29)
    assert X_train[0].shape == (20, 12)
    assert sorted(set(y_train)) == [str(i) for i in range(1, 10)]
    seqs = as_sequences(X_train)  # the internal form accepts what the reader returns
    assert seqs.n_features == 12 and not seqs.equal_length


def test_read_sequences_on_ts(ucr_dir):
    X, y = read_sequences(ucr_dir / "UnitTest" / "UnitTest_TEST.ts")
    assert X.shape == (22, 24, 1) and len(y) == 22
    X2, _ = read_sequences(str(ucr_dir / "UnitTest" / "UnitTest_TEST.ts"), format="ts")
    np.testing.assert_array_equal(X, X2)


# ==========================================================================================
# .ts: small files written here

HEADER = "@problemName Toy\n@timeStamps false\n@univariate false\n@dimensions 2\n"


def _write(tmp_path, text, name="toy.ts") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ts_missing_values_and_ragged_channels(tmp_path):
    path = _write(
        tmp_path,
        "# comment\n"
        + HEADER
        + "@missing true\n@classLabel true a b\n@data\n"
        "1,?,3:4,5,6:a\n"
        "1,2,3:4,5:b\n"  # channel 1 shorter: padded with NaN
        "\n"
        "7,8,9:?,?,?:a\n",
    )
    X, y = read_ts(path)
    assert X.shape == (3, 3, 2) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], [[1, 4], [np.nan, 5], [3, 6]])
    np.testing.assert_array_equal(X[1], [[1, 4], [2, 5], [3, np.nan]])
    assert np.isnan(X[2, :, 1]).all()
    assert list(y) == ["a", "b", "a"]


def test_ts_variable_length_univariate_without_labels(tmp_path):
    path = _write(
        tmp_path,
        "@problemName Toy\n@univariate true\n@equalLength false\n@classLabel false\n@DATA\n"
        "1.5,2.5\n1,2,3,4\n0.25\n",
    )
    X, y = read_ts(path)
    assert y is None
    assert isinstance(X, list) and _lengths(X) == [2, 4, 1]
    np.testing.assert_array_equal(X[0], [[1.5], [2.5]])
    assert X[2].shape == (1, 1)


def test_ts_dimensions_inferred_and_target_label(tmp_path):
    path = _write(tmp_path, "@problemName R\n@targetLabel true\n@data\n1,2:3,4:0.5\n5,6:7,8:-1\n")
    X, y = read_ts(path)
    assert X.shape == (2, 2, 2)
    np.testing.assert_array_equal(y, [0.5, -1.0])


def test_ts_class_label_line_numbers_count_comments(tmp_path):
    text = "# one\n# two\n" + HEADER + "@classLabel true a\n@data\n1:2:a\n% c\n1:2:z\n"
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        read_ts(path)
    msg = str(info.value)
    assert str(path) in msg and "line 11:" in msg and "'z'" in msg and "a" in msg


@pytest.mark.parametrize(
    "body, line, words",
    [
        # no @data at all
        (HEADER + "@classLabel true a\n", None, ["no @data"]),
        # wrong number of channels vs @dimensions 2 (line 4)
        (HEADER + "@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n", 8, ["1 channels", "2"]),
        (HEADER + "@classLabel true a\n@data\n1,2:3,4:5,6:a\n", 7, ["3 channels", "@dimensions"]),
        # non-numeric value
        (HEADER + "@classLabel true a\n@data\n1,2:3,x4:a\n", 7,
         ["'x4'", "channel 1", "position 1"]),
        # empty value inside a channel
        (HEADER + "@classLabel true a\n@data\n1,,2:3,4,5:a\n", 7, ["empty value"]),
        # unknown class label
        (HEADER + "@classLabel true a b\n@data\n1:2:a\n1:2:c\n", 8, ["'c'", "@classLabel"]),
        # timestamps
        ("@problemName T\n@timeStamps true\n@data\n(0,1):a\n", 2, ["timestamped", "not supported"]),
        # bad boolean
        ("@problemName T\n@univariate maybe\n@data\n1\n", 2, ["@univariate", "maybe"]),
        # bad @dimensions
        ("@problemName T\n@dimensions two\n@data\n1\n", 2, ["@dimensions", "two"]),
        # data before @data
        ("@problemName T\n1,2,3\n@data\n", 2, ["before the @data"]),
        # header tag after @data
        (HEADER + "@classLabel false\n@data\n1:2\n@dimensions 2\n", 8, ["after the @data"]),
        # no cases
        (HEADER + "@classLabel false\n@data\n# nothing\n", 6, ["no cases"]),
        # label only, no channels
        ("@problemName T\n@classLabel true a\n@data\na\n", 4, ["one field"]),
        # univariate file with two channels
        ("@problemName T\n@univariate true\n@classLabel false\n@data\n1,2:3,4\n", 5,
         ["2 channels", "@univariate true on line 2"]),
        # channel count inferred from the first case
        ("@problemName T\n@classLabel false\n@data\n1:2\n1:2:3\n", 5, ["first case (line 4)"]),
    ],
)
def test_ts_malformed(tmp_path, body, line, words):
    path = _write(tmp_path, body)
    with pytest.raises(ValueError) as info:
        read_ts(path)
    msg = str(info.value)
    assert str(path) in msg
    if line is not None:
        assert f"line {line}:" in msg
    for word in words:
        assert word in msg


def test_ts_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ts"):
        read_ts(tmp_path / "nope.ts")


# ==========================================================================================
# CSV and Parquet

TABLE_FORMATS = [
    pytest.param(write_csv, read_csv, ".csv", id="csv"),
    pytest.param(write_parquet, read_parquet, ".parquet", id="parquet"),
]


def _random_equal(n=5, T=13, C=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, T, C)).astype(np.float32)


def _random_list(lengths=(4, 9, 1, 6), C=2, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(t, C)) * 10.0 ** rng.integers(-6, 6)).astype(np.float32)
            for t in lengths]


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_long_round_trip_equal_length_multivariate(tmp_path, write, read, ext):
    X = _random_equal()
    X[0, 0, 0] = np.float32(1 / 3)
    X[1, 2, 1] = np.float32(1e-30)
    X[2, 5, 2] = np.float32(3.4e38)
    path = tmp_path / f"x{ext}"
    write(path, X)
    back = read(path)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, X)  # exact float32 round trip
    df = pd.read_csv(path) if ext == ".csv" else pd.read_parquet(path)
    assert list(df.columns) == ["id", "time", "f0", "f1", "f2"]
    assert len(df) == 5 * 13


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_long_round_trip_variable_length(tmp_path, write, read, ext):
    X = _random_list()
    path = tmp_path / f"x{ext}"
    write(path, X, feature_names=["a", "b"])
    back = read(path)
    assert isinstance(back, list) and _lengths(back) == [4, 9, 1, 6]
    _assert_same_sequences(back, X)
    # NaN-padded input gives the same file content
    padded = as_sequences(X).to_padded()
    write(path, padded, feature_names=["a", "b"])
    _assert_same_sequences(read(path), X)


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_long_keeps_missing_values_inside_sequences(tmp_path, write, read, ext):
    X = _random_equal(n=2, T=4, C=2)
    X[0, 1, 0] = np.nan
    path = tmp_path / f"x{ext}"
    write(path, X)
    back = read(path)
    assert back.shape == X.shape
    np.testing.assert_array_equal(back, X)


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_wide_round_trip(tmp_path, write, read, ext):
    path = tmp_path / f"w{ext}"
    X = _random_equal(n=4, T=7, C=1)
    write(path, X[:, :, 0], layout="wide")  # 2-D univariate input
    back = read(path, layout="wide")
    assert isinstance(back, np.ndarray) and back.shape == (4, 7, 1)
    np.testing.assert_array_equal(back, X)

    X = _random_list(lengths=(3, 8, 5), C=1)
    write(path, X, layout="wide")
    back = read(path, layout="wide")
    assert isinstance(back, list) and _lengths(back) == [3, 8, 5]
    _assert_same_sequences(back, X)


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_wide_rejects_multivariate(tmp_path, write, read, ext):
    with pytest.raises(ValueError, match="univariate"):
        write(tmp_path / f"w{ext}", _random_equal(C=2), layout="wide")


@pytest.mark.parametrize("write, read, ext", TABLE_FORMATS)
def test_real_data_round_trip(ucr_dir, tmp_path, write, read, ext):
    X, _ = read_ts(ucr_dir / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    path = tmp_path / f"jv{ext}"
    write(path, X)
    _assert_same_sequences(read(path), X)
    X, _ = read_ts(ucr_dir / "ArrowHead" / "ArrowHead_TRAIN.ts")
    write(path, X, layout="wide")
    np.testing.assert_array_equal(read(path, layout="wide"), X)


def _save(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


@pytest.mark.parametrize("read, ext", [(read_csv, ".csv"), (read_parquet, ".parquet")])
def test_long_groups_by_first_appearance_and_sorts_by_time(tmp_path, read, ext):
    df = pd.DataFrame(
        {
            "series": ["b", "a", "b", "a", "b", "a"],
            "t": [2, 1, 0, 0, 1, 2],
            "x": [12.0, 1.0, 10.0, 0.0, 11.0, 2.0],
            "z": [-12.0, -1.0, -10.0, -0.0, -11.0, -2.0],
            "label": ["B", "A", "B", "A", "B", "A"],
        }
    )
    path = tmp_path / f"long{ext}"
    _save(df, path)
    X, y = read(path, id_column="series", time_column="t", label_column="label")
    assert X.shape == (2, 3, 2)
    np.testing.assert_array_equal(X[0, :, 0], [10, 11, 12])  # "b" first: it appears first
    np.testing.assert_array_equal(X[1, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(X[0, :, 1], [-10, -11, -12])
    assert list(y) == ["B", "A"]
    X = read(path, id_column="series", time_column="t", feature_columns=["z"])
    assert X.shape == (2, 3, 1)
    X = read(path, id_column="series", time_column="t", feature_columns="x", label_column=None)
    np.testing.assert_array_equal(X[1, :, 0], [0, 1, 2])


def test_long_single_sequence_without_id_or_time(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"timestamp": ["2020-01-02", "2020-01-01"], "value": [2.0, 1.0]}).to_csv(
        path, index=False
    )
    X = read_csv(path, id_column=None, time_column="timestamp")
    np.testing.assert_array_equal(X[0, :, 0], [1.0, 2.0])  # ISO dates sort as strings
    X = read_csv(path, id_column=None, time_column=None, feature_columns=["value"])
    np.testing.assert_array_equal(X[0, :, 0], [2.0, 1.0])  # file order


def test_wide_with_id_and_label(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("id,label,0,1,2\n7,x,1.0,2.0,3.0\n8,y,4.0,,\n")
    X, y = read_csv(path, layout="wide", label_column="label")
    assert _lengths(X) == [3, 1]
    np.testing.assert_array_equal(X[1], [[4.0]])
    assert list(y) == ["x", "y"]


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "df, kwargs, words",
    [
        (pd.DataFrame({"key": [0], "time": [0], "x": [1.0]}), {}, ["'id'", "id_column", "key"]),
        (pd.DataFrame({"id": [0], "t": [0], "x": [1.0]}), {}, ["'time'", "time_column"]),
        (pd.DataFrame({"id": [0], "time": [0], "x": [1.0]}), {"label_column": "lab"},
         ["'lab'", "label_column"]),
        (pd.DataFrame({"id": [0], "time": [0], "x": [1.0]}), {"feature_columns": ["x", "q"]},
         ["'q'", "feature_columns"]),
        (pd.DataFrame({"id": [0, 0], "time": [0, 1], "x": [1.0, 2.0], "note": ["ok", "bad"]}), {},
         ["'note'", "not numeric", "row 0"]),
        (pd.DataFrame({"id": [0, 0, 1], "time": [0, 0, 0], "x": [1.0, 2.0, 3.0]}), {},
         ["duplicate", "'id'=0", "'time'=0", "row 1"]),
        (pd.DataFrame({"id": [0, 0], "time": [0, 1], "x": [1.0, 2.0], "y": ["a", "b"]}),
         {"label_column": "y"}, ["'y'", "constant"]),
        (pd.DataFrame({"id": [0, 0], "time": [0, 1], "x": [1.0, 2.0]}), {"layout": "tall"},
         ["layout", "'tall'"]),
        (pd.DataFrame({"id": [0], "0": [np.nan], "1": [np.nan]}), {"layout": "wide"},
         ["row 0", "no values"]),
    ],
)
def test_table_errors(tmp_path, ext, df, kwargs, words):
    path = tmp_path / f"bad{ext}"
    _save(df, path)
    reader = read_csv if ext == ".csv" else read_parquet
    with pytest.raises(ValueError) as info:
        reader(path, **kwargs)
    msg = str(info.value)
    if kwargs.get("layout") != "tall":
        assert str(path) in msg
    for word in words:
        assert word in msg


def test_writer_errors(tmp_path):
    X = _random_equal(n=2, T=3, C=2)
    with pytest.raises(ValueError, match="layout"):
        write_csv(tmp_path / "a.csv", X, layout="tall")
    with pytest.raises(ValueError, match="feature_names has 1 names"):
        write_csv(tmp_path / "a.csv", X, feature_names=["a"])
    with pytest.raises(ValueError, match="unique"):
        write_parquet(tmp_path / "a.parquet", X, feature_names=["a", "a"])
    with pytest.raises(ValueError, match="'time'"):
        write_csv(tmp_path / "a.csv", X, feature_names=["x", "time"])
    with pytest.raises(ValueError, match=r"X\[1\]"):
        write_csv(tmp_path / "a.csv", [np.ones((2, 2)), np.ones((2, 3))])
    with pytest.raises(TypeError, match="X"):
        write_numpy(tmp_path / "a.npy", "not data")


def test_csv_nan_written_as_empty_cells(tmp_path):
    path = tmp_path / "w.csv"
    write_csv(path, [np.array([1.0, 2.0, 3.0]), np.array([4.0])], layout="wide")
    assert path.read_text().splitlines() == ["id,0,1,2", "0,1,2,3", "1,4,,"]


# ==========================================================================================
# NumPy


def test_numpy_round_trip(tmp_path):
    X = _random_equal()
    path = tmp_path / "x.npy"
    write_numpy(path, X)
    back = read_numpy(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, X)

    X = _random_list()
    path = tmp_path / "data.bin"  # written at exactly this path, no ".npy" appended
    write_numpy(path, X)
    assert path.exists() and not (tmp_path / "data.bin.npy").exists()
    back = read_numpy(path)
    assert back.shape == (4, 9, 2) and back.dtype == np.float32
    assert np.isnan(back[2, 1:]).all()
    _assert_same_sequences(back, X)


def test_npz(tmp_path):
    one = tmp_path / "one.npz"
    np.savez(one, data=np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(read_numpy(one), np.arange(6.0).reshape(2, 3))
    many = tmp_path / "many.npz"
    np.savez(many, X=np.zeros((2, 3)), y=np.array([1, 2]))
    np.testing.assert_array_equal(read_numpy(many, key="y"), [1, 2])
    with pytest.raises(ValueError) as info:
        read_numpy(many)
    assert "2 arrays" in str(info.value) and "X, y" in str(info.value)
    assert "key=" in str(info.value) and str(many) in str(info.value)
    with pytest.raises(ValueError, match="'Z'.*X, y"):
        read_numpy(many, key="Z")


def test_numpy_errors(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="only applies to .npz"):
        read_numpy(path, key="a")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="unpickling"):
        read_numpy(obj)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match="junk.npy: not a .npy or .npz file") as info:
        read_numpy(junk)
    assert "unpickling" not in str(info.value)  # garbage is not reported as Python objects
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a .npy or .npz file"):
        read_numpy(empty)


# ==========================================================================================
# read_sequences


def test_read_sequences_dispatch(tmp_path):
    X = _random_equal(n=3, T=4, C=2)
    write_csv(tmp_path / "a.csv", X)
    write_parquet(tmp_path / "a.parquet", X)
    write_parquet(tmp_path / "a.pq", X)
    write_numpy(tmp_path / "a.npy", X)
    np.savez(tmp_path / "a.npz", X=X)
    write_csv(tmp_path / "a.txt", X)
    for name in ("a.csv", "a.parquet", "a.pq", "a.npy", "a.npz", "A.CSV"):
        if name == "A.CSV":
            (tmp_path / name).write_bytes((tmp_path / "a.csv").read_bytes())
        np.testing.assert_array_equal(read_sequences(tmp_path / name), X, err_msg=name)
    np.testing.assert_array_equal(read_sequences(tmp_path / "a.txt", format="csv"), X)
    np.testing.assert_array_equal(read_sequences(tmp_path / "a.npz", key="X"), X)
    X2, y = read_sequences(tmp_path / "a.csv", label_column="id")
    np.testing.assert_array_equal(y, [0, 1, 2])


def test_read_sequences_errors(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError) as info:
        read_sequences(path)
    msg = str(info.value)
    assert "'.xlsx'" in msg and ".ts" in msg and ".parquet" in msg and "format=" in msg
    with pytest.raises(ValueError, match="format must be one of"):
        read_sequences(path, format="excel")
    missing = tmp_path / "missing.csv"
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_sequences(missing)
    with pytest.raises(TypeError, match="path"):
        read_sequences(42)


# ==========================================================================================
# the entry points the command line uses: format_of, read_dataset, read_labels, to_frame,
# write_table, write_sequences, table_columns


def test_format_of():
    from ursa.data import format_of

    cases = {"a.ts": "ts", "a.CSV": "csv", "a.csv.gz": "csv", "a.pq": "parquet",
             "a.parquet": "parquet", "a.npy": "npy", "a.npz": "npz", "a.txt": None, "a": None,
             "a.tar.gz": None}
    for name, expected in cases.items():
        assert format_of(name) == expected, name
        assert format_of(Path(name)) == expected, name


def test_read_dataset_finds_id_and_time_columns_and_returns_labels(tmp_path):
    from ursa.data import read_dataset

    X = _random_list(lengths=(3, 5), C=2)
    frame = to_frame(X)
    frame.insert(2, "kind", np.where(frame["id"] == 0, "up", "down"))
    frame.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    got, y = read_dataset(tmp_path / "shuffled.csv", label_column="kind")
    assert sorted(len(s) for s in got) == [3, 5]  # grouped by id, sorted by time
    for seq, label in zip(got, y):
        expected = X[0] if label == "up" else X[1]
        np.testing.assert_allclose(seq, expected, rtol=1e-6)
    # No id column: the whole file is one sequence, in row order; no labels: y is None.
    pd.DataFrame({"value": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "series.csv", index=False)
    series, none = read_dataset(tmp_path / "series.csv")
    assert series.shape == (1, 3, 1) and none is None
    # --format overrides the extension; a .ts file carries its own labels.
    (tmp_path / "series.txt").write_bytes((tmp_path / "series.csv").read_bytes())
    np.testing.assert_array_equal(read_dataset(tmp_path / "series.txt", "CSV")[0], series)


def test_read_labels(tmp_path):
    from ursa.data import read_labels

    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    pd.DataFrame({"other": [5, 6], "label": ["a", "b"]}).to_csv(tmp_path / "y.csv", index=False)
    pd.DataFrame({"first": [1, 2]}).to_parquet(tmp_path / "y.parquet")
    np.testing.assert_array_equal(read_labels(tmp_path / "y.npy"), [0, 1, 1])
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv"), ["a", "b"])
    np.testing.assert_array_equal(read_labels(tmp_path / "y.parquet"), [1, 2])
    with pytest.raises(FileNotFoundError, match="No labels file"):
        read_labels(tmp_path / "none.npy")
    (tmp_path / "y.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="use .npy, .csv or .parquet"):
        read_labels(tmp_path / "y.txt")
    pd.DataFrame({"label": []}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ValueError, match="holds no labels"):
        read_labels(tmp_path / "empty.csv")


def test_to_frame_is_what_the_table_writers_write(tmp_path):
    X = _random_list(lengths=(2, 4), C=2)
    frame = to_frame(X, feature_names=["a", "b"])
    assert list(frame.columns) == ["id", "time", "a", "b"] and len(frame) == 6
    write_csv(tmp_path / "x.csv", X, feature_names=["a", "b"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "x.csv"), frame, check_dtype=False)
    wide = to_frame(_random_list(lengths=(2, 3), C=1), layout="wide")
    assert list(wide.columns) == ["id", "0", "1", "2"] and np.isnan(wide.iloc[0, 3])


def test_write_table_by_extension_and_to_a_stream(tmp_path):
    import io

    from ursa.data import write_table

    frame = pd.DataFrame({"id": [0, 1], "z0": np.array([0.1, 1 / 3], dtype=np.float32)})
    write_table(tmp_path / "t.csv", frame)
    write_table(tmp_path / "t.parquet", frame)
    write_table(tmp_path / "t.npy", frame)
    write_table(tmp_path / "v.npy", frame, frame[["z0"]].to_numpy())
    stream = io.StringIO()
    write_table(stream, frame)
    assert stream.getvalue() == (tmp_path / "t.csv").read_text()
    read = pd.read_csv(tmp_path / "t.csv")
    assert read["z0"].astype(np.float32).tolist() == frame["z0"].tolist()  # 9 digits: exact
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), frame.to_numpy(np.float64))
    assert np.load(tmp_path / "v.npy").dtype == np.float32
    with pytest.raises(ValueError, match="cannot tell the output format"):
        write_table(tmp_path / "t.txt", frame)


def test_write_sequences_by_extension_with_labels(tmp_path):
    import io

    from ursa.data import write_sequences

    X = _random_list(lengths=(2, 3), C=2)
    write_sequences(tmp_path / "s.npy", X, labels=["a", "b"])
    padded = np.load(tmp_path / "s.npy")
    assert padded.shape == (2, 3, 2) and np.isnan(padded[0, 2]).all()
    write_sequences(tmp_path / "s.parquet", X, labels=["a", "b"])
    frame = pd.read_parquet(tmp_path / "s.parquet")
    assert list(frame.columns) == ["id", "time", "label", "f0", "f1"]
    assert frame["label"].tolist() == ["a", "a", "b", "b", "b"]
    stream = io.StringIO()
    write_sequences(stream, X)
    assert stream.getvalue().splitlines()[0] == "id,time,f0,f1"


def test_table_columns(tmp_path):
    from ursa.data import table_columns

    X = _random_equal(n=2, T=3, C=2)
    write_csv(tmp_path / "a.csv", X)
    write_parquet(tmp_path / "a.parquet", X)
    assert table_columns(tmp_path / "a.csv") == ["id", "time", "f0", "f1"]
    assert table_columns(tmp_path / "a.parquet") == ["id", "time", "f0", "f1"]
    write_numpy(tmp_path / "a.npy", X)
    with pytest.raises(ValueError, match="only CSV and Parquet"):
        table_columns(tmp_path / "a.npy")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="cannot read the header"):
        table_columns(tmp_path / "bad.parquet")


# ==========================================================================================
# read_dataset(return_names=True): what ties results back to the file


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_read_dataset_returns_ids_feature_names_and_times(tmp_path, ext):
    from ursa.data import DataFile, read_dataset

    frame = pd.DataFrame({
        "trip": ["trip_5", "trip_2", "trip_5", "trip_2", "trip_5"],
        "t": [20, 10, 0, 0, 10],
        "heading": [2.0, 11.0, 0.0, 10.0, 1.0],
        "speed": [-2.0, -11.0, -0.0, -10.0, -1.0],
        "driver": ["a", "b", "a", "b", "a"],
    })
    path = tmp_path / f"trips{ext}"
    _save(frame, path)
    got = read_dataset(path, id_column="trip", time_column="t", label_column="driver",
                       return_names=True)
    assert isinstance(got, DataFile)
    assert got.ids.tolist() == ["trip_5", "trip_2"]  # first-appearance order, as text
    assert got.feature_names == ["heading", "speed"]
    assert [t.tolist() for t in got.times] == [[0, 10, 20], [0, 10]]
    assert got.y.tolist() == ["a", "b"]
    np.testing.assert_array_equal(got.X[0][:, 0], [0.0, 1.0, 2.0])
    # feature_columns chooses and orders the features; without return_names, (X, y) as before.
    X, y = read_dataset(path, id_column="trip", time_column="t", feature_columns=["speed"])
    assert y is None and [len(s) for s in X] == [3, 2]
    np.testing.assert_array_equal(X[1][:, 0], [-10.0, -11.0])
    named = read_dataset(path, id_column="trip", time_column="t",
                         feature_columns=["speed", "heading"], return_names=True)
    assert named.feature_names == ["speed", "heading"]
    # Integer ids stay integers; no id column: no ids (results number the sequences).
    numbered = frame.assign(trip=[7, 3, 7, 3, 7]).drop(columns="driver")
    _save(numbered, path)
    assert read_dataset(path, id_column="trip", return_names=True).ids.tolist() == [7, 3]
    one = read_dataset(path, feature_columns=["speed"], return_names=True)
    assert one.ids is None and one.times is None and one.X.shape == (1, 5, 1)
    with pytest.raises(ValueError, match=r"duplicate rows for 't'=0 .*row 3.*id_column="):
        read_dataset(path, time_column="t")  # one sequence (no id column) with repeated times


def test_read_dataset_names_of_wide_and_numpy_files(tmp_path):
    from ursa.data import read_dataset

    path = tmp_path / "wide.csv"
    path.write_text("name,0,1,2\nw9,1.0,2.0,3.0\nw3,4.0,,\n")
    wide = read_dataset(path, layout="wide", id_column="name", return_names=True)
    assert wide.ids.tolist() == ["w9", "w3"] and wide.feature_names is None and wide.times is None
    assert _lengths(wide.X) == [3, 1]
    path.write_text("name,0,1\nw9,1.0,2.0\nw9,4.0,5.0\n")
    with pytest.raises(ValueError, match=r"id 'w9' appears twice in column 'name'.*row 1"):
        read_dataset(path, layout="wide", id_column="name")
    write_numpy(tmp_path / "x.npy", _random_equal(n=3, T=4, C=2))
    stored = read_dataset(tmp_path / "x.npy", return_names=True)
    assert stored.X.shape == (3, 4, 2)
    assert (stored.y, stored.ids, stored.feature_names, stored.times) == (None,) * 4
    with pytest.raises(ValueError, match=r"id_column=, feature_columns= only apply to CSV"):
        read_dataset(tmp_path / "x.npy", id_column="id", feature_columns=["a"])


def test_a_text_column_error_suggests_the_id_or_the_numeric_columns(tmp_path):
    from ursa.data import read_dataset

    path = tmp_path / "trips.csv"
    pd.DataFrame({"trip": ["a", "a", "b"], "speed": [1.0, 2.0, 3.0], "n": [1, 2, 3]}) \
        .to_csv(path, index=False)
    with pytest.raises(ValueError) as info:
        read_dataset(path)
    message = str(info.value)
    assert "feature column 'trip' is not numeric" in message and "row 0" in message
    assert "id_column='trip'" in message and "feature_columns=['speed', 'n']" in message
    assert [len(s) for s in read_dataset(path, id_column="trip")[0]] == [2, 1]
    frame = pd.DataFrame({"id": [0, 0], "speed": [1.0, 2.0], "note": ["x", "y"]})
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"'note' is not numeric.*Choose the numeric feature "
                                         r"columns with feature_columns=\['speed'\]") as info:
        read_dataset(path)  # the id column is known: no id advice
    assert "id_column=" not in str(info.value)


def test_write_sequences_with_feature_names(tmp_path):
    from ursa.data import write_sequences

    X = _random_list(lengths=(2, 3), C=2)
    write_sequences(tmp_path / "s.csv", X, labels=["a", "b"], feature_names=["speed", "heading"])
    frame = pd.read_csv(tmp_path / "s.csv")
    assert list(frame.columns) == ["id", "time", "label", "speed", "heading"]
    with pytest.raises(ValueError, match=r"feature_names\[1\] is 'label'"):
        write_sequences(tmp_path / "t.csv", X, labels=["a", "b"], feature_names=["x", "label"])
    with pytest.raises(ValueError, match="one name per feature"):
        write_sequences(tmp_path / "t.csv", X, feature_names=["x"])


def test_wide_id_column(tmp_path):
    """read_csv's default id column is optional in the wide layout; one that read_dataset is
    told to use must exist."""
    from ursa.data import read_dataset

    path = tmp_path / "wide.csv"
    path.write_text("0,1\n1.0,2.0\n3.0,4.0\n")
    assert read_csv(path, layout="wide").shape == (2, 2, 1)
    assert read_dataset(path, layout="wide", return_names=True).ids is None
    with pytest.raises(ValueError, match=r"column 'name' \(id_column\) not found.*0, 1"):
        read_dataset(path, layout="wide", id_column="name")
