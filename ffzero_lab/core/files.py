"""Reading the YAML files a user writes (protocol, instruments.yaml, calibration file, sweep file).

One loader for all of them, so every one refuses the same things with one line naming the file
and the field (a :class:`~ffzero_lab.core.errors.ConfigError`):

* a file larger than :data:`MAX_FILE_BYTES` (16 MiB; the largest real one is a few hundred kB),
  read no further than that, so a device or a huge file never fills memory;
* bytes that are not UTF-8 (the byte offset and line of the first bad byte);
* invalid YAML (the line), more than one document, nesting deeper than Python's recursion;
* a key given twice in one mapping, at any depth (the key, its path and both lines): YAML
  would keep the last one silently;
* aliases that expand to more than :data:`MAX_YAML_VALUES` values ("billion laughs"), or that
  refer to themselves;
* a top level that is not a mapping.

:func:`find_non_finite` finds a NaN or infinity in a parsed document or a validated model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ffzero_lab.core.errors import ConfigError

#: Largest file read, bytes (16 MiB).
MAX_FILE_BYTES = 16 * 2**20
#: Most values (scalars, lists, mappings) a YAML document may hold once its aliases are expanded.
MAX_YAML_VALUES = 2_000_000

_MERGE = "tag:yaml.org,2002:merge"


def read_bytes(path: str | Path, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file of at most ``limit`` bytes.

    Args:
        path: the file.
        what: what the file is, for messages: ``protocol file``, ``instruments file``...
        limit: most bytes read; a longer file is refused without reading the rest.

    Raises:
        ConfigError: missing, a folder, unreadable or too large.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", str(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a folder, not a file", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", str(path)) from None
    if len(raw) > limit:
        raise ConfigError(f"{what} is larger than {format_bytes(limit)}, the most that is read", str(path))
    return raw


def decode_utf8(raw: bytes, source: str, what: str = "file") -> str:
    """``raw`` decoded as UTF-8; the offset and line of the first bad byte otherwise."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"{what} is not UTF-8 text: byte 0x{bad} at offset {exc.start} ({exc.reason}); save it as UTF-8",
            source, f"line {line}") from None


def read_text(path: str | Path, what: str = "file", limit: int = MAX_FILE_BYTES) -> str:
    """A UTF-8 text file of at most ``limit`` bytes, read as bytes and decoded.

    Raises:
        ConfigError: missing, unreadable, too large, or not UTF-8 (naming the byte offset and line).
    """
    return decode_utf8(read_bytes(path, what, limit), str(path), what)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice."""

    def __init__(self, key: Any, path: str, line: int, first: int) -> None:
        self.key, self.path, self.line, self.first = key, path, line, first
        super().__init__(f"duplicate key {key!r}")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (at any depth).

    Merge keys (``<<: *base``) may be overridden by the mapping's own keys, as YAML says; two
    explicit equal keys are an error naming the key, its path and both lines.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._paths: dict[int, str] = {}

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _count_values(node)
        self._paths = _node_paths(node)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKeyError(key, _join(self._paths.get(id(node), ""), key), line, first)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _TooManyValues(yaml.YAMLError):
    pass


def _count_values(root: yaml.Node) -> int:
    """Values of the document with every alias expanded (memoised, so linear in the node graph).

    Raises:
        _TooManyValues: more than :data:`MAX_YAML_VALUES`, or an alias inside itself.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else (
            list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_YAML_VALUES:
                raise _TooManyValues(f"its aliases expand to more than {MAX_YAML_VALUES:,} values")
            continue
        if key in active:
            raise _TooManyValues("an alias refers to the mapping or list it is in")
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise _TooManyValues("an alias refers to the mapping or list it is in")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _join(path: str, key: Any) -> str:
    if isinstance(key, int) and not isinstance(key, bool) and path:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _node_paths(root: yaml.Node) -> dict[int, str]:
    """The dotted path of every mapping node (the first path it is reached by)."""
    paths: dict[int, str] = {}
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in paths:
            continue
        if isinstance(node, yaml.MappingNode):
            paths[id(node)] = path
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                if isinstance(key_node, yaml.ScalarNode) and key.isdigit():
                    key = int(key)
                stack.append((value_node, _join(path, key)))
        elif isinstance(node, yaml.SequenceNode):
            paths[id(node)] = path
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node.value))
    return paths


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _article(what: str) -> str:
    return f"an {what}" if what[:1].lower() in "aeiou" else f"a {what}"


