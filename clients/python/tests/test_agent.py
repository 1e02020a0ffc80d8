"""The agent handle: heartbeats, the consume loop, units of work under the budget."""

from __future__ import annotations

import asyncio

import pytest

from guild import AgentStatus, BudgetExceeded, Message, MessageType

from .conftest import Team


async def test_heartbeats_make_a_pending_agent_active(team: Team) -> None:
    g = team.g
    child = await g.spawner.spawn("support", parent_id=team.lead_id, token_budget=100)
    assert child.status == AgentStatus.PENDING
    agent = g.agent(child.id)
    first = await agent.start_heartbeats(interval=0.2)
    assert first.status == AgentStatus.ACTIVE and first.heartbeat_window_ms > 0
    seen = (await g.spawner.get_agent(child.id)).last_heartbeat_at
    for _ in range(300):  # the background beats move last_heartbeat_at on
        await asyncio.sleep(0.05)
        now = (await g.spawner.get_agent(child.id)).last_heartbeat_at
        if now is not None and seen is not None and now > seen:
            break
    assert now is not None and seen is not None and now > seen
    await agent.stop_heartbeats()


async def test_budget_refusal_comes_before_the_work(team: Team) -> None:
    ran = False
    before = (await team.g.spawner.get_agent(team.dev_id)).budget
    with pytest.raises(BudgetExceeded) as e:
        async with team.dev.work(before.allocated + 1):
            ran = True
    assert not ran and e.value.rule
    after = (await team.g.spawner.get_agent(team.dev_id)).budget
    assert (after.used, after.reserved) == (before.used, before.reserved)


async def test_a_unit_commits_what_it_used_and_releases_the_rest(team: Team) -> None:
    async with team.dev.work(2_000) as unit:
        assert unit.reserved is not None and unit.reserved.budget.reserved == 2_000
        unit.used(input_tokens=700, output_tokens=300)
    assert unit.settled is not None
    assert (unit.settled.budget.used, unit.settled.budget.reserved) == (1_000, 0)
    assert (unit.settled.budget.input_tokens, unit.settled.budget.output_tokens) == (700, 300)


async def test_a_failed_unit_releases_everything(team: Team) -> None:
    before = (await team.g.spawner.get_agent(team.dev_id)).budget
    with pytest.raises(ValueError, match="the model said no"):
        async with team.dev.work(1_500) as unit:
            unit.used(1_000)
            raise ValueError("the model said no")
    after = (await team.g.spawner.get_agent(team.dev_id)).budget
    assert (after.used, after.reserved) == (before.used, 0)
    assert unit.settled is not None and unit.settled.budget.reserved == 0


async def test_the_consume_loop_dispatches_by_type(team: Team) -> None:
    lead, dev = team.lead, team.dev
    while await dev.next(timeout=0) is not None:
        pass
    seen: list[tuple[str, str]] = []

    async def on_request(msg: Message) -> None:
        seen.append(("request", msg.subject))
        await dev.bus.reply(to_message_id=msg, payload={"done": True})

    def on_alert(msg: Message) -> None:
        seen.append(("alert", msg.subject))

    dev.on(MessageType.request, on_request)
    dev.on("alert", on_alert)
    await lead.bus.request(to_agent=dev.id, subject="Code review needed", payload={"code_path": "backend/app.py"})
    await lead.bus.alert(subject="CRITICAL: SQL injection", is_critical=True)
    assert await dev.run(limit=2, poll=2) == 2
    # CRITICAL first, then the request.
    assert seen == [("alert", "CRITICAL: SQL injection"), ("request", "Code review needed")]
    reply = await lead.next(["reply"], timeout=5)
    assert reply is not None and reply.payload == {"done": True} and reply.sender == dev.id


async def test_a_handler_error_ends_the_loop_and_gives_the_message_back(team: Team) -> None:
    dev = team.dev
    while await dev.next(timeout=0) is not None:
        pass

    def broken(msg: Message) -> None:
        raise KeyError("missing field")

    dev.on("request", broken)
    await team.lead.bus.request(to_agent=dev.id, subject="again")
    with pytest.raises(KeyError):
        await dev.run(limit=1, poll=2)
    back = await dev.bus.consume(timeout=5)
    assert back is not None and back.subject == "again" and back.attempt == 2
