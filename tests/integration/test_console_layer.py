"""The console and the docs as deployed: the submit function run with only its own folder and
the common layer on the import path (tests/layered.py lays them out as `sam build` does), so the
static files must be in the layer, not found through this checkout's venv."""

from __future__ import annotations

import base64
import json

from engine import console
from local.apigw import http_event
from tests.integration.test_layers import environment, replies
from tests.layered import run_handler

__all__ = ["environment"]  # a fixture, imported for pytest


def test_the_common_layer_carries_the_console_and_swagger_ui(environment: dict[str, str]) -> None:
    assert (console.SWAGGER_UI / "swagger-ui-bundle.js").is_file(), (
        "Swagger UI's files are not vendored here (make vendor)"
    )
    paths = ["/", "/console/app.js", "/console/config.json", "/docs", "/docs/swagger-ui-bundle.js"]
    result = run_handler("submit", [http_event("GET", p) for p in paths], environment)
    page, script, config, docs, bundle = replies(result)
    for path, reply in zip(paths, (page, script, config, docs, bundle), strict=True):
        assert reply["statusCode"] == 200, (path, reply.get("body", "")[:200])
    assert "console/app.js" in page["body"]
    assert script["body"] == (console.CONSOLE / "app.js").read_text()
    assert json.loads(config["body"])["wsUrl"] == environment["WS_URL"]
    assert "/docs/swagger-ui-bundle.js" in docs["body"]
    raw = base64.b64decode(bundle["body"]) if bundle["isBase64Encoded"] else bundle["body"].encode()
    assert raw == (console.SWAGGER_UI / "swagger-ui-bundle.js").read_bytes()
