"""Every bus operation through the client: priorities, a decision round trip, the
audit log, subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from guild import AgentRole, InvalidArgument, Message, MessagePriority, MessageType, NotFound
from guild.aio import AsyncGuild

from .conftest import Team, uid


async def drain(team: Team, who: str) -> None:
    """Takes what is waiting in ``who``'s inbox (alerts of other tests, say)."""
    while await team.g.bus.consume(who, 0) is not None:
        pass


async def test_priorities_order_the_inbox(team: Team) -> None:
    bus = team.g.bus
    await drain(team, team.dev_id)
    sent = []
    for p in (MessagePriority.LOW, MessagePriority.NORMAL, MessagePriority.CRITICAL, MessagePriority.HIGH):
        s = await bus.request(
            from_agent=team.lead_id, to_agent=team.dev_id, subject=f"{p.value} work", payload={"p": p.value}, priority=p
        )
        assert s.priority == p and s.delivered_to == [team.dev_id]
        sent.append(s)
    taken = [await bus.consume(agent_id=team.dev_id, timeout=2, types=["request"]) for _ in sent]
    assert [m.priority for m in taken if m] == [
        MessagePriority.CRITICAL, MessagePriority.HIGH, MessagePriority.NORMAL, MessagePriority.LOW
    ]
    assert all(m and m.message_type == MessageType.request and m.sender == team.lead_id for m in taken)
    # Default priorities: a request NORMAL, a question HIGH, an alert HIGH or CRITICAL.
    assert (await bus.request(from_agent=team.lead_id, to_agent=team.dev_id, subject="x")).priority == MessagePriority.NORMAL
    assert (await bus.ask_question(from_agent=team.dev_id, subject="y?")).priority == MessagePriority.HIGH
    alert = await bus.alert(from_agent=team.dev_id, subject="tests broke", payload={"n": 3})
    critical = await bus.alert(from_agent=team.dev_id, subject="SQL injection", is_critical=True)
    assert alert.priority == MessagePriority.HIGH and critical.priority == MessagePriority.CRITICAL
    assert team.lead_id in critical.delivered_to


async def test_a_decision_round_trip(team: Team) -> None:
    bus = team.g.bus
    await drain(team, team.lead_id)
    question = await bus.ask_question(
        from_agent=team.dev_id,
        subject="Do we have token budget for extra tests?",
        payload={"current_spend": 24000, "requested": 3000},
        requires_decision=True,
    )
    assert question.receipt.to == team.lead_id  # the asker's orchestrator
    got = await bus.consume(agent_id=team.lead_id, timeout=5, types=[MessageType.question])
    assert got is not None and got.id == question and got.requires_decision
    decided = await bus.reply(
        to_message_id=got, from_agent=team.lead_id, payload={"decision": "proceed", "reason": "budget allows"},
        is_decision=True,
    )
    assert decided.receipt.type == MessageType.decision
    completed = await bus.record_decision(
        message_id=question, approver_agent=team.lead_id, choice="proceed", rationale="budget allows",
        impact={"tests": "+3000 tokens"},
    )
    assert completed.decision.choice == "proceed" and completed.audit_seq is not None
    answer = await bus.consume(agent_id=team.dev_id, timeout=5, types="decision")
    # The seed's own test of a decision.
    assert answer is not None and answer.message_type.value == "decision"
    assert answer.payload.get("choice") == "proceed" and answer.in_reply_to == question
    state = await bus.get_question(question, by=team.dev_id)
    assert state.decision is not None and state.decision.choice == "proceed"
    mine = await bus.list_questions(by=team.dev_id)
    assert question in [q.question.id for q in mine]
    assert question not in [q.question.id for q in await bus.list_questions(open_only=True, by=team.dev_id)]
    history = await bus.decision_history(agent=team.dev_id)
    assert [d.record.question_id for d in history if d.record.question_id == question]
    md = await bus.export_decisions(agent=team.dev_id)
    assert "proceed" in md.markdown and md.decisions >= 1
    records = await bus.audit_records(kinds=["decision"], about=question, by=team.lead_id)
    assert [r.kind for r in records] == ["decision"] and records[0].actor == team.lead_id
    report = await bus.verify_audit()
    assert report.ok and report.records >= 1
    # An orchestrator may override: the log keeps both, and the asker hears of it.
    again = await bus.record_decision(message_id=question, approver_agent=team.lead_id, choice="skip")
    assert again.ruling == "overridden" and again.decision.overrides is not None
    assert again.decision.overrides.choice == "proceed"
    override = await bus.consume(agent_id=team.dev_id, timeout=5, types="decision")
    assert override is not None and override.payload.get("choice") == "skip"


