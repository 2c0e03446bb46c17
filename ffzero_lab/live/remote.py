"""A rig served over ZeroMQ: the PhysicalLayers of one machine, driven from another.

``ffzero-lab serve`` runs :class:`RigServer` (a ROUTER socket) next to the instruments;
``ffzero-lab run --rig ADDRESS`` trains through :class:`RemoteNetwork`, whose layers are
:class:`RemoteLayer` proxies meeting the same :class:`~ffzero_lab.core.contract.PhysicalLayer`
contract, so the orchestrator cannot tell the difference.

* One client owns the rig at a time (``acquire``); another gets a clear refusal naming the
  owner. The owner keeps its lease with a heartbeat from a thread of its own (its own socket),
  so an owner busy computing between requests keeps the rig; an owner silent for ``lease_s``
  (its process gone) is taken as lost: the rig goes to its safe state and is free again. Time
  spent serving the owner's own request does not count against it.
* The bind address is parsed as libzmq parses it (:func:`parse_bind`) and refused when it is
  ambiguous (``@``, ``;``) or not understood. Loopback interfaces (127.0.0.0/8, ``[::1]``) and
  ``ipc://`` / ``inproc://`` may run in the clear; any other interface (``*``, 0.0.0.0, a host
  name, an interface name) needs CurveZMQ keys (``ffzero-lab keys DIR``): the server's secret
  key and a folder of authorised client public keys. A client without an authorised key gets
  no answer at all.
* Wire: multipart ``[b"", json header, npy frames...]``; never pickle. Every request is
  validated before anything is used (header model, frame count, ``.npy`` header, dtype, shape,
  size, finiteness, layer index); a malformed one gets an error reply and the server goes on.
"""

from __future__ import annotations

import io
import ipaddress
import json
import math
import re
import socket as _socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zmq
import zmq.auth
from numpy.lib import format as npy_format
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.markup import escape

from ffzero_lab.core.contract import ParameterBounds, ParameterRangeError, PhysicalLayer
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.network import Network
from ffzero_lab.store.runstore import from_npy as _array
from ffzero_lab.store.runstore import npy as _npy

SERVER_KEY = "server.key"
CLIENT_KEY = "client.key"
AUTHORIZED = "authorized_clients"

# --- the bind address, as libzmq reads it ---------------------------------------------------

_TCP = re.compile(r"(?P<interface>\[[^\[\]]+\]|\*|[A-Za-z0-9._-]+):(?P<port>\*|0|[1-9][0-9]{0,4})")
_EXAMPLE = "e.g. tcp://127.0.0.1:5555, tcp://[::1]:5555, tcp://*:5555 or ipc:///run/rig.sock"


@dataclass(frozen=True)
class BindAddress:
    """A bind address understood the way libzmq understands it.

    Attributes:
        scheme: ``tcp``, ``ipc`` or ``inproc``.
        interface: for tcp the interface part (``*``, an IP address, a host or interface
            name; IPv6 without its brackets); for ipc/inproc the path or name.
        port: for tcp the port (``*`` or ``0``: any free port); None otherwise.
        local: reachable from this machine only: a loopback address (127.0.0.0/8, ::1), or
            ipc:// (a file-system socket) or inproc:// (this process).
        ipv6: an IPv6 literal (the socket needs IPv6 switched on).
    """

    scheme: str
    interface: str
    port: str | None
    local: bool
    ipv6: bool = False


def _shown(address: str) -> str:
    """An address quoted for a message the command line prints with rich markup (``[fe80::1]`` or
    ``[/]`` inside it must print as they are)."""
    return escape(repr(address))


def _interface_names() -> set[str]:
    try:
        return {name for _, name in _socket.if_nameindex()}
    except (OSError, AttributeError):
        return set()


