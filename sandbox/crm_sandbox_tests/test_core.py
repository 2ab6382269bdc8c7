"""The shared sandbox core over real HTTP: server thread, faults, request stats, control routes and client."""

from __future__ import annotations

import gc
import http.client
import ipaddress
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from crm_sandbox.clock import SandboxClock
from crm_sandbox.control import control_routes
from crm_sandbox.control_client import SandboxControl, SandboxControlError
from crm_sandbox.faults import Fault, FaultConfig, FaultInjector, FaultKind, FaultMiddleware, FaultRenderers
from crm_sandbox.server import ServerStartError, serve_in_thread
from crm_sandbox.stats import RequestStats, RequestStatsMiddleware
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope


class DictStore:
    """A tiny store of immutable values: snapshot is a shallow copy, as the CRM stores do it."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def snapshot(self) -> object:
        return dict(self.items)

    def restore(self, state: object) -> None:
        assert isinstance(state, dict)
        self.items = dict(state)


def _crm_server_error(scope: Scope, fault: Fault) -> Response:
    return JSONResponse([{"errorCode": "SERVER_ERROR", "message": "boom"}], status_code=fault.status or 500)


def _crm_rate_limited(scope: Scope, fault: Fault) -> Response:
    return JSONResponse({"category": "RATE_LIMITS"}, status_code=429, headers={"Retry-After": "2"})


@dataclass
class Sandbox:
    base_url: str
    store: DictStore
    injector: FaultInjector
    stats: RequestStats
    clock: SandboxClock
    control: SandboxControl


def _build_app(
    store: DictStore, injector: FaultInjector, stats: RequestStats, clock: SandboxClock
) -> Starlette:
    async def get_item(request: Request) -> Response:
        key = request.path_params["key"]
        if key not in store.items:
            return JSONResponse({"message": "not found"}, status_code=404)
        return JSONResponse({"key": key, "value": store.items[key]})

    async def put_item(request: Request) -> Response:
        body = await request.json()
        store.items[request.path_params["key"]] = str(body["value"])
        return JSONResponse({"ok": True}, status_code=201)

    async def get_thing(request: Request) -> Response:
        return JSONResponse({"thing": request.path_params["thing_id"]})

    async def whoami(request: Request) -> Response:
        issued_at = datetime.fromisoformat(request.headers["x-issued-at"])
        if injector.token_expired(issued_at, clock.now()):
            return JSONResponse({"message": "expired"}, status_code=401)
        return JSONResponse({"now": clock.now().isoformat()})

    crm_routes: list[BaseRoute] = [
        Route("/items/{key}", get_item, methods=["GET"]),
        Route("/items/{key}", put_item, methods=["PUT"]),
        Route("/whoami", whoami, methods=["GET"]),
        Mount("/v1", routes=[Route("/things/{thing_id}", get_thing, methods=["GET"])]),
    ]
    routes = [*control_routes(lambda: store, injector, stats, clock), *crm_routes]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestStatsMiddleware, stats=stats, routes=routes),
            Middleware(
                FaultMiddleware,
                injector_provider=lambda: injector,
                renderers=FaultRenderers(server_error=_crm_server_error, rate_limited=_crm_rate_limited),
            ),
        ],
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    store, injector, stats, clock = DictStore(), FaultInjector(), RequestStats(), SandboxClock()
    with (
        serve_in_thread(_build_app(store, injector, stats, clock)) as server,
        SandboxControl(server.base_url) as control,
    ):
        yield Sandbox(server.base_url, store, injector, stats, clock, control)


@pytest.fixture
def fresh(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.control.set_faults(None)
    sandbox.control.set_clock(None)
    sandbox.control.reset_stats()
    sandbox.store.items.clear()
    yield sandbox
    sandbox.control.set_faults(None)
    sandbox.control.set_clock(None)


def _statuses(session: requests.Session, url: str, n: int) -> list[object]:
    seen: list[object] = []
    for _ in range(n):
        try:
            seen.append(session.get(url, timeout=10).status_code)
        except requests.exceptions.RequestException as exc:
            seen.append(type(exc).__name__)
    return seen


# --- server ----------------------------------------------------------------


def test_serves_on_a_free_loopback_port_and_stops_on_exit() -> None:
    """serve_in_thread answers on 127.0.0.1 at the reported port and frees the port when the block exits."""
    app = Starlette(routes=[Route("/ping", lambda request: JSONResponse({"pong": True}))])
    with serve_in_thread(app) as server:
        assert server.host == "127.0.0.1"
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert requests.get(f"{server.base_url}/ping", timeout=5).json() == {"pong": True}
        port = server.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


_SERVE_FOREVER_SCRIPT = """
import sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from crm_sandbox.server import serve_forever

