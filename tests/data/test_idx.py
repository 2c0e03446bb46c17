"""IDX reader/writer for MNIST-style files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ffzero_lab.core.errors import DataError
from ffzero_lab.data.idx import parse_idx, read_idx, write_idx


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 10, 17, dtype=np.uint8)


@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
def test_round_trip_uint8_3d(tmp_path: Path, images, name):
    path = tmp_path / name
    write_idx(path, images)
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == (5, 4, 3)
    np.testing.assert_array_equal(back, images)


@pytest.mark.parametrize("name", ["labels.idx", "labels.idx.gz"])
def test_round_trip_uint8_1d(tmp_path: Path, labels, name):
    path = tmp_path / name
    write_idx(path, labels)
    back = read_idx(path)
    assert back.shape == (17,)
    np.testing.assert_array_equal(back, labels)


def test_gz_file_is_gzipped_and_plain_file_is_not(tmp_path: Path, labels):
    write_idx(tmp_path / "a.gz", labels)
    write_idx(tmp_path / "a", labels)
    plain = (tmp_path / "a").read_bytes()
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == plain
    # the MNIST header layout: 0, 0, type 0x08, ndim 1, then the size as big-endian uint32
    assert plain[:8] == bytes([0, 0, 0x08, 1, 0, 0, 0, 17])
    assert plain[8:] == labels.tobytes()


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_other_dtypes(tmp_path: Path, dtype):
    a = (np.random.default_rng(2).standard_normal((3, 4)) * 100).astype(dtype)
    write_idx(tmp_path / "x.idx", a)
    back = read_idx(tmp_path / "x.idx")
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, a)


def test_parse_big_endian_by_hand():
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + bytes([0x01, 0x02, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(raw), [0x0102, -2])


def test_write_rejects_unsupported_dtype(tmp_path: Path):
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.uint16))


GOOD = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


def test_good_bytes_parse():
    np.testing.assert_array_equal(parse_idx(GOOD), [[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x01" + GOOD[1:], "magic"),
        (b"\x00\x01" + GOOD[2:], "magic"),
        (b"\x00\x00", "magic"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "type"),
        (GOOD[:9], "header"),
        (GOOD[:-1], "bytes"),
        (GOOD + b"\x00", "bytes"),
    ],
    ids=["bad-magic-0", "bad-magic-1", "too-short", "bad-type", "truncated-header", "truncated-data", "extra-data"],
)
def test_parse_errors_raise_data_error(raw, words):
    with pytest.raises(DataError, match=words) as info:
        parse_idx(raw, "some/file.idx")
    assert info.value.source == "some/file.idx"


def test_read_truncated_file_raises_data_error(tmp_path: Path, images):
    path = tmp_path / "images.idx"
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_missing_file_raises_data_error(tmp_path: Path):
    with pytest.raises(DataError):
        read_idx(tmp_path / "missing.idx.gz")


def test_read_truncated_gzip_raises_data_error(tmp_path: Path, images):
    path = tmp_path / "images.idx.gz"
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(DataError):
        read_idx(path)


def test_read_not_gzip_raises_data_error(tmp_path: Path, images):
    path = tmp_path / "images.idx.gz"
    path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError):
        read_idx(path)


def test_read_corrupt_gzip_body_raises_data_error(tmp_path: Path):
    path = tmp_path / "images.idx.gz"
    path.write_bytes(gzip.compress(GOOD * 40))
    raw = bytearray(path.read_bytes())
    raw[10:14] = bytes(b ^ 0xFF for b in raw[10:14])  # damage the deflate stream, keep the gzip header
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError):
        read_idx(path)
