"""The local gateway's CORS, as API Gateway applies an HTTP API's CorsConfiguration."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from local.cors import ApiGatewayCors, allowed_origin
from local.template import HttpCors

CORS = HttpCors(
    allow_origins=("*",),
    allow_methods=("GET", "POST", "DELETE", "OPTIONS"),
    allow_headers=("content-type", "idempotency-key", "x-api-key"),
    expose_headers=("idempotent-replayed",),
    max_age=600,
    allow_credentials=False,
)
SEEN: list[str] = []


async def handler(request: Request) -> Response:
    SEEN.append(request.method)
    return JSONResponse(
        {"ok": True},
        headers={"access-control-allow-origin": "https://evil.test", "idempotent-replayed": "1"},
    )


def client(cors: HttpCors = CORS) -> TestClient:
    app = Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST", "OPTIONS"])])
    return TestClient(ApiGatewayCors(app, cors))


def test_a_preflight_is_answered_by_the_gateway_with_the_configuration() -> None:
    SEEN.clear()
    reply = client().options(
        "/api/orders/execute",
        headers={
            "origin": "https://console.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-api-key",
        },
    )
    assert reply.status_code == 204
    assert reply.content == b""
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["access-control-allow-methods"] == "GET,POST,DELETE,OPTIONS"
    assert reply.headers["access-control-allow-headers"] == "content-type,idempotency-key,x-api-key"
    assert reply.headers["access-control-max-age"] == "600"
    assert SEEN == []  # the function never ran


def test_a_cors_request_gets_the_configured_headers_not_the_functions() -> None:
    reply = client().get("/api/orders", headers={"origin": "https://console.example"})
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["access-control-expose-headers"] == "idempotent-replayed"
    assert reply.headers["idempotent-replayed"] == "1"


def test_without_an_origin_nothing_is_added_or_answered() -> None:
    SEEN.clear()
    reply = client().get("/api/orders")
    assert reply.headers["access-control-allow-origin"] == "https://evil.test"  # untouched
    assert "access-control-expose-headers" not in reply.headers
    reply = client().options("/x", headers={"access-control-request-method": "GET"})
    assert reply.status_code == 200
    assert SEEN == ["GET", "OPTIONS"]


def test_origins_match_exactly_or_by_a_trailing_wildcard() -> None:
    listed = HttpCors(("https://a.test", "http://*"), ("GET",), (), (), None, True)
    assert allowed_origin(listed, "https://a.test") == "https://a.test"
    assert allowed_origin(listed, "http://localhost:8080") == "http://localhost:8080"
    assert allowed_origin(listed, "https://b.test") is None
    reply = client(listed).get("/", headers={"origin": "https://a.test"})
    assert reply.headers["access-control-allow-origin"] == "https://a.test"
    assert reply.headers["access-control-allow-credentials"] == "true"
    assert "origin" in reply.headers["vary"].lower()
    refused = client(listed).options(
        "/", headers={"origin": "https://b.test", "access-control-request-method": "GET"}
    )
    assert refused.status_code == 204
    assert "access-control-allow-origin" not in refused.headers
    denied = client(listed).get("/", headers={"origin": "https://b.test"})
    assert "access-control-allow-origin" not in denied.headers  # the function's is dropped too
