"""`jsonParsed` as a node renders it (agave's account-decoder and transaction-status parsers):
SPL Token and Token-2022 accounts, mints and multisigs, with Token-2022 extensions; System, SPL
Token, Associated Token Account, Memo and Address Lookup Table instructions. What has no parser
here falls back the way a node falls back: accounts to base64, instructions to {programId,
accounts, data}.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)

from local.chain.wire import AccountLookup, Json, encode_base58, ui_token_amount

SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
MEMO_PROGRAM_IDS = (
    Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),  # v3 (current)
    Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),  # v1
)
TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)
LOOKUP_TABLE_PROGRAM_ID = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")

MINT_LEN = 82
ACCOUNT_LEN = 165
MULTISIG_LEN = 355
ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2
_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}


class _Reader:
    """Little-endian fields off a byte string; IndexError/struct.error when it runs short."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise ValueError("short data")
        out = self.data[self.offset : self.offset + n]
        self.offset += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def i16(self) -> int:
        return int(struct.unpack("<h", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def i64(self) -> int:
        return int(struct.unpack("<q", self.take(8))[0])

    def f64(self) -> float:
        return float(struct.unpack("<d", self.take(8))[0])

    def pubkey(self) -> str:
        return str(Pubkey.from_bytes(self.take(32)))

    def optional_nonzero_pubkey(self) -> str | None:
        raw = self.take(32)
        return None if raw == bytes(32) else str(Pubkey.from_bytes(raw))

    def coption_pubkey(self) -> str | None:
        tag = self.u32()
        key = self.pubkey()
        return key if tag else None

    def coption_u64(self) -> int | None:
        tag = self.u32()
        value = self.u64()
        return value if tag else None

    def borsh_string(self) -> str:
        return self.take(self.u32()).decode()

    def bincode_string(self) -> str:
        return self.take(self.u64()).decode()


# ---------------------------------------------------------------------------------- accounts
def parse_account(account: Account, lookup: AccountLookup) -> Json | None:
    """The `data` of a jsonParsed UiAccount, or None when the node would fall back to base64."""
    if account.owner not in TOKEN_PROGRAMS:
        return None
    data = bytes(account.data)
    program = "spl-token" if account.owner == TOKEN_PROGRAM_ID else "spl-token-2022"
    try:
        parsed = _parse_token_state(data, account.owner == TOKEN_2022_PROGRAM_ID, lookup)
    except (ValueError, UnicodeDecodeError):
        return None
    if parsed is None:
        return None
    return {"parsed": parsed, "program": program, "space": len(data)}


def mint_decimals(lookup: AccountLookup, mint: Pubkey) -> int | None:
    account = lookup(mint)
    if account is None or account.owner not in TOKEN_PROGRAMS or len(account.data) < MINT_LEN:
        return None
    return bytes(account.data)[44]


def _account_type(data: bytes, is_2022: bool) -> str | None:
    if len(data) == ACCOUNT_LEN:
        return "account"
    if len(data) == MINT_LEN:
        return "mint"
    if len(data) == MULTISIG_LEN:
        return "multisig"
    if is_2022 and len(data) > ACCOUNT_LEN:
        return {ACCOUNT_TYPE_MINT: "mint", ACCOUNT_TYPE_ACCOUNT: "account"}.get(data[ACCOUNT_LEN])
    return None


def _parse_token_state(data: bytes, is_2022: bool, lookup: AccountLookup) -> Json | None:
    kind = _account_type(data, is_2022)
    if kind == "account":
        return _parse_token_account(data, lookup)
    if kind == "mint":
        return _parse_mint(data)
    if kind == "multisig":
        r = _Reader(data)
        m, n, initialized = r.u8(), r.u8(), r.u8()
        signers = [Pubkey.from_bytes(data[3 + 32 * i : 35 + 32 * i]) for i in range(11)]
        return {
            "info": {
                "isInitialized": bool(initialized),
                "numRequiredSigners": m,
                "numValidSigners": n,
                "signers": [str(s) for s in signers if bytes(s) != bytes(32)],
            },
            "type": "multisig",
        }
    return None


def _parse_token_account(data: bytes, lookup: AccountLookup) -> Json | None:
    r = _Reader(data)
    mint = Pubkey.from_bytes(r.take(32))
    owner = r.pubkey()
    amount = r.u64()
    delegate = r.coption_pubkey()
    state = r.u8()
    native = r.coption_u64()
    delegated = r.u64()
    close_authority = r.coption_pubkey()
    if state == 0:
        return None  # an uninitialized account does not unpack
    decimals = mint_decimals(lookup, mint)
    if decimals is None:
        return None  # the node needs the mint's decimals, else it falls back to base64
    info: Json = {
        "isNative": native is not None,
        "mint": str(mint),
        "owner": owner,
        "state": _STATES.get(state, "uninitialized"),
        "tokenAmount": ui_token_amount(amount, decimals),
    }
    if delegate is not None:
        info["delegate"] = delegate
        info["delegatedAmount"] = ui_token_amount(delegated, decimals)
    if native is not None:
        info["rentExemptReserve"] = ui_token_amount(native, decimals)
    if close_authority is not None:
        info["closeAuthority"] = close_authority
    extensions = _extensions(data)
    if extensions:
        info["extensions"] = extensions
    return {"info": info, "type": "account"}


def _parse_mint(data: bytes) -> Json | None:
    r = _Reader(data)
    mint_authority = r.coption_pubkey()
    supply = r.u64()
    decimals = r.u8()
    initialized = r.u8()
    freeze_authority = r.coption_pubkey()
    if not initialized:
        return None
    info: Json = {
        "decimals": decimals,
        "freezeAuthority": freeze_authority,
        "isInitialized": True,
        "mintAuthority": mint_authority,
        "supply": str(supply),
    }
    extensions = _extensions(data)
    if extensions:
        info["extensions"] = extensions
    return {"info": info, "type": "mint"}


def _float_text(value: float) -> str:
    # Rust's f64 Display: no trailing ".0" on whole numbers.
    return str(int(value)) if value.is_integer() else repr(value)


def _transfer_fee(r: _Reader) -> Json:
    return {"epoch": r.u64(), "maximumFee": r.u64(), "transferFeeBasisPoints": r.u16()}


def _extension(kind: int, r: _Reader) -> Json:
    """One Token-2022 TLV entry as {"extension": name, "state": {...}} (state-less ones have no
    state); confidential-transfer ones are reported unparseable here."""
    if kind == 0:
        return {"extension": "uninitialized"}
    if kind == 1:
        return {
            "extension": "transferFeeConfig",
            "state": {
                "transferFeeConfigAuthority": r.optional_nonzero_pubkey(),
                "withdrawWithheldAuthority": r.optional_nonzero_pubkey(),
                "withheldAmount": r.u64(),
                "olderTransferFee": _transfer_fee(r),
                "newerTransferFee": _transfer_fee(r),
            },
        }
    if kind == 2:
        return {"extension": "transferFeeAmount", "state": {"withheldAmount": r.u64()}}
    if kind == 3:
        return {
            "extension": "mintCloseAuthority",
            "state": {"closeAuthority": r.optional_nonzero_pubkey()},
        }
    if kind == 6:
        state = _STATES.get(r.u8(), "uninitialized")
        return {"extension": "defaultAccountState", "state": {"accountState": state}}
    if kind == 7:
        return {"extension": "immutableOwner"}
    if kind == 8:
        return {
            "extension": "memoTransfer",
            "state": {"requireIncomingTransferMemos": bool(r.u8())},
        }
    if kind == 9:
        return {"extension": "nonTransferable"}
    if kind == 10:
        return {
            "extension": "interestBearingConfig",
            "state": {
                "rateAuthority": r.optional_nonzero_pubkey(),
                "initializationTimestamp": r.i64(),
                "preUpdateAverageRate": r.i16(),
                "lastUpdateTimestamp": r.i64(),
                "currentRate": r.i16(),
            },
        }
    if kind == 11:
        return {"extension": "cpiGuard", "state": {"lockCpi": bool(r.u8())}}
    if kind == 12:
        return {
            "extension": "permanentDelegate",
            "state": {"delegate": r.optional_nonzero_pubkey()},
        }
    if kind == 13:
        return {"extension": "nonTransferableAccount"}
    if kind == 14:
        return {
            "extension": "transferHook",
            "state": {
                "authority": r.optional_nonzero_pubkey(),
                "programId": r.optional_nonzero_pubkey(),
            },
        }
    if kind == 15:
        return {"extension": "transferHookAccount", "state": {"transferring": bool(r.u8())}}
    if kind == 18:
        return {
            "extension": "metadataPointer",
            "state": {
                "authority": r.optional_nonzero_pubkey(),
                "metadataAddress": r.optional_nonzero_pubkey(),
            },
        }
    if kind == 19:
        update_authority = r.optional_nonzero_pubkey()
        mint = r.pubkey()
        name, symbol, uri = r.borsh_string(), r.borsh_string(), r.borsh_string()
        extra = [[r.borsh_string(), r.borsh_string()] for _ in range(r.u32())]
        return {
            "extension": "tokenMetadata",
            "state": {
                "additionalMetadata": extra,
                "mint": mint,
                "name": name,
                "symbol": symbol,
                "updateAuthority": update_authority,
                "uri": uri,
            },
        }
    if kind == 20:
        return {
            "extension": "groupPointer",
            "state": {
                "authority": r.optional_nonzero_pubkey(),
                "groupAddress": r.optional_nonzero_pubkey(),
            },
        }
    if kind == 21:
        return {
            "extension": "tokenGroup",
            "state": {
                "updateAuthority": r.optional_nonzero_pubkey(),
                "mint": r.pubkey(),
                "size": r.u64(),
                "maxSize": r.u64(),
            },
        }
    if kind == 22:
        return {
            "extension": "groupMemberPointer",
            "state": {
                "authority": r.optional_nonzero_pubkey(),
                "memberAddress": r.optional_nonzero_pubkey(),
            },
        }
    if kind == 23:
        return {
            "extension": "tokenGroupMember",
            "state": {"mint": r.pubkey(), "group": r.pubkey(), "memberNumber": r.u64()},
        }
    if kind == 25:
        return {
            "extension": "scaledUiAmountConfig",
            "state": {
                "authority": r.optional_nonzero_pubkey(),
                "multiplier": _float_text(r.f64()),
                "newMultiplierEffectiveTimestamp": r.i64(),
                "newMultiplier": _float_text(r.f64()),
            },
        }
    if kind == 26:
        return {
            "extension": "pausableConfig",
            "state": {"authority": r.optional_nonzero_pubkey(), "paused": bool(r.u8())},
        }
    if kind == 27:
        return {"extension": "pausableAccount"}
    return {"extension": "unparseableExtension"}


def _extensions(data: bytes) -> list[Json]:
    """Token-2022 TLV entries after the base state and the account-type byte."""
    if len(data) <= ACCOUNT_LEN + 1:
        return []
    out: list[Json] = []
    offset = ACCOUNT_LEN + 1
    while offset + 4 <= len(data):
        kind, length = struct.unpack_from("<HH", data, offset)
        value = data[offset + 4 : offset + 4 + length]
        offset += 4 + length
        if kind == 0 and length == 0:
            break  # the zeroed tail of a reallocated account
        try:
            out.append(_extension(kind, _Reader(value)))
        except (ValueError, UnicodeDecodeError):
            out.append({"extension": "unparseableExtension"})
    return out


# ---------------------------------------------------------------------------------- instructions
def parse_instruction(
    program_id: Pubkey, accounts: Sequence[str], data: bytes, stack_height: int | None = None
) -> Json:
    """One instruction in a jsonParsed transaction: parsed where a node has a parser and the
    data parses, else {programId, accounts, data} (partially decoded)."""
    parsed: Any = None
    program: str | None = None
    try:
        if program_id == SYSTEM_PROGRAM_ID:
            program, parsed = "system", _parse_system(accounts, data)
        elif program_id in TOKEN_PROGRAMS:
            program, parsed = "spl-token", _parse_token(accounts, data)
        elif program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
            program, parsed = "spl-associated-token-account", _parse_ata(accounts, data)
        elif program_id in MEMO_PROGRAM_IDS:
            program, parsed = "spl-memo", data.decode()
        elif program_id == LOOKUP_TABLE_PROGRAM_ID:
            program, parsed = "address-lookup-table", _parse_lookup_table(accounts, data)
    except (ValueError, IndexError, KeyError, UnicodeDecodeError):
        parsed = None
    if program is not None and parsed is not None:
        return {
            "parsed": parsed,
            "program": program,
            "programId": str(program_id),
            "stackHeight": stack_height,
        }
    return {
        "accounts": list(accounts),
        "data": encode_base58(data),
        "programId": str(program_id),
        "stackHeight": stack_height,
    }


def _need(accounts: Sequence[str], n: int) -> None:
    if len(accounts) < n:
        raise ValueError("not enough accounts")


def _parsed(kind: str, info: Json) -> Json:
    return {"info": info, "type": kind}


def _parse_system(a: Sequence[str], data: bytes) -> Json | None:
    r = _Reader(data)
    tag = r.u32()
    if tag == 0:
        _need(a, 2)
        return _parsed(
            "createAccount",
            {
                "source": a[0],
                "newAccount": a[1],
                "lamports": r.u64(),
                "space": r.u64(),
                "owner": r.pubkey(),
            },
        )
    if tag == 1:
        _need(a, 1)
        return _parsed("assign", {"account": a[0], "owner": r.pubkey()})
    if tag == 2:
        _need(a, 2)
        return _parsed("transfer", {"source": a[0], "destination": a[1], "lamports": r.u64()})
    if tag == 3:
        _need(a, 2)
        base, seed = r.pubkey(), r.bincode_string()
        lamports, space, owner = r.u64(), r.u64(), r.pubkey()
        return _parsed(
            "createAccountWithSeed",
            {
                "source": a[0],
                "newAccount": a[1],
                "base": base,
                "seed": seed,
                "lamports": lamports,
                "space": space,
                "owner": owner,
            },
        )
    if tag == 4:
        _need(a, 3)
        return _parsed(
            "advanceNonce",
            {"nonceAccount": a[0], "recentBlockhashesSysvar": a[1], "nonceAuthority": a[2]},
        )
    if tag == 5:
        _need(a, 5)
        return _parsed(
            "withdrawFromNonce",
            {
                "nonceAccount": a[0],
                "destination": a[1],
                "recentBlockhashesSysvar": a[2],
                "rentSysvar": a[3],
                "nonceAuthority": a[4],
                "lamports": r.u64(),
            },
        )
    if tag == 6:
        _need(a, 3)
        return _parsed(
            "initializeNonce",
            {
                "nonceAccount": a[0],
                "recentBlockhashesSysvar": a[1],
                "rentSysvar": a[2],
                "nonceAuthority": r.pubkey(),
            },
        )
    if tag == 7:
        _need(a, 2)
        return _parsed(
            "authorizeNonce",
            {"nonceAccount": a[0], "nonceAuthority": a[1], "newAuthorized": r.pubkey()},
        )
    if tag == 8:
        _need(a, 1)
        return _parsed("allocate", {"account": a[0], "space": r.u64()})
    if tag == 9:
        _need(a, 2)
        base, seed, space, owner = r.pubkey(), r.bincode_string(), r.u64(), r.pubkey()
        return _parsed(
            "allocateWithSeed",
            {"account": a[0], "base": base, "seed": seed, "space": space, "owner": owner},
        )
    if tag == 10:
        _need(a, 2)
        base, seed, owner = r.pubkey(), r.bincode_string(), r.pubkey()
        return _parsed(
            "assignWithSeed", {"account": a[0], "base": base, "seed": seed, "owner": owner}
        )
    if tag == 11:
        _need(a, 3)
        lamports, seed, owner = r.u64(), r.bincode_string(), r.pubkey()
        return _parsed(
            "transferWithSeed",
            {
                "source": a[0],
                "sourceBase": a[1],
                "destination": a[2],
                "lamports": lamports,
                "sourceSeed": seed,
                "sourceOwner": owner,
            },
        )
    if tag == 12:
        _need(a, 1)
        return _parsed("upgradeNonce", {"nonceAccount": a[0]})
    return None


def _signers(info: Json, a: Sequence[str], index: int, single: str, multisig: str) -> Json:
    """spl-token's authority: one signer at `index`, or a multisig followed by its signers."""
    _need(a, index + 1)
    if len(a) > index + 1:
        info[multisig] = a[index]
        info["signers"] = list(a[index + 1 :])
    else:
        info[single] = a[index]
    return info


_AUTHORITY_TYPES = {
    0: ("mintTokens", "mint"),
    1: ("freezeAccount", "mint"),
    2: ("accountOwner", "account"),
    3: ("closeAccount", "account"),
    4: ("transferFeeConfig", "mint"),
    5: ("withheldWithdraw", "mint"),
    6: ("closeMint", "mint"),
    7: ("interestRate", "mint"),
    8: ("permanentDelegate", "mint"),
    9: ("confidentialTransferMint", "mint"),
    10: ("transferHookProgramId", "mint"),
    11: ("confidentialTransferFeeConfig", "mint"),
    12: ("metadataPointer", "mint"),
    13: ("groupPointer", "mint"),
    14: ("groupMemberPointer", "mint"),
    15: ("scaledUiAmount", "mint"),
    16: ("pause", "mint"),
}


def _coption_key_arg(r: _Reader) -> str | None:
    # Instruction COption<Pubkey>: a 1-byte tag, then the key only when present.
    return r.pubkey() if r.u8() else None


def _parse_token(a: Sequence[str], data: bytes) -> Json | None:
    r = _Reader(data)
    tag = r.u8()
    if tag in (0, 20):  # InitializeMint, InitializeMint2
        decimals, authority = r.u8(), r.pubkey()
        freeze = _coption_key_arg(r)
        info: Json = {"mint": a[0], "decimals": decimals, "mintAuthority": authority}
        if tag == 0:
            _need(a, 2)
            info["rentSysvar"] = a[1]
        if freeze is not None:
            info["freezeAuthority"] = freeze
        return _parsed("initializeMint" if tag == 0 else "initializeMint2", info)
    if tag == 1:
        _need(a, 4)
        return _parsed(
            "initializeAccount",
            {"account": a[0], "mint": a[1], "owner": a[2], "rentSysvar": a[3]},
        )
    if tag == 16:
        _need(a, 3)
        return _parsed(
            "initializeAccount2",
            {"account": a[0], "mint": a[1], "owner": r.pubkey(), "rentSysvar": a[2]},
        )
    if tag == 18:
        _need(a, 2)
        return _parsed("initializeAccount3", {"account": a[0], "mint": a[1], "owner": r.pubkey()})
    if tag in (2, 19):  # InitializeMultisig(2)
        m = r.u8()
        if tag == 2:
            _need(a, 3)
            info = {"multisig": a[0], "rentSysvar": a[1], "signers": list(a[2:]), "m": m}
            return _parsed("initializeMultisig", info)
        _need(a, 2)
        return _parsed("initializeMultisig2", {"multisig": a[0], "signers": list(a[1:]), "m": m})
    if tag == 3:
        _need(a, 3)
        info = {"source": a[0], "destination": a[1], "amount": str(r.u64())}
        return _parsed("transfer", _signers(info, a, 2, "authority", "multisigAuthority"))
    if tag == 4:
        _need(a, 3)
        info = {"source": a[0], "delegate": a[1], "amount": str(r.u64())}
        return _parsed("approve", _signers(info, a, 2, "owner", "multisigOwner"))
    if tag == 5:
        _need(a, 2)
        return _parsed("revoke", _signers({"source": a[0]}, a, 1, "owner", "multisigOwner"))
    if tag == 6:
        _need(a, 2)
        kind = r.u8()
        name, owned = _AUTHORITY_TYPES[kind]
        new_authority = _coption_key_arg(r)
        info = {owned: a[0], "authorityType": name, "newAuthority": new_authority}
        return _parsed("setAuthority", _signers(info, a, 1, "authority", "multisigAuthority"))
    if tag == 7:
        _need(a, 3)
        info = {"mint": a[0], "account": a[1], "amount": str(r.u64())}
        return _parsed("mintTo", _signers(info, a, 2, "mintAuthority", "multisigMintAuthority"))
    if tag == 8:
        _need(a, 3)
        info = {"account": a[0], "mint": a[1], "amount": str(r.u64())}
        return _parsed("burn", _signers(info, a, 2, "authority", "multisigAuthority"))
    if tag == 9:
        _need(a, 3)
        info = {"account": a[0], "destination": a[1]}
        return _parsed("closeAccount", _signers(info, a, 2, "owner", "multisigOwner"))
    if tag in (10, 11):
        _need(a, 3)
        info = {"account": a[0], "mint": a[1]}
        kind_name = "freezeAccount" if tag == 10 else "thawAccount"
        return _parsed(
            kind_name, _signers(info, a, 2, "freezeAuthority", "multisigFreezeAuthority")
        )
    if tag == 12:
        _need(a, 4)
        amount, decimals = r.u64(), r.u8()
        info = {
            "source": a[0],
            "mint": a[1],
            "destination": a[2],
            "tokenAmount": ui_token_amount(amount, decimals),
        }
        return _parsed("transferChecked", _signers(info, a, 3, "authority", "multisigAuthority"))
    if tag == 13:
        _need(a, 4)
        amount, decimals = r.u64(), r.u8()
        info = {
            "source": a[0],
            "mint": a[1],
            "delegate": a[2],
            "tokenAmount": ui_token_amount(amount, decimals),
        }
        return _parsed("approveChecked", _signers(info, a, 3, "owner", "multisigOwner"))
    if tag == 14:
        _need(a, 3)
        amount, decimals = r.u64(), r.u8()
        info = {"mint": a[0], "account": a[1], "tokenAmount": ui_token_amount(amount, decimals)}
        return _parsed(
            "mintToChecked", _signers(info, a, 2, "mintAuthority", "multisigMintAuthority")
        )
    if tag == 15:
        _need(a, 3)
        amount, decimals = r.u64(), r.u8()
        info = {"account": a[0], "mint": a[1], "tokenAmount": ui_token_amount(amount, decimals)}
        return _parsed("burnChecked", _signers(info, a, 2, "authority", "multisigAuthority"))
    if tag == 17:
        _need(a, 1)
        return _parsed("syncNative", {"account": a[0]})
    if tag == 21:
        _need(a, 1)
        info = {"mint": a[0]}
        rest = data[1:]
        if rest:
            info["extensionTypes"] = [
                _extension_name(int.from_bytes(rest[i : i + 2], "little"))
                for i in range(0, len(rest) - 1, 2)
            ]
        return _parsed("getAccountDataSize", info)
    if tag == 22:
        _need(a, 1)
        return _parsed("initializeImmutableOwner", {"account": a[0]})
    if tag == 23:
        _need(a, 1)
        return _parsed("amountToUiAmount", {"mint": a[0], "amount": str(r.u64())})
    if tag == 24:
        _need(a, 1)
        return _parsed("uiAmountToAmount", {"mint": a[0], "uiAmount": data[1:].decode()})
    return None


_EXTENSION_NAMES = [
    "uninitialized",
    "transferFeeConfig",
    "transferFeeAmount",
    "mintCloseAuthority",
    "confidentialTransferMint",
    "confidentialTransferAccount",
    "defaultAccountState",
    "immutableOwner",
    "memoTransfer",
    "nonTransferable",
    "interestBearingConfig",
    "cpiGuard",
    "permanentDelegate",
    "nonTransferableAccount",
    "transferHook",
    "transferHookAccount",
    "confidentialTransferFeeConfig",
    "confidentialTransferFeeAmount",
    "metadataPointer",
    "tokenMetadata",
    "groupPointer",
    "tokenGroup",
    "groupMemberPointer",
    "tokenGroupMember",
    "confidentialMintBurn",
    "scaledUiAmount",
    "pausable",
    "pausableAccount",
]


def _extension_name(kind: int) -> str:
    if kind >= len(_EXTENSION_NAMES):
        raise ValueError("unknown extension type")
    return _EXTENSION_NAMES[kind]


def _parse_ata(a: Sequence[str], data: bytes) -> Json | None:
    tag = data[0] if data else 0  # an empty instruction is the original Create
    if tag in (0, 1):
        _need(a, 6)
        info = {
            "source": a[0],
            "account": a[1],
            "wallet": a[2],
            "mint": a[3],
            "systemProgram": a[4],
            "tokenProgram": a[5],
        }
        return _parsed("create" if tag == 0 else "createIdempotent", info)
    if tag == 2:
        _need(a, 7)
        return _parsed(
            "recoverNested",
            {
                "nestedSource": a[0],
                "nestedMint": a[1],
                "destination": a[2],
                "nestedOwner": a[3],
                "ownerMint": a[4],
                "wallet": a[5],
                "tokenProgram": a[6],
            },
        )
    return None


def _parse_lookup_table(a: Sequence[str], data: bytes) -> Json | None:
    """agave's parse_address_lookup_table: the program's bincode ProgramInstruction."""
    r = _Reader(data)
    tag = r.u32()
    table: Json = {"lookupTableAccount": a[0], "lookupTableAuthority": a[1]} if len(a) >= 2 else {}
    if tag == 0:
        _need(a, 4)
        recent_slot, bump = r.u64(), r.u8()
        info: Json = {**table, "payerAccount": a[2], "systemProgram": a[3]}
        return _parsed("createLookupTable", {**info, "recentSlot": recent_slot, "bumpSeed": bump})
    if tag == 1:
        _need(a, 2)
        return _parsed("freezeLookupTable", table)
    if tag == 2:
        _need(a, 2)
        count = r.u64()
        extended: Json = {**table, "newAddresses": [r.pubkey() for _ in range(count)]}
        if len(a) >= 4:
            extended.update({"payerAccount": a[2], "systemProgram": a[3]})
        return _parsed("extendLookupTable", extended)
    if tag == 3:
        _need(a, 2)
        return _parsed("deactivateLookupTable", table)
    if tag == 4:
        _need(a, 3)
        return _parsed("closeLookupTable", {**table, "recipient": a[2]})
    return None
