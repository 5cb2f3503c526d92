"""Errors the engine raises on purpose; each maps to a stable `code` users can match on."""

from __future__ import annotations


class EngineError(Exception):
    code = "engine_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidRequest(EngineError):
    """The request is malformed or breaks a rule; nothing was stored."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, field=field)
        if code:
            self.code = code


class OrderNotFound(EngineError):
    code = "order_not_found"
    status = 404


class IdempotencyConflict(EngineError):
    code = "idempotency_conflict"
    status = 409


class IllegalTransition(EngineError):
    """A status change the state machine does not allow (a programming error, not user input)."""

    code = "illegal_transition"
    status = 409


class QueueUnavailable(EngineError):
    code = "queue_unavailable"
    status = 503


class Unauthorized(EngineError):
    """No API key reached the handler (the gateway's authorizer did not run or sent no key)."""

    code = "unauthorized"
    status = 401


class ApiKeyRevoked(EngineError):
    """The key was revoked after the authorizer's cached answer; it may not create orders."""

    code = "api_key_revoked"
    status = 403


class TooManyOrdersInFlight(EngineError):
    """The key already has `max_in_flight` orders that are not confirmed or failed yet."""

    code = "too_many_orders_in_flight"
    status = 429