def parse_bind(address: str) -> BindAddress:
    """Parse a bind address as libzmq does, refusing whatever it might read otherwise.

    tcp: ``tcp://INTERFACE:PORT`` with INTERFACE ``*``, an IPv4 address, ``[IPv6]``, a host
    name or an interface name, and PORT a number or ``*``. Anything else is refused: libzmq
    reads a source address before ``;`` and is lenient about what follows the port, so an
    address with ``@``, ``;``, a path, spaces or junk after the port could bind another
    interface than the one this check saw.

    Raises:
        UserError: (naming ``--bind``) the address is not understood or is ambiguous.
    """
    def refuse(why: str) -> UserError:
        return UserError(f"{_shown(address)} {why} ({_EXAMPLE})", "--bind")

    scheme, sep, rest = address.partition("://")
    if not sep:
        raise refuse("is not a ZMQ address")
    if scheme in ("ipc", "inproc"):
        if not rest or "\x00" in rest or rest != rest.strip():
            raise refuse(f"has no usable {scheme} name")
        return BindAddress(scheme, rest, None, local=True)
    if scheme != "tcp":
        raise refuse(f"has the unsupported scheme {scheme!r}: serve on tcp://, ipc:// or inproc://")
    for mark in ("@", ";"):
        if mark in rest:
            raise refuse(f"is ambiguous ({mark!r}: libzmq could bind another interface than the one checked "
                         "for keys); give one interface and port, tcp://INTERFACE:PORT")
    match = _TCP.fullmatch(rest)
    if match is None:
        raise refuse("is not tcp://INTERFACE:PORT (an IPv6 address goes in brackets; nothing after the port)")
    interface, port = match["interface"], match["port"]
    if port not in ("*", "0") and int(port) > 65535:
        raise refuse(f"has port {port}, beyond 65535")
    if interface.startswith("["):
        try:
            ip6 = ipaddress.IPv6Address(interface[1:-1])
        except ValueError:
            raise refuse(f"has {escape(interface)}, which is not an IPv6 address") from None
        return BindAddress("tcp", interface[1:-1], port, local=ip6 == ipaddress.IPv6Address("::1"), ipv6=True)
    local = False
    if interface not in _interface_names():  # libzmq tries interface names first: those count as remote
        try:
            local = ipaddress.IPv4Address(interface) in ipaddress.IPv4Network("127.0.0.0/8")
        except ValueError:  # "*", a host name (localhost too), an interface name, 127.1, 0x7f000001, ...
            local = False
    return BindAddress("tcp", interface, port, local=local)


def needs_keys(address: str) -> bool:
    """Whether serving on ``address`` needs CurveZMQ keys: every interface but loopback
    (127.0.0.0/8, ``[::1]``), ipc:// and inproc://.

    Raises:
        UserError: the address is ambiguous or not understood (see :func:`parse_bind`).
    """
    return not parse_bind(address).local


