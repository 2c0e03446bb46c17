"""Malformed IDX data sets through the real command line (``dry-run`` of a protocol naming the
set): exit code 2, exactly one line naming the file and the field, no traceback; a gzip bomb is
refused after reading no more than its header promises, with memory staying low."""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import DataError
from ffzero_lab.data.datasets import IDX_FILES, load_idx_set
from ffzero_lab.data.idx import read_idx, write_idx

runner = CliRunner()

PROTOCOL = """\
data: {set: bad, encoding: raw, train_limit: 32, test_limit: 16}
network: {layers: 1, width: 16, activation: {kind: relu}}
train: {epochs: 1, batch_size: 16, directions: 2}
goodness: {centre: false, prototype_steps: 10}
device: {driver: digital}
"""
N_TRAIN, N_TEST, SIDE = 40, 20, 4


def header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()


def good_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (N_TRAIN, SIDE, SIDE), dtype=np.uint8),
        "y_train": (np.arange(N_TRAIN) % 4).astype(np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, SIDE, SIDE), dtype=np.uint8),
        "y_test": (np.arange(N_TEST) % 4).astype(np.uint8),
    }


def write_set(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, Path]:
    where = folder / "bad"
    where.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, stem in IDX_FILES.items():
        paths[key] = where / (stem + (".gz" if gz else ""))
        write_idx(paths[key], arrays[key])
    return paths


def raw_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (as write_idx writes them, uncompressed)."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]]
    return header(code, array.shape) + array.astype(array.dtype.newbyteorder(">")).tobytes()


# A case changes the good set: (file key, the new file bytes or None to leave it, arrays edit)
Edit = Callable[[dict[str, np.ndarray]], None]


