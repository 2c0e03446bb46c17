"""Reader for the IDX format of MNIST-style data sets (gzipped or not).

IDX: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order, big-endian.

The header decides how much is read: a file is refused (one :class:`DataError` naming it) when
it promises more than :data:`MAX_IDX_VALUES` values, when its data is shorter or longer than the
header promises, or, gzipped, when the stream decompresses to more than header + promised data:
the stream is read incrementally and never past that size plus one byte, so a gzip bomb never
fills memory. A header may promise at most :data:`MAX_IDX_VALUES` values and
:data:`MAX_IDX_BYTES` bytes. Floating-point data must be finite (no NaN or infinity).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import DataError

#: Most values an IDX file may promise (2^30: 8 GiB once read as float64).
MAX_IDX_VALUES = 2**30
#: Most data bytes an IDX file may promise (2 GiB).
MAX_IDX_BYTES = 2**31

_GZIP_MAGIC = b"\x1f\x8b"

_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _header(raw: bytes, source: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """The dtype, shape and header length of IDX bytes that start with the whole header."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        hint = " (gzip data: name the file .gz)" if raw[:2] == _GZIP_MAGIC else ""
        raise DataError(f"not an IDX file (bad magic number){hint}", source, "header")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise DataError(f"unknown IDX type code 0x{code:02x}", source, "header")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX header is truncated: {ndim} dimensions need {header} bytes, the file has {len(raw)}",
                        source, "header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    count = math.prod(shape)
    dtype = np.dtype(_TYPES[code])
    if count > MAX_IDX_VALUES or count * dtype.itemsize > MAX_IDX_BYTES:
        dims = " x ".join(str(d) for d in shape)
        raise DataError(f"the header promises {dims} = {count:,} values of {dtype.itemsize} bytes, more than the "
                        f"{MAX_IDX_VALUES:,} values or {MAX_IDX_BYTES:,} bytes that are read", source, "header")
    return dtype, shape, header


def _size_problem(got: int, header: int, dtype: np.dtype, shape: tuple[int, ...], more: bool = False) -> str:
    want = math.prod(shape) * dtype.itemsize
    dims = " x ".join(str(d) for d in shape) or "a scalar"
    got_text = f"more than {got - header}" if more else str(got - header)
    return f"IDX data has {got_text} bytes, the header promises {want} ({dims} of {dtype.itemsize} bytes)"


def parse_idx(raw: bytes | bytearray, source: str = "<bytes>") -> NDArray[np.generic]:
    """Decode IDX bytes into an array of the file's shape and (native-endian) dtype.

    Raises:
        DataError: bad magic or type code, a truncated header, data shorter or longer than the
            header promises, more than :data:`MAX_IDX_VALUES` values, or a NaN or infinity.
    """
    dtype, shape, header = _header(bytes(raw[:1028]), source)
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise DataError(_size_problem(len(raw), header, dtype, shape), source, "data")
    data = np.frombuffer(raw, dtype, count=count, offset=header).reshape(shape)
    data = data.astype(dtype.newbyteorder("="))
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        index = np.unravel_index(int(np.argmin(np.isfinite(data))), shape)
        where = "[" + ", ".join(str(int(i)) for i in index) + "]"
        raise DataError(f"value {data[index]} is not a finite number (NaN or infinity)", source, f"data{where}")
    return data


def _read_bounded(stream: BinaryIO, source: str, size: int | None = None) -> bytearray:
    """Header and data from ``stream``, never reading more than the header promises plus one byte.

    Args:
        stream: the (decompressed) bytes.
        source: the file, for messages.
        size: the stream's length when known (a plain file): checked before the data is read.
    """
    raw = bytearray(stream.read(4))
    if len(raw) == 4:
        raw += stream.read(4 * raw[3])
    dtype, shape, header = _header(bytes(raw), source)
    want = math.prod(shape) * dtype.itemsize
    if size is not None and size != header + want:
        raise DataError(_size_problem(size, header, dtype, shape), source, "data")
    left = want + 1  # one byte more than promised tells a longer stream
    while left > 0:
        chunk = stream.read(min(left, 2**24))
        if not chunk:
            break
        raw += chunk
        left -= len(chunk)
    if left <= 0:
        raise DataError(_size_problem(header + want, header, dtype, shape, more=True)
                        + "; the rest was not read", source, "data")
    return raw


def read_idx(path: Path) -> NDArray[np.generic]:
    """Read an IDX file; a name ending in ``.gz`` is decompressed, incrementally and no further
    than the header promises (a gzip bomb is refused after header + data + 1 bytes).

    Raises:
        DataError: unreadable, not gzip, a corrupt or truncated stream, or bad IDX (see :func:`parse_idx`).
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = _read_bounded(stream, str(path))
        else:
            with open(path, "rb") as stream:
                raw = _read_bounded(stream, str(path), os.fstat(stream.fileno()).st_size)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read: {' '.join(str(exc).split())}", str(path)) from None
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
