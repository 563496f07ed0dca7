"""A whole-response deadline for HTTP requests: connect, headers and body together.

`requests` timeouts bound each socket read, so a server that sends its headers and then a
byte a second never times out. Here one watchdog thread shuts down the socket of any request
still running at its deadline; the request then fails as a `requests` Timeout (retriable).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import socket
import threading
import time
import typing as t

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override
from urllib3 import PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tap_amplemarket.errors import AmplemarketError
from tap_amplemarket.interim import FinalResponse


class _Deadline:
    """One request's deadline and the sockets it used."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.sockets: list[socket.socket] = []
        self.done = False
        self.expired = False
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            if sock is None or self.done:
                return
            if self.expired:  # attached after the watchdog fired: fail it now
                _shutdown(sock)
            self.sockets.append(sock)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            for sock in self.sockets:
                _shutdown(sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # unblocks a recv in another thread


class _Watchdog:
    """A daemon thread that expires deadlines in time order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._cond:
            # Finished deadlines leave from the top: the thread, asleep until the earliest
            # deadline, would keep every request of the last `total_seconds` otherwise.
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="request-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is deadline:  # else the thread already wakes up earlier
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)[2].expire()


_WATCHDOG = _Watchdog()
_current = threading.local()


class _DeadlineConnectionMixin:
    """Hands the connection's socket to the deadline of the request using it.

    It also reads past interim 1xx responses: see interim.py.
    """

    sock: socket.socket | None
    response_class: type[http.client.HTTPResponse] = FinalResponse

    def request(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]  # connects if needed
        deadline: _Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self.sock)


class _HTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    @override
    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    @override
    def proxy_manager_for(self, proxy: str, **proxy_kwargs: t.Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # SOCKS managers keep their own pools
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


#: The largest body read, once decompressed: a page of 100 calls is a few MB; anything far
#: beyond (a compression bomb, a body that never ends) would exhaust memory first.
MAX_RESPONSE_BYTES = 64 << 20


class ResponseTooLargeError(AmplemarketError):
    """A response body beyond MAX_RESPONSE_BYTES."""


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The body of a streamed `response`, decompressed, or ResponseTooLargeError past `limit`."""
    body = bytearray()
    for chunk in response.iter_content(1 << 16):
        body += chunk
        if len(body) > limit:
            response.close()
            path = response.request.path_url.split("?")[0]
            msg = (
                f"Amplemarket sent more than {limit >> 20} MiB for {path} (decompressed): "
                "stopping rather than run out of memory; report it to Amplemarket, or lower "
                "page_size"
            )
            raise ResponseTooLargeError(msg)
    return bytes(body)


class DeadlineSession(requests.Session):
    """A Session whose every request completes within `total_seconds` or raises Timeout.

    Its bodies are read up to MAX_RESPONSE_BYTES.
    """

    def __init__(self, total_seconds: float) -> None:
        """Built from the time, in seconds, each whole request may take."""
        super().__init__()
        self.total_seconds = total_seconds
        adapter = _DeadlineAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    @override
    def get_redirect_target(self, resp: requests.Response) -> str | None:
        # Redirects are never followed (the stream reports them), and requests would read a
        # Location it will not follow anyway: one no parser can read raised a ValueError.
        return None

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        deadline = _Deadline(time.monotonic() + self.total_seconds)
        _current.deadline = deadline
        _WATCHDOG.watch(deadline)
        try:
            response = super().send(request, **{**kwargs, "stream": True})
            # requests keeps a read body in `_content`; it has no public way to cap the read.
            response._content = read_capped(response, MAX_RESPONSE_BYTES)
            return response
        except requests.exceptions.RequestException:
            if deadline.expired:
                msg = f"No complete response within {self.total_seconds:g}s"
                raise requests.exceptions.Timeout(msg) from None
            raise
        finally:
            deadline.finish()
            _current.deadline = None