def make_keys(folder: Path) -> dict[str, Path]:
    """Create a server and a client key pair in ``folder``, the client's public key authorised.

    Returns the paths: ``server`` (secret, for ``serve``), ``server_public`` (for clients),
    ``client`` (secret, for ``run --rig``), ``authorized`` (folder of client public keys).
    """
    folder.mkdir(parents=True, exist_ok=True)
    authorized = folder / AUTHORIZED
    authorized.mkdir(exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(str(folder), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(folder), "client")
    (authorized / Path(client_public).name).write_bytes(Path(client_public).read_bytes())
    return {"server": Path(server_secret), "server_public": Path(server_public), "client": Path(client_secret),
            "authorized": authorized}


def _load_secret(path: Path, what: str) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the {what} key: {exc}", str(path)) from None
    if secret is None:
        raise UserError(f"{path.name} holds no secret key (use the *.key_secret file)", str(path))
    return public, secret


# --- requests, validated before use -----------------------------------------------------------

OPS = ("describe", "acquire", "release", "heartbeat", "get_parameters", "set_parameters", "propagate", "evaluate",
       "stage", "propagate_settings", "layer_inputs")
MAX_HEADER_BYTES = 64 * 1024
MAX_NDIM = 4
REAL, SIGNAL = "iuf", "iufc"  # dtype kinds: parameter settings, signals


class BadRequest(Exception):
    """A request that is malformed: answered with an error, nothing was touched."""


class Request(BaseModel):
    """The JSON header of a request. ``layer`` for the layer operations and ``layer_inputs``,
    ``index`` for ``stage``; nothing else is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    op: Literal[OPS]  # type: ignore[valid-type]
    client: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    layer: int | None = None
    index: int | None = None


def parse_header(frame: bytes) -> Request:
    """The request header: UTF-8 JSON, an object, the fields of :class:`Request`.

    Raises:
        BadRequest: anything else.
    """
    if len(frame) > MAX_HEADER_BYTES:
        raise BadRequest(f"the header is {len(frame):,} bytes (at most {MAX_HEADER_BYTES:,})")
    try:
        data = json.loads(frame.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the header is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the header is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the header is a JSON {type(data).__name__}, not an object")
    if "op" in data and isinstance(data["op"], str) and data["op"] not in OPS:
        raise BadRequest(f"unknown operation {data['op'][:40]!r}")
    try:
        return Request.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "header"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise BadRequest(f"header field {where}: {message}") from None


def parse_array(frame: bytes, what: str, kinds: str, max_elements: int) -> NDArray[np.generic]:
    """A ``.npy`` frame, checked before it is loaded (never unpickled).

    Its header must declare a plain numeric dtype (``kinds``), at most :data:`MAX_NDIM`
    dimensions and at most ``max_elements`` values, and the frame must hold exactly the bytes
    those declare; every value must be finite.

    Raises:
        BadRequest: anything else.
    """
    buffer = io.BytesIO(frame)
    try:
        version = npy_format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(buffer)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # numpy's header parser: anything it rejects is a bad frame
        raise BadRequest(f"{what} is not a valid .npy array ({exc})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.shape or dtype.names:
        raise BadRequest(f"{what} has dtype {dtype.str!r}; expected plain numbers of kind {kinds!r}")
    if len(shape) > MAX_NDIM or any(not isinstance(n, int) or n < 0 for n in shape):
        raise BadRequest(f"{what} has shape {shape}; expected at most {MAX_NDIM} non-negative dimensions")
    count = math.prod(shape)
    if count > max_elements:
        raise BadRequest(f"{what} has shape {shape}: {count:,} values (at most {max_elements:,})")
    if len(frame) - buffer.tell() != count * dtype.itemsize:
        raise BadRequest(f"{what} declares shape {shape} of {dtype.str} but holds "
                         f"{len(frame) - buffer.tell():,} data bytes, not {count * dtype.itemsize:,}")
    try:
        array = np.load(io.BytesIO(frame), allow_pickle=False)
    except Exception as exc:  # defensive: the checks above should have caught it
        raise BadRequest(f"{what} is not a valid .npy array ({exc})") from None
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise BadRequest(f"{what} holds values that are not finite")
    return array


class RigServer:
    """Serves a :class:`Network` on a ROUTER socket until stopped.

    Args:
        network: the rig's layers and stages.
        address: bind address, e.g. ``tcp://127.0.0.1:5555`` (see :func:`parse_bind`).
        keys: folder made by :func:`make_keys` (needed unless the address is loopback, ipc or inproc).
        lease_s: an owner silent this long (no request, no heartbeat) is taken as lost.
        max_elements: the most values one array of a request, or one result, may hold.
    """

    def __init__(self, network: Network, address: str, keys: Path | None = None, lease_s: float = 10.0,
                 context: zmq.Context | None = None, description: dict[str, Any] | None = None,
                 max_elements: int = 1 << 26) -> None:
        bind = parse_bind(address)
        if not bind.local and keys is None:
            raise UserError(f"serving on {_shown(address)} needs CurveZMQ keys (--keys DIR; make them with "
                            "'ffzero-lab keys'): only loopback (127.0.0.0/8, [::1]), ipc:// and inproc:// may run "
                            "without", "--bind")
        if not lease_s > 0:
            raise UserError(f"the lease must be positive, got {lease_s}", "--lease")
        self.network = network
        self.description = description or network.description or {}
        self.lease_s = lease_s
        self.max_elements = max_elements
        self.context = context or zmq.Context.instance()
        self.owner: str | None = None
        self.owner_seen = 0.0
        self.lost_owner: str | None = None  # the last owner whose lease ran out
        self.bad_requests = 0
        self._stopping = threading.Event()
        self.auth = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # a frame beyond this drops the sender's connection before it is held in memory
        self.socket.setsockopt(zmq.MAXMSGSIZE, 16 * max_elements + MAX_HEADER_BYTES)
        if bind.ipv6:
            self.socket.setsockopt(zmq.IPV6, 1)
        if keys is not None:
            from zmq.auth.thread import ThreadAuthenticator

            try:
                public, secret = _load_secret(keys / f"{SERVER_KEY}_secret", "server")
            except UserError:
                self.socket.close(0)
                raise
            self.auth = ThreadAuthenticator(self.context)
            self.auth.start()
            self.auth.configure_curve(domain="*", location=str(keys / AUTHORIZED))
            self.socket.curve_secretkey = secret
            self.socket.curve_publickey = public
            self.socket.curve_server = True
        try:
            self.socket.bind(address)
        except zmq.ZMQError as exc:
            self.close()
            raise UserError(f"cannot serve on {_shown(address)}: {exc}", "--bind") from None

    def close(self) -> None:
        self.socket.close(0)
        if self.auth is not None:
            self.auth.stop()
            self.auth = None

    def _release(self, lost: bool = False) -> None:
        self.lost_owner = self.owner if lost else None
        self.owner = None
        self.network.safe_state()

    def stop(self) -> None:
        """Make :meth:`serve` return (from another thread) within a tenth of a second."""
        self._stopping.set()

    def serve(self, stop_after_s: float | None = None) -> None:
        """Answer requests until interrupted, :meth:`stop` or ``stop_after_s``; a lost owner is released."""
        started = time.monotonic()
        while not self._stopping.is_set() and (stop_after_s is None or time.monotonic() - started < stop_after_s):
            if self.owner is not None and time.monotonic() - self.owner_seen > self.lease_s:
                self._release(lost=True)
            if self.socket.poll(min(100, max(1, int(self.lease_s * 250)))):
                self.serve_one()

    def serve_one(self) -> None:
        """Receive one message and answer it: a result, or an error for a malformed request."""
        identity, *parts = self.socket.recv_multipart()
        request: Request | None = None
        try:
            if len(parts) < 2 or parts[0] != b"":
                raise BadRequest("expected the frames [b'', header, arrays...]")
            request = parse_header(parts[1])
            reply, out = self.handle(request, parts[2:])
        except BadRequest as exc:
            self.bad_requests += 1
            reply, out = {"ok": False, "bad_request": True, "error": f"bad request: {exc}"}, []
        except (ParameterRangeError, ValueError, IndexError, KeyError, TypeError) as exc:
            reply, out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
        if request is not None and request.client == self.owner:
            self.owner_seen = time.monotonic()  # the time spent serving the owner does not count against it
        self.socket.send_multipart([identity, b"", json.dumps(reply).encode(), *out])

    # --- checks of a request's arrays against the network ---

    def _frames(self, frames: list[bytes], count: int, op: str) -> None:
        if len(frames) != count:
            raise BadRequest(f"{op} takes {count} array frame{'s' * (count != 1)}, got {len(frames)}")

    def _layer(self, request: Request, limit: int | None = None) -> int:
        limit = len(self.network.layers) if limit is None else limit
        if request.layer is None:
            raise BadRequest(f"{request.op} needs the field 'layer'")
        if not 0 <= request.layer < limit:
            raise BadRequest(f"layer {request.layer} does not exist (0 to {limit - 1})")
        return request.layer

    def _settings(self, frame: bytes, layer: PhysicalLayer, what: str, single: bool = False) -> NDArray[np.floating]:
        settings = parse_array(frame, what, REAL, self.max_elements)
        n = layer.n_params
        if single and settings.shape != (n,):
            raise BadRequest(f"{what} has shape {settings.shape}; expected ({n},)")
        if not single and (settings.ndim not in (1, 2) or settings.shape[-1] != n or settings.size == 0):
            raise BadRequest(f"{what} has shape {settings.shape}; expected (S, {n}) with S >= 1")
        return settings if single else np.atleast_2d(settings)

    def _inputs(self, frame: bytes, width: int, what: str, settings: int | None = None) -> NDArray[np.generic]:
        inputs = parse_array(frame, what, SIGNAL, self.max_elements)
        per_setting = settings is not None and inputs.ndim == 3 and inputs.shape[0] == settings
        if not (inputs.ndim == 2 or per_setting) or inputs.shape[-1] != width or inputs.size == 0:
            shapes = f"(B, {width})" + (f" or ({settings}, B, {width})" if settings is not None else "")
            raise BadRequest(f"{what} has shape {inputs.shape}; expected {shapes} with B >= 1")
        return inputs

    def _result_size(self, settings: int, batch: int, widths: list[int]) -> None:
        size = settings * batch * max(widths)
        if size > self.max_elements:
            raise BadRequest(f"{settings:,} settings x {batch:,} inputs x {max(widths)} ports would make "
                             f"{size:,} values (at most {self.max_elements:,})")

    def handle(self, request: Request, frames: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """Answer one validated header and its array frames (checked here before use).

        Raises:
            BadRequest: the frames do not fit the operation or the network.
        """
        op, client, now = request.op, request.client, time.monotonic()
        if op == "describe":
            self._frames(frames, 0, op)
            return {"ok": True, "lease_s": self.lease_s, "layers": [
                {"in_features": layer.in_features, "ports": layer.ports, "out_features": layer.out_features,
                 "names": list(layer.bounds.names) if layer.bounds.names else None}
                for layer in self.network.layers], "stages": [s is not None for s in self.network.stages],
                "description": self.description}, [
                frame for layer in self.network.layers
                for frame in (_npy(layer.bounds.lower), _npy(layer.bounds.upper), _npy(layer.bounds.periodic))]
        if self.owner is not None and self.owner != client:
            return {"ok": False, "refused": True,
                    "error": f"the rig is in use by client {self.owner[:8]} "
                             f"(last heard {now - self.owner_seen:.0f} s ago); try again later"}, []
        if op == "acquire":
            self._frames(frames, 0, op)
            self.owner, self.owner_seen, self.lost_owner = client, now, None
            return {"ok": True, "lease_s": self.lease_s}, []
        if self.owner is None:
            if client == self.lost_owner:
                return {"ok": False, "lost": True,
                        "error": f"this client was silent for more than the {self.lease_s:g} s lease and lost the "
                                 "rig, which went to its safe state"}, []
            return {"ok": False, "error": "acquire the rig first"}, []
        self.owner_seen = now
        if op == "heartbeat":
            return {"ok": True}, []
        if op == "release":
            self._release()
            return {"ok": True}, []
        layers = self.network.layers
        if op == "stage":
            self._frames(frames, 1, op)
            if request.index is None or not 0 <= request.index < len(self.network.stages):
                raise BadRequest(f"stage {request.index} does not exist (0 to {len(self.network.stages) - 1})")
            stage = self.network.stages[request.index]
            signal = parse_array(frames[0], "the signal", SIGNAL, self.max_elements)
            width = layers[request.index].out_features
            if not 1 <= signal.ndim <= MAX_NDIM - 1 or signal.shape[-1] != width:
                raise BadRequest(f"the signal has shape {signal.shape}; expected (..., {width})")
            return {"ok": True}, [_npy(signal if stage is None else stage(signal))]
        if op == "propagate_settings":  # the whole network: the served network knows how its layers are joined
            self._frames(frames, 1 + len(layers), op)
            settings = [self._settings(f, layer, f"the settings of layer {i}")
                        for i, (f, layer) in enumerate(zip(frames[1:], layers))]
            if len({len(s) for s in settings}) != 1:
                raise BadRequest(f"the layers' settings differ in number: {[len(s) for s in settings]}")
            inputs = self._inputs(frames[0], layers[0].in_features, "the inputs")
            self._result_size(len(settings[0]), inputs.shape[-2],
                              [w for layer in layers for w in (layer.ports, layer.out_features)])
            return {"ok": True}, [_npy(self.network.propagate_settings(inputs, settings))]
        if op == "layer_inputs":
            self._frames(frames, 1, op)
            index = self._layer(request)
            inputs = self._inputs(frames[0], layers[0].in_features, "the inputs")
            self._result_size(1, len(inputs), [w for layer in layers for w in (layer.ports, layer.out_features)])
            return {"ok": True}, [_npy(self.network.layer_inputs(index, inputs))]
        layer = layers[self._layer(request)]
        if op == "get_parameters":
            self._frames(frames, 0, op)
            return {"ok": True}, [_npy(layer.get_parameters())]
        if op == "set_parameters":
            self._frames(frames, 1, op)
            layer.set_parameters(self._settings(frames[0], layer, "the parameters", single=True))
            return {"ok": True}, []
        # propagate, evaluate
        self._frames(frames, 2, op)
        settings = self._settings(frames[1], layer, "the settings")
        inputs = self._inputs(frames[0], layer.in_features, "the inputs", settings=len(settings))
        self._result_size(len(settings), inputs.shape[-2], [layer.ports, layer.out_features])
        if op == "propagate":
            outputs, taps = layer.propagate(inputs, settings)
            return {"ok": True}, [_npy(outputs), _npy(taps)]
        return {"ok": True}, [_npy(layer.evaluate(inputs, settings))]


class _Link:
    """How a client's sockets reach the server: the address and the CurveZMQ credentials."""

    def __init__(self, address: str, keys: Path | None, context: zmq.Context) -> None:
        self.address, self.context, self.curve = address, context, None
        if keys is not None:
            public, secret = _load_secret(keys / f"{CLIENT_KEY}_secret", "client")
            try:
                server_public, _ = zmq.auth.load_certificate(str(keys / SERVER_KEY))
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot read the server's public key: {exc}", str(keys / SERVER_KEY)) from None
            self.curve = (public, secret, server_public)

    def socket(self) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = self.curve
        try:
            sock.connect(self.address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise UserError(
                f"cannot connect to {self.address}: {exc} (expected e.g. tcp://127.0.0.1:5555)", "--rig"
            ) from None
        return sock


class RigClient:
    """The trainer's end: requests with a timeout; a refusal or error becomes a clear exception.

    Once it owns the rig (``acquire``) a daemon thread sends a heartbeat on a socket of its own
    every quarter of the server's lease, until ``release`` or :meth:`close`, so the owner keeps
    the rig however long it computes between requests, and loses it when its process is gone.
    """

    def __init__(self, address: str, keys: Path | None = None, timeout_s: float = 30.0,
                 context: zmq.Context | None = None) -> None:
        self.address = address
        self.timeout_ms = int(timeout_s * 1000)
        self.client = uuid.uuid4().hex
        self._link = _Link(address, keys, context or zmq.Context.instance())
        self.socket = self._link.socket()
        self.socket.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self._beating: threading.Event | None = None
        self._beat_thread: threading.Thread | None = None
        self.lost = False  # the server said this client's lease had run out

    def request(self, op: str, frames: list[bytes] = (), **fields: Any) -> tuple[dict[str, Any], list[bytes]]:
        if op == "release":
            self._stop_heartbeat()
        header = json.dumps({"op": op, "client": self.client, **fields}).encode()
        try:
            self.socket.send_multipart([b"", header, *frames])  # SNDTIMEO: no connection to queue it on
            answered = self.socket.poll(self.timeout_ms)
        except zmq.Again:
            answered = False
        if not answered:
            raise UserError(f"the rig at {self.address} did not answer {op!r} within {self.timeout_ms / 1000:g} s "
                            "(is it served there? are this client's keys authorised?)", "--rig")
        try:
            _, reply, *out = self.socket.recv_multipart()
            answer = json.loads(reply)
            assert isinstance(answer, dict)
        except (ValueError, AssertionError):
            raise UserError(f"the rig at {self.address} sent a malformed reply to {op!r}", "--rig") from None
        if not answer.get("ok"):
            self.lost = self.lost or bool(answer.get("lost"))
            raise UserError(str(answer.get("error", "refused")), f"rig {self.address}")
        if op == "acquire" and isinstance(answer.get("lease_s"), int | float) and answer["lease_s"] > 0:
            self._start_heartbeat(float(answer["lease_s"]))
        return answer, out

    def _start_heartbeat(self, lease_s: float) -> None:
        self._stop_heartbeat()
        beating = threading.Event()
        sock = self._link.socket()  # its own socket: zmq sockets are not shared between threads
        sock.setsockopt(zmq.SNDHWM, 4)
        interval = min(max(lease_s / 4, 0.01), 5.0)
        header = json.dumps({"op": "heartbeat", "client": self.client}).encode()

        def beat() -> None:
            try:
                while not beating.wait(interval):
                    try:
                        sock.send_multipart([b"", header], flags=zmq.NOBLOCK)
                    except zmq.Again:  # not connected yet, or the server is not reading: try again
                        pass
                    while sock.poll(0):  # drain the answers; a lost lease is remembered
                        try:
                            answer = json.loads(sock.recv_multipart()[-1])
                            self.lost = self.lost or bool(isinstance(answer, dict) and answer.get("lost"))
                        except ValueError:
                            pass
            except zmq.ZMQError:  # the context is going away
                pass
            finally:
                sock.close(0)

        self._beating = beating
        self._beat_thread = threading.Thread(target=beat, name=f"rig-heartbeat-{self.client[:8]}", daemon=True)
        self._beat_thread.start()

    def _stop_heartbeat(self) -> None:
        if self._beating is not None and self._beat_thread is not None:
            self._beating.set()
            self._beat_thread.join()
        self._beating = self._beat_thread = None

    def close(self) -> None:
        self._stop_heartbeat()
        self.socket.close(0)


class RemoteLayer(PhysicalLayer):
    """A layer of a served rig, driven over the network."""

    def __init__(self, client: RigClient, index: int, info: dict[str, Any], bounds: ParameterBounds) -> None:
        self.client, self.index = client, index
        self.in_features, self.ports, self.out_features = info["in_features"], info["ports"], info["out_features"]
        self._bounds = bounds

    @property
    def bounds(self) -> ParameterBounds:
        return self._bounds

    def get_parameters(self) -> NDArray[np.float64]:
        return _array(self.client.request("get_parameters", layer=self.index)[1][0])

    def set_parameters(self, values: NDArray[np.floating]) -> None:
        values = self._bounds.apply(values)  # checked here too: nothing out of range leaves this host
        self.client.request("set_parameters", [_npy(values)], layer=self.index)

    def propagate(self, inputs, settings):
        settings = self._bounds.apply(np.atleast_2d(settings))
        _, (outputs, taps) = self.client.request("propagate", [_npy(inputs), _npy(settings)], layer=self.index)
        return _array(outputs), _array(taps)

    def evaluate(self, inputs, settings):
        """Taps only: the outputs stay on the rig."""
        settings = self._bounds.apply(np.atleast_2d(settings))
        return _array(self.client.request("evaluate", [_npy(inputs), _npy(settings)], layer=self.index)[1][0])


class RemoteStage:
    """A stage of a served rig (it acts on the rig's own signals)."""

    def __init__(self, client: RigClient, index: int) -> None:
        self.client, self.index = client, index

    def __call__(self, signal: NDArray[np.generic]) -> NDArray[np.generic]:
        return _array(self.client.request("stage", [_npy(signal)], index=self.index)[1][0])


class RemoteNetwork(Network):
    """The network of a served rig; acquiring it makes this client its owner.

    ``safe_state`` releases the rig, which puts it in its safe state.
    """

    def __init__(self, address: str, keys: Path | None = None, timeout_s: float = 30.0) -> None:
        self.client = RigClient(address, keys, timeout_s)
        try:
            info, frames = self.client.request("describe")
            self.client.request("acquire")
        except UserError:
            self.client.close()
            raise
        try:
            layers = []
            for i, layer in enumerate(info["layers"]):
                lower, upper, periodic = (_array(f) for f in frames[3 * i : 3 * i + 3])
                names = tuple(layer["names"]) if layer["names"] else None
                layers.append(RemoteLayer(self.client, i, layer, ParameterBounds(lower, upper, periodic, names)))
            stages = [RemoteStage(self.client, i) if present else None for i, present in enumerate(info["stages"])]
            super().__init__(layers, stages)
        except Exception:  # a description this client cannot use: give the rig back
            try:
                self.client.request("release")
            except UserError:
                pass
            self.client.close()
            raise
        self.description = {"rig": address, "curve": keys is not None, "served": info.get("description") or {}}

    def propagate_settings(self, inputs: NDArray[np.generic],
                           settings: list[NDArray[np.floating]]) -> NDArray[np.float64]:
        """Evaluated by the served network as a whole (a rig whose meshes are joined optically
        writes every mesh's setting together; layer by layer from here it could not)."""
        frames = [_npy(inputs), *(_npy(np.asarray(s)) for s in settings)]
        return _array(self.client.request("propagate_settings", frames)[1][0])

    def layer_inputs(self, layer: int, inputs: NDArray[np.generic], chunk: int = 4096) -> NDArray[np.generic]:
        """Computed by the served network (which knows what it need not measure), in chunks."""
        return np.concatenate([_array(self.client.request("layer_inputs", [_npy(inputs[start:start + chunk])],
                                                          layer=layer)[1][0])
                               for start in range(0, len(inputs), chunk)]) if layer else inputs

    def safe_state(self) -> None:
        """Release the rig (the server then puts it in its safe state)."""
        self.client.request("release")

    def close(self) -> None:
        """Close the link to the server."""
        self.client.close()
