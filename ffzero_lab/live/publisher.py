"""Live documents over ZeroMQ: a run's Bluesky documents (start, descriptors, events, stop), as JSON.

The documents are event-model's (:mod:`ffzero_lab.live.documents`); the publisher is modelled on
Bluesky's small 0MQ publisher. The socket is injected (or made by :meth:`Publisher.bind`), and is
an XPUB socket with ``XPUB_NODROP`` and non-blocking sends: when a subscriber is slow or gone and
its queue is full (``hwm`` messages), a document to it is dropped and counted, and the run never
waits.

Wire format, one multipart message per document: ``[b"ffzero", name, json]``. Never pickle.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any
from urllib.parse import urlparse

import zmq

from ffzero_lab.core.errors import UserError

TOPIC = b"ffzero"


def is_loopback(address: str) -> bool:
    """True for ``tcp://`` addresses on 127.0.0.0/8, ``localhost`` or ::1, and for ipc/inproc."""
    if address.startswith(("ipc://", "inproc://")):
        return True
    host = urlparse(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Publisher:
    """A run's sink that publishes it as Bluesky start, descriptor, event and stop documents.

    Args:
        socket: a bound XPUB (or PUB) socket.
    """

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self.sent = 0
        self.dropped = 0
        from ffzero_lab.live.documents import BlueskyDocuments  # lazy: event-model takes a second to import

        # composed by the code the tests check against event-model's schemas; checking each one
        # again here would cost the run about 0.8 ms of CPU per step
        self.documents = BlueskyDocuments(validate=False)

    @classmethod
    def bind(cls, address: str, hwm: int = 1000, wait_for_subscribers: int = 0, timeout_s: float = 5.0,
             context: zmq.Context | None = None) -> "Publisher":
        """Bind an XPUB socket; optionally wait until ``wait_for_subscribers`` have subscribed.

        Raises:
            UserError: the address cannot be bound (in use, bad form, no such interface).
        """
        ctx = context or zmq.Context.instance()
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.XPUB_NODROP, 1)
        sock.setsockopt(zmq.LINGER, 500)
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise UserError(f"cannot publish on {address}: {exc}", "--publish") from None
        publisher = cls(sock)
        publisher.wait_for_subscribers(wait_for_subscribers, timeout_s)
        return publisher

    def wait_for_subscribers(self, count: int, timeout_s: float) -> int:
        """Wait (at most ``timeout_s``) until ``count`` subscriptions arrived; returns how many did."""
        seen, deadline = 0, time.monotonic() + timeout_s
        while seen < count and time.monotonic() < deadline:
            if self.socket.poll(50, zmq.POLLIN):
                message = self.socket.recv()
                seen += bool(message[:1] == b"\x01")
        return seen

    def _send(self, name: str, doc: dict[str, Any]) -> None:
        payload = json.dumps(doc, default=float).encode()
        try:
            self.socket.send_multipart([TOPIC, name.encode(), payload], flags=zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:  # a subscriber's queue is full: drop, never wait
            self.dropped += 1

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        for bluesky_name, bluesky_doc in self.documents(name, doc):
            self._send(bluesky_name, bluesky_doc)

    def close(self) -> None:
        """Close the socket (waiting up to its linger time for queued documents to leave)."""
        self.socket.close()