app = Starlette(routes=[Route("/ping", lambda request: JSONResponse({"pong": True}))])
serve_forever(app, host="127.0.0.1", port=0, on_started=lambda s: print(s.base_url, flush=True))
print("stopped", flush=True)
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_stops_cleanly_on_signal(stop_signal: signal.Signals) -> None:
    """serve_forever reports its address, serves, and returns normally on SIGTERM or SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE_FOREVER_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        answer = _get_when_ready(f"{base_url}/ping")
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert answer == {"pong": True}
    assert (process.returncode, out.strip()) == (0, "stopped"), err


def _get_when_ready(url: str) -> object:
    for _ in range(200):
        try:
            return requests.get(url, timeout=5).json()
        except requests.exceptions.ConnectionError:
            threading.Event().wait(0.05)
    raise AssertionError(f"{url} never answered")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_serves_https_with_the_given_certificate(tmp_path: Path) -> None:
    """Over TLS the base URL is https://, a trusting client connects, and shutdown closes idle connections."""
    cert_file, key_file = _self_signed(tmp_path)
    app = Starlette(routes=[Route("/ping", lambda request: JSONResponse({"pong": True}))])
    with serve_in_thread(app, ssl_certfile=cert_file, ssl_keyfile=key_file) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        assert requests.get(f"{server.base_url}/ping", verify=str(cert_file), timeout=5).json() == {
            "pong": True
        }
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.base_url}/ping", timeout=5)
        idle = requests.Session()  # a pooled keep-alive connection the client never closes
        assert idle.get(f"{server.base_url}/ping", verify=str(cert_file), timeout=5).status_code == 200
        thread_name = f"sandbox-server-{server.port}"
    gc.collect()  # a server-side socket left open would surface here as an unraisable ResourceWarning
    assert thread_name not in [thread.name for thread in threading.enumerate()]
    idle.close()


def test_start_failure_is_raised_in_the_caller(tmp_path: Path) -> None:
    """A server that cannot start (missing certificate) raises ServerStartError instead of hanging."""
    app = Starlette(routes=[])
    missing = tmp_path / "missing.pem"
    with pytest.raises(ServerStartError), serve_in_thread(app, ssl_certfile=missing, ssl_keyfile=missing):
        pass


def test_keep_alive_serves_several_requests_on_one_connection(fresh: Sandbox) -> None:
    """The server keeps the connection open: three requests are answered over one TCP connection."""
    connection = http.client.HTTPConnection("127.0.0.1", int(fresh.base_url.rsplit(":", 1)[1]), timeout=5)
    try:
        statuses = []
        for _ in range(3):
            connection.request("GET", "/items/a")
            response = connection.getresponse()
            response.read()
            statuses.append((response.status, response.getheader("connection")))
        local_port = connection.sock.getsockname()[1]
        connection.request("GET", "/items/a")
        connection.getresponse().read()
        assert connection.sock.getsockname()[1] == local_port
    finally:
        connection.close()
    assert statuses == [(404, None)] * 3


# --- stats ----------------------------------------------------------------


def test_stats_count_by_route_template_and_skip_control_paths(fresh: Sandbox) -> None:
    """Requests count under "METHOD /template" (mounts included), unmatched ones under the raw path."""
    requests.put(f"{fresh.base_url}/items/a", json={"value": 1}, timeout=5)
    requests.get(f"{fresh.base_url}/items/a", timeout=5)
    requests.get(f"{fresh.base_url}/items/b", timeout=5)
    requests.get(f"{fresh.base_url}/v1/things/7", timeout=5)
    requests.get(f"{fresh.base_url}/nowhere", timeout=5)
    fresh.control.stats()  # a control call, which must not count
    stats = fresh.control.stats()
    assert stats["total"] == 5
    assert stats["endpoints"] == {
        "GET /items/{key}": 2,
        "PUT /items/{key}": 1,
        "GET /v1/things/{thing_id}": 1,
        "GET /nowhere": 1,
    }
    assert stats["statuses"] == {"200": 2, "201": 1, "404": 2}