def parse_yaml(text: str, source: str) -> Any:
    """One YAML document parsed with :class:`UniqueKeyLoader` (any top level; None when empty).

    Raises:
        ConfigError: invalid YAML, a duplicate key, aliases that expand too far, nesting too deep.
    """
    loader: UniqueKeyLoader | None = None
    try:
        loader = UniqueKeyLoader(text)
        return loader.get_single_data()
    except DuplicateKeyError as exc:
        raise ConfigError(f"duplicate key {exc.key!r} on line {exc.line} (first on line {exc.first}): "
                          "give each key once", source, exc.path) from None
    except _TooManyValues as exc:
        raise ConfigError(f"invalid YAML: {exc}", source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = exc.problem or exc.context or "not YAML"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            problem = f"{exc.context}, {exc.problem}"
        raise ConfigError(f"invalid YAML: {' '.join(str(problem).split())}", source, where) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ConfigError(f"invalid YAML: character #x{char:04x} at offset {exc.position} is not allowed "
                          "(control characters are not text)", source, f"line {line}" if line else None) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", source) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", source) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path_or_text: str | Path, source: str | None = None, what: str = "file") -> dict[Any, Any]:
    """A YAML file (a :class:`~pathlib.Path`) or text (a ``str``) whose top level is a mapping.

    The file is read with :func:`read_text` (size bound, UTF-8) and parsed with
    :func:`parse_yaml` (duplicate keys refused at any depth). An empty document (no text, only
    comments, ``null``) is ``{}``: the caller decides whether that is allowed.

    Args:
        path_or_text: a path, or the text itself.
        source: the name used in messages [default: the path].
        what: what the file is, for messages, e.g. ``protocol``, ``instruments file``.

    Raises:
        ConfigError: the first problem, naming ``source`` (and the line or field).
    """
    if isinstance(path_or_text, Path):
        source = source or str(path_or_text)
        text = read_text(path_or_text, what)
    else:
        source = source or "<text>"
        text = path_or_text
    document = parse_yaml(text, source)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{_article(what)} must be a mapping of keys to values, not {_kind(document)}", source)
    _refuse_surrogates(document, source)
    return document


def _is_model(value: Any) -> bool:
    return hasattr(type(value), "model_fields") and hasattr(value, "model_dump")


def _children(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if _is_model(value):
        for name in type(value).model_fields:
            yield getattr(value, name), _join(path, name)
    elif isinstance(value, dict):
        for key, child in value.items():
            yield child, _join(path, key)
    elif isinstance(value, list | tuple):
        for i, child in enumerate(value):
            yield child, f"{path}[{i}]"


def _leaves(value: Any, path: str = "") -> Iterator[tuple[Any, str]]:
    """Every value that is not a container, with its dotted path (each container visited once)."""
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict | list | tuple) or _is_model(node):
            if id(node) not in seen:
                seen.add(id(node))
                if isinstance(node, dict):
                    stack.extend((key, f"{_join(where, key)} (the key)") for key in reversed(list(node)))
                stack.extend(reversed(list(_children(node, where))))
        else:
            yield node, where


def find_non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite float in ``value`` (nested dicts, lists,
    tuples and pydantic models), or None."""
    for leaf, where in _leaves(value, path):
        if isinstance(leaf, float) and not math.isfinite(leaf):
            return where or "(top level)"
    return None


def _refuse_surrogates(document: Any, source: str) -> None:
    """A string with a lone surrogate (``"\\ud800"``) is not text: it cannot be stored or printed."""
    for leaf, where in _leaves(document):
        if isinstance(leaf, str):
            try:
                leaf.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError("not valid Unicode text (a lone surrogate escape such as \\ud800)",
                                  source, where or None) from None


def refuse_non_finite(value: Any, source: str, path: str = "") -> None:
    """Raise a ConfigError naming the field of the first NaN or infinity in ``value``."""
    where = find_non_finite(value, path)
    if where is not None:
        raise ConfigError("must be a finite number, not NaN or infinity", source, where)


def format_bytes(n: float) -> str:
    """``n`` bytes as ``12.3 GiB`` (or kB, MiB, TiB...)."""
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    return f"{int(n)} bytes"
