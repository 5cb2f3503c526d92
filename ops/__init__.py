"""Operator commands for a deployed (or about to be deployed) stack: the account's concurrency
check before `sam deploy`, the signing wallet, devnet pools. They run on the operator's machine
with the operator's credentials (the aws CLI's), never inside a function."""
