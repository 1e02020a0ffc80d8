"""Guild's asyncio API.

::

    import guild.aio

    async def main() -> None:
        async with await guild.aio.connect() as g:      # NATS_URL, NATS_CREDS, GUILD_HOME
            lead = await g.spawner.spawn(role=AgentRole.ORCHESTRATOR, token_budget=50_000)
            me = g.agent(lead.id)                          # its own connection and credentials
            await me.start_heartbeats()
            sent = await me.bus.ask_question(subject="Which database?", requires_decision=True)

The synchronous API (``guild.get_bus()``, ...) wraps this one.
"""

from ._agent import AsyncAgent, AsyncWork
from ._bus import AsyncBus, Subscription
from ._client import AsyncGuild, connect
from ._missions import AsyncMissionManager
from ._spawner import AsyncSpawner

__all__ = [
    "AsyncAgent",
    "AsyncBus",
    "AsyncGuild",
    "AsyncMissionManager",
    "AsyncSpawner",
    "AsyncWork",
    "Subscription",
    "connect",
]
