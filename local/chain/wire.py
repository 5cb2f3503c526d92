"""The Solana JSON-RPC wire format, shared by the ledger and the HTTP server: error codes,
transaction errors in their JSON form and request parameters.

Nothing here knows the ledger; the ledger and the server import it (the ledger used to import
the server for `error_to_json`, and the server the ledger).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from engine import base58
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_status import TransactionErrorType

Json = dict[str, Any]

# JSON-RPC 2.0 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """A JSON-RPC error response: raised by a method, answered as {"error": {code, message}}."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> Json:
    error: Json = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def error_to_json(err: TransactionErrorType | None) -> Any:
    """A TransactionError in the RPC's JSON form, e.g. {"InstructionError":[3,{"Custom":6005}]}.

    (The error classes' own to_json is not the wire form; the simulate result's is.)"""
    if err is None:
        return None
    result = RpcSimulateTransactionResult(err=err, logs=None, accounts=None, units_consumed=None)
    return json.loads(result.to_json())["err"]


def result_of(resp: Any) -> Any:
    """The `result` member of a solders response object, as plain JSON."""
    return json.loads(resp.to_json())["result"]


def config(params: Sequence[Any], index: int) -> Json:
    """The configuration object at `params[index]`, or {} when absent."""
    if len(params) > index and isinstance(params[index], dict):
        return params[index]
    return {}


def pubkey(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"Invalid param: {exc}") from None


def decode(value: Any, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(str(value))
        if encoding == "base58":
            return base58.decode(str(value))
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid {encoding} encoding: {exc}") from None
    raise RpcError(INVALID_PARAMS, f"unsupported encoding: {encoding}")
