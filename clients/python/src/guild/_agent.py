"""An agent's handle: heartbeats, its consume loop, units of work under its budget."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _trace
from ._bus import AsyncBus, Handler, _types
from ._missions import AsyncMissionManager
from ._spawner import AsyncSpawner, new_id
from .errors import GuildError, InvalidArgument
from .models import BudgetOf, HeartbeatAck, Message, MessageType, Reserved

if TYPE_CHECKING:
    from ._client import AsyncGuild

log = logging.getLogger("guild")


class AsyncWork:
    """One unit of work under an agent's budget (``async with agent.work(estimate)``).

    Entering reserves ``estimate`` tokens, so an agent over budget is refused
    (:class:`~guild.errors.BudgetExceeded`) before the work starts. Report what the work
    used with :meth:`used`; leaving normally commits it (the rest of the reservation
    goes back), leaving with an exception, or without a report, releases it all.
    """

    def __init__(self, agent: AsyncAgent, estimate: int, mission_id: str | None) -> None:
        self._agent = agent
        self.estimate = estimate
        self.mission_id = mission_id
        self.reservation_id = new_id("r")
        #: The reservation, once entered.
        self.reserved: Reserved | None = None
        #: The agent's budget after the commit or release, once left.
        self.settled: BudgetOf | None = None
        self._used: tuple[int | None, int | None, int | None] | None = None

    def used(self, total: int | None = None, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """What the work used: ``total``, or ``input_tokens`` and ``output_tokens``."""
        if total is None and input_tokens is None and output_tokens is None:
            raise InvalidArgument("give total, or input_tokens and output_tokens", rule="usage_missing", field="total")
        self._used = (total, input_tokens, output_tokens)

    async def __aenter__(self) -> AsyncWork:
        self.reserved = await self._agent.spawner.reserve_tokens(
            self._agent.id, self.estimate, self.reservation_id, self.mission_id
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        spawner = self._agent.spawner
        if error is None and self._used is not None:
            total, i, o = self._used
            self.settled = await spawner.commit_tokens(
                self._agent.id, self.reservation_id, total, input_tokens=i, output_tokens=o
            )
            return
        try:
            self.settled = await spawner.release_tokens(self._agent.id, self.reservation_id)
        except GuildError as e:
            if error is None:
                raise
            # The work's own error is the one to see; the release's is logged with it.
            log.warning("could not release reservation %s: %s", self.reservation_id, e)


class AsyncAgent:
    """Agent ``id`` acting as itself: its views of the three services act as the agent
    (``agent.bus.ask_question(subject=...)`` asks from it), plus heartbeats in the
    background, a consume loop with handlers by message type, and units of work."""

    def __init__(self, guild: AsyncGuild, agent_id: str) -> None:
        self.guild = guild
        self.id = agent_id
        #: The spawner, as this agent.
        self.spawner = AsyncSpawner(guild, agent_id)
        #: The bus, as this agent.
        self.bus = AsyncBus(guild, agent_id)
        #: The mission manager, as this agent.
        self.missions = AsyncMissionManager(guild, agent_id)
        self._handlers: dict[str, Handler] = {}
        self._beats: asyncio.Task[None] | None = None
        #: The last heartbeat's answer.
        self.last_heartbeat: HeartbeatAck | None = None

    async def heartbeat(self, context_window: dict[str, Any] | None = None) -> HeartbeatAck:
        """One heartbeat now (a PENDING agent becomes ACTIVE)."""
        self.last_heartbeat = await self.spawner.heartbeat(self.id, context_window)
        return self.last_heartbeat

    async def start_heartbeats(self, interval: float | None = None) -> HeartbeatAck:
        """Beats once now, then every ``interval`` seconds in the background (by default
        a third of the window the spawner asks for). A failed beat is logged and the
        next one tried; the first one's error is raised."""
        first = await self.heartbeat()
        every = interval if interval is not None else max(first.heartbeat_window_ms / 3000.0, 0.2)
        if every <= 0:
            raise InvalidArgument("the heartbeat interval must be positive", rule="invalid_interval", field="interval")

        async def beat() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.heartbeat()
                except GuildError as e:
                    log.warning("agent %s: heartbeat failed: %s", self.id, e)

        await self.stop_heartbeats()
        self._beats = asyncio.ensure_future(beat())
        return first

    async def stop_heartbeats(self) -> None:
        """Stops the background heartbeats."""
        if self._beats is not None:
            self._beats.cancel()
            try:
                await self._beats
            except asyncio.CancelledError:
                pass
            self._beats = None

    def on(self, message_type: MessageType | str, handler: Handler) -> None:
        """Handles messages of ``message_type`` with ``handler`` in :meth:`run`."""
        (t,) = _types([message_type]) or []
        self._handlers[t] = handler

    async def run(self, *, stop: asyncio.Event | None = None, poll: float = 5.0, limit: int | None = None) -> int:
        """The consume loop: takes messages of the types with handlers, highest priority
        first, and hands each to its handler; acknowledged when the handler returns. A
        handler that raises gives its message back (``nak``) and ends the loop with its
        error. Ends when ``stop`` is set or after ``limit`` messages; returns how many
        were handled."""
        if not self._handlers:
            raise InvalidArgument("no handlers: register some with agent.on(type, handler)", rule="no_handlers", field="handlers")
        handled = 0
        types = list(self._handlers)
        while not (stop is not None and stop.is_set()) and (limit is None or handled < limit):
            d = await self.bus.receive(self.id, poll, types)
            if d is None:
                continue
            handler = self._handlers[d.message.type.value]
            try:
                with _trace.handling_span(f"guild.handle {d.message.type.value}", d.message.traceparent):
                    result = handler(d.message)
                    if inspect.isawaitable(result):
                        await result
            except BaseException:
                try:
                    await self.bus.nak(d.delivery_id)
                except GuildError as e:
                    log.warning("agent %s: could not give back delivery %s: %s", self.id, d.delivery_id, e)
                raise
            await self.bus.ack(d.delivery_id)
            handled += 1
        return handled

    async def next(self, types: Sequence[MessageType | str] | None = None, timeout: float = 5.0) -> Message | None:
        """The next message (of ``types``), acknowledged; ``None`` after ``timeout``."""
        return await self.bus.consume(self.id, timeout, types)

    def work(self, estimate: int, mission_id: str | None = None) -> AsyncWork:
        """A unit of work reserving ``estimate`` tokens (charged to ``mission_id`` too)."""
        return AsyncWork(self, estimate, mission_id)

    async def close(self) -> None:
        """Stops the heartbeats (the connection stays with the client)."""
        await self.stop_heartbeats()

    async def __aenter__(self) -> AsyncAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