def test_reset_stats_zeroes_counts(fresh: Sandbox) -> None:
    """reset_stats forgets every earlier request."""
    requests.get(f"{fresh.base_url}/items/a", timeout=5)
    fresh.control.reset_stats()
    assert fresh.control.stats()["total"] == 0


# --- snapshot / restore ----------------------------------------------------------------


def test_snapshot_and_restore_put_back_the_data(fresh: Sandbox) -> None:
    """Writes after a snapshot disappear on restore, and the same snapshot can be restored twice."""
    requests.put(f"{fresh.base_url}/items/a", json={"value": "before"}, timeout=5)
    fresh.control.snapshot("s1")
    requests.put(f"{fresh.base_url}/items/a", json={"value": "after"}, timeout=5)
    requests.put(f"{fresh.base_url}/items/b", json={"value": "new"}, timeout=5)
    fresh.control.restore("s1")
    assert fresh.store.items == {"a": "before"}
    requests.put(f"{fresh.base_url}/items/c", json={"value": "again"}, timeout=5)
    fresh.control.restore("s1")
    assert fresh.store.items == {"a": "before"}


def test_restore_of_unknown_snapshot_is_404(fresh: Sandbox) -> None:
    """Restoring a name that was never saved fails with 404 and names the snapshots that exist."""
    fresh.control.snapshot("known")
    with pytest.raises(SandboxControlError, match="known") as info:
        fresh.control.restore("never-saved")
    assert info.value.status == 404


def test_control_rejects_bad_bodies_with_400(fresh: Sandbox) -> None:
    """Malformed control bodies get 400 with an error text, not a 500."""
    bad = [
        ("snapshot", b"not json"),
        ("snapshot", b'{"name": ""}'),
        ("faults", b'{"error_rate": 2}'),
        ("faults", b'{"bogus": 1}'),
        ("faults", b"[1]"),
        ("clock", b'{"now": "2026-01-01T00:00:00"}'),
        ("clock", b"{}"),
    ]
    answers = [
        requests.post(f"{fresh.base_url}/__sandbox__/{route}", data=body, timeout=5) for route, body in bad
    ]
    assert [(a.status_code, "error" in a.json()) for a in answers] == [(400, True)] * len(bad)


# --- faults ----------------------------------------------------------------


def test_fault_sequence_is_deterministic_per_seed(fresh: Sandbox) -> None:
    """The same seed replays the same sequence of statuses over HTTP; another seed gives another one."""
    config = FaultConfig(error_rate=0.3, rate_limit_storm=0.2, seed=11)
    fresh.store.items["a"] = "x"
    url = f"{fresh.base_url}/items/a"
    with requests.Session() as session:
        fresh.control.set_faults(config)
        first = _statuses(session, url, 40)
        fresh.control.set_faults(config)
        second = _statuses(session, url, 40)
        fresh.control.set_faults(FaultConfig(error_rate=0.3, rate_limit_storm=0.2, seed=12))
        other = _statuses(session, url, 40)
    assert first == second
    assert first != other
    assert {200, 429} <= set(first)
    assert set(first) - {200, 429} <= {500, 502, 503, 504}


def test_injector_sequence_matches_configured_shares() -> None:
    """Over many draws each kind appears near its configured share; bursts make storms consecutive."""
    injector = FaultInjector(FaultConfig(error_rate=0.1, rate_limit_storm=0.05, drop_rate=0.05, seed=1))
    kinds = [f.kind if f else None for f in (injector.next_fault("/x") for _ in range(20_000))]
    assert 0.08 < kinds.count(FaultKind.SERVER_ERROR) / 20_000 < 0.12
    assert 0.04 < kinds.count(FaultKind.DROP) / 20_000 < 0.06
    injector.configure(FaultConfig(rate_limit_storm=0.01, rate_limit_burst=5, seed=1))
    stormy = [f is not None for f in (injector.next_fault("/x") for _ in range(5_000))]
    starts = [i for i in range(1, len(stormy)) if stormy[i] and not stormy[i - 1]]
    assert starts
    assert all(all(stormy[i : i + 5]) for i in starts if i + 5 <= len(stormy))
    assert injector.next_fault("/__sandbox__/stats") is None


