"""A client outlives a nats-server restart: the same client object works again once the
server and the services are back, and what it said before is still there (JetStream)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import guild.aio
from guild import AgentRole, GuildError, Unavailable

from .stack import Parts, free_port


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    stack = Parts(home=tmp_path, port=free_port()).start()
    yield stack
    stack.stop()


async def eventually_ok(call: object, attempts: int = 600) -> object:
    """Retries ``call`` until it succeeds; the errors on the way must be typed."""
    last: GuildError | None = None
    for _ in range(attempts):
        try:
            return await call()  # type: ignore[operator]
        except GuildError as e:
            last = e
            await asyncio.sleep(0.1)
    raise AssertionError(f"never recovered; last error: {last!r}")


async def test_reconnects_after_a_nats_server_restart(parts: Parts) -> None:
    async with await guild.aio.connect(url=parts.url, home=str(parts.home)) as g:
        lead = await g.spawner.spawn(AgentRole.ORCHESTRATOR, token_budget=1_000)
        me = g.agent(lead.id)
        await me.heartbeat()
        sent = await g.bus.request(from_agent=lead.id, to_agent=lead.id, subject="before the restart")

        parts.restart_server()
        # While it is down, calls fail with typed errors (never a bare nats exception).
        try:
            await g.spawner.get_stats()
        except Unavailable:
            pass

        stats = await eventually_ok(g.spawner.get_stats)
        assert stats.total_agents >= 1  # type: ignore[attr-defined]
        # The agent's own connection came back too, and its inbox kept the message.
        await eventually_ok(me.heartbeat)
        got = await eventually_ok(lambda: g.bus.consume(lead.id, 5))
        assert got is not None and got.id == sent  # type: ignore[attr-defined]
