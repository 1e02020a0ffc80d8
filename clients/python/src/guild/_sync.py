"""The synchronous API: the asyncio client run on an event loop of its own, in a
background thread, so a plain script (the seed's code) calls it as ordinary functions.

Calling it from inside a running event loop (a notebook cell, an ``async def``) works
too: the call blocks that thread until the background loop answers. Only calling it
from the background loop's own thread (a handler that calls back in with the
synchronous API would deadlock) raises :class:`~guild.errors.SyncInEventLoop`.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._agent import AsyncAgent, AsyncWork
from ._bus import AsyncBus
from ._bus import Subscription as AsyncSubscription
from ._client import AsyncGuild
from ._config import Settings
from ._missions import AsyncMissionManager
from ._spawner import AsyncSpawner
from .errors import SyncInEventLoop
from .models import BudgetOf, HeartbeatAck, Message, MessageType, Reserved

P = ParamSpec("P")
T = TypeVar("T")


class _Runner:
    """The background event loop every synchronous call runs on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="guild-sync-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise SyncInEventLoop(
                "the synchronous API was called from its own event loop's thread (inside an "
                "async handler?): use the asyncio API there (`import guild.aio`; await the "
                "same method on guild.aio.connect()'s client)",
                rule="sync_in_event_loop",
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise


_RUNNER = _Runner()


class _View:
    """A synchronous view of an asyncio object."""

    _async: Any


