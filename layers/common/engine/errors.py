"""Every error the engine raises on purpose, in one tree. Each has a stable `code` users can match
on; `status` is the HTTP status the API answers with when it reaches a client.

    EngineError                          base: code, status, message, field
    +-- RequestError (4xx)               the caller's request cannot be served; nothing changed
    |   +-- InvalidRequest        400    bad input (orders, api, stream); `field` names it
    |   |   +-- UnknownPool       400    `poolId` is known not to be a pool of the pair (intake)
    |   +-- Unauthorized          401    no API key reached the handler (api, stream), or
    |                                    none came to the WS authorizer (raised as "Unauthorized")
    |   +-- ApiKeyRevoked         403    the key was revoked (store, at order creation)
    |   +-- KeyLimitExceeded      422    over one of the key's risk limits (limits): codes
    |   |   |                            order_limit_exceeded, daily_limit_exceeded,
    |   |   |                            slippage_limit_exceeded; `limit`, `remaining`
    |   |   +-- MintNotAllowed    403    a mint the key has no limit for, beyond what its own
    |   |   |                            fills bought (limits)
    |   |   +-- LimitPriceTooLow  422    a limit order's limitPrice further below the current
    |   |                                quote than the key's limitPriceGuard (limits); `quote`
    |   +-- OrderNotFound         404    unknown order, or another key's (api, stream)
    |   +-- IdempotencyConflict   409    an Idempotency-Key reused for another body (store)
    |   +-- NotCancellable        409    cancel of an order that triggered, ended, or is a
    |   |                                market order (store)
    |   +-- TooManyOrdersInFlight 429    the key's in-flight limit (store)
    |   +-- TooManyOpenOrders     429    the key's open (watching) order limit (store)
    |   +-- UnsupportedMediaType  415    a body not read as UTF-8 JSON (payloads)
    +-- ServiceUnavailable (503)         a dependency is down; retry later
    |   +-- QueueUnavailable             the orders queue refused the order (queue, intake)
    |   +-- RpcUnavailable               the Solana RPC did not answer a sniper order's slot,
    |                                    a limit order's quote (intake) or a quote (execution,
    |                                    the quote function)
    +-- ConfigError           500        a setting is missing or malformed (config)
    +-- IllegalTransition     500        a status change the state machine forbids: a bug (orders)
    +-- InternalError         500        something that cannot happen did (store)
    +-- VenueError            (execution.venues) an account is not what a venue can read
    +-- PoolNotTradable       (execution.venues) a pool its program would refuse now (skip code)
    +-- ChainError                       executing an order failed; `code` is stored on the order
        +-- TransientChainError          worth another attempt: RPC 429/timeouts/outages, an
        |   +-- AlreadyProcessed         expired blockhash, no confirmation in time (execution)
        +-- PermanentChainError          retrying cannot help: slippage, funds, no route, bad
            |                            mint or pool (execution)
            +-- RpcMethodRefused         the RPC provider does not serve a method, e.g.
                                         getProgramAccounts (execution.chain): pool discovery
                                         cannot run there, VENUE_POOLS must list the pools

Anything else that escapes is a bug: the handlers log it with its trace.
"""

from __future__ import annotations


class EngineError(Exception):
    code = "engine_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


# -- the caller's request ---------------------------------------------------------------------


class RequestError(EngineError):
    """The request cannot be served as sent; nothing was stored or changed."""

    status = 400


class InvalidRequest(RequestError):
    """The request is malformed or breaks a rule; nothing was stored."""

    code = "invalid_request"
    status = 400


class UnknownPool(InvalidRequest):
    """The order's `poolId` is, as the pool cache already knows, not a pool of its pair (a pool
    of another pair, or an account that is no pool of a supported venue)."""

    code = "unknown_pool"


class Unauthorized(RequestError):
    """No API key reached the handler (the gateway's authorizer did not run or sent no key)."""

    code = "unauthorized"
    status = 401


