"""A rig served over ZeroMQ: the PhysicalLayers of one machine, driven from another.

``ffzero-lab serve`` runs :class:`RigServer` (a ROUTER socket) next to the instruments;
``ffzero-lab run --rig ADDRESS`` trains through :class:`RemoteNetwork`, whose layers are
:class:`RemoteLayer` proxies meeting the same :class:`~ffzero_lab.core.contract.PhysicalLayer`
contract, so the orchestrator cannot tell the difference.

* One client owns the rig at a time (``acquire``); another gets a clear refusal naming the
  owner. The owner keeps its lease by talking; a client silent for ``lease_s`` is taken as
  lost: the rig goes to its safe state and is free again.
* Loopback (127.0.0.1, ::1) may run in the clear; any other bind address needs CurveZMQ keys
  (``ffzero-lab keys DIR``): the server's secret key and a folder of authorised client public
  keys. A client without an authorised key gets no answer at all.
* Wire: multipart ``[b"", json header, npy frames...]``; never pickle.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import zmq
import zmq.auth
from numpy.typing import NDArray

from ffzero_lab.core.contract import ParameterBounds, ParameterRangeError, PhysicalLayer
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.network import Network
from ffzero_lab.store.runstore import from_npy as _array
from ffzero_lab.store.runstore import npy as _npy

SERVER_KEY = "server.key"
CLIENT_KEY = "client.key"
AUTHORIZED = "authorized_clients"


def needs_keys(address: str) -> bool:
    """Every bind address but 127.0.0.1 and ::1 (``localhost``) needs CurveZMQ keys."""
    host = urlparse(address).hostname or ""
    if host == "localhost":
        return False
    try:
        return ipaddress.ip_address(host) not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return True


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


class RigServer:
    """Serves a :class:`Network` on a ROUTER socket until stopped.

    Args:
        network: the rig's layers and stages.
        address: bind address, e.g. ``tcp://127.0.0.1:5555``.
        keys: folder made by :func:`make_keys` (needed unless the address is 127.0.0.1 or ::1).
        lease_s: an owner silent this long is taken as lost.
    """

    def __init__(self, network: Network, address: str, keys: Path | None = None, lease_s: float = 10.0,
                 context: zmq.Context | None = None, description: dict[str, Any] | None = None) -> None:
        if "://" not in address:
            raise UserError(f"{address!r} is not a ZMQ address (e.g. tcp://127.0.0.1:5555)", "--bind")
        if needs_keys(address) and keys is None:
            raise UserError(f"serving on {address} needs CurveZMQ keys (--keys DIR; make them with 'ffzero-lab keys')",
                            "--bind")
        self.network = network
        self.description = description or network.description or {}
        self.lease_s = lease_s
        self.context = context or zmq.Context.instance()
        self.owner: str | None = None
        self.owner_seen = 0.0
        self.auth = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            from zmq.auth.thread import ThreadAuthenticator

            public, secret = _load_secret(keys / f"{SERVER_KEY}_secret", "server")
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
            raise UserError(f"cannot serve on {address}: {exc}", "--bind") from None

    def close(self) -> None:
        self.socket.close(0)
        if self.auth is not None:
            self.auth.stop()

    def _release(self) -> None:
        self.owner = None
        self.network.safe_state()

    def serve(self, stop_after_s: float | None = None) -> None:
        """Answer requests until interrupted (or ``stop_after_s``); a lost owner is released."""
        started = time.monotonic()
        while stop_after_s is None or time.monotonic() - started < stop_after_s:
            if self.owner is not None and time.monotonic() - self.owner_seen > self.lease_s:
                self._release()
            if not self.socket.poll(100):
                continue
            identity, _, header, *frames = self.socket.recv_multipart()
            request = json.loads(header)
            try:
                reply, out = self.handle(request, frames)
            except (ParameterRangeError, ValueError, IndexError, KeyError) as exc:
                reply, out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
            self.socket.send_multipart([identity, b"", json.dumps(reply).encode(), *out])

    def handle(self, request: dict[str, Any], frames: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        op, client = request.get("op"), request.get("client")
        if op == "describe":
            return {"ok": True, "layers": [
                {"in_features": layer.in_features, "ports": layer.ports, "out_features": layer.out_features,
                 "names": list(layer.bounds.names) if layer.bounds.names else None}
                for layer in self.network.layers], "stages": [s is not None for s in self.network.stages],
                "description": self.description}, [
                frame for layer in self.network.layers
                for frame in (_npy(layer.bounds.lower), _npy(layer.bounds.upper), _npy(layer.bounds.periodic))]
        if self.owner is not None and self.owner != client:
            return {"ok": False, "refused": True,
                    "error": f"the rig is in use by client {self.owner[:8]} "
                             f"(last heard {time.monotonic() - self.owner_seen:.0f} s ago); try again later"}, []
        if op == "acquire":
            self.owner, self.owner_seen = client, time.monotonic()
            return {"ok": True}, []
        if self.owner is None:
            return {"ok": False, "error": "acquire the rig first"}, []
        self.owner_seen = time.monotonic()
        if op == "release":
            self._release()
            return {"ok": True}, []
        if op == "stage":
            stage = self.network.stages[request["index"]]
            signal = _array(frames[0])
            return {"ok": True}, [_npy(signal if stage is None else stage(signal))]
        if op == "propagate_settings":  # the whole network: the served network knows how its layers are joined
            inputs, settings = _array(frames[0]), [_array(f) for f in frames[1:]]
            return {"ok": True}, [_npy(self.network.propagate_settings(inputs, settings))]
        if op == "layer_inputs":
            return {"ok": True}, [_npy(self.network.layer_inputs(int(request["layer"]), _array(frames[0])))]
        layer = self.network.layers[request["layer"]]
        if op == "get_parameters":
            return {"ok": True}, [_npy(layer.get_parameters())]
        if op == "set_parameters":
            layer.set_parameters(_array(frames[0]))
            return {"ok": True}, []
        if op == "propagate":
            outputs, taps = layer.propagate(_array(frames[0]), _array(frames[1]))
            return {"ok": True}, [_npy(outputs), _npy(taps)]
        if op == "evaluate":
            return {"ok": True}, [_npy(layer.evaluate(_array(frames[0]), _array(frames[1])))]
        return {"ok": False, "error": f"unknown operation {op!r}"}, []


class RigClient:
    """The trainer's end: requests with a timeout; a refusal or error becomes a clear exception."""

    def __init__(self, address: str, keys: Path | None = None, timeout_s: float = 30.0,
                 context: zmq.Context | None = None) -> None:
        self.address = address
        self.timeout_ms = int(timeout_s * 1000)
        self.client = uuid.uuid4().hex
        self.socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            public, secret = _load_secret(keys / f"{CLIENT_KEY}_secret", "client")
            try:
                server_public, _ = zmq.auth.load_certificate(str(keys / SERVER_KEY))
            except (OSError, ValueError) as exc:
                self.socket.close(0)
                raise UserError(f"cannot read the server's public key: {exc}", str(keys / SERVER_KEY)) from None
            self.socket.curve_secretkey = secret
            self.socket.curve_publickey = public
            self.socket.curve_serverkey = server_public
        try:
            self.socket.connect(address)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise UserError(
                f"cannot connect to {address}: {exc} (expected e.g. tcp://127.0.0.1:5555)", "--rig"
            ) from None

    def request(self, op: str, frames: list[bytes] = (), **fields: Any) -> tuple[dict[str, Any], list[bytes]]:
        header = json.dumps({"op": op, "client": self.client, **fields}).encode()
        self.socket.send_multipart([b"", header, *frames])
        if not self.socket.poll(self.timeout_ms):
            raise UserError(f"the rig at {self.address} did not answer {op!r} within {self.timeout_ms / 1000:g} s "
                            "(is it served there? are this client's keys authorised?)", "--rig")
        _, reply, *out = self.socket.recv_multipart()
        answer = json.loads(reply)
        if not answer.get("ok"):
            raise UserError(answer.get("error", "refused"), f"rig {self.address}")
        return answer, out

    def close(self) -> None:
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
        layers = []
        for i, layer in enumerate(info["layers"]):
            lower, upper, periodic = (_array(f) for f in frames[3 * i : 3 * i + 3])
            names = tuple(layer["names"]) if layer["names"] else None
            layers.append(RemoteLayer(self.client, i, layer, ParameterBounds(lower, upper, periodic, names)))
        stages = [RemoteStage(self.client, i) if present else None for i, present in enumerate(info["stages"])]
        super().__init__(layers, stages)
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
