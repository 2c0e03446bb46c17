"""``ffzero-lab monitor ADDRESS --web [HOST:PORT]``: a run's live curves in a browser.

A small HTTP server (the standard library's, one thread per connection) serves

* ``/``: the page (``page.html``): loss and accuracy per layer, evaluations per second, the
  latest tap against its class's prototype, drawn with plotly.js;
* ``/plotly.min.js``: plotly.js as the ``plotly`` Python package ships it (no network needed);
* ``/events``: the current run's documents as server-sent events, one JSON object
  ``{"name": ..., "doc": ...}`` per message, plus ``{"name": "ignored", "count": N}`` (malformed
  messages the monitor ignored) and ``{"name": "reset"}`` (a new run started).

Only documents the monitor accepted reach the page (see :mod:`ffzero_lab.live.monitor`), and the
page shows text as text. A page opened late is first sent the current run's documents so far
(held in memory: the monitor keeps a run's step and epoch events, and the latest taps event of
each layer). The server binds loopback addresses unless told otherwise: the page has no login.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ffzero_lab.core.errors import UserError

DEFAULT_WEB = "127.0.0.1:5578"
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")  # a name, an IPv4 or (unbracketed by now) IPv6 address
KEEPALIVE_S = 10.0


def parse_web_address(text: str, public: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too; PORT 0 picks a free one) -> (host, port).

    Raises:
        UserError: not HOST:PORT, or a host that is not a loopback address (127.0.0.0/8, ::1,
            ``localhost``) while ``public`` is False.
    """
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not _HOST.fullmatch(host) or not port.isdigit() or int(port) > 65535:
        raise UserError(f"{text!r} is not HOST:PORT (e.g. {DEFAULT_WEB}, or 127.0.0.1:0 for any free port)", "--web")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not public:
        raise UserError(f"{host} is not a loopback address and the page has no login; add --web-public to serve "
                        "it there anyway", "--web")
    return host, int(port)


def _json(message: dict[str, Any]) -> str:
    """One line of JSON as a browser parses it (non-finite numbers become null)."""
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class Feed:
    """The current run's accepted documents, for pages open now and pages opened later.

    ``log`` holds one JSON text per document, in order; an older taps event of a layer is
    replaced by None once a newer one arrives (a page needs only the latest).
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.run = 0  # counts start documents: a page that sees it change starts over
        self.log: list[str | None] = []
        self.ignored = 0
        self.closed = False
        self._streams: dict[str, str] = {}  # descriptor uid -> stream name
        self._taps: dict[Any, int] = {}  # layer -> index of its latest taps event in log

    def add(self, name: str, doc: dict[str, Any]) -> None:
        """Take a document the monitor accepted."""
        text = _json({"name": name, "doc": doc})
        with self.changed:
            if name == "start":
                self.run += 1
                self.log, self._streams, self._taps = [], {}, {}
            elif name == "descriptor":
                self._streams[doc["uid"]] = doc["name"]
            elif name == "event" and self._streams.get(doc.get("descriptor", "")) == "taps":
                layer = (doc.get("data") or {}).get("layer")
                if layer in self._taps:
                    self.log[self._taps[layer]] = None
                self._taps[layer] = len(self.log)
            self.log.append(text)
            self.changed.notify_all()

    def count_ignored(self, count: int) -> None:
        with self.changed:
            self.ignored = count
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: WebMonitor

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # quiet: no access log
        pass

    def do_GET(self) -> None:  # noqa: N802  # the name http.server calls
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", self.server.page)
        elif path == "/plotly.min.js":
            self._send(200, "text/javascript; charset=utf-8", self.server.plotly_js())
        elif path == "/events":
            self._events()
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        cache = "max-age=3600" if status == 200 and "javascript" in kind else "no-store"
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """Server-sent events until the client goes or the monitor stops."""
        feed = self.server.feed
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        run, sent, ignored = -1, 0, -1
        try:
            while True:
                with feed.changed:
                    feed.changed.wait_for(lambda: feed.closed or feed.run != run or len(feed.log) > sent
                                          or feed.ignored != ignored, timeout=KEEPALIVE_S)
                    if feed.closed:
                        return
                    lines = []
                    if feed.run != run:
                        run, sent = feed.run, 0
                        lines.append('{"name":"reset"}')
                    lines += [text for text in feed.log[sent:] if text is not None]
                    sent = len(feed.log)
                    if feed.ignored != ignored:
                        ignored = feed.ignored
                        lines.append(_json({"name": "ignored", "count": ignored}))
                chunk = "".join(f"data: {text}\n\n" for text in lines) or ": keep-alive\n\n"
                self.wfile.write(chunk.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


class WebMonitor(ThreadingHTTPServer):
    """The page's server, on its own thread: :meth:`start`, then :meth:`stop`.

    Args:
        host, port: where to listen (port 0: any free port; :attr:`url` says which).
    """

    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise UserError(f"cannot serve the page on {host}:{port}: {exc.strerror or exc}", "--web") from None
        self.feed = Feed()
        self.page = resources.files("ffzero_lab.live").joinpath("page.html").read_bytes()
        self._plotly: bytes | None = None
        self._thread = threading.Thread(target=self.serve_forever, name="monitor-web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/"

    def plotly_js(self) -> bytes:
        """plotly.js as the installed ``plotly`` package ships it."""
        if self._plotly is None:
            from plotly.offline import get_plotlyjs  # lazy: only when a page asks for it

            self._plotly = get_plotlyjs().encode()
        return self._plotly

    def start(self) -> WebMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: open event streams end, the socket closes."""
        self.feed.close()
        self.shutdown()
        self.server_close()
