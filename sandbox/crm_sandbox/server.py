"""Run a sandbox's ASGI app under uvicorn: in a background thread for tests, or in the foreground for the CLI.

Both CRM sandboxes build a Starlette app and hand it here; nothing in this module knows about a CRM.

    from crm_sandbox.server import serve_in_thread, serve_forever, RunningServer

    with serve_in_thread(app) as server:          # binds 127.0.0.1 on a free port
        requests.get(f"{server.base_url}/...")    # server.host, server.port, server.base_url
    # leaving the block stops uvicorn and joins the thread

    with serve_in_thread(app, ssl_certfile=cert, ssl_keyfile=key) as server:
        ...                                       # server.base_url starts with https://

    serve_forever(app, host="127.0.0.1", port=8080)   # blocks; SIGINT / SIGTERM stop it cleanly

Why we bind the socket ourselves: with ``port=0`` the kernel picks a free port, and because the socket
exists before uvicorn starts there is no window in which another process can take the port, and the
caller learns the real port without parsing logs. uvicorn then serves on that socket.

The HTTP parser is httptools when it is installed (several times faster than h11 on small requests,
which is what a sandbox benchmark spends its time on) and h11 otherwise. Keep-alive stays on, because the
official clients reuse connections and a sandbox that closes them would measure TCP handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

__all__ = ["RunningServer", "ServerStartError", "http_implementation", "serve_forever", "serve_in_thread"]

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0
_GRACE_S = 0.5  # time for uvicorn's graceful shutdown before open connections are aborted
_KEEP_ALIVE_S = 30


class ServerStartError(RuntimeError):
    """The server thread died or did not accept connections in time; the message says which."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    """Where a started sandbox listens."""

    host: str
    port: int
    base_url: str  # scheme://host:port, no trailing slash


def http_implementation() -> str:
    """The uvicorn HTTP protocol to use: httptools when importable (faster), h11 otherwise."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def _config(
    app: Any,
    host: str,
    port: int,
    ssl_certfile: str | Path | None,
    ssl_keyfile: str | Path | None,
    *,
    own_logging: bool,
) -> uvicorn.Config:
    # In a thread inside someone else's process (tests, benchmarks) we must not replace their logging
    # configuration, so uvicorn's dictConfig runs only for the CLI.
    extra: dict[str, Any] = {} if own_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_implementation(),
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=_KEEP_ALIVE_S,
        ssl_certfile=str(ssl_certfile) if ssl_certfile is not None else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile is not None else None,
        server_header=False,
        date_header=True,
        **extra,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listening socket
    # says it is TCP; with proto 0, every keep-alive response waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def _wait_until_started(
    server: uvicorn.Server, thread: threading.Thread, errors: list[BaseException]
) -> None:
    """Wait for uvicorn's startup to complete, without connecting to the server.

    The socket is bound and listening before uvicorn starts, so clients can connect at once (the kernel
    queues them); what must be awaited is the app's startup. A probe connection is not used: against a TLS
    listener a bare TCP probe leaves a half-open transport behind on the server side.
    """
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if errors:
            raise ServerStartError(f"sandbox server failed to start: {errors[0]!r}") from errors[0]
        if server.started:
            return
        if not thread.is_alive():
            raise ServerStartError("sandbox server thread exited before it started")
        time.sleep(0.005)
    raise ServerStartError(f"sandbox server did not start within {_START_TIMEOUT_S}s")


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
) -> Iterator[RunningServer]:
    """Serve ``app`` in a daemon thread until the block exits; yield where it listens.

    The server has its own event loop in its thread, so the caller's thread may block on HTTP calls to it.
    """
    sock = _bind(host, port)
    actual_port = int(sock.getsockname()[1])
    server = uvicorn.Server(_config(app, host, actual_port, ssl_certfile, ssl_keyfile, own_logging=False))
    errors: list[BaseException] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the starting thread, which raises it
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"sandbox-server-{actual_port}", daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread, errors)
        yield RunningServer(host, actual_port, _base_url(host, actual_port, ssl_certfile is not None))
    finally:
        server.should_exit = True
        thread.join(_GRACE_S)
        if thread.is_alive() and loops:
            _abort_connections(loops[0], server)
            thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():  # a request still running: stop waiting for it
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        sock.close()


def _abort_connections(loop: asyncio.AbstractEventLoop, server: uvicorn.Server) -> None:
    """Close the connections uvicorn is still waiting on, from the server's own loop.

    uvicorn's graceful shutdown closes idle keep-alive connections, but a TLS close waits for the client's
    close_notify, which an idle pooled client (requests, simple-salesforce) never sends: uvicorn would wait
    out the 30-second TLS shutdown timeout, and sockets left behind surface as ResourceWarnings. A test
    sandbox that is being torn down has no one left to be graceful to.
    """

    def abort_all() -> None:
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    with contextlib.suppress(RuntimeError):  # the loop closed in the meantime: nothing left to abort
        loop.call_soon_threadsafe(abort_all)


def serve_forever(
    app: Any,
    *,
    host: str,
    port: int,
    ssl_certfile: str | Path | None = None,
    ssl_keyfile: str | Path | None = None,
    on_started: Callable[[RunningServer], None] | None = None,
) -> None:
    """Serve ``app`` in the calling (main) thread until SIGINT or SIGTERM, then return normally.

    ``on_started`` gets the address once the socket listens (useful with ``port=0``, to print the port);
    connections that arrive before uvicorn's loop runs wait in the listen backlog.
    """
    sock = _bind(host, port)
    actual_port = int(sock.getsockname()[1])
    try:
        if on_started is not None:
            on_started(
                RunningServer(host, actual_port, _base_url(host, actual_port, ssl_certfile is not None))
            )
        config = _config(app, host, actual_port, ssl_certfile, ssl_keyfile, own_logging=True)
        with _signals_end_quietly():
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """Let a SIGINT / SIGTERM that stopped uvicorn end ``serve_forever`` with a normal return.

    uvicorn shuts down gracefully on either signal and then re-raises it against the handler that was in
    place before it started, which would turn a clean stop into a KeyboardInterrupt traceback or a -15 exit.
    While serving, that handler is a no-op; afterwards the caller's handlers are back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: None)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
