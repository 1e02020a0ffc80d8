"""One NATS connection for one identity, and the request every operation is."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.client import RawCredentials
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeout

from . import _trace
from ._config import Settings
from ._identity import inbox_prefix
from .errors import (
    ConnectionFailed,
    GuildError,
    PermissionDenied,
    TimedOut,
    Unavailable,
    error_from_reply,
)

_VIOLATION = re.compile(r"Permissions Violation for (Publish|Subscription) to \"?([^\"\s']+)", re.I)


def subject_of(service: str, operation: str, principal: str) -> str:
    """``guild.<service>.v1.<operation>.<principal>``, the one subject shape requests use."""
    return f"guild.{service}.v1.{operation}.{principal}"


class Connection:
    """A connection to Guild's NATS as one principal.

    Requests go out under the principal's reply-inbox prefix (the only one its
    credentials may read). The broker's refusals of a subject arrive asynchronously;
    they fail the requests waiting on that subject at once, as :class:`PermissionDenied`,
    instead of leaving them to time out.
    """

    def __init__(self, nc: NatsClient, principal: str | None, settings: Settings) -> None:
        self.nc = nc
        #: The principal its credentials name (``None``: not Guild credentials).
        self.principal = principal
        self.settings = settings
        # Requests in flight by subject, failed at once when the broker refuses it.
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        creds: str | None,
        principal: str | None,
        name: str,
    ) -> Connection:
        """Connects with ``creds`` (a ``.creds`` text) or the settings' other options."""
        holder: list[Connection] = []
        # What went wrong while connecting, for the message when the attempts run out.
        first_errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            if holder:
                holder[0]._refused(str(e))
            else:
                first_errors.append(e)

        options: dict[str, Any] = {
            "servers": settings.servers,
            "name": name,
            "error_cb": on_error,
            # A few tries to connect at first (then the error); once connected, reconnect
            # for as long as it takes (below): a restarted nats-server comes back.
            "max_reconnect_attempts": 2,
            "reconnect_time_wait": 0.5,
            "connect_timeout": 5,
            "ping_interval": 5,
            "max_outstanding_pings": 2,
        }
        if principal is not None:
            options["inbox_prefix"] = inbox_prefix(principal)
        if creds is not None:
            options["user_credentials"] = RawCredentials(creds)
        elif settings.nkey is not None:
            options["nkeys_seed"] = str(settings.nkey)
        elif settings.user and settings.password:
            options["user"], options["password"] = settings.user, settings.password
        elif settings.user:
            options["token"] = settings.user
        tls = settings.tls_context()
        if tls is not None:
            options["tls"] = tls
        try:
            nc = await nats.connect(**options)
        except (NoServersError, OSError, asyncio.TimeoutError, nats.errors.Error) as e:
            cause = first_errors[-1] if first_errors else e
            if "authorization" in str(cause).lower():
                raise ConnectionFailed(
                    f"cannot connect to NATS at {settings.url}: {cause}; the server refused these "
                    f"credentials (none given, revoked, or for another Guild?): set NATS_CREDS, or "
                    f"GUILD_HOME to the folder `guild dev` made",
                    rule="refused",
                ) from e
            raise ConnectionFailed(
                f"cannot connect to NATS at {settings.url}: {cause}; is Guild running (`guild dev`)?",
                rule="unreachable",
            ) from e
        nc.options["max_reconnect_attempts"] = -1
        conn = cls(nc, principal, settings)
        holder.append(conn)
        return conn

    def _refused(self, text: str) -> None:
        m = _VIOLATION.search(text)
        if not m:
            return
        for fut in self._waiting.pop(m.group(2), set()):
            if not fut.done():
                fut.set_result(None)

    async def close(self) -> None:
        """Drains and closes the connection."""
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (ConnectionClosedError, nats.errors.Error):
                await self.nc.close()

    async def call(
        self,
        service: str,
        operation: str,
        principal: str,
        body: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> Any:
        """Sends one request and returns its decoded reply; raises the typed error of an
        error reply, :class:`PermissionDenied` when the broker refuses the subject,
        :class:`TimedOut` without a reply and :class:`Unavailable` without a service."""
        subject = subject_of(service, operation, principal)
        payload = json.dumps(body, separators=(",", ":")).encode()
        wait = timeout if timeout is not None else self.settings.timeout
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(subject, set()).add(refused)
        try:
            with _trace.client_span(service, operation, subject) as headers:
                request = asyncio.ensure_future(
                    self.nc.request(subject, payload, timeout=wait, headers=headers or None)
                )
                either: list[asyncio.Future[Any]] = [request, refused]
                done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if request not in done:
                    request.cancel()
                    raise PermissionDenied(
                        f"the broker refused to let {self.principal or 'this connection'} publish "
                        f"to {subject}: its credentials allow only its own id in the subject; "
                        f"call as {principal} with {principal}'s credentials",
                        subject=subject,
                        operation=operation,
                    )
                msg: Msg = request.result()
        except NoRespondersError as e:
            raise Unavailable(
                f"no guild-{service} instance answers {subject}: is Guild running (`guild dev`)?",
                rule="no_responders",
                operation=operation,
            ) from e
        except NatsTimeout as e:
            raise TimedOut(
                f"no reply from guild-{service} within {wait:g} s; a write's outcome is unknown: "
                f"check before retrying",
                rule="timeout",
                operation=operation,
            ) from e
        except (ConnectionClosedError, nats.errors.ConnectionReconnectingError) as e:
            raise Unavailable(
                f"the connection to NATS is {'closed' if self.nc.is_closed else 'reconnecting'}; retry",
                rule="disconnected",
                operation=operation,
            ) from e
        finally:
            waiting = self._waiting.get(subject)
            if waiting is not None:
                waiting.discard(refused)
                if not waiting:
                    self._waiting.pop(subject, None)
        return decode_reply(operation, msg)


def decode_reply(operation: str, msg: Msg) -> Any:
    """A reply's body, or the typed error it carries."""
    headers = msg.headers or {}
    status_text = headers.get("Nats-Service-Error-Code")
    try:
        body = json.loads(msg.data) if msg.data else None
    except (ValueError, UnicodeDecodeError) as e:
        raise GuildError(
            f"the reply is not JSON ({e}): {msg.data[:200]!r}", rule="undecodable_reply", operation=operation
        ) from e
    if status_text is not None or (isinstance(body, dict) and "error" in body):
        try:
            status = int(status_text) if status_text is not None else None
        except ValueError:
            status = None
        raise error_from_reply(operation, status, headers.get("Nats-Service-Error"), body)
    return body
