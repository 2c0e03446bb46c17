"""Malformed protocols (and sweep files) through the real command line: every one is refused with
exit code 2 and exactly one line naming the file and the field, never a traceback, a hang or a
run on defaults."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.config.protocol import MEMORY_LIMIT_BYTES, load_protocol, memory_estimate
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.files import MAX_FILE_BYTES, load_yaml
from ffzero_lab.sweep.grid import load_sweep

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

#: A small valid protocol; the cases below break one thing in it.
BASE = """\
name: small
seed: 0
data:
  set: digits
  train_limit: 64
  test_limit: 32
network:
  layers: 1
  width: 16
  activation: {kind: relu}
train:
  epochs: 1
  batch_size: 16
  lr: 0.01
  directions: 2
  eps: 0.01
  margin: 0.5
goodness:
  centre: false
device:
  driver: digital
  settings: {init_scale: 1.0}
"""


def with_line(section: str, line: str) -> str:
    """BASE with ``line`` added at the start of ``section``."""
    return BASE.replace(f"{section}:\n", f"{section}:\n  {line}\n", 1)


def replaced(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


# (id, file bytes, --set overrides, what the one line must contain besides the file)
CASES: list[tuple[str, bytes, list[str], list[str]]] = [
    # bytes that are not UTF-8
    ("invalid-utf8-byte", replaced("epochs: 1", "epochs: 1\xff").encode("latin-1"), [],
     ["line 12", "not UTF-8 text: byte 0xff at offset " + str(BASE.index("epochs: 1") + 9)]),
    ("latin1-text", replaced("name: small", "name: caf\xe9").encode("latin-1"), [], ["line 1", "not UTF-8"]),
    ("utf16-file", BASE.encode("utf-16"), [], ["line 1", "not UTF-8", "offset 0"]),
    ("truncated-utf8-sequence", BASE.encode() + b"name2: \xe2\x82\n", [], ["not UTF-8"]),
    ("nul-byte", replaced("name: small", "name: sm\x00all").encode(), [], ["line 1", "invalid YAML"]),
    ("control-character", replaced("name: small", "name: sm\x07all").encode(), [], ["line 1", "invalid YAML"]),
    ("lone-surrogate-escape", replaced("name: small", 'name: "\\ud800"').encode(), [], ["name", "Unicode"]),
    # keys given twice
    ("duplicate-top-level", (BASE + "seed: 1\n").encode(), [],
     ["seed: duplicate key 'seed' on line 23 (first on line 2)"]),
    ("duplicate-section", (BASE + "train:\n  epochs: 3\n").encode(), [], ["train: duplicate key 'train'"]),
    ("duplicate-nested", with_line("train", "lr: 0.5").encode(), [], ["train.lr: duplicate key 'lr'", "line"]),
    ("duplicate-in-flow-mapping", replaced("{kind: relu}", "{kind: relu, kind: tanh}").encode(), [],
     ["network.activation.kind: duplicate key"]),
    ("duplicate-driver-setting", replaced("{init_scale: 1.0}", "{init_scale: 1.0, init_scale: 2.0}").encode(), [],
     ["device.settings.init_scale: duplicate key"]),
    ("duplicate-in-set-value", BASE.encode(), ["device.settings={bias: true, bias: false}"],
     ["device.settings.bias: duplicate key"]),
    # empty protocols: would train on the defaults
    ("empty-file", b"", [], ["the protocol is empty"]),
    ("only-comments", b"# a protocol\n# with nothing in it\n", [], ["the protocol is empty"]),
    ("empty-mapping", b"{}\n", [], ["the protocol is empty"]),
    ("null-document", b"~\n", [], ["the protocol is empty"]),
    ("only-whitespace", b"\n   \n\n", [], ["the protocol is empty"]),
    ("empty-with-set", b"{}\n", ["train.epochs=2"], ["the protocol is empty"]),
    # top levels that are not mappings
    ("top-level-list", b"- train\n- data\n", [], ["must be a mapping", "not a list"]),
    ("top-level-string", b"just some words\n", [], ["must be a mapping", "not a string"]),
    ("top-level-number", b"42\n", [], ["must be a mapping", "not a int"]),
    # NaN and infinity in every float field
    ("nan-lr", replaced("lr: 0.01", "lr: .nan").encode(), [], ["train.lr: must be a finite number"]),
    ("inf-lr", replaced("lr: 0.01", "lr: .inf").encode(), [], ["train.lr: must be a finite number"]),
    ("nan-string-lr", replaced("lr: 0.01", "lr: 'nan'").encode(), [], ["train.lr", "finite"]),
    ("nan-eps", replaced("eps: 0.01", "eps: .NaN").encode(), [], ["train.eps: must be a finite number"]),
    ("inf-eps", replaced("eps: 0.01", "eps: .Inf").encode(), [], ["train.eps: must be a finite number"]),
    ("nan-margin", replaced("margin: 0.5", "margin: .nan").encode(), [], ["train.margin: must be a finite"]),
    ("neg-inf-margin", replaced("margin: 0.5", "margin: -.inf").encode(), [], ["train.margin: must be a finite"]),
    ("overflow-margin", replaced("margin: 0.5", "margin: 1.0e+999").encode(), [], ["train.margin: must be a finite"]),
    ("nan-negative-weight", with_line("train", "negative_weight: .nan").encode(), [],
     ["train.negative_weight: must be a finite"]),
    ("inf-string-negative-weight", with_line("train", "negative_weight: '-inf'").encode(), [],
     ["train.negative_weight", "finite"]),
    ("nan-lr-final", with_line("train", "lr_final: .nan").encode(), [], ["train.lr_final: must be a finite"]),
    ("inf-logit-scale", with_line("train", "logit_scale: .inf").encode(), [], ["train.logit_scale: must be a finite"]),
    ("nan-driver-setting", replaced("{init_scale: 1.0}", "{init_scale: .nan}").encode(), [],
     ["device.settings.init_scale: must be a finite"]),
    ("inf-activation", replaced("{kind: relu}", "{kind: relu, gain: .inf}").encode(), [],
     ["network.activation.gain: must be a finite"]),
    ("nan-by-set", BASE.encode(), ["train.lr=.nan"], ["(--set): train.lr: must be a finite"]),
    ("inf-in-list", replaced("  test_limit: 32", "  test_limit: 32\n  resize: [.inf, 2]").encode(), [],
     ["data.resize[0]: must be a finite"]),
    # absurd sizes: refused at validation with what they would need, no MemoryError, no hang
    ("directions-memory", replaced("directions: 2", "directions: 200000").encode(), [],
     ["train.directions: the run would need about", "GiB of memory", "8 GiB"]),
    ("directions-bound", replaced("directions: 2", "directions: 1000000000000").encode(), [],
     ["train.directions: Input should be less than or equal to 1000000"]),
    ("batch-size-memory", replaced("set: digits", "set: mnist").replace("batch_size: 16", "batch_size: 1000000")
     .replace("train_limit: 64", "train_limit: 1000000").replace("directions: 2", "directions: 200").encode(), [],
     ["train.batch_size: the run would need"]),
    ("width-memory", replaced("width: 16", "width: 60000").replace("layers: 1", "layers: 2").encode(), [],
     ["network.width: the run would need about 752 GiB"]),
    ("width-bound", replaced("width: 16", "width: 99999999999999999999").encode(), [],
     ["network.width: Input should be less than or equal to 65536"]),
    ("layers-width-memory", replaced("layers: 1", "layers: 10").replace("width: 16", "width: 40000").encode(), [],
     ["the run would need"]),
    ("conv-channels-memory", replaced("set: digits", "set: mnist").replace("  layers: 1", "  layers: 1\n  conv: "
     "{layers: 2, channels: 256}").replace("train_limit: 64", "train_limit: 60000").encode(), [],
     ["network.conv.channels: the run would need"]),
    ("projection-memory", replaced("set: digits", "set: mnist").replace("  layers: 1", "  layers: 1\n  conv: "
     "{layers: 1, channels: 32}").replace("centre: false", "centre: false\n  projection: 65536")
     .replace("directions: 2", "directions: 50").replace("batch_size: 16", "batch_size: 256").encode(), [],
     ["goodness.projection: the run would need"]),
    ("train-limit-memory", replaced("set: digits", "set: emnist").replace("train_limit: 64", "train_limit: 100000000")
     .encode(), [], ["data.train_limit: the run would need"]),
    ("test-limit-memory", replaced("set: digits", "set: emnist").replace("test_limit: 32", "test_limit: 900000000")
     .encode(), [], ["data.test_limit: the run would need"]),
    ("train-limit-bound", replaced("train_limit: 64", "train_limit: 1000000000000").encode(), [],
     ["data.train_limit: Input should be less than or equal to"]),
    ("resize-memory", replaced("  test_limit: 32", "  test_limit: 32\n  resize: [4000, 4000]").encode(), [],
     ["data.resize: the run would need"]),
    ("resize-zero", replaced("  test_limit: 32", "  test_limit: 32\n  resize: [0, 8]").encode(), [],
     ["data.resize[0]: Input should be greater than or equal to 1"]),
    ("resize-bound", replaced("  test_limit: 32", "  test_limit: 32\n  resize: [8, 100000]").encode(), [],
     ["data.resize[1]: Input should be less than or equal to 4096"]),
    ("seed-bound", replaced("seed: 0", "seed: 100000000000000000000000000").encode(), [],
     ["seed: Input should be less than or equal to"]),
    ("epochs-bound", replaced("epochs: 1", "epochs: 1000000000").encode(), [], ["train.epochs: Input should be less"]),
    ("prototype-steps-bound", replaced("centre: false", "centre: false\n  prototype_steps: 1000000000").encode(),
     [], ["goodness.prototype_steps: Input should be less"]),
    ("directions-memory-by-set", BASE.encode(), ["train.directions=300000"], ["(--set): train.directions"]),
    # YAML that would hang or explode
    ("alias-bomb", (BASE + "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else "0"] * 10) + "]\n" for i in range(8))).encode(), [],
     ["invalid YAML: its aliases expand to more than"]),
    ("recursive-alias", (BASE + "loop: &loop [1, *loop]\n").encode(), [], ["invalid YAML"]),
    ("deep-nesting", (BASE + "deep: " + "[" * 100000 + "]" * 100000 + "\n").encode(), [],
     ["invalid YAML: nested too deeply"]),
    ("unclosed-bracket", replaced("{kind: relu}", "{kind: relu").encode(), [], ["invalid YAML", "line"]),
    ("python-tag", replaced("name: small", "name: !!python/object/apply:os.system [ls]").encode(), [],
     ["line 1", "invalid YAML", "constructor"]),
    ("two-documents", (BASE + "---\nseed: 1\n").encode(), [], ["invalid YAML", "single document"]),
    ("too-large", BASE.encode() + b"#" * (MAX_FILE_BYTES + 10) + b"\n", [], ["larger than 16 MiB"]),
]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line(code: int, stdout: str, stderr: str, source: str, expected: list[str]) -> str:
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stdout + stderr
    line = lines[0]
    assert line.startswith("error: ") and (source in line or line.startswith("error: --set: ")), line
    for words in expected:
        assert words in line, line
    return line


@pytest.mark.parametrize(("data", "overrides", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_protocol_is_one_line_and_exit_2(tmp_path: Path, data: bytes, overrides: list[str],
                                             expected: list[str]) -> None:
    path = tmp_path / "protocol.yaml"
    path.write_bytes(data)
    sets = [arg for o in overrides for arg in ("--set", o)]
    started = time.monotonic()
    code, stdout, stderr = invoke("dry-run", str(path), "-q", "--runs-dir", str(tmp_path / "runs"), *sets)
    assert time.monotonic() - started < 60
    assert_one_line(code, stdout, stderr, str(path), expected)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_base_protocol_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "protocol.yaml"
    path.write_text(BASE)
    protocol, _ = load_protocol(path)
    assert protocol.train.directions == 2


def test_a_protocol_that_is_a_folder(tmp_path: Path) -> None:
    code, stdout, stderr = invoke("dry-run", str(tmp_path), "-q")
    assert_one_line(code, stdout, stderr, str(tmp_path), ["protocol file is a folder"])


def test_bundled_protocols_fit_the_memory_limit() -> None:
    for path in sorted((ROOT / "protocols").glob("*.yaml")):
        protocol, _ = load_protocol(path)
        assert memory_estimate(protocol).total < MEMORY_LIMIT_BYTES / 2, path
    # the paper's full-size CNN (32 channels, all of MNIST) still fits
    protocol, _ = load_protocol(ROOT / "protocols" / "mnist_cnn.yaml", ["network.conv.channels=32"])
    assert memory_estimate(protocol).total < MEMORY_LIMIT_BYTES


def test_merge_keys_may_be_overridden() -> None:
    document = load_yaml("base: &b {a: 1, b: 2}\nthis:\n  <<: *b\n  a: 3\n", "x.yaml")
    assert document["this"] == {"a": 3, "b": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"protocol: p.yaml\ngrid: {seed: [0]}\nprotocol: q.yaml\n", "protocol: duplicate key 'protocol' on line 3"),
        (b"protocol: p.yaml\ngrid: {seed: [0], seed: [1]}\n", "grid.seed: duplicate key"),
        (b"protocol: p.yaml\nname: \xff\n", "line 2: sweep file is not UTF-8 text: byte 0xff at offset 23"),
        (b"", "the sweep file is empty"),
        (b"# nothing\n", "the sweep file is empty"),
        (b"- a\n", "a sweep file must be a mapping"),
    ],
    ids=["duplicate-top", "duplicate-grid-axis", "undecodable", "empty", "comments", "list"],
)
def test_bad_sweep_files(tmp_path: Path, text: bytes, expected: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)
    assert "\n" not in str(info.value)
