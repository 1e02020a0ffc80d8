"""The asyncio client: one connection per identity, and the call every operation makes."""

from __future__ import annotations

import asyncio
import enum
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._config import Settings
from ._connection import Connection
from ._identity import OBSERVER, OPERATOR, CredentialStore, check_id, principal_of_creds
from .errors import GuildError, InvalidArgument, NoCredentials

if TYPE_CHECKING:
    from ._agent import AsyncAgent
    from ._bus import AsyncBus
    from ._missions import AsyncMissionManager
    from ._spawner import AsyncSpawner

M = TypeVar("M", bound=BaseModel)

#: Each service's subject token and its NATS micro name.
SERVICES = {"spawner": "guild-spawner", "bus": "guild-bus", "mission": "guild-mission"}


def plain(value: Any) -> Any:
    """``value`` as JSON data: enums by value, models by their wire form."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def checked(model: type[BaseModel], body: dict[str, Any], rename: dict[str, str] | None = None) -> dict[str, Any]:
    """``body`` without its ``None`` members, checked against the wire type ``model``:
    :class:`InvalidArgument` names the first argument at fault (``rename`` maps wire
    names to the Python arguments they come from)."""
    data = {k: plain(v) for k, v in body.items() if v is not None}
    try:
        model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if loc and rename and loc[0] in rename:
            loc[0] = rename[loc[0]]
        field = ".".join(loc) or None
        raise InvalidArgument(
            f"{field or 'the request'}: {first['msg']} (got {first.get('input')!r})",
            rule="invalid_argument",
            field=field,
        ) from None
    return data


def parse(model: type[M], reply: Any, operation: str) -> M:
    """A reply as its wire type; a reply that does not fit is a typed error, not a crash."""
    try:
        return model.model_validate(reply)
    except ValidationError as e:
        raise GuildError(
            f"the reply does not match {model.__name__}: {e.errors()[0]['msg']} at "
            f"{'.'.join(str(p) for p in e.errors()[0]['loc'])}; is the service newer than this client?",
            rule="unexpected_reply",
            operation=operation,
        ) from None


class AsyncGuild:
    """Guild over one NATS server, as one or several identities (asyncio).

    The default identity comes from the settings (``NATS_CREDS``, ``GUILD_AS`` or the
    operator's credentials of ``GUILD_HOME``). A call made on behalf of another agent
    (``from_agent=``, ``agent_id=``, ``by=``) goes over that agent's own connection,
    opened with its credentials: those a spawn made through this client returned, or
    ``<GUILD_HOME>/creds/<id>.creds`` (what ``guild spawn`` saves). Without them the call
    raises :class:`~guild.errors.NoCredentials` before anything is sent.

    Use :func:`connect` to make one, and ``async with`` (or :meth:`close`) to end it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.credentials = CredentialStore(settings.creds_dir, save=settings.save_credentials)
        self._default: Connection | None = None
        self._by_principal: dict[str, Connection] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        # Agent handles by id, so an agent that ends here stops heartbeating.
        self._handles: weakref.WeakValueDictionary[int, AsyncAgent] = weakref.WeakValueDictionary()
        from ._bus import AsyncBus
        from ._missions import AsyncMissionManager
        from ._spawner import AsyncSpawner

        #: The agent spawner (``guild-spawner``).
        self.spawner: AsyncSpawner = AsyncSpawner(self)
        #: The consultation bus (``guild-bus``).
        self.bus: AsyncBus = AsyncBus(self)
        #: The mission manager (``guild-mission``).
        self.missions: AsyncMissionManager = AsyncMissionManager(self)

    # -- identity ---------------------------------------------------------------------

    def _default_creds(self) -> str | None:
        s = self.settings
        if s.creds is not None:
            return _read(s.creds, "NATS_CREDS")
        if s.nkey or s.user:
            return None
        if s.as_agent is not None:
            check_id(s.as_agent, "GUILD_AS")
            found = self.credentials.find(s.as_agent)
            if found is None:
                raise NoCredentials(
                    f"GUILD_AS={s.as_agent}, but there are no credentials for it in {s.creds_dir}: "
                    f"`guild spawn` saves them there; its parent or the operator can issue new ones "
                    f"(`guild agent credentials {s.as_agent}`)",
                    field="GUILD_AS",
                )
            return found
        return self.credentials.find(OPERATOR)

    async def start(self) -> AsyncGuild:
        """Opens the default identity's connection (``connect`` does this)."""
        if self._default is None:
            creds = self._default_creds()
            principal = principal_of_creds(creds) if creds else None
            self._default = await Connection.open(
                self.settings, creds=creds, principal=principal, name=self.settings.name
            )
            if principal is not None:
                self._by_principal[principal] = self._default
        return self

    @property
    def principal(self) -> str | None:
        """Who the default identity is (``operator``, an agent id); ``None`` when its
        credentials are not Guild's (an insecure Guild, a user and password)."""
        return self._default.principal if self._default else None

    @property
    def default_connection(self) -> Connection:
        """The default identity's connection."""
        if self._default is None:
            raise GuildError("not connected: use `await guild.aio.connect()`", rule="not_connected")
        return self._default

    async def connection_for(self, principal: str | None, field: str = "agent_id") -> tuple[Connection, str]:
        """The connection that acts as ``principal`` (the default identity for ``None``),
        and the principal to name in the subject."""
        default = self.default_connection
        if principal is None:
            return default, default.principal or OPERATOR
        if principal not in (OPERATOR, OBSERVER):
            check_id(principal, field)
        known = self._by_principal.get(principal)
        if known is not None and not known.nc.is_closed:
            return known, principal
        creds = self.credentials.find(principal)
        if creds is None:
            if default.principal is None:
                # Not Guild credentials (an insecure Guild, user and password): the
                # broker, not this client, decides what the connection may do.
                return default, principal
            raise NoCredentials(
                f"no credentials for {principal} (looked in {self.credentials.where(principal)}); "
                f"this client is {default.principal}. Spawn {principal} through this client, "
                f"save its .creds in the credentials folder (`guild spawn` does), or connect with "
                f"NATS_CREDS={principal}.creds. Nothing was sent.",
                rule="no_credentials",
                field=field,
            )
        lock = self._opening.setdefault(principal, asyncio.Lock())
        async with lock:
            known = self._by_principal.get(principal)
            if known is not None and not known.nc.is_closed:
                return known, principal
            conn = await Connection.open(
                self.settings,
                creds=creds,
                principal=principal_of_creds(creds) or principal,
                name=f"{self.settings.name} as {principal}",
            )
            self._by_principal[principal] = conn
            return conn, principal

    def remember_credentials(self, agent_id: str, creds: str) -> None:
        """Keeps credentials received for ``agent_id``; an open connection with its old
        ones is closed (they were revoked)."""
        self.credentials.remember(agent_id, creds)
        old = self._by_principal.pop(agent_id, None)
        if old is not None and old is not self._default:
            asyncio.ensure_future(old.close())

    async def forget(self, agent_id: str) -> None:
        """Closes ``agent_id``'s connection (it ended: its credentials are revoked)."""
        old = self._by_principal.pop(agent_id, None)
        self.credentials.forget(agent_id)
        for handle in list(self._handles.values()):
            if handle.id == agent_id:
                await handle.stop_heartbeats()
        if old is not None and old is not self._default:
            await old.close()

    # -- calls ------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        operation: str,
        body: dict[str, Any],
        *,
        by: str | None = None,
        field: str = "by",
        timeout: float | None = None,
    ) -> Any:
        """One operation as ``by`` (the default identity for ``None``): the decoded reply."""
        conn, principal = await self.connection_for(by, field)
        return await conn.call(service, operation, principal, body, timeout=timeout)

    def agent(self, agent_id: str) -> AsyncAgent:
        """The handle of agent ``agent_id``: heartbeats, its consume loop, units of work.
        Its calls go over its own connection (its credentials must be known)."""
        from ._agent import AsyncAgent

        handle = AsyncAgent(self, check_id(agent_id, "agent_id"))
        self._handles[id(handle)] = handle
        return handle

    async def close(self) -> None:
        """Closes every connection."""
        conns = {id(c): c for c in [*self._by_principal.values(), *( [self._default] if self._default else [])]}
        self._by_principal.clear()
        self._default = None
        await asyncio.gather(*(c.close() for c in conns.values()), return_exceptions=True)

    async def __aenter__(self) -> AsyncGuild:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _read(path: Path, variable: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidArgument(
            f"cannot read the credentials {path}: {e.strerror or e}", rule="unreadable_credentials", field=variable
        ) from e


async def connect(settings: Settings | None = None, **overrides: Any) -> AsyncGuild:
    """Connects as the default identity of ``settings`` (or of the environment, with
    ``overrides`` such as ``url=``, ``creds=``, ``home=``)."""
    if settings is None:
        settings = Settings.from_env(os.environ, **overrides)
    return await AsyncGuild(settings).start()
