"""The seed's "Integration Pattern: Complete Workflow", all seven steps, with scripted
agents, using only this package (no `guild` subprocess): the Python twin of `guild demo`.

    guild dev &
    python examples/workflow.py            # NATS_URL / GUILD_HOME as `guild dev` printed
    python examples/workflow.py --json     # the report as JSON

Each agent is a real one: its own NATS connection with the credentials its spawn
returned, its own inbox it consumes, its own heartbeats, its units of work under its
budget. Nothing is simulated but the thinking. Exits 0 when every promise held.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import guild.aio
from guild import AgentRole, AgentStatus, Message, MessageType, MissionPhase, MissionStatus, specialist
from guild.aio import AsyncAgent, AsyncGuild

T = TypeVar("T")
PATIENCE = 30.0  # how long any step waits for another agent
START = time.monotonic()
QUIET = "--json" in sys.argv


def say(who: str, text: str) -> None:
    if not QUIET:
        print(f"[{time.monotonic() - START:6.2f}s] {who.rsplit('-', 1)[0]:<18} {text}", flush=True)


def step(n: int, title: str) -> None:
    if not QUIET:
        print(f"\n== {n}. {title}", flush=True)


async def until(what: str, check: Callable[[], Awaitable[T | None]]) -> T:
    deadline = time.monotonic() + PATIENCE
    while True:
        got = await check()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {PATIENCE:g} s waiting until {what}")
        await asyncio.sleep(0.05)


async def expect(agent: AsyncAgent, types: Sequence[MessageType], what: str) -> Message:
    """The next message of ``types`` in ``agent``'s inbox (acknowledged); others stay queued."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        msg = await agent.bus.consume(timeout=min(10.0, max(deadline - time.monotonic(), 0.0)), types=types)
        if msg is not None:
            return msg
    raise RuntimeError(f"{agent.id} waited {PATIENCE:g} s for {what}")


async def expect_task(agent: AsyncAgent, kind: MessageType, what: str) -> tuple[Message, str]:
    msg = await expect(agent, [kind], what)
    if msg.task_id is None:
        raise RuntimeError(f"{what} names no mission")
    return msg, msg.task_id


