"""Landed transactions and blocks in the node's JSON: getTransaction, getBlock and
getSignaturesForAddress answers, for legacy and v0 transactions, in `json`, `jsonParsed`,
`base64` and `base58`.
"""

from __future__ import annotations

import base64
from typing import Any

from solders.message import MessageV0
from solders.pubkey import Pubkey

from local.chain import parsers
from local.chain.ledger import (
    Block,
    InnerGroup,
    Ledger,
    TokenBalance,
    TxRecord,
    writable_keys,
)
from local.chain.wire import (
    INVALID_PARAMS,
    UNSUPPORTED_TRANSACTION_VERSION,
    Json,
    RpcError,
    encode_base58,
    error_to_json,
    ui_token_amount,
)

TRANSACTION_ENCODINGS = ("json", "jsonParsed", "base64", "base58")
DETAILS = ("full", "accounts", "signatures", "none")


def transaction_encoding(cfg: Json) -> str:
    encoding = cfg.get("encoding") or "json"
    if encoding not in TRANSACTION_ENCODINGS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown variant `{encoding}`")
    return str(encoding)


def max_version(cfg: Json) -> int | None:
    raw = cfg.get("maxSupportedTransactionVersion")
    return None if raw is None else int(raw)


def version_of(record: TxRecord) -> int | str:
    assert record.transaction is not None
    return 0 if isinstance(record.transaction.message, MessageV0) else "legacy"


def check_version(record: TxRecord, supported: int | None) -> None:
    """A node refuses a versioned transaction to a client that did not say it reads them."""
    version = version_of(record)
    if version != "legacy" and (supported is None or int(version) > supported):
        raise RpcError(
            UNSUPPORTED_TRANSACTION_VERSION,
            f"Transaction version ({version}) is not supported by the requesting client. "
            "Please try the request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0',
        )


def memo(record: TxRecord) -> str | None:
    """The transaction's memos as getSignaturesForAddress shows them: "[len] text; ..."."""
    if record.transaction is None:
        return None
    message = record.transaction.message
    keys = list(message.account_keys)
    memos = []
    for ix in message.instructions:
        if keys[ix.program_id_index] in parsers.MEMO_PROGRAM_IDS:
            data = bytes(ix.data)
            try:
                text = data.decode()
            except UnicodeDecodeError:
                text = "(unparsable)"
            memos.append(f"[{len(data)}] {text}")
    return "; ".join(memos) if memos else None


def token_balances(balances: list[TokenBalance]) -> list[Json]:
    return [
        {
            "accountIndex": b.account_index,
            "mint": str(b.mint),
            "owner": str(b.owner),
            "programId": str(b.program_id),
            "uiTokenAmount": ui_token_amount(b.amount, b.decimals),
        }
        for b in balances
    ]


def inner_instructions(groups: list[InnerGroup], keys: list[Pubkey], encoding: str) -> list[Json]:
    """meta.innerInstructions: each top-level instruction's CPIs (LiteSVM's metadata), as
    compiled instructions over the transaction's full account list, or parsed."""
    out = []
    for index, calls in groups:
        if encoding == "jsonParsed":
            instructions = [
                parsers.parse_instruction(
                    keys[c.program_id_index],
                    [str(keys[i]) for i in c.accounts],
                    c.data,
                    c.stack_height,
                )
                for c in calls
            ]
        else:
            instructions = [
                {
                    "accounts": list(c.accounts),
                    "data": encode_base58(c.data),
                    "programIdIndex": c.program_id_index,
                    "stackHeight": c.stack_height,
                }
                for c in calls
            ]
        out.append({"index": index, "instructions": instructions})
    return out


def meta(record: TxRecord, encoding: str) -> Json:
    err = error_to_json(record.err)
    out: Json = {
        "computeUnitsConsumed": record.units,
        "err": err,
        "fee": record.fee,
        "innerInstructions": inner_instructions(record.inner, record.account_keys, encoding),
        "logMessages": list(record.logs),
        "postBalances": list(record.post_balances),
        "postTokenBalances": token_balances(record.post_token_balances),
        "preBalances": list(record.pre_balances),
        "preTokenBalances": token_balances(record.pre_token_balances),
        "rewards": [],
        "status": {"Ok": None} if err is None else {"Err": err},
    }
    if encoding != "jsonParsed":
        # Parsed account keys carry their source ("lookupTable") instead.
        out["loadedAddresses"] = {
            "readonly": [str(k) for k in record.loaded.readonly],
            "writable": [str(k) for k in record.loaded.writable],
        }
    return out


