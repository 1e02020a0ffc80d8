"""Typed errors: every failure a Guild call can end in, with what to do next.

A refusal by Guild's rules arrives as the contract's error body
(``{"error": {"code", "rule", "field", "message"}}``, ``proto-schemas/README.md``) and
becomes the subclass of :class:`GuildError` for its ``code``; branch on ``rule``, the
stable name of the rule broken, and read ``field`` for the input at fault::

    try:
        spawner.spawn(role=AgentRole.DEVELOPER, token_budget=10**9, parent_id="lead")
    except BudgetExceeded as e:
        print(e.rule, e.field, e.message)

The client raises the same types itself, before sending anything, for input it can check
(:class:`InvalidArgument`) and for a call on behalf of an agent whose credentials it does
not hold (:class:`NoCredentials`). A refusal by the broker (the credentials do not allow
the subject) is :class:`PermissionDenied`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "BudgetExceeded",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "GuildError",
    "Internal",
    "InvalidArgument",
    "NoCredentials",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "SyncInEventLoop",
    "TimedOut",
    "Unavailable",
    "error_from_reply",
]


class GuildError(Exception):
    """A Guild call failed.

    Attributes:
        code: the coarse category (``bad_request``, ``not_found``, ``conflict``,
            ``forbidden``, ``budget_exceeded``, ``unavailable``, ``rate_limited``,
            ``internal``; the client's own: ``timeout``, ``no_credentials``,
            ``connection``).
        rule: the rule broken, a stable snake_case name to branch on.
        field: the input at fault, when one is.
        message: a sentence for people: what failed and what to do.
        operation: the operation called (``spawn``, ``ask_question``, ...), when known.
        status: the NATS micro error code (400, 402, 403, 404, 409, 429, 500, 503),
            when the reply carried one.
    """

    code: str = "internal"

    def __init__(
        self,
        message: str,
        *,
        rule: str | None = None,
        field: str | None = None,
        code: str | None = None,
        operation: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message
        self.rule = rule or type(self).code
        self.field = field
        if code is not None:
            self.code = code
        self.operation = operation
        self.status = status
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        at = f" (field {self.field})" if self.field else ""
        return f"{where}{self.message} [{self.code}/{self.rule}]{at}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), self.message, self.rule, self.field, self.code, self.operation, self.status),
        )


def _rebuild(
    cls: type[GuildError],
    message: str,
    rule: str | None,
    field: str | None,
    code: str | None,
    operation: str | None,
    status: int | None,
) -> GuildError:
    return cls(message, rule=rule, field=field, code=code, operation=operation, status=status)


class BadRequest(GuildError):
    """The request is malformed or breaks a rule about its own content (400): fix the
    input named by ``field``."""

    code = "bad_request"


class InvalidArgument(BadRequest):
    """The client refused an argument before sending anything: ``field`` names it."""


class NotFound(GuildError):
    """Something the request names does not exist (404)."""

    code = "not_found"


class Conflict(GuildError):
    """The current state does not allow it (409): try again after it changes."""

    code = "conflict"


class Forbidden(GuildError):
    """The authority matrix does not allow it (403)."""

    code = "forbidden"


class PermissionDenied(Forbidden):
    """The broker refused the subject: these credentials may not publish (or subscribe)
    there. Usually a call sent as another agent than the connection's own; ``subject``
    is what was refused."""

    def __init__(self, message: str, *, subject: str, operation: str | None = None) -> None:
        self.subject = subject
        super().__init__(message, rule="permissions_violation", operation=operation)


class NoCredentials(GuildError):
    """A call on behalf of an agent whose credentials this client does not hold; nothing
    was sent. ``field`` names the argument that named the agent."""

    code = "no_credentials"


class BudgetExceeded(GuildError):
    """A token budget is short (402)."""

    code = "budget_exceeded"


class RateLimited(GuildError):
    """The caller sends faster than its quota allows (429): slow down and retry."""

    code = "rate_limited"


class Unavailable(GuildError):
    """A dependency (NATS, JetStream, a service) is not answering (503, or no
    responders): retry later; is Guild running (``guild dev``)?"""

    code = "unavailable"


class TimedOut(Unavailable):
    """No reply in time. For a write the outcome is unknown: check before retrying (ids
    you chose, such as ``message_id``, make a retry safe)."""

    code = "timeout"


class Internal(GuildError):
    """A bug in a service (500): report it with the message."""

    code = "internal"


class ConnectionFailed(GuildError):
    """Could not connect to NATS (bad URL, refused credentials, TLS)."""

    code = "connection"


class SyncInEventLoop(GuildError, RuntimeError):
    """The synchronous API was called from the thread that runs its own event loop (a
    handler calling back into it): use the asyncio API, ``guild.aio``, there."""

    code = "sync_in_event_loop"


_BY_CODE: dict[str, type[GuildError]] = {
    "bad_request": BadRequest,
    "not_found": NotFound,
    "conflict": Conflict,
    "forbidden": Forbidden,
    "budget_exceeded": BudgetExceeded,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
    "internal": Internal,
}

_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    402: "budget_exceeded",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def error_from_reply(
    operation: str, status: int | None, header_text: str | None, body: Any
) -> GuildError:
    """The typed error for an error reply: its ``ErrorReply`` body when it has one, else
    what the NATS micro headers say."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        cls = _BY_CODE.get(code, GuildError)
        return cls(
            str(error.get("message") or header_text or "refused"),
            rule=error.get("rule") if isinstance(error.get("rule"), str) else None,
            field=error.get("field") if isinstance(error.get("field"), str) else None,
            code=code,
            operation=operation,
            status=status,
        )
    code = _BY_STATUS.get(status or 500, "internal")
    return _BY_CODE[code](
        header_text or "the service refused the request without an error body",
        code=code,
        operation=operation,
        status=status,
    )
