"""The Solana JSON-RPC wire format, shared by the ledger, the HTTP server and the PubSub server:
error codes, transaction errors in their JSON form, request parameters, token amounts, accounts
in every encoding a node offers, and the account filters of getProgramAccounts/programSubscribe.

Nothing here knows the ledger; the ledger and both servers import it (the ledger used to import
the HTTP server for `error_to_json`, and the HTTP server the ledger).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_status import TransactionErrorType

from engine import base58

Json = dict[str, Any]
AccountLookup = Callable[[Pubkey], Account | None]

# JSON-RPC 2.0 codes, then the ones a Solana node adds (rpc-client-api custom_error.rs).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
BLOCK_CLEANED_UP = -32001
BLOCK_NOT_AVAILABLE = -32004
UNSUPPORTED_TRANSACTION_VERSION = -32015

MAX_BASE58_BYTES = 128  # what a node will still encode as base58
MAX_FILTERS = 4
MAX_MEMCMP_BYTES = 128
# The longest memcmp string that can hold 128 bytes: checked before decoding, as a node does.
MAX_MEMCMP_BASE58_CHARS = 175
MAX_MEMCMP_BASE64_CHARS = 172
U64_MAX = 2**64 - 1
RENT_EXEMPT_LAMPORTS_PER_BYTE = 6960  # 3480 lamports per byte-year, two years
ACCOUNT_STORAGE_OVERHEAD = 128


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
        return dict(params[index])
    return {}


def pubkey(value: Any) -> Pubkey:
    """A base58 pubkey param, refused in agave's words ("Invalid param: WrongSize" for a string
    longer than 44 characters or not 32 bytes, "Invalid param: Invalid" for bad base58)."""
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, "Invalid params: invalid type: expected a string.")
    if len(value) > 44:
        raise RpcError(INVALID_PARAMS, "Invalid param: WrongSize")
    try:
        raw = base58.decode(value)
    except ValueError:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from None
    if len(raw) != 32:
        raise RpcError(INVALID_PARAMS, "Invalid param: WrongSize")
    return Pubkey.from_bytes(raw)


def decode(value: Any, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(str(value), validate=True)
        if encoding == "base58":
            return base58.decode(str(value))
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid {encoding} encoding: {exc}") from None
    raise RpcError(INVALID_PARAMS, f"unsupported encoding: {encoding}")


def encode_base58(data: bytes) -> str:
    return base58.encode(data)


# ---------------------------------------------------------------------------------- token amounts
def real_number_string_trimmed(amount: int, decimals: int) -> str:
    """The node's uiAmountString: `amount` with `decimals` places, trailing zeros trimmed."""
    if decimals <= 0:
        return str(amount)
    digits = str(amount).rjust(decimals + 1, "0")
    text = f"{digits[:-decimals]}.{digits[-decimals:]}"
    return text.rstrip("0").rstrip(".")


def ui_token_amount(amount: int, decimals: int) -> Json:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": real_number_string_trimmed(amount, decimals),
    }


# ---------------------------------------------------------------------------------- accounts
ACCOUNT_ENCODINGS = ("binary", "base58", "base64", "base64+zstd", "jsonParsed")


@dataclass(frozen=True)
class DataSlice:
    offset: int
    length: int

    def apply(self, data: bytes) -> bytes:
        return data[self.offset : self.offset + self.length]


def account_encoding(cfg: Json, default: str = "binary") -> str:
    """The requested account encoding (a node's default is the legacy `binary`)."""
    encoding = cfg.get("encoding") or default
    if encoding not in ACCOUNT_ENCODINGS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown variant `{encoding}`")
    return str(encoding)


def data_slice(cfg: Json) -> DataSlice | None:
    raw = cfg.get("dataSlice")
    if raw is None:
        return None
    try:
        return DataSlice(int(raw["offset"]), int(raw["length"]))
    except (KeyError, TypeError, ValueError):
        raise RpcError(
            INVALID_PARAMS, "Invalid params: dataSlice needs offset and length"
        ) from None