def set_array(key: str, value: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Edit:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = value(arrays)

    return change


def labels_with(index: int, value: int, dtype: type = np.uint8, key: str = "y_train") -> Edit:
    def change(arrays: dict[str, np.ndarray]) -> None:
        y = arrays[key].astype(dtype)
        y[index] = value
        arrays[key] = y

    return change


def float_images(value: float, index: tuple[int, int, int] = (3, 1, 2), dtype: type = np.float32) -> Edit:
    def change(arrays: dict[str, np.ndarray]) -> None:
        x = (arrays["x_train"] / 255.0).astype(dtype)
        x[index] = value
        arrays["x_train"] = x
        arrays["x_test"] = (arrays["x_test"] / 255.0).astype(dtype)

    return change


ARRAY_CASES: list[tuple[str, Edit, str, list[str]]] = [
    ("test-label-out-of-range", labels_with(5, 7, key="y_test"), "y_test",
     ["labels[5]: label 7 is outside the training set's classes 0..3"]),
    ("negative-label", labels_with(2, -1, np.int8), "y_train", ["labels[2]: label -1 is negative"]),
    ("negative-test-label", labels_with(9, -5, np.int32, "y_test"), "y_test", ["labels[9]: label -5 is negative"]),
    ("too-many-classes", labels_with(11, 5000, np.int16), "y_train", ["labels[11]: label 5000 is outside 0..1023"]),
    ("huge-label", labels_with(0, 2**31 - 1, np.int32), "y_train", ["labels[0]: label 2147483647 is outside"]),
    ("float-labels", set_array("y_train", lambda a: a["y_train"].astype(np.float32)), "y_train",
     ["header: labels must be integers, not float32"]),
    ("labels-2d", set_array("y_train", lambda a: a["y_train"].reshape(N_TRAIN // 2, 2)), "y_train",
     ["header: labels must have 1 dimension"]),
    ("images-2d", set_array("x_train", lambda a: a["x_train"].reshape(N_TRAIN, SIDE * SIDE)), "x_train",
     ["header: images must have 3 dimensions"]),
    ("fewer-labels-than-images", set_array("y_train", lambda a: a["y_train"][:-3]), "folder",
     ["train images (40, 4, 4) and labels (37,) do not match"]),
    ("no-samples", lambda a: a.update(x_train=a["x_train"][:0], y_train=a["y_train"][:0]), "x_train",
     ["header: the train images are empty"]),
    ("test-images-other-size", set_array("x_test", lambda a: a["x_test"][:, :3, :]), "x_test",
     ["header: test images are (3, 4), the training images (4, 4)"]),
    ("nan-pixel-f4", float_images(np.nan), "x_train", ["data[3, 1, 2]: value nan is not a finite number"]),
    ("inf-pixel-f8", float_images(np.inf, (0, 0, 0), np.float64), "x_train",
     ["data[0, 0, 0]: value inf is not a finite number"]),
    ("neg-inf-pixel-f4", float_images(-np.inf, (39, 3, 3)), "x_train", ["data[39, 3, 3]: value -inf"]),
]

# (id, file key, bytes of that file replacing the good one (plain file name, no .gz), the one line must contain)
GOOD_RAW = {key: raw_idx(array) for key, array in good_arrays().items()}
BYTE_CASES: list[tuple[str, str, bytes, list[str]]] = [
    ("wrong-magic", "x_train", b"\x01\x02" + GOOD_RAW["x_train"][2:], ["header: not an IDX file (bad magic number)"]),
    ("text-file", "y_train", b"these are not labels\n", ["header: not an IDX file"]),
    ("empty-file", "y_test", b"", ["header: not an IDX file"]),
    ("gzip-without-gz-name", "x_test", gzip.compress(GOOD_RAW["x_test"]), ["(gzip data: name the file .gz)"]),
    ("unknown-type-code", "x_train", GOOD_RAW["x_train"][:2] + b"\x0a" + GOOD_RAW["x_train"][3:],
     ["header: unknown IDX type code 0x0a"]),
    ("truncated-header", "x_train", GOOD_RAW["x_train"][:9], ["header: IDX header is truncated"]),
    ("truncated-data", "x_train", GOOD_RAW["x_train"][:-10],
     [f"data: IDX data has {N_TRAIN * SIDE * SIDE - 10} bytes, the header promises {N_TRAIN * SIDE * SIDE}"]),
    ("extra-data", "y_train", GOOD_RAW["y_train"] + b"\x00" * 7,
     ["data: IDX data has 47 bytes, the header promises 40"]),
    ("dims-larger-than-data", "x_test", header(0x08, (N_TEST, 400, 400)) + GOOD_RAW["x_test"][16:],
     ["data: IDX data has 320 bytes, the header promises 3200000"]),
    ("absurd-dims", "x_train", header(0x08, (65535, 65535, 65535)) + b"\x00" * 64,
     ["header: the header promises 65535 x 65535 x 65535"]),
    ("absurd-dims-f8", "x_train", header(0x0E, (2**20, 2**9)) + b"\x00" * 64, ["header: the header promises"]),
]
# the same through gzip: (id, file key, the .gz file's bytes, the one line must contain)
GZ_CASES: list[tuple[str, str, bytes, list[str]]] = [
    ("gz-truncated-stream", "x_train", gzip.compress(GOOD_RAW["x_train"])[:-12], ["cannot read"]),
    ("gz-not-gzip", "y_train", b"plain text, not gzip", ["cannot read", "Not a gzipped file"]),
    ("gz-corrupt-deflate", "x_test", (lambda b: b[:12] + bytes(x ^ 0xFF for x in b[12:20]) + b[20:])(
        gzip.compress(GOOD_RAW["x_test"] * 3)), ["cannot read"]),
    ("gz-truncated-data", "x_train", gzip.compress(GOOD_RAW["x_train"][:-1]), ["data: IDX data has 639 bytes"]),
    ("gz-extra-data", "y_test", gzip.compress(GOOD_RAW["y_test"] + b"\x01" * 100),
     ["data: IDX data has more than 20 bytes, the header promises 20"]),
    ("gz-wrong-magic", "y_test", gzip.compress(b"\x00\x01" + GOOD_RAW["y_test"][2:]), ["header: not an IDX file"]),
    ("gz-absurd-dims", "x_train", gzip.compress(header(0x08, (2**31, 2**31, 2**31))), ["header: the header promises"]),
]


def protocol(tmp_path: Path) -> Path:
    path = tmp_path / "protocol.yaml"
    path.write_text(PROTOCOL)
    return path


def dry_run(tmp_path: Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dry-run", str(protocol(tmp_path)), "-q", "--data-dir", str(tmp_path),
                                 "--runs-dir", str(tmp_path / "runs")])
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, stdout: str, stderr: str, source: Path, expected: list[str]) -> str:
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stdout + stderr
    assert lines[0].startswith(f"error: {source}: "), lines[0]
    for words in expected:
        assert words in lines[0], lines[0]
    return lines[0]


def test_the_good_set_loads_and_trains(tmp_path: Path) -> None:
    write_set(tmp_path, good_arrays())
    dataset = load_idx_set("bad", tmp_path)
    assert dataset.n_classes == 4 and dataset.x_train.shape == (N_TRAIN, SIDE * SIDE)
    code, stdout, stderr = dry_run(tmp_path)
    assert code == 0, stderr


@pytest.mark.parametrize(("change", "key", "expected"), [c[1:] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES])
def test_bad_arrays(tmp_path: Path, change: Edit, key: str, expected: list[str]) -> None:
    arrays = good_arrays()
    change(arrays)
    paths = write_set(tmp_path, arrays)
    code, stdout, stderr = dry_run(tmp_path)
    source = paths["x_train"].parent if key == "folder" else paths[key]
    one_line(code, stdout, stderr, source, expected)


@pytest.mark.parametrize(("key", "data", "expected"), [c[1:] for c in BYTE_CASES], ids=[c[0] for c in BYTE_CASES])
def test_bad_plain_files(tmp_path: Path, key: str, data: bytes, expected: list[str]) -> None:
    paths = write_set(tmp_path, good_arrays(), gz=False)
    paths[key].write_bytes(data)
    code, stdout, stderr = dry_run(tmp_path)
    one_line(code, stdout, stderr, paths[key], expected)


@pytest.mark.parametrize(("key", "data", "expected"), [c[1:] for c in GZ_CASES], ids=[c[0] for c in GZ_CASES])
def test_bad_gzip_files(tmp_path: Path, key: str, data: bytes, expected: list[str]) -> None:
    paths = write_set(tmp_path, good_arrays(), gz=True)
    paths[key].write_bytes(data)
    code, stdout, stderr = dry_run(tmp_path)
    one_line(code, stdout, stderr, paths[key], expected)


BOMB_BYTES = 2 * 2**30  # 2 GiB of zeros after a header promising 40 x 4 x 4 bytes


def write_gzip_bomb(path: Path, promised: tuple[int, ...] = (N_TRAIN, SIDE, SIDE)) -> int:
    """A gzip file whose stream is an IDX header and then 2 GiB of zeros, written streaming
    (a 64 MiB compressed block of zeros repeated: gzip members concatenate). Returns its size."""
    block = 64 * 2**20
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = zeros.compress(b"\x00" * block) + zeros.flush()
    with open(path, "wb") as out:
        first = zlib.compressobj(9, zlib.DEFLATED, 31)
        out.write(first.compress(header(0x08, promised)) + first.compress(b"\x00" * block) + first.flush())
        for _ in range(BOMB_BYTES // block - 1):
            out.write(member)
    return path.stat().st_size


def test_gzip_bomb_is_refused_without_filling_memory(tmp_path: Path) -> None:
    paths = write_set(tmp_path, good_arrays())
    size = write_gzip_bomb(paths["x_train"])
    assert size < 8 * 2**20  # a few MB on disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    code, stdout, stderr = dry_run(tmp_path)
    elapsed = time.monotonic() - started
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    one_line(code, stdout, stderr, paths["x_train"], ["data: IDX data has more than 640 bytes, the header promises 640",
                                                       "the rest was not read"])
    assert growth_kib < 2**20, f"peak memory grew by {growth_kib} KiB"
    assert elapsed < 30


def test_gzip_bomb_peak_memory_in_a_fresh_process(tmp_path: Path) -> None:
    """ru_maxrss of a fresh process that reads the bomb: its peak, not this test run's."""
    path = tmp_path / "bomb-idx3-ubyte.gz"
    write_gzip_bomb(path, (60000, 28, 28))  # promises 47 MB, holds 2 GiB
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from ffzero_lab.core.errors import DataError
        from ffzero_lab.data.idx import read_idx
        try:
            read_idx(Path({str(path)!r}))
        except DataError as exc:
            print(exc)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    message, peak_kib = result.stdout.strip().splitlines()
    assert "IDX data has more than 47040000 bytes" in message
    assert int(peak_kib) < 2**20, f"peak {peak_kib} KiB"


def test_header_promising_too_much_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(header(0x08, (2**20, 2**10, 2**10)))
    with pytest.raises(DataError, match="the header promises 1048576 x 1024 x 1024") as info:
        read_idx(path)
    assert info.value.source == str(path) and info.value.field == "header"
