"""Every spawner operation through the client, against the real spawner-svc."""

from __future__ import annotations

import pytest

from guild import AgentRole, AgentStatus, BadRequest, BudgetExceeded, Forbidden, InvalidArgument, NotFound, specialist
from guild.aio import AsyncGuild

from .conftest import Team, uid


async def test_spawn_generates_an_id_and_keeps_the_credentials(g: AsyncGuild) -> None:
    spawned = await g.spawner.spawn(role=AgentRole.ORCHESTRATOR, token_budget=10_000)
    try:
        assert spawned.id.startswith("orchestrator-")
        assert spawned.role == "orchestrator"
        assert spawned.status == AgentStatus.PENDING
        assert spawned.parent_id is None and spawned.spawned_by == "operator"
        assert spawned.credentials is not None and spawned.credentials.creds
        # The client acts as the new agent with them: its heartbeat goes over its own connection.
        ack = await g.spawner.heartbeat(spawned.id)
        assert ack.status == AgentStatus.ACTIVE
        conn, principal = await g.connection_for(spawned.id)
        assert principal == spawned.id and conn.principal == spawned.id and conn is not g.default_connection
    finally:
        await g.spawner.terminate(spawned.id)


async def test_a_child_is_spawned_by_its_parent_when_the_client_holds_its_credentials(team: Team) -> None:
    child = await team.g.spawner.spawn(
        specialist("market-analyst"), [{"name": "research", "params": {"depth": 2}}], parent_id=team.lead_id,
        token_budget=1_000,
    )
    assert child.spawned_by == team.lead_id and child.parent_id == team.lead_id
    assert child.role == "specialist:market-analyst"
    assert child.capabilities and child.capabilities[0].name == "research"
    lead = await team.g.spawner.get_agent(team.lead_id)
    assert lead.live_children == 2  # the developer and the analyst


async def test_get_list_and_find(team: Team) -> None:
    sp = team.g.spawner
    profile = await sp.get_agent(team.dev_id)
    assert profile.parent_id == team.lead_id and profile.budget.allocated == 5_000
    children = await sp.list_agents(parent_id=team.lead_id)
    assert [a.id for a in children] == [team.dev_id]
    available = await sp.find_available_agents(role=AgentRole.DEVELOPER, capabilities=["python"], parent_id=team.lead_id)
    assert [a.id for a in available] == [team.dev_id]
    with pytest.raises(NotFound) as e:
        await sp.get_agent(uid("nobody"))
    assert e.value.status == 404


async def test_allocate_and_release_a_task(team: Team) -> None:
    sp = team.g.spawner
    task = uid("M")
    working = await sp.allocate_task(team.dev_id, task, by=team.lead_id)
    assert working.status == AgentStatus.WORKING and working.assigned_task_id == task
    assert await sp.find_available_agents(role=AgentRole.DEVELOPER, parent_id=team.lead_id) == []
    back = await sp.release_task(team.dev_id, task, "done", by=team.lead_id)
    assert back.status == AgentStatus.ACTIVE and back.assigned_task_id is None


async def test_status_pause_and_resume(team: Team) -> None:
    sp = team.g.spawner
    idle = await sp.set_status(team.dev_id, AgentStatus.IDLE, "nothing to do", by=team.dev_id)
    assert idle.status == AgentStatus.IDLE
    paused = await sp.pause(team.lead_id, "budget review", subtree=True)
    assert {a.id for a in paused.agents} == {team.lead_id, team.dev_id}
    assert all(a.status == AgentStatus.BLOCKED for a in paused.agents)
    resumed = await sp.resume(team.lead_id, subtree=True)
    assert {a.id for a in resumed.agents} == {team.lead_id, team.dev_id}
    assert all(a.status != AgentStatus.BLOCKED for a in resumed.agents)


async def test_authorize(g: AsyncGuild) -> None:
    lead = await g.spawner.spawn(
        AgentRole.ORCHESTRATOR,
        token_budget=1_000,
        authority={"max_parallel_agents": 2, "can_spawn_agents": True, "can_override_decisions": False,
                   "scoped_to_phases": ["4", "5"], "forbidden_actions": ["deploy_production"]},
    )
    try:
        denied = await g.spawner.authorize(lead.id, "deploy_production")
        assert denied.allowed is False and denied.reason
        assert (await g.spawner.authorize(lead.id, "write_code", phase="5")).allowed is True
        assert (await g.spawner.authorize(lead.id, "write_code", phase="7")).allowed is False
    finally:
        await g.spawner.terminate(lead.id)


