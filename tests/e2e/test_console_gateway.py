"""The console's routes and CORS through the local gateway's real sockets: the page and the docs
are public (no key), the order routes are not, and a browser on another origin gets what API
Gateway's CorsConfiguration gives it, read from the template."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from local.gateway import Served
from tests.e2e.test_gateway_ws import stack

__all__ = ["stack"]  # a fixture, imported for pytest
pytestmark = pytest.mark.e2e
ORIGIN = "https://console.example.test"


def fetch(served: Served, method: str, path: str, **headers: str) -> tuple[int, dict[str, str]]:
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    request = urllib.request.Request(served.url + path, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def test_the_page_its_files_and_the_docs_need_no_key(stack: Served) -> None:
    for path in ("/", "/console/app.js", "/console/config.json", "/docs"):
        assert fetch(stack, "GET", path)[0] == 200, path
    status, _ = fetch(stack, "GET", "/console/app.js", x_api_key="oek_" + "z" * 43)
    assert status == 200  # a public route never runs the authorizer, whatever is sent
    assert fetch(stack, "GET", "/api/orders")[0] == 401
    assert fetch(stack, "GET", "/consolex/app.js")[0] == 401  # not under a public route


def test_a_preflight_is_answered_before_the_authorizer(stack: Served) -> None:
    status, headers = fetch(
        stack,
        "OPTIONS",
        "/api/orders/execute",
        origin=ORIGIN,
        access_control_request_method="POST",
        access_control_request_headers="content-type,idempotency-key,x-api-key",
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert set(headers["access-control-allow-methods"].split(",")) == {
        "GET",
        "POST",
        "DELETE",
        "OPTIONS",
    }
    assert set(headers["access-control-allow-headers"].split(",")) == {
        "content-type",
        "idempotency-key",
        "x-api-key",
    }
    assert headers["access-control-max-age"] == "600"


def test_cross_origin_replies_carry_cors_headers_even_when_refused(stack: Served) -> None:
    for path, want in (("/api/orders", 401), ("/health", None), ("/", 200)):
        status, headers = fetch(stack, "GET", path, origin=ORIGIN)
        assert want is None or status == want, path
        assert headers["access-control-allow-origin"] == "*", path
        assert headers["access-control-expose-headers"] == "idempotent-replayed", path
    status, headers = fetch(stack, "GET", "/api/orders")
    assert status == 401
    assert "access-control-allow-origin" not in headers
