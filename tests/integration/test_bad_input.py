"""Bad input, over HTTP (the real submit handler, API Gateway v2 events) and over the WebSocket
`$default` route (the real ws_connect handler, error frames captured by moto's management API):
every bad body gets a 4xx or an error frame `{"error": {"code", "message", "field"?}}`, and
nothing is stored and nothing is queued."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store import Store
from local.apigw import LambdaContext, ws_event
from tests.integration.test_submit_api import ORDER, call, queued_ids, submit
from tests.integration.test_ws_connect import cid, connect, env, handler, posted, send

__all__ = ["env", "handler", "submit"]  # fixtures, imported for pytest

BIG = 65 * 1024
SOON = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
_WEEK = (datetime.now(UTC) + timedelta(days=2)).isocalendar()
WEEK_DATE = f"{_WEEK.year}-W{_WEEK.week:02d}-{_WEEK.weekday}T12:00:00Z"  # in 1 to 3 days


def limit_body(**fields: Any) -> str:
    """A limit order (no slippage) with `fields` replaced."""
    merged = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "orderType": "limit"}
    merged |= {"limitPrice": "151.2", "expiresAt": SOON + "Z", **fields}
    return spliced(merged)


@pytest.fixture(autouse=True, scope="module")
def drain_after(orders_queue: str) -> Iterator[None]:
    """Valid orders made here (edge values, fuzzed frames) leave no messages for later tests."""
    yield
    queued_ids(orders_queue)


def body(**fields: Any) -> str:
    """ORDER with `fields` replaced; a value of type `Raw` is spliced in as literal JSON."""
    return spliced({**ORDER, **fields})


def spliced(merged: dict[str, Any]) -> str:
    parts = [
        f"{json.dumps(k)}: {v.text if isinstance(v, Raw) else json.dumps(v, ensure_ascii=False)}"
        for k, v in merged.items()
    ]
    return "{" + ", ".join(parts) + "}"


class Raw:
    def __init__(self, text: str) -> None:
        self.text = text


# (id, frame/body text, the field the error must name, or None for "any/no field")
BAD: list[tuple[str, str, str | None]] = [
    # unicode in token fields
    ("greek omicron", body(tokenIn="S\u039fL"), "tokenIn"),
    ("emoji", body(tokenIn="SOL\U0001f680"), "tokenIn"),
    ("emoji only", body(tokenOut="\U0001f4b8"), "tokenOut"),
    ("rtl mark", body(tokenIn="\u200fSOL"), "tokenIn"),
    ("rtl override", body(tokenOut="\u202eCDSU"), "tokenOut"),
    ("nul byte", body(tokenIn="SOL\u0000"), "tokenIn"),
    ("fullwidth", body(tokenIn="\uff33\uff2f\uff2c"), "tokenIn"),
    ("zero width space", body(tokenOut="US\u200bDC"), "tokenOut"),
    ("empty token", body(tokenIn=""), "tokenIn"),
    (
        "mint-like with unicode",
        body(tokenOut="So1111111111111111111111111111111111111111\u00e9"),
        "tokenOut",
    ),
    # huge decimals
    ("1e400 string", body(amountIn="1e400"), "amountIn"),
    ("1e400 number", body(amountIn=Raw("1e400")), "amountIn"),
    ("10**80", body(amountIn=10**80), "amountIn"),
    ("500 digit string", body(amountIn="9" * 500), "amountIn"),
    ("500 digit number", body(amountIn=Raw("9" * 500)), "amountIn"),
    ("500 digit fraction", body(amountIn=Raw("0." + "1" * 500)), "amountIn"),
    ("exponent overflow", body(amountIn="1E+999999999999999999"), "amountIn"),
    ("exponent overflow number", body(amountIn=Raw("1e999999999999999999")), "amountIn"),
    ("exponent underflow", body(amountIn="1e-999999999"), "amountIn"),
    ("too many SOL decimals", body(amountIn="0.0000000001"), "amountIn"),
    (
        "too many USDC decimals",
        body(tokenIn="USDC", tokenOut="SOL", amountIn="1.0000001"),
        "amountIn",
    ),
    ("over u64 base units", body(amountIn="18446744074"), "amountIn"),
    ("arabic-indic digits", body(amountIn="\u0660.\u0661"), "amountIn"),
    ("underscores", body(amountIn="1_000"), "amountIn"),
    # NaN / Infinity, as JSON constants and as strings
    ("NaN constant", body(amountIn=Raw("NaN")), None),
    ("Infinity constant", body(amountIn=Raw("Infinity")), None),
    ("-Infinity constant", body(slippage=Raw("-Infinity")), None),
    ("NaN string", body(amountIn="NaN"), "amountIn"),
    ("nan string", body(amountIn="nan"), "amountIn"),
    ("sNaN string", body(amountIn="sNaN"), "amountIn"),
    ("Infinity string", body(amountIn="Infinity"), "amountIn"),
    ("-Infinity string", body(amountIn="-Infinity"), "amountIn"),
    ("inf slippage string", body(slippage="inf"), "slippage"),
    # negative zero
    ("-0 string", body(amountIn="-0"), "amountIn"),
    ("-0 number", body(amountIn=Raw("-0")), "amountIn"),
    ("-0.0 number", body(amountIn=Raw("-0.0")), "amountIn"),
    ("-0.0 slippage", body(slippage=Raw("-0.0")), "slippage"),
    # slippage edges
    ("slippage 0", body(slippage=0), "slippage"),
    ("slippage '0'", body(slippage="0"), "slippage"),
    ("slippage 50.0000001", body(slippage=Raw("50.0000001")), "slippage"),
    ("slippage '50.0000001'", body(slippage="50.0000001"), "slippage"),
    ("slippage true", body(slippage=True), "slippage"),
    ("slippage false", body(slippage=False), "slippage"),
    ("slippage negative", body(slippage=-0.1), "slippage"),
    ("slippage underflow", body(slippage="1e-999999999"), "slippage"),
    # booleans, arrays and objects as fields
    ("amount true", body(amountIn=True), "amountIn"),
    ("amount false", body(amountIn=False), "amountIn"),
    ("amount array", body(amountIn=[1]), "amountIn"),
    ("amount object", body(amountIn={"value": "1"}), "amountIn"),
    ("amount null", body(amountIn=None), "amountIn"),
    ("token array", body(tokenIn=["SOL"]), "tokenIn"),
    ("token object", body(tokenOut={"symbol": "USDC"}), "tokenOut"),
    ("token number", body(tokenIn=1), "tokenIn"),
    ("slippage array", body(slippage=[0.5]), "slippage"),
    ("slippage object", body(slippage={}), "slippage"),
    ("orderType array", body(orderType=["market"]), "orderType"),
    ("orderType object", body(orderType={"type": "market"}), "orderType"),
    ("unknown field", body(price="1"), "price"),
    ("action array", body(action=[1]), "action"),
    ("action string", body(action="execute"), "action"),
    ("huge unknown field name", body(**{"x" * 5000: 1}), "x" * 64),
    # not an order object at all
    ("array", "[1, 2]", None),
    ("string", '"SOL"', None),
    ("null", "null", None),
    ("number", "1", None),
    ("empty object", "{}", "tokenIn"),
    ("truncated", body()[:-1], None),
    ("nested 5000 deep", "[" * 5000 + "]" * 5000, None),
    # a key twice: other readers of the same bytes (proxies, logs) may take the first value
    (
        "duplicate amountIn",
        '{"tokenIn":"SOL","tokenOut":"USDC","amountIn":"0.0001","amountIn":"999999"}',
        "amountIn",
    ),
    ("duplicate tokenOut", body()[:-1] + ', "tokenOut": "SOL"}', "tokenOut"),
    ("duplicate key nested", body(extra=Raw('{"a": 1, "a": 2}')), "a"),
    ("duplicate key in a list", body(extra=Raw('[{"b": 1, "b": 1}]')), "b"),
    ("nested object 2000 deep", '{"a":' * 2000 + "1" + "}" * 2000, None),
    # issue 25: digits are ASCII only everywhere (a superscript two was a 500, an Arabic-Indic
    # three was read as 3)
    ("superscript fee cap", body(maxPriorityFeeLamports="\u00b2"), "maxPriorityFeeLamports"),
    ("arabic-indic fee cap", body(maxPriorityFeeLamports="\u0663"), "maxPriorityFeeLamports"),
    ("fullwidth fee cap", body(maxPriorityFeeLamports="\uff13"), "maxPriorityFeeLamports"),
    # issue 25: an idempotencyKey with NUL was a 500 over the WebSocket (Postgres text)
    ("nul idempotencyKey", body(idempotencyKey="k\u0000"), "idempotencyKey"),
    # issue 25: prices with more digits than the engine keeps were rounded, sometimes down
    ("29-digit limitPrice", limit_body(limitPrice="1.0000000000000000000000000001"), "limitPrice"),
    (
        "29-digit limitPrice number",
        limit_body(limitPrice=Raw("151.19999999999999999999999999")),
        "limitPrice",
    ),
    ("30-digit integer limitPrice", limit_body(limitPrice=Raw("1" * 30)), "limitPrice"),
    # issue 25: expiresAt takes exactly the README's formats
    ("expiresAt trailing NUL", limit_body(expiresAt=SOON + "Z\u0000"), "expiresAt"),
    ("expiresAt offset seconds", limit_body(expiresAt=SOON + "+02:00:30"), "expiresAt"),
    ("expiresAt week date", limit_body(expiresAt=WEEK_DATE), "expiresAt"),
    ("expiresAt 9-digit fraction", limit_body(expiresAt=SOON + ".123456789Z"), "expiresAt"),
    ("expiresAt basic format", limit_body(expiresAt=SOON.replace("-", "") + "Z"), "expiresAt"),
    ("expiresAt space", limit_body(expiresAt=SOON.replace("T", " ") + "Z"), "expiresAt"),
]


def order_count(store: Store) -> int:
    with store.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
    assert row is not None
    return int(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def assert_error(error: Any, field: str | None) -> None:
    assert isinstance(error, dict)
    assert set(error) <= {"code", "message", "field"}
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if field is not None:
        assert error.get("field") == field


# -- HTTP -----------------------------------------------------------------------------------------


def http_post(submit: Any, raw: bytes, content_type: str | None = "application/json") -> Any:
    return call(submit, "POST", "/api/orders/execute", raw, content_type=content_type)


@pytest.mark.parametrize(("text", "field"), [pytest.param(t, f, id=i) for i, t, f in BAD])
def test_http_bad_body_is_400_and_changes_nothing(
    submit: Any, store: Store, orders_queue: str, text: str, field: str | None
) -> None:
    queued_ids(orders_queue)
    before = order_count(store)
    reply = http_post(submit, text.encode())
    assert reply["statusCode"] == 400, reply
    assert reply["headers"]["content-type"].startswith("application/json")
    assert_error(reply["json"]["error"], field)
    assert order_count(store) == before
    assert queued_ids(orders_queue) == []


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (json.dumps(ORDER).encode(), "text/plain"),
        (b"tokenIn=SOL&tokenOut=USDC&amountIn=0.01", "application/x-www-form-urlencoded"),
        (
            b"--b\r\nContent-Disposition: form-data; name=tokenIn\r\n\r\nSOL\r\n--b--",
            "multipart/form-data; boundary=b",
        ),
        (json.dumps(ORDER).encode(), "application/xml"),
        (json.dumps(ORDER).encode(), "text/notjson"),
        (json.dumps(ORDER).encode(), "application/jsonp"),
        (json.dumps(ORDER).encode(), "application/json; charset=latin-1"),
        (json.dumps(ORDER).encode(), "application/json; charset=utf-16"),
        (json.dumps(ORDER).encode(), "text/json"),
        (json.dumps(ORDER).encode(), "application/+json"),  # issue 25: no type named
        (json.dumps(ORDER).encode(), "application/+json; charset=utf-8"),
    ],
)
def test_http_wrong_content_type_is_a_clear_4xx(
    submit: Any, store: Store, orders_queue: str, raw: bytes, content_type: str
) -> None:
    queued_ids(orders_queue)
    before = order_count(store)
    reply = http_post(submit, raw, content_type)
    assert reply["statusCode"] == 415
    assert reply["json"]["error"]["code"] == "unsupported_media_type"
    assert "application/json" in reply["json"]["error"]["message"]
    assert order_count(store) == before
    assert queued_ids(orders_queue) == []


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({**ORDER, "tokenIn": "S" * BIG}).encode(),
        json.dumps({**ORDER, "pad": "\U0001f680" * (BIG // 4 + 1)}, ensure_ascii=False).encode(),
        b"[" * (BIG + 1),
    ],
    ids=["long token", "emoji padding", "64 KiB of brackets"],
)
def test_http_body_over_64_kib_is_413(
    submit: Any, store: Store, orders_queue: str, raw: bytes
) -> None:
    queued_ids(orders_queue)
    before = order_count(store)
    reply = http_post(submit, raw)
    assert reply["statusCode"] == 413
    assert_error(reply["json"]["error"], None)
    assert reply["json"]["error"]["code"] == "payload_too_large"
    assert order_count(store) == before
    assert queued_ids(orders_queue) == []


@pytest.mark.parametrize(
    "content_type",
    [
        None,  # no Content-Type at all
        "application/json",
        "Application/JSON; charset=UTF-8",
        "application/json;charset=utf8",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",  # what `curl -d '{...}'` sends
    ],
)
def test_http_json_bodies_are_read_under_these_content_types(
    submit: Any, content_type: str | None
) -> None:
    reply = http_post(submit, json.dumps(ORDER).encode(), content_type)
    assert reply["statusCode"] == 202, reply["json"]
    assert reply["json"]["status"] == "pending"


@pytest.mark.parametrize(
    "raw",
    [json.dumps(ORDER).encode("utf-16"), json.dumps(ORDER).encode("utf-32"), b"\xef\xbb\xbf{}"],
    ids=["utf-16", "utf-32", "utf-8 bom"],
)
def test_http_bodies_in_other_encodings_are_400(submit: Any, store: Store, raw: bytes) -> None:
    before = order_count(store)
    reply = http_post(submit, raw)
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["code"] == "invalid_request"
    assert order_count(store) == before


def test_http_non_utf8_body_is_400(submit: Any, store: Store) -> None:
    before = order_count(store)
    reply = http_post(submit, b'{"tokenIn": "\xff\xfe"}')
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["code"] == "invalid_request"
    assert order_count(store) == before


@pytest.mark.parametrize(
    "expires",
    [SOON + "Z", SOON + "z", SOON[:-3] + "Z", SOON + ".123456Z", SOON + "+02:00", SOON + "-05:30"],
    # Named, not by value: SOON is the clock at collection, which differs between xdist workers.
    ids=["Z", "z", "minutes", "microseconds", "plus-offset", "minus-offset"],
)
def test_http_expiry_in_the_readmes_formats_is_accepted(submit: Any, expires: str) -> None:
    reply = http_post(submit, limit_body(expiresAt=expires).encode())
    assert reply["statusCode"] == 202, reply["json"]
    assert reply["json"]["status"] == "watching"


def test_http_prices_of_28_significant_digits_are_kept_exactly(submit: Any) -> None:
    price = "151.2000000000000000000000001"  # 28 significant digits (above the quote)
    reply = http_post(submit, limit_body(limitPrice=price).encode())
    assert reply["statusCode"] == 202, reply["json"]
    order = call(submit, "GET", f"/api/orders/{reply['json']['orderId']}")["json"]
    assert order["limitPrice"] == price


@pytest.mark.parametrize(
    "fields",
    [{"slippage": 50}, {"slippage": "0.5"}, {"slippage": "50.0000000"}, {"amountIn": " 1e-2 "}],
)
def test_http_edge_values_inside_the_rules_are_accepted(submit: Any, fields: Any) -> None:
    reply = http_post(submit, body(**fields).encode())
    assert reply["statusCode"] == 202
    assert reply["json"]["status"] == "pending"


# -- WebSocket ------------------------------------------------------------------------------------


def ws_send_checked(handler: Any, c: str, text: str) -> dict[str, Any]:
    """Send one frame; the handler must answer 200 and post exactly one frame. Returns it."""
    seen = len(posted(c))
    reply = send(handler, c, text)
    assert reply["statusCode"] == 200
    frames = posted(c)
    assert len(frames) == seen + 1, frames[seen:]
    frame: dict[str, Any] = frames[-1]
    return frame


@pytest.mark.parametrize(("text", "field"), [pytest.param(t, f, id=i) for i, t, f in BAD])
def test_ws_bad_frame_gets_an_error_frame_and_changes_nothing(
    handler: Any, store: Store, orders_queue: str, text: str, field: str | None
) -> None:
    c = cid()
    connect(handler, c)
    queued_ids(orders_queue)
    before = order_count(store)
    frame = ws_send_checked(handler, c, text)
    assert set(frame) == {"error"}
    assert_error(frame["error"], field)
    assert order_count(store) == before
    assert queued_ids(orders_queue) == []


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({**ORDER, "tokenIn": "S" * BIG}),
        json.dumps({**ORDER, "pad": "\U0001f680" * (BIG // 4 + 1)}, ensure_ascii=False),
        "[" * (BIG + 1),
    ],
    ids=["long token", "emoji padding", "64 KiB of brackets"],
)
def test_ws_frame_over_64_kib_gets_an_error_frame(
    handler: Any, store: Store, orders_queue: str, text: str
) -> None:
    c = cid()
    connect(handler, c)
    queued_ids(orders_queue)
    before = order_count(store)
    frame = ws_send_checked(handler, c, text)
    assert frame["error"]["code"] == "payload_too_large"
    assert order_count(store) == before
    assert queued_ids(orders_queue) == []


@pytest.mark.parametrize(
    "data", [b"\xff\xfe\x00", b"not base64 at all!", b'{"tokenIn": "SOL"}'], ids=str
)
def test_ws_binary_frames_get_an_error_frame(handler: Any, store: Store, data: bytes) -> None:
    c = cid()
    connect(handler, c)
    before = order_count(store)
    encoded = data if data == b"not base64 at all!" else base64.b64encode(data)
    event = ws_event("MESSAGE", "$default", c, body=encoded.decode())
    event["isBase64Encoded"] = True
    assert handler(event, LambdaContext("ws_connect"))["statusCode"] == 200
    [frame] = posted(c)
    assert_error(frame["error"], None)
    assert order_count(store) == before


# -- hypothesis: arbitrary frames on `$default` ---------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    st.sampled_from(["SOL", "USDC", "sol", "0.01", "0", "-0", "50", "1e400", "NaN", "", " "])
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | json_values
)
order_like = st.fixed_dictionaries(
    {},
    optional={
        "tokenIn": field_values,
        "tokenOut": field_values,
        "amountIn": field_values,
        "slippage": field_values,
        "orderType": field_values | st.just("market"),
        "action": st.none() | json_values,
        "idempotencyKey": st.none() | json_values,
        "extra": json_values,
    },
)
frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
    order_like.map(json.dumps),
)


@given(text=frames)
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_ws_any_frame_gets_one_reply_and_only_valid_orders_are_stored(
    handler: Any, store: Store, text: str
) -> None:
    c = cid()
    connect(handler, c)
    before = order_count(store)
    frame = ws_send_checked(handler, c, text)
    if "error" in frame:
        assert set(frame) == {"error"}
        assert_error(frame["error"], None)
        assert order_count(store) == before
    else:  # a valid order: stored and followed on this connection
        assert frame["status"] == "pending"
        assert frame["seq"] == 1
        assert order_count(store) == before + 1
        assert store.get_order(uuid.UUID(frame["orderId"])) is not None


# -- hypothesis: integer bounds and duplicate keys wherever JSON is read ---------------------------


@given(
    from_seq=st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**31 - 1, 2**31])
)
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_ws_any_from_seq_is_replayed_or_refused_on_from_seq(handler: Any, from_seq: Any) -> None:
    """The probe's `fromSeq: 2147483648` was an "Internal server error": every integer (and
    float) now gets the replay or an error frame naming fromSeq."""
    c = cid()
    connect(handler, c)
    producer = cid()
    connect(handler, producer)
    order_id = ws_send_checked(handler, producer, json.dumps(ORDER))["orderId"]
    seen = len(posted(c))
    text = json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": from_seq})
    send(handler, c, text, "subscribe")
    frames = posted(c)[seen:]
    valid = isinstance(from_seq, int) and 0 <= from_seq <= 2**31 - 1
    if valid:
        assert all("error" not in f for f in frames)
        assert [f["seq"] for f in frames] == ([1] if from_seq == 0 else [])
    else:
        [frame] = frames
        assert frame["error"]["field"] == "fromSeq"


def nest(key_path: list[str], leaf: str) -> str:
    text = leaf
    for key in reversed(key_path):
        text = "{" + json.dumps(key) + ": " + text + "}"
    return text


@given(
    key=st.text(min_size=1, max_size=8),
    path=st.lists(st.text(min_size=1, max_size=5), max_size=4),
    in_list=st.booleans(),
)
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_a_duplicate_key_anywhere_is_refused_naming_it(
    submit: Any, handler: Any, key: str, path: list[str], in_list: bool
) -> None:
    duplicated = "{" + f"{json.dumps(key)}: 1, {json.dumps(key)}: 2" + "}"
    inner = f"[{duplicated}]" if in_list else duplicated
    text = body(extra=Raw(nest(path, inner)))
    reply = http_post(submit, text.encode())
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["field"] == key
    c = cid()
    connect(handler, c)
    frame = ws_send_checked(handler, c, text)
    assert frame["error"]["field"] == key
