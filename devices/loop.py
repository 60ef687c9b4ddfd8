"""One thread drives many paho clients through paho's socket callbacks and a selector.

A thread per device stops at a few hundred clients on this machine (docs/measured-facts.md); this
loop is how thousands of devices, each with its own MQTT session, share one process.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0


class MqttLoop:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.clients: set[mqtt.Client] = set()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._next_misc = time.monotonic() + MISC_INTERVAL_S
        # Callbacks posted from other threads (e.g. a signal handler), run inside the loop.
        self._posted: list[Callable[[], None]] = []
        self._posted_lock = threading.Lock()

    # -- client registration -----------------------------------------------------------------
    def attach(self, client: mqtt.Client) -> None:
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self.clients.add(client)

    def detach(self, client: mqtt.Client) -> None:
        self.clients.discard(client)

    def _on_socket_open(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, _client: mqtt.Client, _u: Any, sock: Any) -> None:
        # The socket may already be gone from the selector when paho closes it twice.
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        # The socket may already be gone from the selector when paho closes it twice.
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _on_unregister_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        # The socket may already be gone from the selector when paho closes it twice.
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(sock, selectors.EVENT_READ, client)

    # -- timers ------------------------------------------------------------------------------
    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        """Run `fn` in the loop at monotonic time `when`."""
        heapq.heappush(self._timers, (when, next(self._counter), fn))

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.call_at(time.monotonic() + delay, fn)

    def post(self, fn: Callable[[], None]) -> None:
        """Thread-safe: run `fn` in the loop soon."""
        with self._posted_lock:
            self._posted.append(fn)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- running -----------------------------------------------------------------------------
    def run(self, until: Callable[[], bool] | None = None) -> None:
        while not self._stop.is_set() and not (until and until()):
            self.run_once()

    def run_once(self, max_wait: float = 0.2) -> None:
        now = time.monotonic()
        wait = max_wait
        if self._timers:
            wait = max(0.0, min(wait, self._timers[0][0] - now))
        if self.selector.get_map():
            ready = self.selector.select(wait)
        else:
            time.sleep(wait)
            ready = []
        for key, mask in ready:
            client: mqtt.Client = key.data
            sock = key.fileobj
            try:
                if mask & selectors.EVENT_READ and client.socket() is sock:
                    client.loop_read()
                if mask & selectors.EVENT_WRITE and client.socket() is sock:
                    client.loop_write()
            except OSError:
                log.debug("socket error for %s", client._client_id, exc_info=True)
        self._run_timers()
        with self._posted_lock:
            posted, self._posted = self._posted, []
        for fn in posted:
            self._safe(fn)
        if time.monotonic() >= self._next_misc:
            self._next_misc = time.monotonic() + MISC_INTERVAL_S
            for client in list(self.clients):
                client.loop_misc()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self._safe(fn)

    @staticmethod
    def _safe(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("loop callback failed")
