"""Fixtures: a real Guild (``guild dev``, authentication on) for the whole session, a
client per test, and the record of which operations the tests called.

No fakes: every test talks to nats-server and the three services."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import guild.aio
from guild import AgentRole
from guild._connection import Connection
from guild.aio import AsyncAgent, AsyncGuild

from .stack import GuildDev, free_port

#: (service, operation) of every call that got a successful reply, for the operations test.
CALLED: set[tuple[str, str]] = set()


@pytest.fixture(scope="session", autouse=True)
def record_calls() -> Iterator[None]:
    original = Connection.call

    async def call(self: Connection, service: str, operation: str, principal: str, body: dict[str, Any], **kw: Any) -> Any:
        reply = await original(self, service, operation, principal, body, **kw)
        CALLED.add((service, operation))
        return reply

    Connection.call = call  # type: ignore[method-assign]
    yield
    Connection.call = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuildDev]:
    stack = GuildDev(home=tmp_path_factory.mktemp("guild-home"), port=free_port()).start()
    yield stack
    stack.stop()


@pytest.fixture
async def g(dev: GuildDev) -> AsyncIterator[AsyncGuild]:
    """A client acting as the operator (the credentials ``guild dev`` wrote)."""
    client = await guild.aio.connect(url=dev.url, home=str(dev.home))
    assert client.principal == "operator"
    yield client
    await client.close()


def uid(name: str) -> str:
    """``name`` unique to this run."""
    return f"{name}-{secrets.token_hex(4)}"


class Team:
    """An orchestrator and a developer under it, both heartbeating, ended afterwards."""

    def __init__(self, g: AsyncGuild) -> None:
        self.g = g
        self.lead_id = uid("lead")
        self.dev_id = uid("dev")

    async def start(self, dev_budget: int = 5_000) -> Team:
        await self.g.spawner.spawn(AgentRole.ORCHESTRATOR, id=self.lead_id, token_budget=100_000)
        await self.g.spawner.spawn(
            AgentRole.DEVELOPER, ["python"], parent_id=self.lead_id, token_budget=dev_budget, id=self.dev_id
        )
        self.lead: AsyncAgent = self.g.agent(self.lead_id)
        self.dev: AsyncAgent = self.g.agent(self.dev_id)
        await self.lead.start_heartbeats()
        await self.dev.start_heartbeats()
        return self

    async def end(self) -> None:
        await self.dev.close()
        await self.lead.close()
        await self.g.spawner.terminate(self.lead_id, subtree=True, by="operator")


@pytest.fixture
async def team(g: AsyncGuild) -> AsyncIterator[Team]:
    t = await Team(g).start()
    yield t
    await t.end()


@pytest.fixture
def examples() -> Path:
    return Path(__file__).resolve().parents[1] / "examples"