async def test_tokens_reserve_commit_release(team: Team) -> None:
    sp = team.g.spawner
    reserved = await sp.reserve_tokens(team.dev_id, 1_000)
    assert reserved.budget.reserved == 1_000
    committed = await sp.commit_tokens(
        team.dev_id, reserved.reservation.id, input_tokens=300, output_tokens=200
    )
    assert committed.budget.used == 500 and committed.budget.input_tokens == 300 and committed.budget.reserved == 0
    again = await sp.reserve_tokens(team.dev_id, 700)
    released = await sp.release_tokens(team.dev_id, again.reservation.id)
    assert released.budget.reserved == 0 and released.budget.used == 500
    with pytest.raises(BudgetExceeded) as e:
        await sp.reserve_tokens(team.dev_id, 1_000_000)
    assert e.value.code == "budget_exceeded" and e.value.status == 402
    with pytest.raises(InvalidArgument) as bad:
        await sp.commit_tokens(team.dev_id, again.reservation.id)
    assert bad.value.field == "used"


async def test_reallocate_budget(team: Team) -> None:
    other = await team.g.spawner.spawn(AgentRole.QA, parent_id=team.lead_id, token_budget=2_000)
    moved = await team.g.spawner.reallocate_budget(team.dev_id, other.id, 1_000, by=team.lead_id)
    assert moved.from_.budget.allocated == 4_000
    assert moved.to.budget.allocated == 3_000


async def test_scaling_policies_set_list_and_remove(team: Team) -> None:
    sp = team.g.spawner
    state = await sp.set_scaling_policy(
        team.lead_id, AgentRole.QA, max_agents=2, agent_budget=500, cooldown_ms=100, idle_ttl_ms=100
    )
    assert state.scaling.policy.owner == team.lead_id and state.scaling.policy.max_agents == 2
    listed = await sp.list_scaling_policies(team.lead_id)
    assert [p.scaling.policy.role for p in listed.policies] == ["qa"]
    with pytest.raises(BadRequest) as bad:
        await sp.set_scaling_policy(team.lead_id, AgentRole.QA, max_agents=2, agent_budget=500, cooldown_ms=10)
    assert bad.value.field == "cooldown_ms"
    await sp.remove_scaling_policy(team.lead_id, AgentRole.QA)
    assert (await sp.list_scaling_policies(team.lead_id)).policies == []


async def test_issue_credentials_replaces_the_connection(team: Team) -> None:
    old_conn, _ = await team.g.connection_for(team.dev_id)
    issued = await team.g.spawner.issue_credentials(team.dev_id, by=team.lead_id)
    assert issued.credentials is not None and issued.credentials.creds
    # The client opens a new connection with the new credentials, and it works.
    ack = await team.g.spawner.heartbeat(team.dev_id)
    assert ack.status in (AgentStatus.ACTIVE, AgentStatus.WORKING)
    new_conn, _ = await team.g.connection_for(team.dev_id)
    assert new_conn is not old_conn


async def test_stats_terminate_and_recover(g: AsyncGuild) -> None:
    before = await g.spawner.get_stats()
    a = await g.spawner.spawn(AgentRole.SUPPORT, token_budget=100)
    during = await g.spawner.get_stats()
    assert during.total_agents == before.total_agents + 1 and during.max_agents >= during.total_agents
    ended = await g.spawner.terminate(a.id, reason="test over")
    assert [x.status for x in ended.agents] == [AgentStatus.COMPLETED]
    assert (await g.spawner.get_stats()).total_agents == before.total_agents
    # A healthy service has nothing lost to accept.
    assert (await g.spawner.recover()).lost == []


async def test_an_agent_may_not_terminate_its_orchestrator(team: Team) -> None:
    with pytest.raises(Forbidden) as e:
        await team.g.spawner.terminate(team.lead_id, by=team.dev_id)
    assert e.value.rule and e.value.status == 403


async def test_a_specialist_needs_its_specialty(g: AsyncGuild) -> None:
    with pytest.raises(InvalidArgument) as e:
        await g.spawner.spawn(AgentRole.SPECIALIST, token_budget=10)
    assert e.value.field == "role" and "specialist(" in e.value.message