def zstd_frame(data: bytes) -> bytes:
    """`data` as a zstd frame of raw (stored) blocks: any zstd decoder reads it back, which is
    all `base64+zstd` promises; compressing is an optimisation a local chain can skip."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out.append(0xE0)  # 8-byte content size, single segment, no checksum, no dictionary
    out += struct.pack("<Q", len(data))
    block = 128 * 1024
    chunks = [data[i : i + block] for i in range(0, len(data), block)] or [b""]
    for i, chunk in enumerate(chunks):
        last = 1 if i == len(chunks) - 1 else 0
        header = last | (0 << 1) | (len(chunk) << 3)  # block type 0 = raw
        out += header.to_bytes(3, "little")
        out += chunk
    return bytes(out)


def encode_data(data: bytes, encoding: str) -> Any:
    """Account (or return) data in a binary encoding, as a node serialises it."""
    if encoding in ("binary", "base58") and len(data) > MAX_BASE58_BYTES:
        raise RpcError(
            INVALID_REQUEST,
            "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 "
            "encoding.",
        )
    if encoding == "binary":
        return encode_base58(data)  # the legacy form: a bare base58 string
    if encoding == "base58":
        return [encode_base58(data), "base58"]
    if encoding == "base64+zstd":
        return [base64.b64encode(zstd_frame(data)).decode(), "base64+zstd"]
    return [base64.b64encode(data).decode(), "base64"]


def encode_account(
    account: Account,
    encoding: str,
    *,
    slice_: DataSlice | None = None,
    lookup: AccountLookup | None = None,
) -> Json:
    """A UiAccount: {lamports, data, owner, executable, rentEpoch, space}. `jsonParsed` parses
    SPL Token and Token-2022 accounts and mints (`lookup` finds a token account's mint for its
    decimals) and falls back to base64 for anything else, as a node does."""
    from local.chain import parsers

    data = bytes(account.data)
    encoded: Any = None
    if encoding == "jsonParsed":
        encoded = parsers.parse_account(account, lookup or (lambda _key: None))
        if encoded is None:
            encoded = encode_data(slice_.apply(data) if slice_ else data, "base64")
    else:
        encoded = encode_data(slice_.apply(data) if slice_ else data, encoding)
    return {
        "data": encoded,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        # A node shows u64::MAX for rent-exempt accounts (rent is no longer collected).
        "rentEpoch": U64_MAX if rent_exempt(account) else account.rent_epoch,
        "space": len(data),
    }


def rent_exempt(account: Account) -> bool:
    needed = (ACCOUNT_STORAGE_OVERHEAD + len(account.data)) * RENT_EXEMPT_LAMPORTS_PER_BYTE
    return account.lamports >= needed


# ---------------------------------------------------------------------------------- filters
@dataclass(frozen=True)
class Memcmp:
    offset: int
    bytes_: bytes

    def matches(self, data: bytes) -> bool:
        return data[self.offset : self.offset + len(self.bytes_)] == self.bytes_


@dataclass(frozen=True)
class DataSize:
    size: int

    def matches(self, data: bytes) -> bool:
        return len(data) == self.size


AccountFilter = Memcmp | DataSize


def account_filters(raw: Any) -> list[AccountFilter]:
    """getProgramAccounts/programSubscribe `filters`: memcmp (bytes in base58, base64 or as a
    list of byte values) and dataSize, at most four; every one must match."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RpcError(INVALID_PARAMS, "Invalid params: filters must be an array")
    if len(raw) > MAX_FILTERS:
        raise RpcError(INVALID_PARAMS, f"Too many filters provided; max {MAX_FILTERS}")
    filters: list[AccountFilter] = []
    for item in raw:
        if isinstance(item, dict) and "dataSize" in item:
            filters.append(DataSize(int(item["dataSize"])))
        elif isinstance(item, dict) and isinstance(item.get("memcmp"), dict):
            memcmp = item["memcmp"]
            raw = memcmp.get("bytes", "")
            encoding = str(memcmp.get("encoding") or "base58")
            longest = MAX_MEMCMP_BASE64_CHARS if encoding == "base64" else MAX_MEMCMP_BASE58_CHARS
            if len(raw) > longest:  # before any decode: a long string is refused at once
                raise RpcError(INVALID_PARAMS, "Invalid param: DataTooLarge")
            # encoding "bytes": a list of byte values (solders sends it)
            wanted = bytes(int(b) for b in raw) if isinstance(raw, list) else decode(raw, encoding)
            if len(wanted) > MAX_MEMCMP_BYTES:
                raise RpcError(INVALID_PARAMS, "Invalid param: DataTooLarge")
            filters.append(Memcmp(int(memcmp.get("offset", 0)), wanted))
        else:
            raise RpcError(INVALID_PARAMS, f"Invalid params: unsupported filter {item!r}")
    return filters


def matches_all(filters: Sequence[AccountFilter], data: bytes) -> bool:
    return all(f.matches(data) for f in filters)