async def think(agent: AsyncAgent, mission: str, estimate: int, used: int) -> None:
    """Pretend work under the budget: reserve ``estimate``, think, commit ``used``."""
    async with agent.work(estimate, mission) as unit:
        await asyncio.sleep(0.04)
        unit.used(input_tokens=used * 3 // 4, output_tokens=used - used * 3 // 4)


class Story:
    """This run's names, the operator's client, and the agents' handles."""

    def __init__(self, g: AsyncGuild) -> None:
        self.g = g
        self.tag = secrets.token_hex(4)
        self.granted: dict[str, int] = {}
        self.failures: asyncio.Queue[BaseException] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.agents: dict[str, AsyncAgent] = {}

    def id(self, name: str) -> str:
        return f"{name}-{self.tag}"

    async def spawn(self, name: str, role: AgentRole | str, budget: int, parent: str | None, caps: Sequence[str] = ()) -> str:
        spawned = await self.g.spawner.spawn(role, list(caps), parent_id=parent and self.id(parent), token_budget=budget, id=self.id(name))
        self.granted[spawned.id] = spawned.budget.allocated
        return str(spawned.id)

    async def join(self, name: str) -> AsyncAgent:
        agent = self.g.agent(self.id(name))
        await agent.start_heartbeats(interval=1.0)
        self.agents[agent.id] = agent
        return agent

    def play(self, name: str, script: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await script()
            except BaseException as e:  # reaches the orchestrator: the run stops
                await self.failures.put(RuntimeError(f"agent {name}: {e!r}"))
                raise

        self.tasks.append(asyncio.ensure_future(run()))

    async def assign_and_send(self, orch: AsyncAgent, mission: str, agent: str, subject: str) -> None:
        async def up() -> bool | None:
            return (await orch.spawner.get_agent(self.id(agent))).status != AgentStatus.PENDING or None

        await until(f"{agent} is up", up)
        await orch.missions.assign_mission(self.id(mission), self.id(agent))
        await orch.bus.request(to_agent=self.id(agent), subject=subject, task_id=self.id(mission))


# -- the scripted agents ---------------------------------------------------------------


async def researcher(s: Story, name: str, finding: str, reviews: bool) -> None:
    me = await s.join(name)
    job, task = await expect_task(me, MessageType.request, "its research assignment")
    await think(me, task, 8_000, 6_500)
    await me.missions.mark_complete(task, {"finding": finding}, 0.9)
    await me.bus.reply(to_message_id=job, payload={"summary": finding})
    say(me.id, f'→ bus: "{finding}"')
    if reviews:
        q = await expect(me, [MessageType.question], "a review question")
        say(me.id, f'reviews "{q.subject}" → APPROVED')
        await me.bus.reply(to_message_id=q, payload={"verdict": "APPROVED", "notes": "indexes on users.email"})


async def strategist(s: Story) -> None:
    me = await s.join("strategist")
    job, task = await expect_task(me, MessageType.request, "its planning assignment")
    q = await me.bus.ask_question(
        subject="Should we add OAuth or simple JWT?", payload={"options": ["OAuth", "JWT"], "deadline": "phase 1"},
        requires_decision=True,
    )
    say(me.id, f'→ bus: QUESTION "Should we add OAuth or simple JWT?" (requires decision, {q})')
    decision = await expect(me, [MessageType.decision], "the decision on OAuth or JWT")
    await think(me, task, 6_000, 4_200)
    await me.missions.mark_complete(task, {"plan": "3 phases", "auth": decision.payload.get("choice")}, 0.85)
    await me.bus.reply(to_message_id=job, payload={"summary": "plan ready"})
    say(me.id, "plan complete, following the decision")


async def dev_lead(s: Story) -> None:
    me = await s.join("dev-lead")
    job = await expect(me, [MessageType.request], "the request to staff the team")
    await asyncio.gather(
        s.spawn("backend-dev", AgentRole.DEVELOPER, 18_000, "dev-lead", ["python", "api"]),
        s.spawn("frontend-dev", AgentRole.DEVELOPER, 18_000, "dev-lead", ["react"]),
    )
    say(me.id, "spawned backend-dev and frontend-dev (temporary, under dev-lead)")
    s.play("backend-dev", lambda: backend_dev(s))
    s.play("frontend-dev", lambda: frontend_dev(s))
    await me.bus.reply(to_message_id=job, payload={"backend": s.id("backend-dev"), "frontend": s.id("frontend-dev")})
    q = await expect(me, [MessageType.question], "the orchestrator's question")
    choice = "Adding compatibility layer"
    await me.bus.reply(to_message_id=q, payload={"decision": choice, "reason": "keeps v1 clients working"}, is_decision=True)
    outcome = await me.bus.record_decision(
        message_id=q, choice=choice, rationale="keeps v1 clients working", impact={"missions": ["release"]}
    )
    say(me.id, f'→ DECISION "{choice}" (audit #{outcome.audit_seq})')


async def backend_dev(s: Story) -> None:
    me = await s.join("backend-dev")
    _, task = await expect_task(me, MessageType.request, "its assignment")
    asked = await me.bus.ask_question(
        to_agent=s.id("architect"), subject="Database schema approved?", payload={"tables": ["users", "sessions"]},
        task_id=task,
    )
    say(me.id, '→ architect: QUESTION "Database schema approved?"')
    answer = await expect(me, [MessageType.reply], "the architect's review")
    if answer.in_reply_to != asked:
        raise RuntimeError("the reply answers another message")
    say(me.id, f"architect says {answer.payload['verdict']}")
    await think(me, task, 12_000, 9_800)
    qa_q = await expect(me, [MessageType.question], "QA's question")
    await me.bus.reply(to_message_id=qa_q, payload={"answer": "yes, cursor-based, 50 per page"})
    say(me.id, "answers QA: list endpoints are paginated")
    await me.missions.mark_complete(task, {"api": "v2", "endpoints": 12}, 0.9)
    say(me.id, "backend mission complete")
    _, release = await expect_task(me, MessageType.request, "the release assignment")
    await think(me, release, 5_000, 3_100)
    await me.bus.handoff(
        to_agent=s.id("qa"), task_id=release, context={"compatibility_layer": "v1 responses kept", "ready_for": "verification"}
    )
    say(me.id, "built the compatibility layer; → HANDOFF release to qa")


async def frontend_dev(s: Story) -> None:
    me = await s.join("frontend-dev")
    _, task = await expect_task(me, MessageType.request, "its assignment")
    await think(me, task, 12_000, 8_700)
    alert = await me.bus.alert(subject="Backend API response format changed, breaking tests", payload={"failing_tests": 14})
    say(me.id, f'→ ALERT ({alert.priority.value}) "Backend API response format changed, breaking tests"')
    go = await expect(me, [MessageType.request], "word on the compatibility question")
    await think(me, task, 4_000, 2_600)
    await me.missions.mark_complete(task, {"screens": 9, "api_compat": go.payload.get("decision")}, 0.88)
    say(me.id, "frontend mission complete")


async def qa(s: Story) -> None:
    me = await s.join("qa")
    await me.bus.ask_question(to_agent=s.id("backend-dev"), subject="Are the list endpoints paginated?", payload={"for": "contract tests"})
    say(me.id, 'monitoring; → backend-dev: QUESTION "Are the list endpoints paginated?"')
    await expect(me, [MessageType.reply], "backend's answer")
    _, task = await expect_task(me, MessageType.handoff, "the release handoff")
    await think(me, task, 5_000, 3_900)
    await me.missions.mark_complete(task, {"tests": 212, "passed": 212}, 0.92)
    say(me.id, "release verified: 212/212 tests pass (quality 0.92 ≥ gate 0.80)")


# -- the orchestrator's part: the seed's seven steps ----------------------------------


async def orchestrate(s: Story) -> dict[str, Any]:
    g = s.g
    before = await g.bus.get_message_stats()
    missions = ["market-research", "architecture-baseline", "security-baseline", "planning", "backend", "frontend", "release"]

    step(1, "The orchestrator starts a new project")
    await s.spawn("orchestrator", AgentRole.ORCHESTRATOR, 150_000, None)
    orch = await s.join("orchestrator")
    say(orch.id, f"spawned (run {s.tag}), heartbeating")
    for m, name in [("market-research", "Market research"), ("architecture-baseline", "Architecture baseline"),
                    ("security-baseline", "Security baseline")]:
        await orch.missions.create_mission(name, MissionPhase.RESEARCH, token_budget=8_000, id=s.id(m))
    await orch.missions.create_mission(
        "Planning: product and auth strategy", MissionPhase.PLANNING, token_budget=6_000, id=s.id("planning"),
        depends_on=[s.id("market-research"), s.id("architecture-baseline"), s.id("security-baseline")],
    )
    say(orch.id, "created the phase −1 missions and phase 0 planning (blocked on all three)")
    await asyncio.gather(
        s.spawn("market-analyst", specialist("market-analyst"), 15_000, "orchestrator", ["market-research"]),
        s.spawn("architect", AgentRole.ARCHITECT, 15_000, "orchestrator", ["system-design"]),
        s.spawn("security", AgentRole.SECURITY, 15_000, "orchestrator", ["threat-modeling"]),
    )
    say(orch.id, "spawned market-analyst, architect, security (3 in parallel)")
    s.play("market-analyst", lambda: researcher(s, "market-analyst", "Market research complete, posting to shared-intelligence", False))
    s.play("architect", lambda: researcher(s, "architect", "Architecture baseline ready", True))
    s.play("security", lambda: researcher(s, "security", "Security baseline ready", False))

    step(2, "Agents research in parallel")
    for m, who, what in [("market-research", "market-analyst", "Research the market"),
                         ("architecture-baseline", "architect", "Draft the architecture baseline"),
                         ("security-baseline", "security", "Draft the security baseline")]:
        await s.assign_and_send(orch, m, who, what)
    for _ in range(3):
        await expect(orch, [MessageType.reply], "the researchers' results")

    step(3, "The orchestrator checks the sync point")

    async def research_done() -> Any:
        p = await orch.missions.phase_status(MissionPhase.RESEARCH)
        return p if p.complete else None

    phase = await until("phase −1 is complete", research_done)
    ready = await orch.missions.check_ready(s.id("planning"))
    if not ready:
        raise RuntimeError(f"planning is not ready: waiting on {ready.waiting_on}")
    say(orch.id, f"phase −1 ({phase.name}) complete: all 3 dependencies met; phase 0 planning is READY")
    for done in ("market-analyst", "security"):
        await orch.spawner.terminate(s.id(done))
    say(orch.id, "terminated market-analyst and security (temporary, work done; unused budget returned)")

    step(4, "Phase 0: planning")
    await s.spawn("strategist", AgentRole.BUSINESS, 10_000, "orchestrator", ["strategy"])
    s.play("strategist", lambda: strategist(s))
    await s.assign_and_send(orch, "planning", "strategist", "Plan the product")
    q = await expect(orch, [MessageType.question], "the strategist's question")
    choice = "Use OAuth for Phase 1, add JWT in Phase 2"
    await orch.bus.reply(to_message_id=q, payload={"decision": choice, "reason": "enterprise customers need SSO first"}, is_decision=True)
    recorded = await orch.bus.record_decision(
        message_id=q, choice=choice, rationale="enterprise customers need SSO first", impact={"phases": [1, 2]}
    )
    say(orch.id, f'→ DECISION "{choice}" (recorded once, audit #{recorded.audit_seq})')
    await expect(orch, [MessageType.reply], "the plan")
    await orch.spawner.terminate(s.id("strategist"))

    step(5, "Development")
    for m, name in [("backend", "Backend API"), ("frontend", "Frontend")]:
        await orch.missions.create_mission(name, MissionPhase.DEVELOPMENT, token_budget=14_000, id=s.id(m))
    await orch.missions.create_mission(
        "Integrate and verify the release", MissionPhase.TESTING, token_budget=10_000, id=s.id("release"), quality_gate=0.8
    )
    for dep in ("backend", "frontend"):
        await orch.missions.add_dependency(s.id("release"), s.id(dep), dependency_type="blocks_on", severity="hard")
    await s.spawn("dev-lead", AgentRole.DEVELOPER, 50_000, "orchestrator", ["leadership", "python"])
    await s.spawn("qa", AgentRole.QA, 12_000, "orchestrator", ["testing"])
    say(orch.id, "spawned dev-lead and qa")
    s.play("dev-lead", lambda: dev_lead(s))
    await orch.bus.request(to_agent=s.id("dev-lead"), subject="Staff the development team")
    await expect(orch, [MessageType.reply], "the dev lead's team")
    await s.assign_and_send(orch, "backend", "backend-dev", "Build the backend API")
    await s.assign_and_send(orch, "frontend", "frontend-dev", "Build the frontend")
    s.play("qa", lambda: qa(s))

    step(6, "When blocked")
    alert = await expect(orch, [MessageType.alert], "an alert")
    say(orch.id, f"got the {alert.priority.value} alert from {alert.sender.rsplit('-', 1)[0]}")
    await orch.bus.ask_question(
        to_agent=s.id("dev-lead"), subject="Can we fix backwards compatibility?", payload={"alert": alert.id},
        requires_decision=True, task_id=s.id("frontend"),
    )
    say(orch.id, '→ dev-lead: QUESTION "Can we fix backwards compatibility?"')
    decided = await expect(orch, [MessageType.decision], "the dev lead's decision")
    await orch.bus.request(
        to_agent=s.id("frontend-dev"), subject="Compatibility layer coming: carry on",
        payload={"decision": decided.payload.get("choice")}, task_id=s.id("frontend"),
    )

    async def status(m: str) -> MissionStatus:
        return (await orch.missions.get_mission(s.id(m))).status

    async def both_done() -> bool | None:
        return (await status("backend") == MissionStatus.COMPLETED and await status("frontend") == MissionStatus.COMPLETED) or None

    await until("backend and frontend are complete", both_done)
    if not await orch.missions.check_ready(s.id("release")):
        raise RuntimeError("the release is not ready")
    say(orch.id, "backend and frontend complete: the release mission is READY")
    await s.assign_and_send(orch, "release", "backend-dev", "Integrate: build the compatibility layer")

    async def released() -> bool | None:
        return await status("release") == MissionStatus.COMPLETED or None

    await until("QA completed the release", released)

    step(7, "Completion")
    for m in missions:
        if await status(m) != MissionStatus.COMPLETED:
            raise RuntimeError(f"mission {m} is {await status(m)}, not COMPLETED")
    say(orch.id, f"all {len(missions)} missions COMPLETED")
    verify = await orch.bus.verify_audit()
    if not verify.ok:
        raise RuntimeError(f"the audit log failed verification: {verify.problems}")
    say(orch.id, f"decision log verified: {verify.records} audit records, chain intact")
    for temporary in ("dev-lead", "architect", "qa"):
        await orch.spawner.terminate(s.id(temporary), subtree=True)
    say(orch.id, "terminated the temporary agents (dev-lead with backend-dev and frontend-dev, architect, qa)")
    for a in s.agents.values():
        await a.stop_heartbeats()
    await g.spawner.terminate(s.id("orchestrator"))
    say(orch.id, "project done: orchestrator terminated, its budget back in the pool")
    return await report(s, missions, verify.records, verify.ok, before)


async def report(s: Story, missions: list[str], audit_records: int, audit_ok: bool, before: Any) -> dict[str, Any]:
    g = s.g
    suffix = f"-{s.tag}"
    agents = [a for a in await g.spawner.list_agents(include_terminated=True) if a.id.endswith(suffix)]
    stats = await g.spawner.get_stats()
    lines = []
    for m in missions:
        mission = await g.missions.get_mission(s.id(m))
        lines.append({
            "id": mission.id, "name": mission.name, "phase": int(str(mission.phase)), "status": mission.status.value,
            "agent": mission.assigned_agent_id, "attempts": mission.attempts, "quality": mission.quality_score,
            "ran_ms": (mission.finished_at - mission.started_at) if mission.started_at and mission.finished_at else None,
            "tokens_used": stats.tokens.used_by_mission.get(mission.id, 0), "token_budget": mission.token_budget,
        })
    after = await g.bus.get_message_stats()

    def diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: v - a.get(k, 0) for k, v in sorted(b.items()) if v - a.get(k, 0) > 0}

    ours = [d for d in await g.bus.decision_history() if d.record.asker.endswith(suffix) or d.record.approver.endswith(suffix)]
    return {
        "run": s.tag,
        "agents": [{"id": a.id, "role": a.role, "parent_id": a.parent_id, "status": a.status.value,
                    "granted": s.granted.get(a.id, a.budget.allocated), "used": a.budget.used} for a in agents],
        "missions": lines,
        "messages": {"total": after.total_messages - before.total_messages,
                     "by_type": diff(before.by_type, after.by_type), "by_priority": diff(before.by_priority, after.by_priority)},
        "decisions": [{"audit_seq": d.audit_seq, "kind": d.kind.value, "question": d.record.question_id,
                       "asker": d.record.asker, "approver": d.record.approver, "choice": d.record.choice} for d in ours],
        "tokens_used": sum(a.budget.used for a in agents),
        "mission_budgets": sum(m["token_budget"] for m in lines),
        "audit": {"records": audit_records, "ok": audit_ok},
    }


def text(r: dict[str, Any]) -> str:
    out = [f"\n== Report (run {r['run']})\n", "Agents and lineage:"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for a in r["agents"]:
        children.setdefault(a["parent_id"], []).append(a)

    def tree(parent: str | None, depth: int) -> None:
        for a in sorted(children.get(parent, []), key=lambda a: a["id"]):
            out.append(f"  {'  ' * depth}{a['id']} ({a['role']}, {a['status']}) tokens {a['used']}/{a['granted']}")
            tree(a["id"], depth + 1)

    tree(None, 0)
    out.append("\nMissions:")
    for m in r["missions"]:
        quality = f"{m['quality']:.2f}" if m["quality"] is not None else "-"
        out.append(
            f"  {m['name']:<34} phase {m['phase']:>2}  {m['status']:<9}  by {m['agent'] or '-':<22} "
            f"{m['ran_ms'] if m['ran_ms'] is not None else '-':>5} ms  quality {quality}  "
            f"tokens {m['tokens_used']}/{m['token_budget']}  attempts {m['attempts']}"
        )
    msgs = r["messages"]
    out.append(f"\nMessages sent in this run: {msgs['total']}")
    out.append("  by type:     " + ", ".join(f"{k} {v}" for k, v in msgs["by_type"].items()))
    out.append("  by priority: " + ", ".join(f"{k} {v}" for k, v in msgs["by_priority"].items()))
    out.append(f"\nDecisions (audit log, {r['audit']['records']} records, chain {'intact' if r['audit']['ok'] else 'BROKEN'}):")
    for d in r["decisions"]:
        what = {"decision_completed": "completed (rationale, impact)", "decision_override": "overridden"}.get(d["kind"], "decided")
        out.append(f"  #{d['audit_seq']:<4} {d['approver']} {what} for {d['asker']}: {d['choice']!r}")
    out.append(
        f"\nTokens: {r['tokens_used']} used against mission budgets of {r['mission_budgets']}; "
        "each agent's unused budget went back to its parent"
    )
    return "\n".join(out)


def check(r: dict[str, Any]) -> list[str]:
    """What the workflow promises; each broken promise, named."""
    broken = [f"mission {m['name']} is {m['status']}" for m in r["missions"] if m["status"] != "COMPLETED"]
    if not r["audit"]["ok"]:
        broken.append("the audit log failed verification")
    decided = sum(1 for d in r["decisions"] if d["kind"] == "decision")
    if decided != 2:
        broken.append(f"expected two decisions, found {decided}")
    return broken


async def main() -> int:
    async with await guild.aio.connect() as g:
        if g.principal != "operator":
            print(f"the workflow starts as the operator; this client is {g.principal}: set GUILD_HOME to the folder `guild dev` made", file=sys.stderr)
            return 64
        s = Story(g)
        story = asyncio.ensure_future(orchestrate(s))
        failed = asyncio.ensure_future(s.failures.get())
        done, _ = await asyncio.wait({story, failed}, return_when=asyncio.FIRST_COMPLETED)
        if failed in done:
            story.cancel()
            raise failed.result()
        failed.cancel()
        r = story.result()
        for t in s.tasks:
            await t
    print(json.dumps(r, indent=2) if QUIET else text(r))
    broken = check(r)
    for b in broken:
        print(f"broken promise: {b}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