class ApiKeyRevoked(RequestError):
    """The key was revoked after the authorizer's cached answer; it may not create orders."""

    code = "api_key_revoked"
    status = 403


class KeyLimitExceeded(RequestError):
    """The order is over one of its key's risk limits (engine.limits); nothing was stored.
    `limit` names the limit and `remaining` what is left of it (token units), in the reply."""

    code = "key_limit_exceeded"
    status = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        limit: str | None = None,
        remaining: str | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.limit = limit
        self.remaining = remaining

    def to_dict(self) -> dict[str, str]:
        body = super().to_dict()
        body |= {k: v for k, v in (("limit", self.limit), ("remaining", self.remaining)) if v}
        return body


class MintNotAllowed(KeyLimitExceeded):
    """The key has no limit for the mint it sells, and its own fills did not buy that much."""

    code = "mint_not_allowed"
    status = 403


class LimitPriceTooLow(KeyLimitExceeded):
    """A limit order's limitPrice is more than the key's `limitPriceGuard` percent below the
    pair's current quote: a fat finger (1e-30 would sell at any price). `quote` is that quote
    (tokenOut per tokenIn), in the reply."""

    code = "limit_price_guard"
    status = 422

    def __init__(self, message: str, *, quote: str, guard: str) -> None:
        super().__init__(message, field="limitPrice", limit="limitPriceGuard", remaining=None)
        self.quote = quote
        self.guard = guard

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"quote": self.quote, "limitPriceGuard": self.guard}


class UnsupportedMediaType(RequestError):
    """The body's Content-Type (or charset) is not one this API reads as JSON."""

    code = "unsupported_media_type"
    status = 415


class OrderNotFound(RequestError):
    code = "order_not_found"
    status = 404


class IdempotencyConflict(RequestError):
    code = "idempotency_conflict"
    status = 409


class NotCancellable(RequestError):
    """Only an order that has not triggered (`pending` or `watching`) can be cancelled; a market
    order never can (it is routed at once)."""

    code = "not_cancellable"
    status = 409


class TooManyOrdersInFlight(RequestError):
    """The key already has `max_in_flight` orders in flight (orders.IN_FLIGHT)."""

    code = "too_many_orders_in_flight"
    status = 429


class TooManyOpenOrders(RequestError):
    """The key already has `max_open_orders` open (watching) limit and sniper orders."""

    code = "too_many_open_orders"
    status = 429


# -- the service ------------------------------------------------------------------------------


class ServiceUnavailable(EngineError):
    code = "service_unavailable"
    status = 503


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"


class RpcUnavailable(ServiceUnavailable):
    """The Solana RPC did not answer what the request needs now; nothing was stored."""

    code = "rpc_unavailable"


class ConfigError(EngineError):
    """A setting is missing or malformed: the function cannot start its work."""

    code = "config_error"


class IllegalTransition(EngineError):
    """A status change the state machine does not allow (a programming error, not user input)."""

    code = "illegal_transition"


class InternalError(EngineError):
    """Something that cannot happen did (e.g. Postgres did not return a row it must return)."""

    code = "internal_error"


# -- executing an order -----------------------------------------------------------------------


class ChainError(EngineError):
    """A failure talking to the chain or landing a transaction. `code` is stored on the order."""

    code = "chain_error"
    transient = True

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message, code=code)


class TransientChainError(ChainError):
    """Timeouts, rate limits, a dropped or expired transaction: worth another attempt."""


class AlreadyProcessed(TransientChainError):
    """The same signature already landed; not a failure, the caller looks up its status."""

    code = "already_processed"


class PermanentChainError(ChainError):
    """The transaction itself cannot succeed (slippage, funds, bad pool): fail without retry."""

    transient = False


class RpcMethodRefused(PermanentChainError):
    """The RPC endpoint answered that it does not serve this method (JSON-RPC -32601 or -32010,
    HTTP 401/403/405/410): asking again cannot help. Providers restrict getProgramAccounts so."""

    code = "rpc_method_refused"
