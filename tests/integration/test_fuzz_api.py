"""schemathesis against the served OpenAPI, through the real Lambda handlers: the local gateway's
ASGI app turns each request into an API Gateway v2 event for `functions/submit` (Mangum), or for
`functions/quote` (`GET /api/quote`, as the template routes it).

Every operation gets schema-valid (positive) and schema-breaking (negative) requests, sent with
the session's API key (the gateway runs the authorizer first, as API Gateway does); every
response must be non-5xx and match the documented status codes, content type and body schema.
(The schemathesis pytest plugin's lazy fixture loader does not run under pytest 9, so each
operation's strategy is driven with hypothesis directly.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from local.gateway import DEFAULT_ROUTES, DEFAULT_SELECTION, Gateway
from local.handlers import fresh_handler
from tests.integration.test_submit_api import queued_ids

OPERATIONS = [
    ("POST", "/api/orders/execute"),
    ("GET", "/api/orders/{order_id}"),
    ("DELETE", "/api/orders/{order_id}"),
    ("GET", "/api/orders"),
    ("GET", "/api/limits"),
    ("GET", "/api/quote"),  # served by functions/quote: the gateway routes it as the template says
    ("GET", "/health"),
]
# Rules JSON Schema cannot state, so a schema-valid request may still get a documented 400:
# the token registry, tokenIn != tokenOut, a token's decimals; the cursor is opaque.
SEMANTIC_400 = {("POST", "/api/orders/execute"), ("GET", "/api/orders"), ("GET", "/api/quote")}
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (path == "/health" and mode is GenerationMode.NEGATIVE)  # no input to break
]


@pytest.fixture(scope="module")
def headers(api_key: Any) -> dict[str, str]:
    return {"x-api-key": api_key[1]}


@pytest.fixture(scope="module")
def api_schema(
    database_url: str, orders_queue: str, status_queue: str, served_chain: Any
) -> Iterator[Any]:
    gateway = Gateway(
        fresh_handler("submit"),
        fresh_handler("ws_connect"),
        route_keys=DEFAULT_ROUTES,
        selection_expression=DEFAULT_SELECTION,
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", gateway.app)
    queued_ids(orders_queue)  # the accepted orders leave no messages for later tests


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    served = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert served == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms_to_its_schema(
    api_schema: Any, headers: dict[str, str], method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    excluded = [positive_data_acceptance] if (method, path) in SEMANTIC_400 else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=100,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # The spec declares the x-api-key scheme, so schemathesis sends the header (a negative
        # case may drop it: then the gateway's 401 is the expected rejection); its value is
        # made up, so it becomes the real key.
        sent = {k.lower() for k in case.headers or {}}
        real = headers if "x-api-key" in sent else None
        response = case.call_and_validate(excluded_checks=excluded, headers=real)
        assert response.status_code < 500

    run()


def test_real_orders_match_the_documented_replies(api_schema: Any, headers: dict[str, str]) -> None:
    """Random ids are all 404s; an order that exists must match OrderDetail / OrderPage too."""
    order = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}
    submit = api_schema["/api/orders/execute"]["POST"].Case(
        body=order, media_type="application/json"
    )
    accepted = submit.call_and_validate(headers=headers)
    assert accepted.status_code == 202
    order_id = accepted.json()["orderId"]
    detail = api_schema["/api/orders/{order_id}"]["GET"].Case(
        path_parameters={"order_id": order_id}
    )
    assert detail.call_and_validate(headers=headers).json()["orderId"] == order_id
    page = api_schema["/api/orders"]["GET"].Case(query={"limit": 1})
    assert page.call_and_validate(headers=headers).json()["orders"][0]["orderId"] == order_id
    quoted = api_schema["/api/quote"]["GET"].Case(
        query={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
    )
    assert {q["venue"] for q in quoted.call_and_validate(headers=headers).json()["quotes"]} == {
        "raydium_cpmm",
        "meteora_damm_v2",
    }
    refused = api_schema["/api/orders/{order_id}"]["DELETE"].Case(
        path_parameters={"order_id": order_id}
    )
    assert refused.call_and_validate(headers=headers).status_code == 409  # a market order
    assert api_schema["/health"]["GET"].Case().call_and_validate().status_code == 200  # public


def test_without_a_key_the_gateway_answers_as_documented(api_schema: Any) -> None:
    for path, method, params in (
        ("/api/orders/execute", "POST", {}),
        ("/api/orders", "GET", {}),
        ("/api/limits", "GET", {}),
        ("/api/orders/{order_id}", "GET", {"path_parameters": {"order_id": str(uuid.uuid4())}}),
        ("/api/orders/{order_id}", "DELETE", {"path_parameters": {"order_id": str(uuid.uuid4())}}),
        ("/api/quote", "GET", {"query": {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}}),
    ):
        case = api_schema[path][method].Case(**params)
        missing = case.call_and_validate()
        assert missing.status_code == 401
        assert missing.json() == {"message": "Unauthorized"}
        wrong = case.call_and_validate(headers={"x-api-key": "oek_" + "x" * 43})
        assert wrong.status_code == 403
        assert wrong.json() == {"message": "Forbidden"}