def _account_key_objects(record: TxRecord) -> list[Json]:
    assert record.transaction is not None
    message = record.transaction.message
    writable = set(writable_keys(message, record.loaded))
    signers = message.header.num_required_signatures
    static = len(message.account_keys)
    return [
        {
            "pubkey": str(k),
            "signer": i < signers,
            "source": "transaction" if i < static else "lookupTable",
            "writable": k in writable,
        }
        for i, k in enumerate(record.account_keys)
    ]


def transaction(record: TxRecord, encoding: str) -> Any:
    """The `transaction` member: a JSON object, or [encoded bytes, encoding]."""
    tx = record.transaction
    assert tx is not None
    if encoding == "base64":
        return [base64.b64encode(bytes(tx)).decode(), "base64"]
    if encoding == "base58":
        return [encode_base58(bytes(tx)), "base58"]
    message = tx.message
    keys = record.account_keys  # static, then loaded: what instruction indexes count in
    body: Json
    if encoding == "jsonParsed":
        body = {
            "accountKeys": _account_key_objects(record),
            "instructions": [
                parsers.parse_instruction(
                    keys[ix.program_id_index], [str(keys[i]) for i in bytes(ix.accounts)], ix.data
                )
                for ix in message.instructions
            ],
            "recentBlockhash": str(message.recent_blockhash),
        }
    else:
        header = message.header
        body = {
            "accountKeys": [str(k) for k in message.account_keys],  # loaded ones: meta
            "header": {
                "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
                "numRequiredSignatures": header.num_required_signatures,
            },
            "instructions": [
                {
                    "accounts": list(bytes(ix.accounts)),
                    "data": encode_base58(bytes(ix.data)),
                    "programIdIndex": ix.program_id_index,
                    "stackHeight": None,
                }
                for ix in message.instructions
            ],
            "recentBlockhash": str(message.recent_blockhash),
        }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
                "writableIndexes": list(bytes(lookup.writable_indexes)),
            }
            for lookup in message.address_table_lookups
        ]
    return {"message": body, "signatures": [str(s) for s in tx.signatures]}


def with_meta(record: TxRecord, encoding: str, supported: int | None) -> Json:
    """{transaction, meta[, version]}: one entry of a block, or the core of getTransaction."""
    check_version(record, supported)
    out: Json = {"meta": meta(record, encoding), "transaction": transaction(record, encoding)}
    if supported is not None:
        out["version"] = version_of(record)
    return out


def confirmed_transaction(
    ledger: Ledger, record: TxRecord, encoding: str, supported: int | None
) -> Json:
    """A getTransaction result."""
    block = ledger.blocks.get(record.slot)
    return {
        "blockTime": block.time if block else None,
        "slot": record.slot,
        **with_meta(record, encoding, supported),
    }


def _accounts_only(record: TxRecord, supported: int | None) -> Json:
    """A block entry with transactionDetails "accounts": signatures, annotated keys, slim meta."""
    check_version(record, supported)
    assert record.transaction is not None
    full = meta(record, "json")
    slim = {
        k: full[k]
        for k in (
            "err",
            "fee",
            "postBalances",
            "postTokenBalances",
            "preBalances",
            "preTokenBalances",
            "status",
        )
    }
    out: Json = {
        "meta": slim,
        "transaction": {
            "accountKeys": _account_key_objects(record),
            "signatures": [str(s) for s in record.transaction.signatures],
        },
    }
    if supported is not None:
        out["version"] = version_of(record)
    return out


def block(block: Block, encoding: str, details: str, supported: int | None, rewards: bool) -> Json:
    """A getBlock result."""
    if details not in DETAILS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown variant `{details}`")
    records = [r for r in block.records if r.transaction is not None]
    out: Json = {
        "blockHeight": block.height,
        "blockTime": block.time,
        "blockhash": str(block.blockhash),
        "parentSlot": block.parent_slot,
        "previousBlockhash": str(block.previous_blockhash),
    }
    if details == "full":
        out["transactions"] = [with_meta(r, encoding, supported) for r in records]
    elif details == "accounts":
        out["transactions"] = [_accounts_only(r, supported) for r in records]
    elif details == "signatures":
        out["signatures"] = [str(r.signature) for r in records]
    if rewards:
        out["rewards"] = []  # no stake, no leader rewards on this chain
    return out


def signature_info(ledger: Ledger, record: TxRecord) -> Json:
    """One getSignaturesForAddress entry."""
    found = ledger.status(record.signature)
    level = found[2] if found else "finalized"
    block = ledger.blocks.get(record.slot)
    return {
        "blockTime": block.time if block else None,
        "confirmationStatus": level,
        "err": error_to_json(record.err),
        "memo": memo(record),
        "signature": str(record.signature),
        "slot": record.slot,
    }
