"""What vulture (make lint) cannot see used: read by name from outside Python's view. Each line
"uses" a name; `_` stands for any object. Patterns (handlers' decorators, pytest's hooks and
fixtures, http.server's do_*) are in pyproject.toml's [tool.vulture]."""

# ruff: noqa: B018, F821
# The API's reply models: pydantic fields, read by FastAPI to document and serialize replies.
(_.orderId, _.wsUrl, _.amountOut, _.quotedAmountOut, _.slippageBps, _.feeLamports)
(_.priorityFeeLamports, _.computeUnits, _.slotsToLand, _.createdAt, _.updatedAt)
(_.minAmountOut, _.txHash, _.explorerUrl, _.nextCursor, _.mintIn, _.mintOut, _.maxIn)
(_.maxInPer24h, _.usedIn24h, _.remainingIn24h, _.inOpenOrders, _.maxSlippage)
(_.limitPriceGuard, _.baseIn, _.feeAmount, _.priceImpactPct, _.otherAmountThreshold, _.gainBps)
(_.exactOut, _.quotedAmountIn, _.maxAmountIn)
_.lookupTable  # Route: the wallet lookup table a route of more than two legs uses
# Decoded account fields and report fields, kept whole (dataclasses, the tick's report).
(_.withheld_amount, _.sqrt_price_reference, _.volatility_reference, _.whitelisted_vault)
(_.pool_type, _.raced, _.keep_log, _.payload_format, _.simple_responses, _.explorer_cluster)
# Set for the library that reads them: Lambda's context (Powertools), uvicorn's server, FastAPI,
# psycopg, the poller's message record.
(_.function_version, _.memory_limit_in_mb, _.invoked_function_arn, _.aws_request_id)
(_.log_group_name, _.log_stream_name, _.should_exit, _.redirect_slashes, _.autocommit)
(_.receives, _.put_annotation)
# http.server reads these by name (the worker Runtime API's server and handler).
(_.daemon_threads, _.protocol_version)
# Parameters a protocol or signature requires (lru_cache key, __exit__, the Tracer's surface).
(_.mtime_ns, _.trace, _.lambda_handler)
# bench.watching.priced_per_tick runs in a fresh interpreter, named in a `python -c` string.
_.priced_per_tick
# A fixture requested by name (tests/integration/test_secrets.py).
_.debug_logging
# The local chain's fault knobs (set by name from POST /admin/faults) and the ledger's listener
# methods (called by name: getattr(listener, event)).
(_.timeout_next, _.rate_limit_rate, _.timeout_rate, _.drop_rate, _.expire_rate)
(_.transaction_received, _.transaction_landed, _.accounts_written, _.slot_advanced)
