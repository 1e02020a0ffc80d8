"""The synchronous API: the seed's get_*() from the environment, inside a running event
loop (a notebook), and the typed error where it cannot work."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import guild
from guild import AgentRole, Message, MissionPhase, SyncInEventLoop
from guild._sync import _RUNNER

from .stack import GuildDev


@pytest.fixture
def sync_env(dev: GuildDev, monkeypatch: pytest.MonkeyPatch) -> GuildDev:
    for k, v in dev.env.items():
        if k.startswith(("NATS_", "GUILD_")):
            monkeypatch.setenv(k, v)
    guild.close()
    return dev


def test_the_seed_getters_connect_from_the_environment(sync_env: GuildDev) -> None:
    spawner, bus, manager = guild.get_spawner(), guild.get_bus(), guild.get_mission_manager()
    assert guild.default().principal == "operator"
    lead = spawner.spawn(role=AgentRole.ORCHESTRATOR, token_budget=10_000)
    dev = spawner.spawn(role=AgentRole.DEVELOPER, capabilities=["python"], parent_id=lead.id, token_budget=1_000)
    try:
        agent = guild.default().agent(dev.id)
        assert agent.start_heartbeats().status.value == "ACTIVE"
        answered = threading.Event()

        def decide(msg: Message) -> None:  # runs in a worker thread: the sync API works there
            bus.record_decision(message_id=msg.id, approver_agent=lead.id, choice="proceed")
            answered.set()

        sub = bus.subscribe("question", decide, agent_id=lead.id, poll=1)
        bus.ask_question(from_agent=dev.id, subject="Extra tests?", requires_decision=True)
        assert answered.wait(30)
        decision = bus.consume(agent_id=dev.id, timeout=5.0)
        assert decision is not None and decision.message_type.value == "decision"
        assert decision.payload.get("choice") == "proceed"
        sub.stop()
        mission = manager.create_mission(name="M", phase=MissionPhase.DEVELOPMENT, assigned_agent_id=dev.id)
        assert manager.check_ready(mission.id)
        with agent.work(100) as unit:
            unit.used(40)
        assert unit.settled is not None and unit.settled.budget.used == 40
        agent.close()
    finally:
        spawner.terminate(lead.id, subtree=True)
        guild.close()


def test_inside_a_running_event_loop_it_works(sync_env: GuildDev) -> None:
    async def notebook_cell() -> int:
        return int(guild.get_spawner().get_stats().total_agents)

    assert asyncio.run(notebook_cell()) >= 0
    guild.close()


def test_from_its_own_loop_it_points_to_the_async_api(sync_env: GuildDev) -> None:
    g = guild.connect()
    try:
        async def inside() -> None:
            g.spawner.get_stats()

        with pytest.raises(SyncInEventLoop) as e:
            _RUNNER.run(inside())
        assert "guild.aio" in e.value.message
    finally:
        g.close()


def test_a_guild_takes_explicit_settings(dev: GuildDev, tmp_path: Path) -> None:
    with guild.Guild(url=dev.url, home=str(dev.home)) as g:
        assert g.principal == "operator"
        assert g.bus.verify_audit().ok