def _blocking(method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[_View, P], T]:
    """The synchronous twin of an async method (same signature and docstring)."""

    @functools.wraps(method)
    def call(self: _View, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return _RUNNER.run(method(self._async, *args, **kwargs))

    return call


def _in_thread(handler: Callable[[Message], Any]) -> Callable[[Message], Coroutine[Any, Any, Any]]:
    """A synchronous handler run in a worker thread, so it may call the synchronous API."""

    async def run(msg: Message) -> Any:
        return await asyncio.to_thread(handler, msg)

    return run


class Subscription:
    """Messages handed to a handler in the background (see :meth:`Bus.subscribe`)."""

    def __init__(self, inner: AsyncSubscription) -> None:
        self._inner = inner

    @property
    def agent_id(self) -> str:
        """Whose inbox it takes from."""
        return self._inner.agent_id

    @property
    def handled(self) -> int:
        """How many messages its handler has taken."""
        return self._inner.handled

    @property
    def running(self) -> bool:
        """Whether it still runs."""
        return self._inner.running

    def stop(self) -> None:
        """Stops it; raises its handler's error, if it failed."""
        _RUNNER.run(self._inner.stop())

    def wait(self) -> None:
        """Blocks until it ends; raises its handler's error, if it failed."""
        _RUNNER.run(self._inner.wait())


class Spawner(_View):
    """The agent spawner (the seed's ``AgentSpawner``); see :class:`guild.aio.AsyncSpawner`."""

    def __init__(self, inner: AsyncSpawner) -> None:
        self._async = inner

    spawn = _blocking(AsyncSpawner.spawn)
    get_agent = _blocking(AsyncSpawner.get_agent)
    list_agents = _blocking(AsyncSpawner.list_agents)
    find_available_agents = _blocking(AsyncSpawner.find_available_agents)
    allocate_task = _blocking(AsyncSpawner.allocate_task)
    release_task = _blocking(AsyncSpawner.release_task)
    set_status = _blocking(AsyncSpawner.set_status)
    pause = _blocking(AsyncSpawner.pause)
    resume = _blocking(AsyncSpawner.resume)
    terminate = _blocking(AsyncSpawner.terminate)
    heartbeat = _blocking(AsyncSpawner.heartbeat)
    authorize = _blocking(AsyncSpawner.authorize)
    reserve_tokens = _blocking(AsyncSpawner.reserve_tokens)
    commit_tokens = _blocking(AsyncSpawner.commit_tokens)
    release_tokens = _blocking(AsyncSpawner.release_tokens)
    reallocate_budget = _blocking(AsyncSpawner.reallocate_budget)
    issue_credentials = _blocking(AsyncSpawner.issue_credentials)
    set_scaling_policy = _blocking(AsyncSpawner.set_scaling_policy)
    remove_scaling_policy = _blocking(AsyncSpawner.remove_scaling_policy)
    list_scaling_policies = _blocking(AsyncSpawner.list_scaling_policies)
    get_stats = _blocking(AsyncSpawner.get_stats)
    recover = _blocking(AsyncSpawner.recover)


class Bus(_View):
    """The consultation bus (the seed's ``ConsultationBus``); see :class:`guild.aio.AsyncBus`."""

    def __init__(self, inner: AsyncBus) -> None:
        self._async = inner

    request = _blocking(AsyncBus.request)
    ask_question = _blocking(AsyncBus.ask_question)
    alert = _blocking(AsyncBus.alert)
    handoff = _blocking(AsyncBus.handoff)
    reply = _blocking(AsyncBus.reply)
    record_decision = _blocking(AsyncBus.record_decision)
    receive = _blocking(AsyncBus.receive)
    consume = _blocking(AsyncBus.consume)
    ack = _blocking(AsyncBus.ack)
    nak = _blocking(AsyncBus.nak)
    get_message_stats = _blocking(AsyncBus.get_message_stats)
    decision_history = _blocking(AsyncBus.decision_history)
    verify_audit = _blocking(AsyncBus.verify_audit)
    export_decisions = _blocking(AsyncBus.export_decisions)
    get_question = _blocking(AsyncBus.get_question)
    list_questions = _blocking(AsyncBus.list_questions)
    audit_records = _blocking(AsyncBus.audit_records)
    recover = _blocking(AsyncBus.recover)

    def subscribe(
        self,
        message_type: MessageType | str | Sequence[MessageType | str] | None,
        handler: Callable[[Message], Any],
        agent_id: str | None = None,
        *,
        poll: float = 5.0,
    ) -> Subscription:
        """Hands every message of ``message_type`` arriving in ``agent_id``'s inbox to
        ``handler``, in the background (each call in a worker thread, so the handler may
        use this synchronous API), until the returned subscription is stopped. A message
        is acknowledged once the handler returns; one that raises is given back and
        stops the subscription (``stop()`` raises the error)."""

        inner: AsyncBus = self._async

        async def start() -> AsyncSubscription:
            return inner.subscribe(message_type, _in_thread(handler), agent_id, poll=poll)

        return Subscription(_RUNNER.run(start()))


class MissionManager(_View):
    """The mission manager; see :class:`guild.aio.AsyncMissionManager`."""

    def __init__(self, inner: AsyncMissionManager) -> None:
        self._async = inner

    create_mission = _blocking(AsyncMissionManager.create_mission)
    add_dependency = _blocking(AsyncMissionManager.add_dependency)
    remove_dependency = _blocking(AsyncMissionManager.remove_dependency)
    check_ready = _blocking(AsyncMissionManager.check_ready)
    get_parallelizable_missions = _blocking(AsyncMissionManager.get_parallelizable_missions)
    assign_mission = _blocking(AsyncMissionManager.assign_mission)
    reassign_mission = _blocking(AsyncMissionManager.reassign_mission)
    claim_next = _blocking(AsyncMissionManager.claim_next)
    mark_complete = _blocking(AsyncMissionManager.mark_complete)
    mark_failed = _blocking(AsyncMissionManager.mark_failed)
    cancel_mission = _blocking(AsyncMissionManager.cancel_mission)
    archive_missions = _blocking(AsyncMissionManager.archive_missions)
    get_mission = _blocking(AsyncMissionManager.get_mission)
    list_missions = _blocking(AsyncMissionManager.list_missions)
    get_outputs = _blocking(AsyncMissionManager.get_outputs)
    phase_status = _blocking(AsyncMissionManager.phase_status)
    get_statistics = _blocking(AsyncMissionManager.get_statistics)
    recover = _blocking(AsyncMissionManager.recover)


class Work:
    """A unit of work under an agent's budget (``with agent.work(estimate) as unit:``);
    see :class:`guild.aio.AsyncWork`."""

    def __init__(self, inner: AsyncWork) -> None:
        self._inner = inner

    @property
    def reserved(self) -> Reserved | None:
        """The reservation, once entered."""
        return self._inner.reserved

    @property
    def settled(self) -> BudgetOf | None:
        """The agent's budget after the commit or release."""
        return self._inner.settled

    def used(self, total: int | None = None, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """What the work used: ``total``, or ``input_tokens`` and ``output_tokens``."""
        self._inner.used(total, input_tokens=input_tokens, output_tokens=output_tokens)

    def __enter__(self) -> Work:
        _RUNNER.run(self._inner.__aenter__())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        _RUNNER.run(self._inner.__aexit__(kind, error, tb))


class Agent(_View):
    """Agent ``id`` acting as itself; see :class:`guild.aio.AsyncAgent`."""

    def __init__(self, inner: AsyncAgent) -> None:
        self._async = inner
        self.id = inner.id
        self.spawner = Spawner(inner.spawner)
        self.bus = Bus(inner.bus)
        self.missions = MissionManager(inner.missions)

    heartbeat = _blocking(AsyncAgent.heartbeat)
    start_heartbeats = _blocking(AsyncAgent.start_heartbeats)
    stop_heartbeats = _blocking(AsyncAgent.stop_heartbeats)
    next = _blocking(AsyncAgent.next)
    close = _blocking(AsyncAgent.close)

    @property
    def last_heartbeat(self) -> HeartbeatAck | None:
        """The last heartbeat's answer."""
        return self._async.last_heartbeat  # type: ignore[no-any-return]

    def on(self, message_type: MessageType | str, handler: Callable[[Message], Any]) -> None:
        """Handles messages of ``message_type`` with ``handler`` (in a worker thread) in :meth:`run`."""
        self._async.on(message_type, _in_thread(handler))

    def run(self, *, stop: threading.Event | None = None, poll: float = 5.0, limit: int | None = None) -> int:
        """The consume loop (see :meth:`guild.aio.AsyncAgent.run`); ``stop`` is a
        :class:`threading.Event`."""
        return _RUNNER.run(self._async.run(stop=stop, poll=poll, limit=limit))  # type: ignore[no-any-return]

    def work(self, estimate: int, mission_id: str | None = None) -> Work:
        """A unit of work reserving ``estimate`` tokens (charged to ``mission_id`` too)."""
        return Work(self._async.work(estimate, mission_id))

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Guild:
    """Guild as one or several identities, synchronously (see :class:`guild.aio.AsyncGuild`).

    ``Guild()`` connects from the environment (``NATS_URL``, ``NATS_CREDS``,
    ``GUILD_HOME``, ...); keyword arguments override it (``Guild(url=..., home=...)``).
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings.from_env(None, **overrides)
        self._async = AsyncGuild(self.settings)
        _RUNNER.run(self._async.start())
        #: The agent spawner.
        self.spawner = Spawner(self._async.spawner)
        #: The consultation bus.
        self.bus = Bus(self._async.bus)
        #: The mission manager.
        self.missions = MissionManager(self._async.missions)

    @property
    def aio(self) -> AsyncGuild:
        """The asyncio client underneath (its coroutines run on the background loop)."""
        return self._async

    @property
    def principal(self) -> str | None:
        """Who the default identity is."""
        return self._async.principal

    def agent(self, agent_id: str) -> Agent:
        """The handle of agent ``agent_id`` (its credentials must be known)."""
        return Agent(self._async.agent(agent_id))

    def close(self) -> None:
        """Closes every connection."""
        _RUNNER.run(self._async.close())

    def __enter__(self) -> Guild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Guild | None = None
_default_lock = threading.Lock()


def default() -> Guild:
    """The process's client, connected from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Guild()
        return _default


def close_default() -> None:
    """Closes the process's client (the next ``get_*()`` connects again)."""
    global _default
    with _default_lock:
        g, _default = _default, None
    if g is not None:
        g.close()


def _at_exit() -> None:
    try:
        close_default()
    except Exception as e:  # the process is ending: say so, do not raise from atexit
        import logging

        logging.getLogger("guild").warning("closing Guild's connections at exit failed: %s", e)


atexit.register(_at_exit)
