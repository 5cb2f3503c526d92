"""The console's and the docs' routes through the submit handler (Mangum), as API Gateway calls
them: public (no authorizer context), static files only from their folders, nothing from a CDN."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine import console
from engine.orders import Status
from local.apigw import LambdaContext, http_event
from local.handlers import fresh_handler

CONSOLE = console.CONSOLE


@pytest.fixture(scope="module")
def submit(database_url: str, orders_queue: str) -> Any:
    return fresh_handler("submit")


def get(handler: Any, path: str, **headers: str) -> dict[str, Any]:
    path, _, query = path.partition("?")
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    reply: dict[str, Any] = handler(
        http_event("GET", path, headers=hdrs, query=query), LambdaContext("submit")
    )
    body = reply.get("body") or ""
    reply["bytes"] = base64.b64decode(body) if reply.get("isBase64Encoded") else body.encode()
    reply["headers"] = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
    return reply


def test_the_page_is_public_html_with_a_strict_script_policy(submit: Any) -> None:
    reply = get(submit, "/")
    assert reply["statusCode"] == 200
    assert reply["headers"]["content-type"].startswith("text/html")
    csp = reply["headers"]["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    html = reply["bytes"].decode()
    assert 'src="console/app.js"' in html
    # Every script, style and icon comes from this API: no CDN, nothing absolute.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"^(https?:)?//", ref), ref


def test_every_module_the_page_imports_is_served_as_javascript(submit: Any) -> None:
    wanted = {"app.js"}
    for source in CONSOLE.glob("*.js"):
        wanted |= set(re.findall(r'from "\./([\w.-]+\.js)"', source.read_text()))
    for name in sorted(wanted | {"style.css", "favicon.svg"}):
        reply = get(submit, f"/console/{name}")
        assert reply["statusCode"] == 200, name
        assert reply["bytes"] == (CONSOLE / name).read_bytes(), name
        assert reply["headers"]["cache-control"] == "no-cache"
        assert reply["headers"]["x-content-type-options"] == "nosniff"
    assert get(submit, "/console/app.js")["headers"]["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/console/../console.py",
        "/console/%2e%2e/console.py",
        "/console/..%2fconsole.py",
        "/console/../../../../etc/passwd",
        "/console/.hidden.js",
        "/console/missing.js",
        "/console/index.py",
        "/docs/../console/app.js",
        "/docs/swagger-ui-bundle.js.map",
    ],
)
def test_nothing_outside_the_folders_or_unlisted_is_served(submit: Any, path: str) -> None:
    reply = get(submit, path)
    assert reply["statusCode"] == 404, (path, reply["bytes"][:80])


def test_an_etag_makes_a_reload_a_304_and_gzip_is_used_when_accepted(submit: Any) -> None:
    first = get(submit, "/console/app.js")
    etag = first["headers"]["etag"]
    again = get(submit, "/console/app.js", if_none_match=etag)
    assert again["statusCode"] == 304
    assert again["bytes"] == b""
    zipped = get(submit, "/console/app.js", accept_encoding="gzip, br")
    assert zipped["headers"]["content-encoding"] == "gzip"
    assert zipped["isBase64Encoded"]
    assert gzip.decompress(zipped["bytes"]) == first["bytes"]
    assert len(zipped["bytes"]) < len(first["bytes"]) / 2


def test_config_names_the_websocket_api_and_the_statuses(
    submit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_URL", "wss://ws.example.test/prod")
    reply = get(fresh_handler("submit"), "/console/config.json")  # a container of this env
    monkeypatch.undo()
    assert reply["statusCode"] == 200
    assert reply["headers"]["cache-control"] == "no-store"
    body = json.loads(reply["bytes"])
    assert body["wsUrl"] == "wss://ws.example.test/prod"
    assert body["statuses"] == [s.value for s in Status]
    assert body["terminal"] == [s.value for s in Status if s.terminal]
    assert body["terminal"] == ["confirmed", "failed", "expired", "cancelled"]
    assert body["cancellable"] == ["pending", "watching"]


def test_docs_are_swagger_ui_from_this_api_not_a_cdn(submit: Any) -> None:
    assert (console.SWAGGER_UI / "swagger-ui-bundle.js").is_file(), (
        "Swagger UI's files are not vendored here (make vendor)"
    )
    page = get(submit, "/docs")
    assert page["statusCode"] == 200
    html = page["bytes"].decode()
    assert '<script src="/docs/swagger-ui-bundle.js">' in html
    assert 'href="/docs/swagger-ui.css"' in html
    assert "cdn" not in html.lower()
    assert "https://" not in html
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io
    bundle = get(submit, "/docs/swagger-ui-bundle.js", accept_encoding="gzip")
    assert bundle["statusCode"] == 200
    assert bundle["headers"]["cache-control"] == "public, max-age=86400"
    raw = gzip.decompress(bundle["bytes"])
    assert raw == (console.SWAGGER_UI / "swagger-ui-bundle.js").read_bytes()
    assert len(bundle["bytes"]) < 1_000_000  # 1.7 MB of script, about 0.45 MB sent
    for name in ("swagger-ui.css", "favicon-32x32.png"):
        assert get(submit, f"/docs/{name}")["statusCode"] == 200, name


def test_docs_say_what_to_run_when_swagger_ui_is_missing(
    submit: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(console, "SWAGGER_UI", tmp_path)
    page = get(submit, "/docs")
    assert page["statusCode"] == 503
    assert b"make vendor" in page["bytes"]


def test_the_static_routes_stay_out_of_the_openapi_document(submit: Any) -> None:
    spec = json.loads(get(submit, "/openapi.json")["bytes"])
    assert set(spec["paths"]) == {
        "/api/orders/execute",
        "/api/orders/{order_id}",
        "/api/orders",
        "/api/limits",
        "/api/quote",
        "/health",
    }
    assert set(spec["paths"]["/api/orders/{order_id}"]) == {"get", "delete"}
    assert get(submit, "/redoc")["statusCode"] == 404  # FastAPI's, which loads from a CDN


def test_the_sample_events_get_the_page_and_a_gzipped_script(submit: Any) -> None:
    events = Path(__file__).resolve().parents[2] / "events"

    def sample(name: str) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((events / f"{name}.json").read_text())
        reply: dict[str, Any] = submit(event, LambdaContext("submit"))
        return reply

    page = sample("submit_console_page")
    assert page["statusCode"] == 200
    assert page["headers"]["content-encoding"] == "gzip"
    assert b"console/app.js" in gzip.decompress(base64.b64decode(page["body"]))
    asset = sample("submit_console_asset")
    assert asset["statusCode"] == 200
    assert asset["isBase64Encoded"]
    script = gzip.decompress(base64.b64decode(asset["body"]))
    assert script == (CONSOLE / "app.js").read_bytes()


def connect_sources(reply: dict[str, Any]) -> list[str]:
    csp: str = reply["headers"]["content-security-policy"]
    directive = next(d.strip() for d in csp.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


def test_the_console_connects_only_to_its_own_origin_and_the_configured_ones(
    database_url: str, orders_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25 item 1: `connect-src` named any host, and `?api=` pointed the page (and the key)
    at one. Now the CSP names exactly this origin, the WebSocket API's and CONSOLE_API_ORIGIN,
    and the page takes its API from its own config.json, never from its URL."""
    monkeypatch.setenv("WS_URL", "wss://ws.example.test/prod")
    plain = fresh_handler("submit")
    assert connect_sources(get(plain, "/")) == ["'self'", "wss://ws.example.test"]
    assert json.loads(get(plain, "/console/config.json")["bytes"])["apiUrl"] is None
    monkeypatch.setenv("CONSOLE_API_ORIGIN", "https://api.example.test/")
    configured = fresh_handler("submit")
    assert connect_sources(get(configured, "/?api=http://elsewhere.test")) == [
        "'self'",
        "https://api.example.test",
        "wss://ws.example.test",
    ]
    config = json.loads(get(configured, "/console/config.json")["bytes"])
    assert config["apiUrl"] == "https://api.example.test"
    script = (CONSOLE / "app.js").read_text()
    assert "location.search" not in script  # the page reads nothing from its URL
    assert "location.search" not in (CONSOLE / "api.js").read_text()


def test_docs_send_the_consoles_security_headers(submit: Any) -> None:
    """Issue 25 item 5: /docs had no security headers. Its one inline script (Swagger UI's
    start-up) is allowed by its hash, nothing else inline."""
    page = get(submit, "/docs")
    own = get(submit, "/")
    for name in ("x-content-type-options", "referrer-policy"):
        assert page["headers"][name] == own["headers"][name], name
    csp = page["headers"]["content-security-policy"]
    assert connect_sources(page) == connect_sources(own)
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in csp
    scripts = re.findall(r"<script>(.*?)</script>", page["bytes"].decode(), flags=re.DOTALL)
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