async def test_handoff_moves_the_mission(team: Team) -> None:
    g = team.g
    qa = await g.spawner.spawn(AgentRole.QA, parent_id=team.lead_id, token_budget=1_000)
    await g.spawner.heartbeat(qa.id)
    m = await g.missions.create_mission("Release", "6", token_budget=100, by=team.lead_id)
    await g.missions.assign_mission(m.id, team.dev_id, by=team.lead_id)
    sent = await g.bus.handoff(from_agent=team.dev_id, to_agent=qa.id, task_id=m.id, context={"coverage": 0.89})
    assert sent.receipt.type == MessageType.handoff
    assert (await g.missions.get_mission(m.id)).assigned_agent_id == qa.id
    got = await g.bus.consume(qa.id, 5, ["handoff"])
    assert got is not None and got.task_id == m.id and got.payload["coverage"] == 0.89


async def test_ack_and_nak(team: Team) -> None:
    bus = team.g.bus
    await drain(team, team.dev_id)
    await bus.request(from_agent=team.lead_id, to_agent=team.dev_id, subject="review", message_id=uid("msg"))
    first = await bus.receive(team.dev_id, 5)
    assert first is not None and first.attempt == 1
    await bus.nak(first.delivery_id, agent_id=team.dev_id)
    again = await bus.consume(team.dev_id, 5, ack=False)
    assert again is not None and again.id == first.message.id and again.attempt == 2
    await bus.ack(again, agent_id=team.dev_id)
    assert await bus.consume(team.dev_id, 0) is None
    with pytest.raises(InvalidArgument) as e:
        await bus.ack(again.model_copy(update={"delivery_id": None}), agent_id=team.dev_id)
    assert e.value.field == "delivery_id"


async def test_subscribe_hands_messages_to_the_handler(team: Team) -> None:
    bus = team.g.bus
    seen: list[Message] = []
    got_two = asyncio.Event()

    async def on_question(msg: Message) -> None:
        seen.append(msg)
        await bus.reply(to_message_id=msg, from_agent=team.lead_id, payload={"answer": "yes"})
        if len(seen) == 2:
            got_two.set()

    await drain(team, team.lead_id)
    sub = bus.subscribe("question", on_question, agent_id=team.lead_id, poll=1)
    await bus.request(from_agent=team.dev_id, to_agent=team.lead_id, subject="not a question")
    for n in range(2):
        await bus.ask_question(from_agent=team.dev_id, subject=f"q{n}?")
    await asyncio.wait_for(got_two.wait(), 30)
    for _ in range(600):  # the second ack follows its handler
        if sub.handled == 2:
            break
        await asyncio.sleep(0.05)
    await sub.stop()
    assert [m.subject for m in seen] == ["q0?", "q1?"] and sub.handled == 2
    replies = [await bus.consume(team.dev_id, 5, ["reply"]) for _ in range(2)]
    assert all(r and r.payload == {"answer": "yes"} for r in replies)
    # The request was not for the handler: it is still there.
    left = await bus.consume(team.lead_id, 1)
    assert left is not None and left.subject == "not a question"


async def test_a_failing_handler_gives_the_message_back(team: Team) -> None:
    bus = team.g.bus
    await drain(team, team.lead_id)

    def broken(msg: Message) -> None:
        raise RuntimeError("handler bug")

    sub = bus.subscribe(MessageType.alert, broken, agent_id=team.lead_id, poll=1)
    await bus.alert(from_agent=team.dev_id, subject="boom")
    with pytest.raises(RuntimeError, match="handler bug"):
        await asyncio.wait_for(sub.wait(), 30)
    assert not sub.running
    back = await bus.consume(team.lead_id, 5, ["alert"])
    assert back is not None and back.subject == "boom"


async def test_stats_and_recover(g: AsyncGuild, team: Team) -> None:
    before = await g.bus.get_message_stats()
    await g.bus.request(from_agent=team.lead_id, to_agent=team.dev_id, subject="count me")
    after = await g.bus.get_message_stats()
    assert after.total_messages == before.total_messages + 1
    assert after.by_type["request"] == before.by_type.get("request", 0) + 1
    assert (await g.bus.recover()).lost == []


async def test_bus_errors_are_typed(team: Team) -> None:
    bus = team.g.bus
    with pytest.raises(NotFound):
        await bus.reply(to_message_id=uid("missing"), from_agent=team.lead_id, payload={})
    with pytest.raises(InvalidArgument) as e:
        await bus.request(from_agent=team.lead_id, to_agent="not an id!", subject="x")
    assert e.value.field == "to_agent"
    with pytest.raises(InvalidArgument) as p:
        await bus.request(from_agent=team.lead_id, to_agent=team.dev_id, subject="x", priority="URGENT")
    assert p.value.field == "priority"
    with pytest.raises(InvalidArgument) as t:
        await bus.consume(team.dev_id, timeout=31)
    assert t.value.field == "timeout"