def test_rendered_faults_use_the_crms_renderers(fresh: Sandbox) -> None:
    """Injected 5xx and 429 answers carry the bodies and headers the CRM's renderers make."""
    fresh.control.set_faults(FaultConfig(error_rate=1.0, seed=2))
    error = requests.get(f"{fresh.base_url}/items/a", timeout=5)
    fresh.control.set_faults(FaultConfig(rate_limit_storm=1.0, seed=2))
    limited = requests.get(f"{fresh.base_url}/items/a", timeout=5)
    assert error.status_code in (500, 502, 503, 504)
    assert error.json()[0]["errorCode"] == "SERVER_ERROR"
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert fresh.control.stats()["faults"]["rate_limited"] == 1


def test_dropped_connection_raises_in_requests(fresh: Sandbox) -> None:
    """A DROP fault breaks the response mid-body: requests raises, and the next request works again."""
    fresh.store.items["a"] = "x"
    fresh.control.set_faults(FaultConfig(drop_rate=1.0, seed=3))
    with requests.Session() as session:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            session.get(f"{fresh.base_url}/items/a", timeout=5)
        fresh.control.set_faults(None)
        assert session.get(f"{fresh.base_url}/items/a", timeout=5).json() == {"key": "a", "value": "x"}
    assert fresh.control.stats()["faults"] == {"server_error": 0, "rate_limited": 0, "drop": 0}


def test_control_paths_are_never_faulted(fresh: Sandbox) -> None:
    """With every request faulted, the control routes still answer normally."""
    fresh.control.set_faults(FaultConfig(error_rate=1.0, seed=4))
    assert fresh.control.stats()["total"] == 0
    assert fresh.control.faults().error_rate == 1.0


def test_latency_is_reported_and_faults_round_trip(fresh: Sandbox) -> None:
    """A config set through the client reads back equal, and latency-only faults still serve the request."""
    config = FaultConfig(latency_ms=5, latency_jitter_ms=2, token_ttl_s=60, seed=9)
    fresh.control.set_faults(config)
    fresh.store.items["a"] = "x"
    assert fresh.control.faults() == config
    assert requests.get(f"{fresh.base_url}/items/a", timeout=5).status_code == 200
    fault = FaultInjector(config).next_fault("/items/a")
    assert fault is not None
    assert fault.kind is None
    assert 0.005 <= fault.latency_s <= 0.007


def test_fault_config_validation_names_every_problem() -> None:
    """An invalid FaultConfig lists each problem in one ValueError."""
    with pytest.raises(ValueError, match="error_rate") as info:
        FaultConfig(error_rate=-0.1, rate_limit_burst=0, token_ttl_s=0)
    assert "rate_limit_burst" in str(info.value)
    assert "token_ttl_s" in str(info.value)


# --- clock and token expiry ----------------------------------------------------------------


def test_token_expires_after_ttl_on_the_sandbox_clock(fresh: Sandbox) -> None:
    """Moving the sandbox clock past token_ttl_s makes the CRM app answer 401; null returns to real time."""
    issued = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    headers = {"x-issued-at": issued.isoformat()}
    fresh.control.set_faults(FaultConfig(token_ttl_s=600))
    fresh.control.set_clock(issued + timedelta(seconds=599))
    fresh_answer = requests.get(f"{fresh.base_url}/whoami", headers=headers, timeout=5)
    fresh.control.set_clock(issued + timedelta(seconds=600))
    expired = requests.get(f"{fresh.base_url}/whoami", headers=headers, timeout=5)
    assert fresh_answer.json() == {"now": (issued + timedelta(seconds=599)).isoformat()}
    assert expired.status_code == 401
    assert fresh.control.clock() == issued + timedelta(seconds=600)
    fresh.control.set_clock(None)
    assert abs(fresh.control.clock() - datetime.now(UTC)) < timedelta(minutes=5)


def test_ticking_clock_runs_on_from_the_set_time() -> None:
    """A ticking clock starts at the set instant and advances with the (injected) system clock."""
    system = [datetime(2030, 1, 1, tzinfo=UTC)]
    clock = SandboxClock(system_now=lambda: system[0])
    clock.set(datetime(2026, 1, 1, tzinfo=UTC), ticking=True)
    system[0] += timedelta(seconds=30)
    assert clock.now() == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert not clock.is_frozen
    assert not clock.is_real


def test_token_never_expires_without_ttl() -> None:
    """With token_ttl_s None, even a year-old token is valid."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not FaultInjector().token_expired(now - timedelta(days=365), now)
