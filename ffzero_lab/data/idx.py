"""Reader for the IDX format of MNIST-style data sets (gzipped or not).

IDX: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order, big-endian.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import DataError

_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def parse_idx(raw: bytes, source: str = "<bytes>") -> NDArray[np.generic]:
    """Decode IDX bytes into an array of the file's shape and (native-endian) dtype."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError("not an IDX file (bad magic number)", source)
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise DataError(f"unknown IDX type code 0x{code:02x}", source)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError("IDX header is truncated", source)
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[code])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise DataError(
            f"IDX data has {len(raw) - header} bytes, the header promises {count * dtype.itemsize}",
            source,
        )
    data = np.frombuffer(raw, dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> NDArray[np.generic]:
    """Read an IDX file; a name ending in ``.gz`` is decompressed."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read: {exc}", str(path)) from None
    return parse_idx(raw, str(path))


def write_idx(path: Path, array: NDArray[np.generic]) -> None:
    """Write an array as IDX (gzipped if the name ends in ``.gz``). Used by tests and tools."""
    codes = {np.dtype(v).newbyteorder("=").str[1:]: k for k, v in _TYPES.items()}
    native = np.asarray(array)
    key = native.dtype.newbyteorder("=").str[1:]
    if key not in codes:
        raise ValueError(f"IDX cannot store dtype {native.dtype}")
    code = codes[key]
    header = bytes([0, 0, code, native.ndim]) + np.asarray(native.shape, ">u4").tobytes()
    body = native.astype(np.dtype(_TYPES[code])).tobytes()
    raw = header + body
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
