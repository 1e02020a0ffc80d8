"""Every mission operation through the client, against the real mission-svc."""

from __future__ import annotations

import pytest

from guild import AgentRole, BadRequest, Conflict, Forbidden, InvalidArgument, MissionPhase, MissionStatus
from guild.aio import AsyncGuild

from .conftest import Team, uid


async def test_lifecycle_dependencies_and_groups(team: Team) -> None:
    mm = team.g.missions
    schema = await mm.create_mission("Schema", MissionPhase.ARCHITECTURE, token_budget=1_000, id=uid("schema"))
    api = await mm.create_mission(
        name="Implement API authentication", phase=MissionPhase.DEVELOPMENT, assigned_agent_id=team.dev_id,
        token_budget=5000, priority=8, input_data={"tech_stack": "FastAPI+JWT"},
    )
    assert api.id.startswith("M-") and api.priority == 8 and api.input_data == {"tech_stack": "FastAPI+JWT"}
    assert bool(await mm.check_ready(api.id)) is True
    blocked = await mm.add_dependency(api.id, schema.id, dependency_type="blocks_on", severity="hard")
    assert [d.mission_id for d in blocked.depends_on or []] == [schema.id]
    readiness = await mm.check_ready(api.id)
    assert not readiness and readiness.waiting_on == [schema.id]
    groups = await mm.get_parallelizable_missions()
    lists = groups.as_lists()
    where = {m: i for i, group in enumerate(lists) for m in group}
    assert where[schema.id] < where[api.id]
    with pytest.raises(BadRequest) as cycle:
        await mm.add_dependency(schema.id, api.id)
    assert cycle.value.rule == "dependency_cycle"
    unblocked = await mm.remove_dependency(api.id, schema.id)
    assert unblocked.depends_on == [] and await mm.check_ready(api.id)
    started = await mm.assign_mission(api.id, by=team.lead_id)
    assert started.status == MissionStatus.ACTIVE and started.assigned_agent_id == team.dev_id
    done = await mm.mark_complete(api.id, output_data={"endpoints": 5, "tests": 47}, quality_score=0.95, by=team.dev_id)
    assert done.mission.status == MissionStatus.COMPLETED and not done
    outputs = await mm.get_outputs(mission_id=api.id)
    assert outputs.outputs[0].output_data == {"endpoints": 5, "tests": 47}
    phase_outputs = await mm.get_outputs(phase=MissionPhase.DEVELOPMENT)
    assert api.id in [o.mission_id for o in phase_outputs.outputs]
    archived = await mm.archive_missions(mission_id=api.id)
    assert archived.archived == [api.id]
    assert (await mm.get_mission(api.id)).status == MissionStatus.ARCHIVED
    cancelled = await mm.cancel_mission(schema.id, "not needed")
    assert cancelled.status == MissionStatus.CANCELLED


async def test_mark_failed_says_whether_it_retries(team: Team) -> None:
    mm = team.g.missions
    m = await mm.create_mission("Flaky", "5", assigned_agent_id=team.dev_id, max_retries=1)
    await mm.assign_mission(m.id, by=team.lead_id)
    if await mm.mark_failed(m.id, "API test failed", retry=True, by=team.dev_id):
        retried = True
    else:
        retried = False
    assert retried and (await mm.get_mission(m.id)).status == MissionStatus.READY
    await mm.assign_mission(m.id, by=team.lead_id)
    gave_up = await mm.mark_failed(m.id, "API test failed again", retry=True, by=team.dev_id)
    assert not gave_up and gave_up.mission.status == MissionStatus.FAILED and gave_up.mission.attempts == 2


async def test_reassign_list_phase_and_statistics(team: Team) -> None:
    g = team.g
    mm = g.missions
    other = await g.spawner.spawn(AgentRole.DEVELOPER, parent_id=team.lead_id, token_budget=1_000)
    await g.spawner.heartbeat(other.id)
    phase = MissionPhase.FOUNDATION
    m = await mm.create_mission("Foundation", phase, assigned_agent_id=team.dev_id)
    await mm.assign_mission(m.id, by=team.lead_id)
    moved = await mm.reassign_mission(m.id, team.dev_id, other.id, by=team.lead_id)
    assert moved.assigned_agent_id == other.id and moved.status == MissionStatus.ACTIVE
    listed = await mm.list_missions(agent_id=other.id, status=MissionStatus.ACTIVE)
    assert [x.id for x in listed] == [m.id]
    assert (await mm.phase_status(phase)).complete is False
    await mm.mark_complete(m.id, quality_score=0.9, by=other.id)
    stats = await mm.get_statistics()
    assert stats.missions.by_status["COMPLETED"] >= 1
    assert (await mm.recover()).lost == []


async def test_mission_input_is_checked_before_sending(g: AsyncGuild) -> None:
    with pytest.raises(InvalidArgument) as e:
        await g.missions.create_mission("x", "5", priority=300)
    assert e.value.field == "priority"
    with pytest.raises(InvalidArgument) as t:
        await g.missions.add_dependency("a", "b", dependency_type="relates_to")
    assert t.value.field == "dependency_type"
    with pytest.raises(Conflict):
        m = await g.missions.create_mission("twice", "5", id=uid("twice"))
        await g.missions.create_mission("twice", "5", id=m.id)


async def test_claim_next_hands_an_agent_the_best_mission_of_its_role(team: Team) -> None:
    mm = team.g.missions
    # Both meant for this developer, so no other test's agent could claim them.
    low = await mm.create_mission(
        "Low", MissionPhase.DEVELOPMENT, assigned_agent_id=team.dev_id, priority=2, role=AgentRole.DEVELOPER
    )
    high = await mm.create_mission(
        "High", MissionPhase.DEVELOPMENT, assigned_agent_id=team.dev_id, priority=9, role="developer"
    )
    assert (await mm.get_mission(high.id)).role == "developer"
    first = await mm.claim_next(by=team.dev_id)
    assert first is not None and first.id == high.id and first.status == MissionStatus.ACTIVE
    with pytest.raises(Conflict) as busy:
        await mm.claim_next(by=team.dev_id)
    assert busy.value.rule == "agent_busy"
    await mm.mark_complete(first.id, quality_score=0.9, by=team.dev_id)
    second = await mm.claim_next(AgentRole.DEVELOPER, by=team.dev_id)
    assert second is not None and second.id == low.id and second.assigned_agent_id == team.dev_id
    await mm.mark_complete(second.id, quality_score=0.9, by=team.dev_id)
    assert await mm.claim_next(by=team.dev_id) is None
    with pytest.raises(BadRequest) as other_role:
        await mm.claim_next(AgentRole.QA, by=team.dev_id)
    assert other_role.value.rule == "invalid_field" and other_role.value.field == "role"
    with pytest.raises(Forbidden) as operator:
        await mm.claim_next()
    assert operator.value.rule == "agent_only"
