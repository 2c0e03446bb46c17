"""The served rig under abuse: ambiguous bind addresses are refused, malformed requests get an
error reply and the server keeps serving, keys keep strangers out, and the lease drops a dead
owner but not a busy one. Real sockets on 127.0.0.1; every server is stopped by the test."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from numpy.lib import format as npy_format

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.network import Network
from ffzero_lab.live.remote import RemoteNetwork, RigServer, make_keys, needs_keys, parse_bind
from ffzero_lab.store.runstore import npy
from tests.live.test_remote import QUICK, TRAIN_SETS, CountingLayer, free_port, runner, start_server, stop

# --- bind addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "local"), [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.0.0.2:5555", True), ("tcp://127.255.0.9:*", True),
    ("tcp://[::1]:5555", True), ("ipc:///tmp/rig.sock", True), ("inproc://rig", True),
    ("tcp://*:5555", False), ("tcp://0.0.0.0:5555", False), ("tcp://10.0.0.1:5555", False),
    ("tcp://localhost:5555", False),  # a host name: what it resolves to is not this check's to trust
    ("tcp://lo:5555", False), ("tcp://eth0:5555", False),  # interface names
    ("tcp://127.1:5555", False), ("tcp://0x7f000001:5555", False),  # libzmq reads these; we do not trust them
    ("tcp://[::ffff:127.0.0.1]:5555", False), ("tcp://[fe80::1%eth0]:5555", False), ("tcp://[::]:5555", False),
])
def test_bind_addresses_are_read_as_libzmq_reads_them(address: str, local: bool) -> None:
    assert parse_bind(address).local is local and needs_keys(address) is not local


AMBIGUOUS = [
    "tcp://127.0.0.3:{port}@127.0.0.1",  # libzmq binds 127.0.0.3; a URL parser sees 127.0.0.1
    "tcp://0.0.0.0:{port}@127.0.0.1",
    "tcp://127.0.0.1:{port};0.0.0.0:{port}",  # libzmq binds what follows ';'
    "tcp://127.0.0.1:{port}/path",
    "tcp://127.0.0.1:{port}x",  # libzmq ignores what follows the port
    "tcp://127.0.0.1: {port}",
    "tcp://::1:{port}",  # IPv6 without brackets
    "tcp://[not-ipv6]:{port}",
    "tcp://127.0.0.1:99999",
    "tcp://127.0.0.1",
    "TCP://127.0.0.1:{port}",
    "ws://127.0.0.1:{port}",
    "127.0.0.1:{port}",
    "ipc://",
]


@pytest.mark.parametrize("template", AMBIGUOUS)
def test_ambiguous_or_unparseable_bind_is_refused(template: str) -> None:
    address = template.format(port=free_port())
    with pytest.raises(UserError, match="--bind"):
        parse_bind(address)


@pytest.mark.parametrize("template", AMBIGUOUS[:5] + AMBIGUOUS[6:7])
def test_serve_refuses_an_ambiguous_bind_in_one_line(template: str) -> None:
    address = template.format(port=free_port())
    result = runner.invoke(app, ["serve", QUICK, "--bind", address])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--bind" in lines[0] and address in lines[0], result.stderr
    assert "Traceback" not in result.output and "serving" not in result.output


# --- malformed requests -------------------------------------------------------------------------


def Stage(signal):  # noqa: N802  a stage between the two layers
    return 2 * signal


@pytest.fixture
def served() -> Iterator[tuple[RigServer, str, list[CountingLayer]]]:
    layers = [CountingLayer(), CountingLayer()]
    address = f"tcp://127.0.0.1:{free_port()}"
    server = RigServer(Network(layers, [Stage]), address, lease_s=30.0, max_elements=10_000,
                       context=zmq.Context())
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, address, layers
    finally:
        server.stop()
        thread.join(timeout=10)
        server.close()
        server.context.term()


class Raw:
    """A raw DEALER, speaking the wire format by hand."""

    def __init__(self, address: str, client: str = "raw", context: zmq.Context | None = None) -> None:
        self.context = context or zmq.Context.instance()
        self.client = client
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)

    def header(self, **fields) -> bytes:
        return json.dumps({"client": self.client, **fields}).encode()

    def send(self, *frames: bytes, timeout_s: float = 5.0) -> tuple[dict, list[bytes]] | None:
        self.socket.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        try:
            self.socket.send_multipart(list(frames))
        except zmq.Again:  # no connection to queue it on (a refused CurveZMQ handshake)
            return None
        if not self.socket.poll(int(timeout_s * 1000)):
            return None
        delimiter, reply, *out = self.socket.recv_multipart()
        assert delimiter == b""
        return json.loads(reply), out

    def ask(self, op: str, *frames: bytes, **fields) -> tuple[dict, list[bytes]]:
        answer = self.send(b"", self.header(op=op, **fields), *frames)
        assert answer is not None, f"no answer to {op}"
        return answer

    def close(self) -> None:
        self.socket.close(0)


def npy_header(descr: str, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


class Trap:
    """Unpickling this creates a file: proof that nothing was unpickled if the file is absent."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickled(path: Path) -> bytes:
    array = np.empty(1, dtype=object)
    array[0] = Trap(str(path))
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def header_only(raw: Raw, data: dict) -> list[bytes]:
    return [b"", json.dumps(data).encode()]


