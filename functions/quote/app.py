"""HTTP API: `GET /api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=0.01`, every pool's quote without
trading (`execution.quote`). A function of its own: quoting needs the Solana layer, which the
submit function does not carry. Same API key as every /api route (the HTTP API's authorizer).

Powertools' HTTP API resolver over payload v2. Errors are the API's own shape
`{"error": {"code", "message", "field"?}}`: 400 for a bad parameter, 422 when the pair cannot be
quoted (no_route, unknown_mint, ...), 503 when the Solana RPC does not answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from engine import api, db
from engine.config import Settings
from engine.errors import EngineError, PermanentChainError, TransientChainError
from engine.observability import metrics, tracer
from engine.orders import parse_quote_request
from execution.chain import Chain
from execution.fees import PriorityFees
from execution.quote import quote_pair

logger = Logger(service="quote")
tracing = tracer()
cfg = Settings.from_env()
pool = db.open_pool(cfg)
# One loop per container: the RPC client and its connections live across invocations. A Lambda
# container serves one request at a time; the lock keeps it so where a caller is concurrent.
loop = asyncio.new_event_loop()
chain = Chain(cfg.solana_rpc_url)
fees = PriorityFees(chain, cfg)  # the cluster's recent fees, cached a few seconds per pair
serial = threading.Lock()
app = APIGatewayHttpResolver()


def _status(exc: EngineError) -> int:
    if isinstance(exc, PermanentChainError):
        return 422  # the pair cannot be quoted as asked
    if isinstance(exc, TransientChainError):
        return 503
    return exc.status


@app.exception_handler(EngineError)  # type: ignore[untyped-decorator]  # Powertools' own typing
def engine_error(exc: EngineError) -> Response[str]:
    headers = {"Retry-After": "2"} if _status(exc) == 503 else None
    return Response(
        status_code=_status(exc),
        content_type="application/json",
        body=json.dumps({"error": exc.to_dict()}),
        headers=headers,
    )


@app.get("/api/quote")
def quote() -> dict[str, Any]:
    api.caller(app.current_event.raw_event)  # 401 without the authorizer's key
    request = parse_quote_request(app.current_event.query_string_parameters or {})
    with serial:
        return loop.run_until_complete(quote_pair(chain, pool, cfg, request, fees))


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
