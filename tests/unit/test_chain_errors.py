"""Custom errors are decoded by the program that raised them (execution.chain.transaction_error):
6002 is DAMM v2's ExceededSlippage but Raydium CPMM's EmptySupply; 1 is the token programs'
InsufficientFunds but also the System program's ResultWithNegativeLamports."""

from __future__ import annotations

import json

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from execution.chain import instruction_program_ids, transaction_error

CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
CPMM_DEVNET = "DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"
DAMM = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"
BUDGET = "ComputeBudget111111111111111111111111111111"
MEMO = "MemoSq4gqABAXKb96qnH8TGKP9v3FtKjoWPTeRFNbR3"
ATA = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"


def custom(index: int, code: int) -> str:
    return json.dumps({"InstructionError": [index, {"Custom": code}]})


def swap_tx(dex: str) -> list[str]:
    """The builder's shape: budget x2, memo, two ATAs, SOL wrap (transfer, sync), the swap."""
    return [BUDGET, BUDGET, MEMO, ATA, ATA, SYSTEM, TOKEN, dex, TOKEN]


@pytest.mark.parametrize(
    ("program", "code", "order_code", "name"),
    [
        (CPMM, 6005, "slippage_exceeded", "Raydium CPMM ExceededSlippage (6005)"),
        (CPMM_DEVNET, 6005, "slippage_exceeded", "Raydium CPMM ExceededSlippage (6005)"),
        (DAMM, 6002, "slippage_exceeded", "Meteora DAMM v2 ExceededSlippage (6002)"),
        (CPMM, 6002, "transaction_failed", "Raydium CPMM EmptySupply (6002)"),
        (DAMM, 6005, "transaction_failed", "Meteora DAMM v2 InvalidAdmin (6005)"),
        (CPMM, 6000, "pool_not_tradable", "Raydium CPMM NotApproved (6000)"),
        (DAMM, 6003, "pool_not_tradable", "Meteora DAMM v2 PoolDisabled (6003)"),
        (DAMM, 6049, "transaction_failed", "FailToValidateSingleSwapInstruction (6049)"),
        (DAMM, 3006, "invalid_account", "Meteora DAMM v2 AccountNotMutable (3006)"),
        (DAMM, 2021, "invalid_account", "ConstraintTokenTokenProgram (2021)"),
        (CPMM, 2000, "invalid_account", "Raydium CPMM ConstraintMut (2000)"),
        (CPMM, 3008, "invalid_account", "InvalidProgramId (3008)"),
        (CPMM, 2505, "transaction_failed", "RequireGtViolated (2505)"),
    ],
)
def test_a_swap_programs_custom_error_is_read_by_that_program(
    program: str, code: int, order_code: str, name: str
) -> None:
    error = transaction_error(custom(7, code), swap_tx(program))
    assert error.code == order_code
    assert name in error.message
    assert not error.transient


def test_slippage_messages_keep_saying_slippage() -> None:
    assert "slippage" in transaction_error(custom(7, 6005), swap_tx(CPMM)).message


def test_a_token_error_inside_a_swap_is_the_token_programs() -> None:
    # Without logs: a small code from an Anchor swap can only be its token CPI's.
    error = transaction_error(custom(7, 1), swap_tx(DAMM))
    assert error.code == "insufficient_funds"
    assert "SPL Token InsufficientFunds (1)" in error.message
    # With logs (a preflight failure): the innermost failing program says which.
    logs = [
        f"Program {DAMM} invoke [1]",
        f"Program {TOKEN_2022} invoke [2]",
        f"Program {TOKEN_2022} failed: custom program error: 0x11",
        f"Program {DAMM} failed: custom program error: 0x11",
    ]
    text = json.dumps({"err": {"InstructionError": [7, {"Custom": 17}]}, "logs": logs})
    frozen = transaction_error(text)
    assert frozen.code == "invalid_account"
    assert "Token-2022 AccountFrozen (17)" in frozen.message


def test_system_and_token_insufficient_funds() -> None:
    assert transaction_error(custom(5, 1), swap_tx(CPMM)).code == "insufficient_funds"
    assert transaction_error(custom(6, 1), swap_tx(CPMM)).code == "insufficient_funds"
    error = transaction_error(custom(5, 1), swap_tx(CPMM))
    assert "System ResultWithNegativeLamports (1)" in error.message


def test_a_preflight_failure_names_its_program_from_the_logs() -> None:
    payload = {
        "code": -32002,
        "message": "Transaction simulation failed: Error processing Instruction 7",
        "data": {
            "err": {"InstructionError": [7, {"Custom": 6002}]},
            "logs": [
                f"Program {DAMM} invoke [1]",
                "Program log: AnchorError occurred. Error Code: ExceededSlippage.",
                f"Program {DAMM} failed: custom program error: 0x1772",
            ],
        },
    }
    error = transaction_error(json.dumps(payload))
    assert error.code == "slippage_exceeded"
    assert "DAMM v2 ExceededSlippage" in error.message


def test_an_unattributable_custom_error_is_not_guessed() -> None:
    error = transaction_error(custom(7, 6002))
    assert error.code == "transaction_failed"
    assert "custom error 6002" in error.message
    unknown = transaction_error(custom(0, 6005), [str(Keypair().pubkey())])
    assert unknown.code == "transaction_failed"


@pytest.mark.parametrize(
    ("builtin", "order_code"),
    [
        ("IncorrectProgramId", "invalid_account"),
        ("ExternalAccountDataModified", "invalid_account"),
        ("InsufficientFunds", "insufficient_funds"),
        ("ProgramFailedToComplete", "transaction_failed"),
    ],
)
def test_runtime_instruction_errors(builtin: str, order_code: str) -> None:
    error = transaction_error(json.dumps({"InstructionError": [7, builtin]}), swap_tx(CPMM))
    assert error.code == order_code
    assert builtin in error.message


def test_transaction_level_errors() -> None:
    assert transaction_error('"InsufficientFundsForFee"').code == "insufficient_funds"
    # A validator's answer for a fee payer that never held a lamport (an unfunded wallet).
    assert transaction_error('"AccountNotFound"').code == "insufficient_funds"


def test_instruction_program_ids_of_a_signed_transaction() -> None:
    payer = Keypair()
    program = Pubkey.from_string(DAMM)
    ixs = [
        Instruction(Pubkey.from_string(MEMO), b"x", [AccountMeta(payer.pubkey(), True, True)]),
        Instruction(program, b"y", []),
    ]
    from solders.hash import Hash

    message = MessageV0.try_compile(payer.pubkey(), ixs, [], Hash.default())
    raw = bytes(VersionedTransaction(message, [payer]))
    assert instruction_program_ids(raw) == [MEMO, DAMM]