OK_INPUTS, OK_SETTINGS = npy(np.ones((3, 2))), npy(np.zeros((1, 2)))
# name -> (frames after the identity, a piece of the error)
MALFORMED: dict[str, tuple[Callable[[Raw, Path], list[bytes]], str]] = {
    "no delimiter": (lambda r, p: [r.header(op="get_parameters", layer=0)], "expected the frames"),
    "delimiter only": (lambda r, p: [b""], "expected the frames"),
    "not JSON": (lambda r, p: [b"", b"{not json"], "not JSON"),
    "JSON list": (lambda r, p: [b"", b"[1, 2]"], "JSON list, not an object"),
    "JSON string": (lambda r, p: [b"", b'"get_parameters"'], "JSON str, not an object"),
    "not UTF-8": (lambda r, p: [b"", b'{"op": "\xff\xfe"}'], "not UTF-8"),
    "deep JSON": (lambda r, p: [b"", b"[" * 60_000], "not JSON"),
    "huge header": (lambda r, p: [b"", b" " * 70_000 + b"{}"], "at most"),
    "no op": (lambda r, p: header_only(r, {"client": "raw"}), "header field op: Field required"),
    "no client": (lambda r, p: header_only(r, {"op": "get_parameters", "layer": 0}), "header field client"),
    "bad client": (lambda r, p: header_only(r, {"op": "acquire", "client": "x" * 500}), "header field client"),
    "layer as text": (lambda r, p: [b"", r.header(op="get_parameters", layer="0")], "header field layer"),
    "layer as bool": (lambda r, p: [b"", r.header(op="get_parameters", layer=True)], "header field layer"),
    "layer as float": (lambda r, p: [b"", r.header(op="get_parameters", layer=0.0)], "header field layer"),
    "op as number": (lambda r, p: [b"", r.header(op=5)], "header field op"),
    "unknown field": (lambda r, p: [b"", r.header(op="get_parameters", layer=0, wipe=True)], "unknown field"),
    "unknown op": (lambda r, p: [b"", r.header(op="format_disk")], "unknown operation 'format_disk'"),
    "layer out of range": (lambda r, p: [b"", r.header(op="get_parameters", layer=2)], "layer 2 does not exist"),
    "negative layer": (lambda r, p: [b"", r.header(op="get_parameters", layer=-1)], "layer -1 does not exist"),
    "no layer": (lambda r, p: [b"", r.header(op="get_parameters")], "needs the field 'layer'"),
    "set without array": (lambda r, p: [b"", r.header(op="set_parameters", layer=0)], "takes 1 array frame, got 0"),
    "evaluate with one array": (lambda r, p: [b"", r.header(op="evaluate", layer=0), OK_INPUTS],
                                "takes 2 array frames, got 1"),
    "get with an array": (lambda r, p: [b"", r.header(op="get_parameters", layer=0), OK_SETTINGS],
                          "takes 0 array frames, got 1"),
    "not npy": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), b"junk"], "not a valid .npy"),
    "pickle": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), pickled(p)], "dtype '|O'"),
    "truncated npy": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), npy(np.zeros(2))[:-3]],
                      "data bytes"),
    "absurd shape": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy_header("<f8", (10**9, 10**9)),
                                   OK_SETTINGS], "values (at most"),
    "negative shape": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), npy_header("<f8", (-2,))],
                       "shape"),
    "too many dimensions": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.ones((1, 1, 1, 1, 2))),
                                          OK_SETTINGS], "at most 4"),
    "result too large": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.ones((100, 2))),
                                       npy(np.zeros((100, 2)))], "would make 20,000 values"),
    "wrong parameter count": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), npy(np.zeros(3))],
                              "expected (2,)"),
    "wrong input width": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.ones((3, 5))), OK_SETTINGS],
                          "expected (B, 2)"),
    "wrong settings width": (lambda r, p: [b"", r.header(op="evaluate", layer=0), OK_INPUTS, npy(np.zeros((1, 3)))],
                             "expected (S, 2)"),
    "empty batch": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.ones((0, 2))), OK_SETTINGS],
                    "B >= 1"),
    "complex settings": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), npy(np.zeros(2, complex))],
                         "dtype '<c16'"),
    "text inputs": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.array([["a", "b"]])), OK_SETTINGS],
                    "dtype '<U1'"),
    "structured": (lambda r, p: [b"", r.header(op="set_parameters", layer=0),
                                 npy(np.zeros(2, dtype=[("a", "<f8")]))], "dtype"),
    "NaN setting": (lambda r, p: [b"", r.header(op="set_parameters", layer=0), npy(np.array([np.nan, 0.0]))],
                    "not finite"),
    "infinite input": (lambda r, p: [b"", r.header(op="evaluate", layer=0), npy(np.full((3, 2), np.inf)),
                                     OK_SETTINGS], "not finite"),
    "stage out of range": (lambda r, p: [b"", r.header(op="stage", index=5), OK_INPUTS], "stage 5 does not exist"),
    "stage without index": (lambda r, p: [b"", r.header(op="stage"), OK_INPUTS], "stage None does not exist"),
    "stage signal width": (lambda r, p: [b"", r.header(op="stage", index=0), npy(np.ones(3))], "expected (..., 2)"),
    "network settings missing": (lambda r, p: [b"", r.header(op="propagate_settings"), OK_INPUTS, OK_SETTINGS],
                                 "takes 3 array frames, got 2"),
    "network settings uneven": (lambda r, p: [b"", r.header(op="propagate_settings"), OK_INPUTS, OK_SETTINGS,
                                              npy(np.zeros((2, 2)))], "differ in number"),
    "layer inputs out of range": (lambda r, p: [b"", r.header(op="layer_inputs", layer=9), OK_INPUTS],
                                  "layer 9 does not exist"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_request_gets_an_error_and_the_server_goes_on(
        kind: str, served: tuple[RigServer, str, list[CountingLayer]], tmp_path: Path) -> None:
    server, address, layers = served
    raw = Raw(address, context=server.context)
    try:
        assert raw.ask("acquire")[0]["ok"]
        assert raw.ask("set_parameters", npy(np.array([0.25, -0.25])), layer=0)[0]["ok"]
        build, expected = MALFORMED[kind]
        answer = raw.send(*build(raw, tmp_path / "unpickled"))
        assert answer is not None, "the server did not answer"
        reply, out = answer
        assert reply["ok"] is False and out == []
        assert expected in reply["error"], reply["error"]
        assert not (tmp_path / "unpickled").exists()  # nothing was unpickled
        # still serving, nothing written by the bad request
        reply, out = raw.ask("get_parameters", layer=0)
        assert reply["ok"] and np.load(io.BytesIO(out[0])).tolist() == [0.25, -0.25]
        reply, out = raw.ask("evaluate", OK_INPUTS, npy(np.array([[0.5, 0.5]])), layer=1)
        assert reply["ok"] and np.load(io.BytesIO(out[0])).shape == (1, 3, 2)
        assert server.bad_requests == 1 and layers[0].safe_calls == 0
        assert server.owner == "raw"
    finally:
        raw.close()


def test_junk_from_a_stranger_does_not_disturb_the_owner(served: tuple[RigServer, str, list[CountingLayer]],
                                                         tmp_path: Path) -> None:
    server, address, layers = served
    owner = RemoteNetwork(address, timeout_s=5.0)
    stranger = Raw(address, client="stranger", context=server.context)
    try:
        owner.layers[0].set_parameters(np.array([0.5, 0.5]))
        for kind, (build, _) in MALFORMED.items():
            answer = stranger.send(*build(stranger, tmp_path / "unpickled"))
            assert answer is not None and answer[0]["ok"] is False, kind
        # a well-formed request from the stranger is refused, not served
        reply, _ = stranger.ask("set_parameters", npy(np.zeros(2)), layer=0)
        assert reply.get("refused") and "in use by client" in reply["error"]
        assert owner.layers[0].get_parameters().tolist() == [0.5, 0.5]
        taps = owner.layers[1].evaluate(np.ones((4, 2)), np.array([[0.1, 0.2]]))
        assert taps.shape == (1, 4, 2) and layers[0].safe_calls == 0
        owner.safe_state()
    finally:
        stranger.close()
        owner.close()
    assert not (tmp_path / "unpickled").exists()


def test_a_served_protocol_survives_junk_and_then_trains(tmp_path: Path) -> None:
    """The real ``serve`` process: junk from a raw client, then ``run --rig`` trains on it."""
    address = f"tcp://127.0.0.1:{free_port()}"
    server = start_server(address)
    context = zmq.Context()
    raw = Raw(address, context=context)
    try:
        for build, expected in (MALFORMED["JSON list"], MALFORMED["not UTF-8"], MALFORMED["no client"]):
            reply, _ = raw.send(*build(raw, tmp_path / "x"), timeout_s=20.0)
            assert expected in reply["error"]
        assert raw.ask("acquire")[0]["ok"]
        for kind in ("pickle", "absurd shape", "wrong input width", "layer out of range", "unknown op"):
            build, _ = MALFORMED[kind]
            reply, _ = raw.send(*build(raw, tmp_path / "x"))
            assert reply["ok"] is False and "bad request" in reply["error"], kind
        assert raw.ask("release")[0]["ok"]
        result = runner.invoke(app, ["run", QUICK, "--rig", address, *TRAIN_SETS, "--runs-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert server.poll() is None  # still up
    finally:
        raw.close()
        context.term()
        stop(server)
    assert not (tmp_path / "x").exists()


# --- keys ---------------------------------------------------------------------------------------


def test_an_unauthenticated_client_gets_no_reply_where_keys_are_needed(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    port = free_port()
    bind = f"tcp://localhost:{port}"  # a host name needs keys, though it is bound on 127.0.0.1
    context = zmq.Context()
    with pytest.raises(UserError, match="needs CurveZMQ keys"):
        RigServer(Network([CountingLayer()], []), bind, context=context)
    layer = CountingLayer()
    server = RigServer(Network([layer], []), bind, keys=keys, context=context)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    address = f"tcp://127.0.0.1:{port}"
    raw = Raw(address, context=context)
    try:
        assert raw.send(b"", raw.header(op="describe"), timeout_s=1.5) is None
        assert raw.send(b"", raw.header(op="acquire"), timeout_s=0.5) is None
        assert raw.send(b"", b"[junk", timeout_s=0.5) is None
        assert server.owner is None and server.bad_requests == 0  # nothing of it reached the server
        owner = RemoteNetwork(address, keys, timeout_s=5.0)
        owner.layers[0].set_parameters(np.array([0.1, 0.2]))
        assert layer.theta.tolist() == [0.1, 0.2]
        owner.safe_state()
        owner.close()
    finally:
        raw.close()
        server.stop()
        thread.join(timeout=10)
        server.close()
        context.term()


# --- the lease ----------------------------------------------------------------------------------


class SlowLayer(CountingLayer):
    """Takes ``delay`` seconds per evaluation (a rig settling its heaters)."""

    delay = 1.5

    def propagate(self, inputs, settings):
        time.sleep(self.delay)
        return super().propagate(inputs, settings)


@pytest.fixture
def leased() -> Iterator[tuple[RigServer, str, CountingLayer]]:
    layer = SlowLayer()
    address = f"tcp://127.0.0.1:{free_port()}"
    server = RigServer(Network([layer], []), address, lease_s=0.5, context=zmq.Context())
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, address, layer
    finally:
        server.stop()
        thread.join(timeout=10)
        server.close()
        server.context.term()


def test_an_owner_busy_longer_than_the_lease_keeps_the_rig(leased: tuple[RigServer, str, CountingLayer]) -> None:
    server, address, layer = leased
    owner = RemoteNetwork(address, timeout_s=5.0)
    try:
        owner.layers[0].set_parameters(np.array([0.5, -0.5]))
        for _ in range(2):
            time.sleep(2.0)  # computing on the host: four leases without a request
            assert owner.layers[0].get_parameters().tolist() == [0.5, -0.5]
        with pytest.raises(UserError, match="in use by client"):
            RemoteNetwork(address, timeout_s=5.0)
        # a request that takes three leases to serve does not cost the owner the rig either
        taps = owner.layers[0].evaluate(np.ones((2, 2)), np.array([[0.1, 0.2]]))
        assert taps.shape == (1, 2, 2)
        assert owner.layers[0].get_parameters().tolist() == [0.5, -0.5]
        assert layer.safe_calls == 0 and server.owner == owner.client.client
        owner.safe_state()
        assert layer.safe_calls == 1 and server.owner is None
    finally:
        owner.close()


def test_a_silent_owner_is_told_it_lost_the_rig(leased: tuple[RigServer, str, CountingLayer]) -> None:
    server, address, layer = leased
    owner = RemoteNetwork(address, timeout_s=5.0)
    try:
        owner.layers[0].set_parameters(np.array([0.5, -0.5]))
        owner.client._stop_heartbeat()  # as if its process had frozen
        time.sleep(1.2)
        assert layer.safe_calls == 1 and layer.theta.tolist() == [0.0, 0.0] and server.owner is None
        with pytest.raises(UserError, match="lost the rig"):
            owner.layers[0].get_parameters()
        assert owner.client.lost
    finally:
        owner.close()


CLIENT = """
import sys, time
from ffzero_lab.live.remote import RemoteNetwork
network = RemoteNetwork(sys.argv[1], timeout_s=10.0)
network.layers[0].set_parameters([0.5, -0.5])
print("owned", flush=True)
time.sleep(600)
"""


def test_a_killed_owner_is_dropped_after_the_lease(leased: tuple[RigServer, str, CountingLayer]) -> None:
    server, address, layer = leased
    client = subprocess.Popen([sys.executable, "-c", CLIENT, address], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "owned"
        time.sleep(1.5)  # three leases of a living, idle owner: it keeps the rig
        assert layer.theta.tolist() == [0.5, -0.5] and layer.safe_calls == 0
        with pytest.raises(UserError, match="in use by client"):
            RemoteNetwork(address, timeout_s=5.0)
    finally:
        client.kill()  # no release, no heartbeat any more
        client.wait(timeout=10)
        client.stdout.close()
    deadline = time.monotonic() + 5.0
    while layer.safe_calls == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert layer.safe_calls == 1 and layer.theta.tolist() == [0.0, 0.0] and server.owner is None
    other = RemoteNetwork(address, timeout_s=5.0)  # free again
    other.safe_state()
    other.close()
