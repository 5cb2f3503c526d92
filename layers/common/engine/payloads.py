"""Reading the JSON a client sends: request bodies, WebSocket frames, list cursors.

One strict reader for all of them, so what the engine acts on is what any other reader of the
same bytes (a proxy, a log, an audit) would see:
- UTF-8 only (no UTF-16/32 detection, no other charset);
- a key twice in one object is refused, naming the key (`"amountIn":"0.0001","amountIn":"9"`
  would otherwise be read as the last value by us and as the first by others);
- NaN and Infinity are refused, floats are read as Decimal (amounts are never binary floats);
- nesting deep enough to exhaust the parser is a 400, not a 500.

And the Content-Type rule for bodies: `application/json`, `application/*+json`, none at all, and
`application/x-www-form-urlencoded` (what `curl -d` sends) when the body is JSON; any charset
but UTF-8, or any other type, is 415 `unsupported_media_type`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from engine.errors import InvalidRequest, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
UTF8 = {"utf-8", "utf8"}
# `application/<name>+json` (RFC 6839): a name of RFC 6838's restricted characters before the
# suffix; `application/+json` names no type and is refused.
_STRUCTURED_JSON = re.compile(r"^application/[a-z0-9][a-z0-9!#$&^_.-]*\+json$", re.ASCII)


def _no_constants(token: str) -> Any:
    raise InvalidRequest(f"{token} is not a number this API accepts")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidRequest(f"the key {key!r} appears twice in one object", field=key)
        out[key] = value
    return out


def loads(raw: bytes | str, what: str = "the request body") -> Any:
    """`raw` as JSON under the rules above; InvalidRequest ("<what> is not valid JSON", ...)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not UTF-8") from None
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):  # RecursionError: JSON nested ~1000 deep
        raise InvalidRequest(f"{what} is not valid JSON") from None


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """The Content-Type's type (lower case, "" when absent) and its parameters."""
    if not content_type:
        return "", {}
    kind, *params = content_type.split(";")
    found: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        found[name.strip().lower()] = value.strip().strip('"').lower()
    return kind.strip().lower(), found


def read_body(content_type: str | None, body: bytes) -> Any:
    """A request body by its Content-Type: the JSON value, or UnsupportedMediaType /
    InvalidRequest."""
    kind, params = media_type(content_type)
    charset = params.get("charset")
    if charset is not None and charset not in UTF8:
        raise UnsupportedMediaType(
            f"send application/json in UTF-8 (charset=utf-8), not charset={charset}"
        )
    is_json = kind == "application/json" or _STRUCTURED_JSON.match(kind) is not None
    if kind and not is_json and kind != FORM:
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {kind}")
    if kind == FORM and not body.lstrip().startswith((b"{", b"[")):
        raise UnsupportedMediaType(
            "a form-encoded body is read only when it is JSON (as `curl -d` sends it);"
            " send application/json"
        )
    return loads(body)
