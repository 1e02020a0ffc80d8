"""Guild's wire types, generated from proto-schemas/ by scripts/generate_models.py.

Do not edit: run `python scripts/generate_models.py` after `just schemas`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, conint, constr


class GuildWire(RootModel[Any]):
    root: Any = Field(
        ...,
        description="Every type of Guild's wire contract (proto-schemas/).",
        title="GuildWire",
    )


class Ack(BaseModel):
    """
    Acknowledges a delivery: it is done and will not come again.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    delivery_id: str = Field(..., description="From the delivery.")


class AgentCredentials(BaseModel):
    """
    The credentials Guild minted for an agent: handed to whoever spawned it (or asked for
    new ones), never logged, journaled or published. Save `creds` as the agent's `.creds`
    file (mode 0600), or, when you sent a public key, put `jwt` beside the seed you kept.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    creds: str | None = Field(
        None,
        description="The whole `.creds` text (JWT and seed), when Guild made the key pair; absent when\nthe request carried the public key.",
    )
    jwt: str = Field(
        ...,
        description="The user JWT, bound to the agent id: with it the broker lets the agent use its own\nsubjects only.",
    )
    public_key: str = Field(..., description="The key the credentials are for.")


class AgentRef(BaseModel):
    """
    Names one agent.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )


class AgentStatus(str, Enum):
    """
    Where an agent is in its life.

    | status    | meaning                                                        | live |
    |-----------|----------------------------------------------------------------|------|
    | PENDING   | spawned; its process has not sent a heartbeat yet              | yes  |
    | ACTIVE    | running and ready for work                                     | yes  |
    | WORKING   | holds a task (`assigned_task_id`)                              | yes  |
    | BLOCKED   | paused or blocked, with a reason; gets no new work            | yes  |
    | IDLE      | running, said it has nothing to do; may be given work          | yes  |
    | COMPLETED | terminated after its work; kept for lineage and audit          | no   |
    | FAILED    | terminated by failure or missed heartbeats; kept likewise      | no   |

    Live agents count toward every limit; COMPLETED and FAILED ones count toward none.
    """

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    WORKING = "WORKING"
    BLOCKED = "BLOCKED"
    IDLE = "IDLE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ArchiveMissions(BaseModel):
    """
    Archives one final mission, or every final mission older than a window.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="This mission."
    )
    older_than_ms: conint(ge=0) | None = Field(
        None, description="Or every final mission that finished longer ago than this."
    )


class Archived(BaseModel):
    """
    Missions archived.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    archived: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Their ids."
    )


class AssignMission(BaseModel):
    """
    Starts a READY mission on an agent (ACTIVE).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent; by default the mission's `assigned_agent_id`."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )


class Attempt(BaseModel):
    """
    A failed attempt, kept for the record.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent that ran it."
    )
    at: conint(ge=0) = Field(..., description="When.")
    number: conint(ge=0) = Field(..., description="1 for the first attempt.")
    reason: str = Field(..., description="Why it failed.")


class AuditKind(str, Enum):
    """
    What a record is about.
    """

    decision = "decision"
    decision_completed = "decision_completed"
    decision_override = "decision_override"
    escalation = "escalation"
    conflict = "conflict"
    spawn = "spawn"
    terminate = "terminate"
    denial = "denial"
    reallocation = "reallocation"
    mission = "mission"
    credentials = "credentials"
    scaling = "scaling"
    recovery = "recovery"


class AuditQuery(BaseModel):
    """
    Which audit records: by kind, subject and time. An agent gets those about itself and
    its subtree (the agent it names, acts or asks); the operator and the observer every one.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    about: str | None = Field(
        None,
        description="Only records about this agent, mission or question (the record's `about`).",
    )
    kinds: list[AuditKind] | None = Field(
        [], description="Only these kinds (every kind when empty)."
    )
    limit: conint(ge=0) | None = Field(
        None, description="At most this many, newest last (default 1000)."
    )
    since: conint(ge=0) | None = Field(None, description="At or after.")
    until: conint(ge=0) | None = Field(None, description="Before.")


class Authorization(BaseModel):
    """
    The answer.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    allowed: bool = Field(..., description="Allowed or not.")
    reason: str | None = Field(None, description="Why not.")


class Budget(BaseModel):
    """
    An agent's share of the pool.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    allocated: conint(ge=0) = Field(
        ...,
        description="Tokens held (the seed's `token_budget`, less what was carved out for children).",
    )
    input_tokens: conint(ge=0) | None = Field(
        0,
        description="Of `used`, what commits reported as input (prompt) tokens, OpenTelemetry's\n`gen_ai.usage.input_tokens`; a commit of one number counts in neither split.",
    )
    output_tokens: conint(ge=0) | None = Field(
        0,
        description="Of `used`, what commits reported as output (completion) tokens,\n`gen_ai.usage.output_tokens`.",
    )
    reserved: conint(ge=0) = Field(
        ..., description="Tokens set aside by open reservations."
    )
    used: conint(ge=0) = Field(..., description="Tokens spent (committed).")


class BudgetHolder1(BaseModel):
    """
    An agent (the nearest live ancestor).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="An agent's id, for example `dev-lead-1`."
    )


class BudgetOf(BaseModel):
    """
    An agent's budget.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    budget: Budget = Field(..., description="Its budget.")


class BusRecord5(BaseModel):
    """
    A waiting consumer was served or gave up.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["left"]
    waiter: str = Field(..., description="Its id.")


class BusRecord6(BaseModel):
    """
    Messages and questions that left the working set.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    messages: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Settled messages."
    )
    questions: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Settled questions."
    )
    record: Literal["archived"]


class BusRecord7(BaseModel):
    """
    The figures (written by snapshots, after everything else).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    archived: conint(ge=0) = Field(..., description="Messages archived.")
    by_priority: dict[str, conint(ge=0)] = Field(..., description="Per priority.")
    by_type: dict[str, conint(ge=0)] = Field(..., description="Per type.")
    decision_times_ms: list[conint(ge=0)] = Field(
        ..., description="The latest question-to-decision times, in milliseconds."
    )
    decisions: conint(ge=0) = Field(
        ...,
        description="Questions decided (completions and overrides do not count again).",
    )
    escalations: conint(ge=0) = Field(..., description="Escalations made.")
    messages: conint(ge=0) = Field(
        ..., description="Messages accepted (an alert counts once)."
    )
    next_pos: conint(ge=0) = Field(
        ..., description="The next inbox position to hand out."
    )
    record: Literal["totals"]


class CancelMission(BaseModel):
    """
    Cancels an open mission.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")


class Capability(BaseModel):
    """
    Something an agent can do, with optional parameters: `{"name": "python",
    "params": {"version": "3.11"}}`. `find_available_agents` matches on names.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    name: str = Field(..., description="Lowercase name (a-z 0-9 - _ .).")
    params: dict[str, Any] | None = Field(None, description="Free-form parameters.")


class ClaimNext(BaseModel):
    """
    An agent asks for its next mission, the pull a worker makes (one an auto-scaler started,
    say): the best READY mission of its role meant for it or for nobody, started on it.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    role: (
        constr(
            pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
        )
        | None
    ) = Field(
        None,
        description="The role to claim for: by default the caller's own, and no other may be named.",
    )


class CommitTokens(BaseModel):
    """
    Records what the work used; the rest of the reservation is released.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    input_tokens: conint(ge=0) | None = Field(
        None,
        description="Input (prompt) tokens, OpenTelemetry's `gen_ai.usage.input_tokens`.",
    )
    output_tokens: conint(ge=0) | None = Field(
        None, description="Output (completion) tokens, `gen_ai.usage.output_tokens`."
    )
    reservation_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The reservation."
    )
    used: conint(ge=0) | None = Field(
        None,
        description="Tokens used in all. Give it, or `input_tokens` and `output_tokens`, or all three\nwhen `used` is their sum.",
    )


class ContextWindow(BaseModel):
    """
    What an agent last said about its context window.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    tokens_in_context: conint(ge=0) = Field(
        ..., description="Tokens in the context now."
    )
    window_tokens: conint(ge=0) = Field(
        ..., description="The model's context window, in tokens."
    )


class Copy1(BaseModel):
    """
    Waiting to be consumed; after a `nak` with a delay, not before `not_before`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    attempts: conint(ge=0) = Field(..., description="Deliveries so far.")
    owner: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="The inbox: an agent, or the operator.")
    )
    pos: conint(ge=0) = Field(
        ...,
        description="Its place in the owner's inbox: first in, first out within a priority.",
    )
    not_before: conint(ge=0) | None = Field(
        None, description="Not deliverable before this."
    )
    state: Literal["queued"]


class Copy2(BaseModel):
    """
    Handed to a consumer; delivered again unless acknowledged by `until`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    attempts: conint(ge=0) = Field(..., description="Deliveries so far.")
    owner: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="The inbox: an agent, or the operator.")
    )
    pos: conint(ge=0) = Field(
        ...,
        description="Its place in the owner's inbox: first in, first out within a priority.",
    )
    state: Literal["in_flight"]
    until: conint(ge=0) = Field(..., description="The acknowledgement deadline.")
    waiter: str | None = Field(
        None, description="The waiting consume call it went to, if it went to one."
    )


class Copy3(BaseModel):
    """
    Acknowledged: done.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    attempts: conint(ge=0) = Field(..., description="Deliveries so far.")
    owner: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="The inbox: an agent, or the operator.")
    )
    pos: conint(ge=0) = Field(
        ...,
        description="Its place in the owner's inbox: first in, first out within a priority.",
    )
    at: conint(ge=0) = Field(..., description="When.")
    state: Literal["acked"]


class DecisionQuery(BaseModel):
    """
    Which decisions: by agent (asker or approver), mission, and time.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent: (
        constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") | None
    ) = Field(None, description="Asked or decided by this agent (or the operator).")
    limit: conint(ge=0) | None = Field(
        None, description="At most this many, newest last (default 1000)."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="About this mission."
    )
    since: conint(ge=0) | None = Field(None, description="Decided at or after.")
    until: conint(ge=0) | None = Field(None, description="Decided before.")


class Efficiency(BaseModel):
    """
    Time-weighted parallelization efficiency (working agents over max agents), sampled.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    last_ratio: float = Field(..., description="The last sample's ratio.")
    last_sample_at: conint(ge=0) = Field(..., description="The last sample's time.")
    ratio_ms: float = Field(
        ...,
        description="The integral of the ratio over time, in ratio × milliseconds, up to the last sample.",
    )
    started_at: conint(ge=0) = Field(..., description="When sampling began.")


class EfficiencyStats(BaseModel):
    """
    Parallelization efficiency now and averaged over time (the seed's target is 70%+).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    average: float = Field(..., description="The time-weighted average since `since`.")
    current: float = Field(..., description="Working agents over max agents, now.")
    since: conint(ge=0) = Field(..., description="When sampling began.")


class Empty(BaseModel):
    """
    An empty request or reply: `{}`.
    """

    model_config = ConfigDict(
        extra="allow",
    )


class ErrorCode(str, Enum):
    """
    What went wrong, coarsely; every reply error has one.
    """

    bad_request = "bad_request"
    not_found = "not_found"
    conflict = "conflict"
    forbidden = "forbidden"
    budget_exceeded = "budget_exceeded"
    unavailable = "unavailable"
    rate_limited = "rate_limited"
    internal = "internal"


class Escalation(BaseModel):
    """
    One escalation of an undecided question.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The CRITICAL message that carried it."
    )
    to: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|\*)$") = Field(
        ..., description="Who it went to."
    )


class GroupsQuery(BaseModel):
    """
    How much of the parallel groups to return.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    limit: conint(ge=0) | None = Field(
        None,
        description="At most this many missions across all groups (default 1000; the groups are always\ncomputed over every open mission).",
    )


class Handoff(BaseModel):
    """
    A task transfer (the seed's `bus.handoff`): the mission's assignment moves to `to`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    context: Any | None = Field(None, description="What the receiver needs to know.")
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Your id for the message."
    )
    subject: str | None = Field(
        None, description="A one-line subject; default `Handoff of <task>`."
    )
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The task (mission) handed over; the sender must hold it."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The receiver."
    )


class Heartbeat(BaseModel):
    """
    A heartbeat from the agent named in the subject.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    context_window: ContextWindow | None = Field(
        None, description="The agent's context-window figures, when it has them."
    )


class HeartbeatAck(BaseModel):
    """
    What the spawner knows of the agent after its heartbeat.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    heartbeat_window_ms: conint(ge=0) = Field(
        ..., description="Send the next heartbeat within this many milliseconds."
    )
    status: AgentStatus = Field(
        ..., description="Its status now (BLOCKED means paused: take no new work)."
    )
    status_reason: str | None = Field(
        None, description="Why it is BLOCKED, when it is."
    )


class IssueCredentials(BaseModel):
    """
    New credentials for a live agent; the ones before stop working at once.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent (your child, or any agent for the operator)."
    )
    public_key: str | None = Field(
        None,
        description="The public nkey to mint for; without one Guild makes the key pair and the reply\ncarries the seed.",
    )


class Lost1(BaseModel):
    """
    Journal entries `from..=to` are gone and no snapshot covers them.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: conint(ge=0) = Field(
        ..., alias="from", description="The first missing sequence."
    )
    journal: str = Field(..., description="The journal (`spawner`, `bus`, `mission`).")
    to: conint(ge=0) = Field(..., description="The last missing sequence.")
    what: Literal["journal"]


class Lost2(BaseModel):
    """
    Audit records `from..=to` are gone (the stream was deleted, or is shorter than
    what this service saw appended).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: conint(ge=0) = Field(
        ..., alias="from", description="The first missing sequence."
    )
    to: conint(ge=0) = Field(..., description="The last missing sequence.")
    what: Literal["audit"]


class MarkComplete(BaseModel):
    """
    Marks an ACTIVE mission complete (the seed's `mark_complete`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    output_data: Any | None = Field(
        None, description="Its output (the shared intelligence other agents read)."
    )
    quality_score: float | None = Field(
        None,
        description="0 to 1; below the mission's gate this counts as a failed attempt.",
    )


class MarkFailed(BaseModel):
    """
    Marks an ACTIVE mission's attempt failed (the seed's `mark_failed`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")
    retry: bool | None = Field(
        True, description="Retry while attempts remain (default true)."
    )


class MarkdownExport(BaseModel):
    """
    The decision log as Markdown.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    decisions: conint(ge=0) = Field(..., description="Decisions in it.")
    markdown: str = Field(..., description="The document (a `decisions.md`).")


class MessageType(str, Enum):
    """
    The seed's five message types, plus plain replies.
    """

    request = "request"
    question = "question"
    alert = "alert"
    handoff = "handoff"
    decision = "decision"
    reply = "reply"


class MissionEvent3(BaseModel):
    """
    A dependency was removed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["dependency_removed"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependent."
    )
    on: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependency."
    )


class MissionEvent6(BaseModel):
    """
    A mission started on an agent.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    attempt: conint(ge=0) = Field(..., description="1 for the first attempt.")
    event: Literal["started"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )


class MissionEvent8(BaseModel):
    """
    An attempt failed (including a completion below the quality gate).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    attempt: conint(ge=0) = Field(..., description="Which attempt.")
    event: Literal["attempt_failed"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")
    will_retry: bool = Field(..., description="Whether it goes back to READY.")


class MissionEvent9(BaseModel):
    """
    A mission failed for good: retries exhausted, or a hard dependency failed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    caused_by: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The failed hard dependency that caused it, for a cascade."
    )
    dependents: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ...,
        description="Open missions that depend on it (hard ones fail next, soft ones go on).",
    )
    event: Literal["failed"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")


class MissionEvent10(BaseModel):
    """
    A mission was cancelled.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["cancelled"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")


class MissionEvent11(BaseModel):
    """
    A final mission left the working set.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["archived"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )


class MissionEvent13(BaseModel):
    """
    An ACTIVE mission moved from one agent to another (a HANDOFF).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["handed_off"]
    from_: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., alias="from", description="Who ran it."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="Who runs it now."
    )


class MissionEvent14(BaseModel):
    """
    A second agent claimed a mission another one runs: refused, and escalated by the
    bus instead of the last claim winning.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who asked for the claim.")
    )
    claimant: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="Who claimed it too."
    )
    event: Literal["claim_conflict"]
    holder: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="Who runs it."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )


class MissionEvent15(BaseModel):
    """
    A READY mission has nobody to run it: no free agent of the role, or the mode's
    limit on concurrently active groups is reached.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["waiting"]
    lost_agent: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="The agent that was lost, when that is why (its orchestrator is told).",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reason: str = Field(..., description="Why.")


class MissionLedger(BaseModel):
    """
    A mission's token account, charged alongside the agent's when a reservation names it.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    budget: conint(ge=0) = Field(..., description="Its token budget.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    reserved: conint(ge=0) = Field(..., description="Tokens reserved for it.")
    used: conint(ge=0) = Field(..., description="Tokens spent on it.")


class MissionRef(BaseModel):
    """
    Names one mission.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )


class MissionStats(BaseModel):
    """
    Counts, success rate, retries, quality, budgets and throughput.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When the figures were taken.")
    by_status: dict[str, conint(ge=0)] = Field(..., description="Missions per status.")
    completed_last_hour: conint(ge=0) = Field(
        ..., description="Missions completed in the hour before `at`."
    )
    failed_attempts: conint(ge=0) = Field(
        ..., description="Failed attempts, over all missions."
    )
    mean_duration_ms: float | None = Field(
        None,
        description="Mean time from the last start to completion, in milliseconds.",
    )
    mean_quality: float | None = Field(
        None, description="Mean quality score of completed missions that have one."
    )
    retries: conint(ge=0) = Field(
        ..., description="Attempts beyond the first, over all missions."
    )
    success_rate: float | None = Field(
        None,
        description="Completed over completed plus failed (archived ones by their outcome); `None` before\nany outcome.",
    )
    throughput_per_hour: float = Field(
        ..., description="Completions per hour since the first mission was created."
    )
    token_budget_total: conint(ge=0) = Field(
        ..., description="Token budgets of all missions, summed (at most `u64::MAX`)."
    )
    total: conint(ge=0) = Field(
        ..., description="Every mission, archived ones included."
    )


class MissionStatus(str, Enum):
    """
    Where a mission is in its life (the seed's "Mission Lifecycle").

    PENDING waits for dependencies; READY may start; ACTIVE runs on an agent; COMPLETED,
    FAILED (retries exhausted, or a hard dependency failed) and CANCELLED are final
    outcomes; ARCHIVED takes a final mission out of the working set (it stays retrievable).
    """

    PENDING = "PENDING"
    READY = "READY"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ARCHIVED = "ARCHIVED"


class Nak(BaseModel):
    """
    Gives a delivery back: it comes again after `delay_ms`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    delay_ms: conint(ge=0) | None = Field(
        0, description="Wait this long before delivering it again (default 0)."
    )
    delivery_id: str = Field(..., description="From the delivery.")


class Overridden(BaseModel):
    """
    The decision an override replaced.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    approver: constr(
        pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
    ) = Field(..., description="Its approver.")
    choice: str = Field(..., description="Its choice.")
    decided_at: conint(ge=0) = Field(..., description="When it was made.")


class ParallelGroup(BaseModel):
    """
    A group of open missions that can run at the same time (the seed's
    `get_parallelizable_missions`): each mission's dependencies are finished or in groups
    with a lower index.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    index: conint(ge=0) = Field(
        ...,
        description="The group's layer: 0 for missions without dependencies, else one more than the\ndeepest dependency's.",
    )
    missions: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Its open missions, highest priority first."
    )


class ParallelGroups(BaseModel):
    """
    The seed's parallel groups.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    groups: list[ParallelGroup] = Field(
        ...,
        description="Ordered groups of open missions that can run at the same time.",
    )
    missions: conint(ge=0) = Field(..., description="Open missions in all groups.")
    truncated: bool = Field(
        ...,
        description="The limit cut the list: later groups, or the end of the last one, are left out.",
    )


class Pause(BaseModel):
    """
    Pauses an agent, or its subtree (BLOCKED with a reason; no new work).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    reason: str = Field(..., description="Why.")
    subtree: bool | None = Field(False, description="Its descendants too.")


class Percentiles(BaseModel):
    """
    p50 and p99 of a duration, in milliseconds.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    count: conint(ge=0) = Field(..., description="How many samples.")
    p50_ms: float | None = Field(None, description="Median.")
    p99_ms: float | None = Field(None, description="99th percentile.")


class PhaseRef(BaseModel):
    """
    Names a phase.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    phase: str | int = Field(..., description="The phase.")


class PhaseStatus(BaseModel):
    """
    Where a phase stands (the seed's sync point: "Phase −1 mission complete?").
    """

    model_config = ConfigDict(
        extra="allow",
    )
    by_status: dict[str, conint(ge=0)] = Field(
        ..., description="Its missions per status."
    )
    complete: bool = Field(
        ..., description="Every mission finished, none failed, at least one completed."
    )
    name: str = Field(..., description="Its name.")
    phase: str | int = Field(..., description="The phase.")


class Pool(BaseModel):
    """
    The global pool: the mode's token total, what of it is not held by any agent, and how
    many agents are live (the global agent limit is checked against it).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    free: conint(ge=0) = Field(..., description="Tokens not held by any agent.")
    live_agents: conint(ge=0) = Field(..., description="Agents alive now.")
    total: conint(ge=0) = Field(..., description="The pool's size.")


class Priority(str, Enum):
    """
    The seed's four priority levels. `Ord` puts CRITICAL highest.
    """

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    NORMAL = "NORMAL"
    LOW = "LOW"


class Problem1(BaseModel):
    """
    Stream sequences are missing: records were lost.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: conint(ge=0) = Field(
        ..., alias="from", description="First missing sequence."
    )
    problem: Literal["gap"]
    to: conint(ge=0) = Field(..., description="Last missing sequence.")


class Problem2(BaseModel):
    """
    A record's `prev_hash` does not match the bytes of the record before it: that
    record (or this one) was altered.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    problem: Literal["broken_link"]
    seq: conint(ge=0) = Field(
        ..., description="The record whose `prev_hash` does not match."
    )


class Problem3(BaseModel):
    """
    A record claims another position than the one it is stored at.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    claims: conint(ge=0) = Field(..., description="The position it claims.")
    problem: Literal["misplaced"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")


class Problem4(BaseModel):
    """
    A record is not an audit record.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    problem: Literal["unreadable"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")


class Problem5(BaseModel):
    """
    A record names no signer where every record is signed (a record of version 2 or
    later, or one after a signed record): written by someone who could write to the
    stream, not by a service.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    problem: Literal["unsigned"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")


class Problem6(BaseModel):
    """
    A record names a signer but its signature is missing or does not verify: forged,
    or altered after it was signed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    problem: Literal["bad_signature"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")


class Problem7(BaseModel):
    """
    A record is signed with a key the key history does not list.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    key: str = Field(..., description="The key it names.")
    problem: Literal["unknown_key"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")


class QuestionQuery(BaseModel):
    """
    Which questions: the caller's own and its subtree's (every one for the operator and the
    observer), in the bus's working set (settled ones leave it after `--retention`; their
    decisions stay in the audit log).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    limit: conint(ge=0) | None = Field(
        None, description="At most this many, newest last (default 1000)."
    )
    open_only: bool | None = Field(
        False, description="Only questions that need a decision and have none yet."
    )


class QuestionRef(BaseModel):
    """
    One question, by its id (or one of its escalations' ids).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    question_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The QUESTION's message id (from `ask_question`'s receipt)."
    )


class RaiseAlert(BaseModel):
    """
    To every live agent (the seed's `bus.alert`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    is_critical: bool | None = Field(False, description="CRITICAL when set, else HIGH.")
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Your id for the message."
    )
    payload: Any | None = Field(None, description="Free-form JSON.")
    subject: str = Field(..., description="A one-line subject.")


class Readiness(BaseModel):
    """
    Whether a mission may start.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    ready: bool = Field(..., description="READY now.")
    status: MissionStatus = Field(..., description="Its status.")
    waiting_on: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Dependencies still holding it back."
    )


class ReallocateBudget(BaseModel):
    """
    Moves tokens between two agents of the caller's subtree (orchestrators only).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    amount: conint(ge=0) = Field(..., description="Tokens.")
    from_: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., alias="from", description="Giver."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Receiver.")


class Reallocated(BaseModel):
    """
    Both budgets after a reallocation.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: BudgetOf = Field(..., alias="from", description="The giver.")
    to: BudgetOf = Field(..., description="The receiver.")


class ReassignMission(BaseModel):
    """
    Hands an ACTIVE mission from the agent running it to another (what the bus's HANDOFF
    does). The receiver must be free and may work in the mission's phase; the caller needs
    `handoff_task`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., alias="from", description="The agent running it."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent taking it over."
    )


class RecordDecision(BaseModel):
    """
    Records a decision on a question (the seed's `bus.record_decision`); the approver is the
    principal in the subject.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    choice: str = Field(..., description="The choice.")
    impact: Any | None = Field(None, description="Expected impact.")
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The question."
    )
    rationale: str | None = Field(None, description="Why.")


class Recover(BaseModel):
    """
    The operator accepts a service's lost state (`guild admin recover`): every service
    serves it.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    accept_loss: bool | None = Field(
        False,
        description="Must be `true`: what is missing is gone for good, and writes resume without it.",
    )


class Recovered(BaseModel):
    """
    What a `recover` accepted (empty when nothing was lost).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    lost: list[Lost1 | Lost2] = Field(..., description="The losses accepted.")


class ReleaseTask(BaseModel):
    """
    Takes an agent's task back.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    allocated_at: conint(ge=0) | None = Field(
        None,
        description="Only the allocation made at this time (the agent's `assigned_at` when it was\ngiven the task): undoing an allocation of one's own never releases a later one.",
    )
    reason: str | None = Field(None, description="Why.")
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Only if it holds this task."
    )


class ReleaseTokens(BaseModel):
    """
    Drops a reservation unused.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    reservation_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The reservation."
    )


class RemoveDependency(BaseModel):
    """
    Removes a dependency.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    depends_on: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependency to drop."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependent."
    )


class Reply(BaseModel):
    """
    An answer to any message (the seed's `bus.reply`); with `is_decision`, a DECISION on a
    question whose payload carries `decision` (or `choice`) and `reason`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    is_decision: bool | None = Field(
        False,
        description="This reply decides a question: its addressee, anyone it was escalated to, or the\noperator (or an agent with `can_override_decisions`) may decide it, and the last two\nmay also override a decision already made (recorded as `decision_override`).",
    )
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Your id for the message."
    )
    payload: Any | None = Field(None, description="Free-form JSON.")
    priority: Priority | None = Field(
        None, description="Default NORMAL (HIGH for decisions)."
    )
    subject: str | None = Field(
        None, description="A one-line subject; default `Re: <original subject>`."
    )
    to_message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The message answered."
    )


class Reservation(BaseModel):
    """
    Tokens set aside before a unit of work; committed or released afterwards.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    amount: conint(ge=0) = Field(..., description="Tokens set aside.")
    created_at: conint(ge=0) = Field(..., description="When it was made.")
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The caller's id for it."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission also charged, when named."
    )


class ReserveTokens(BaseModel):
    """
    Sets tokens aside before work, charged to the agent and, when named, a mission.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    amount: conint(ge=0) = Field(..., description="Tokens.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission also charged."
    )
    reservation_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ...,
        description="The caller's id for the reservation. A retry with the same id, amount and\nmission (its reply lost) is answered as the first time and reserves nothing more;\nthe same id with another amount or mission is refused (409\n`reservation_conflict`, field `amount`).",
    )


class Reserved(BaseModel):
    """
    A reservation made.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    budget: Budget = Field(..., description="The agent's budget after it.")
    reservation: Reservation = Field(..., description="The reservation.")


class Resume(BaseModel):
    """
    Resumes a paused agent, or its subtree.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    subtree: bool | None = Field(False, description="Its descendants too.")


class RevokedKey(BaseModel):
    """
    A key an agent held before new credentials replaced it, and when it was revoked.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When it stopped being accepted.")
    public_key: str = Field(..., description="The key.")


class RulingKind(str, Enum):
    """
    What a decision call did.
    """

    decided = "decided"
    completed = "completed"
    unchanged = "unchanged"
    overridden = "overridden"


class ScalingPolicy(BaseModel):
    """
    How an owner wants the agents of one role below it to follow the load.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_budget: conint(ge=0) = Field(
        ..., description="Tokens each new member is carved from the owner's budget."
    )
    agent_prefix: str | None = Field(
        None,
        description="Members are named `<prefix>-<n>`; `<owner>-<role>` by default.",
    )
    cooldown_ms: conint(ge=0) = Field(
        ...,
        description="The least time between two changes, in milliseconds (at least 100).",
    )
    hysteresis: float | None = Field(
        0.5,
        description="The band below the scale-up threshold in which nothing happens, as a fraction of\nit, in [0, 1): 0.5 by default (scale down only when the load would fit half as many\nper member).",
    )
    idle_ttl_ms: conint(ge=0) = Field(
        ...,
        description="How long a member holds no task before it may be scaled down, in milliseconds (at\nleast 100).",
    )
    max_agents: conint(ge=0) = Field(
        ..., description="Members never exceeded (at least 1)."
    )
    min_agents: conint(ge=0) | None = Field(
        0, description="Members kept however low the load (0 by default)."
    )
    owner: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ...,
        description="The agent the members are spawned under, with its authority and budget.",
    )
    phase: str | int | None = Field(
        None,
        description="Only READY missions of this phase count as load; all phases when absent.",
    )
    ready_per_agent: conint(ge=0) | None = Field(
        1,
        description="READY missions per member above which it scales up (1 by default).",
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(
        ..., description="The role of the members, and of the missions counted as load."
    )


class ScalingQuery(BaseModel):
    """
    Which scaling policies to list.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    owner: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Only this owner's."
    )


class ScalingRef(BaseModel):
    """
    Names one scaling policy: its owner and role.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    owner: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The owner."
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="The role.")


class SendRequest(BaseModel):
    """
    Agent A to agent B, a specific task (the seed's `bus.request`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="Your id for the message; a retry with the same id is delivered once.",
    )
    payload: Any | None = Field(None, description="Free-form JSON.")
    priority: Priority | None = Field(None, description="Default NORMAL.")
    subject: str = Field(..., description="A one-line subject.")
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The task (mission) concerned."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The addressee."
    )


class Service(str, Enum):
    """
    A Guild service, as a principal acting on its own account (a heartbeat window
    expiring, a mission retried after its agent was lost) and as a name on the wire.
    """

    spawner = "spawner"
    bus = "bus"
    mission = "mission"


class SetStatus(BaseModel):
    """
    Moves an agent along its lifecycle: ACTIVE, IDLE, or BLOCKED with a reason.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    reason: str | None = Field(None, description="Why (required for BLOCKED).")
    status: AgentStatus = Field(..., description="ACTIVE, IDLE or BLOCKED.")


class Severity(str, Enum):
    """
    How a dependency binds (the seed's `severity`).

    * `hard`: the dependent may start only after the dependency COMPLETED; if the dependency
      fails for good or is cancelled, the dependent FAILS too (and so on down the graph),
      each with an event.
    * `soft`: the dependent waits until the dependency has finished in any way (COMPLETED,
      FAILED or CANCELLED), then proceeds; a soft dependency's failure is reported but
      does not fail the dependent.
    """

    hard = "hard"
    soft = "soft"


class SignedBy(BaseModel):
    """
    Who appended a record: the service and the public key it signs with (the key id).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    key: str = Field(
        ..., description="Its public nkey (`U...`), listed in the audit key history."
    )
    service: Service = Field(
        ..., description="The service (`spawner`, `bus`, `mission`)."
    )


class SpawnCap(str, Enum):
    """
    The three caps on a spawn tree's growth an authority may hold.
    """

    max_depth = "max_depth"
    max_descendants = "max_descendants"
    max_spawns_per_minute = "max_spawns_per_minute"


class SpawnerEvent1(BaseModel):
    """
    An agent was spawned.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The new agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who spawned it.")
    )
    event: Literal["spawned"]
    parent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Its parent."
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="Its role.")
    token_budget: conint(ge=0) = Field(..., description="Tokens it was given.")


class SpawnerEvent2(BaseModel):
    """
    An agent's status changed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["status_changed"]
    from_: AgentStatus = Field(..., alias="from", description="Before.")
    reason: str | None = Field(None, description="Why, when known.")
    to: AgentStatus = Field(..., description="After.")


class SpawnerEvent3(BaseModel):
    """
    An agent was paused.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who paused it.")
    )
    event: Literal["paused"]
    reason: str = Field(..., description="Why.")


class SpawnerEvent4(BaseModel):
    """
    A paused agent was resumed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who resumed it.")
    )
    event: Literal["resumed"]


class SpawnerEvent5(BaseModel):
    """
    An agent ended (COMPLETED or FAILED).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who ended it (the operator for a missed heartbeat).")
    )
    event: Literal["terminated"]
    orphans: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ...,
        description="Its live children at the time, which keep running (see ARCHITECTURE.md).",
    )
    reason: str | None = Field(None, description="Why.")
    returned_to: Literal["pool"] | BudgetHolder1 = Field(
        ..., description="Where they went."
    )
    status: AgentStatus = Field(..., description="COMPLETED or FAILED.")
    unused_returned: conint(ge=0) = Field(..., description="Unused tokens handed back.")


class SpawnerEvent6(BaseModel):
    """
    An agent took a task.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["task_allocated"]
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The task."
    )


class SpawnerEvent7(BaseModel):
    """
    An agent's task was taken back (done, reassigned, or the agent ended).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    agent_lost: bool = Field(
        ...,
        description="Whether the agent was lost (FAILED) rather than done: a mission should be retried.",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["task_released"]
    reason: str = Field(..., description="Why.")
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The task."
    )


class SpawnerEvent8(BaseModel):
    """
    Something was refused for lack of tokens.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent whose budget (or whose mission's) was short."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who asked.")
    )
    event: Literal["budget_exceeded"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission, when its budget was short."
    )
    remaining: conint(ge=0) = Field(..., description="Tokens left.")
    requested: conint(ge=0) = Field(..., description="Tokens asked for.")
    reservation_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="The reservation refused, when a reserve was (the agent's orchestrator is then\nasked for a scope decision).",
    )


class SpawnerEvent9(BaseModel):
    """
    A spawn was refused by a spawn cap (`max_depth`, `max_descendants`,
    `max_spawns_per_minute`): the agent that would have been the parent asks its
    orchestrator what to do, once per cap while the question is open.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The parent the spawn was under."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who asked for the spawn.")
    )
    cap: SpawnCap = Field(..., description="Which cap.")
    child: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The child that was not spawned."
    )
    current: conint(ge=0) = Field(
        ..., description="Where the tree stood (see the rejection)."
    )
    event: Literal["spawn_cap_reached"]
    holder: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent whose cap it is (the parent or an ancestor)."
    )
    limit: conint(ge=0) = Field(..., description="The cap.")


class SpawnerEvent10(BaseModel):
    """
    Something was refused by the authority matrix.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    action: str = Field(..., description="What.")
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who tried.")
    )
    event: Literal["authority_denied"]
    reason: str = Field(..., description="Why not.")
    target: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="On which agent, when one."
    )


class SpawnerEvent11(BaseModel):
    """
    Tokens were moved between agents.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    amount: conint(ge=0) = Field(..., description="How many.")
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who moved them.")
    )
    event: Literal["budget_reallocated"]
    from_: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., alias="from", description="Giver."
    )
    to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Receiver.")


class SpawnerEvent12(BaseModel):
    """
    An agent was given new credentials; the ones before stopped working.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who asked (its parent or the operator).")
    )
    event: Literal["credentials_issued"]


class SpawnerEvent13(BaseModel):
    """
    A scaling policy was set or replaced.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The owner."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who set it.")
    )
    event: Literal["scaling_policy_set"]
    policy: ScalingPolicy = Field(..., description="The policy.")


class SpawnerEvent14(BaseModel):
    """
    A scaling policy was dropped.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The owner."
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who dropped it.")
    )
    event: Literal["scaling_policy_removed"]
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="The policy's role.")


class SpawnerEvent15(BaseModel):
    """
    A policy changed its members: the load it saw and what it did.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The owner."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["scaled"]
    from_: conint(ge=0) = Field(..., alias="from", description="Members before.")
    ready: conint(ge=0) = Field(..., description="The READY missions it saw.")
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="The members' role.")
    spawned: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        None, description="Members spawned."
    )
    terminated: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        None, description="Idle members terminated."
    )
    to: conint(ge=0) = Field(..., description="Members after.")


class SpawnerEvent16(BaseModel):
    """
    A policy wanted more members than a rule let it spawn (the owner's authority,
    caps or budget, or the mode's limit). Told once per rule until a scale-up goes
    through: the owner asks its orchestrator (or the operator) what to do.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The owner."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["scaling_blocked"]
    members: conint(ge=0) = Field(..., description="Members it has.")
    ready: conint(ge=0) = Field(..., description="The READY missions it saw.")
    reason: str = Field(..., description="The refusal, in words.")
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="The members' role.")
    rule: str = Field(..., description="The rule that refused the next spawn.")
    wanted: conint(ge=0) = Field(..., description="Members it wanted.")


class SpawnerEvent17(BaseModel):
    """
    Tokens were spent.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["tokens_committed"]
    input_tokens: conint(ge=0) | None = Field(
        0,
        description="Of them, reported as input tokens (0 when the commit gave one number).",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission charged, when one."
    )
    output_tokens: conint(ge=0) | None = Field(
        0, description="Of them, reported as output tokens."
    )
    tokens: conint(ge=0) = Field(..., description="How many.")


class SpawnerEvent(
    RootModel[
        SpawnerEvent1
        | SpawnerEvent2
        | SpawnerEvent3
        | SpawnerEvent4
        | SpawnerEvent5
        | SpawnerEvent6
        | SpawnerEvent7
        | SpawnerEvent8
        | SpawnerEvent9
        | SpawnerEvent10
        | SpawnerEvent11
        | SpawnerEvent12
        | SpawnerEvent13
        | SpawnerEvent14
        | SpawnerEvent15
        | SpawnerEvent16
        | SpawnerEvent17
    ]
):
    root: (
        SpawnerEvent1
        | SpawnerEvent2
        | SpawnerEvent3
        | SpawnerEvent4
        | SpawnerEvent5
        | SpawnerEvent6
        | SpawnerEvent7
        | SpawnerEvent8
        | SpawnerEvent9
        | SpawnerEvent10
        | SpawnerEvent11
        | SpawnerEvent12
        | SpawnerEvent13
        | SpawnerEvent14
        | SpawnerEvent15
        | SpawnerEvent16
        | SpawnerEvent17
    ) = Field(
        ...,
        description="A spawner event. `name()` is its subject token; `agent()` the agent it is about.",
    )


class SpawnerRecord2(BaseModel):
    """
    The global pool.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["pool"]
    value: Pool


class SpawnerRecord3(BaseModel):
    """
    A mission's token account.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["ledger"]
    value: MissionLedger


class SpawnerRecord4(BaseModel):
    """
    The parallelization-efficiency integral.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["efficiency"]
    value: Efficiency


class Value(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    owner: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="Its owner."
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="Its role.")


class SpawnerRecord6(BaseModel):
    """
    A scaling policy dropped.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["scaling_removed"]
    value: Value


class Terminate(BaseModel):
    """
    Ends an agent (COMPLETED, or FAILED with `failed`); unused tokens go up the lineage.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    failed: bool | None = Field(False, description="End as FAILED.")
    reason: str | None = Field(None, description="Why.")
    subtree: bool | None = Field(False, description="Its live descendants too.")


class TokenStats(BaseModel):
    """
    Token figures: where the pool's tokens are and what was spent.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    allocated: conint(ge=0) = Field(..., description="Tokens held by live agents.")
    input_tokens: conint(ge=0) | None = Field(
        0,
        description="Of `used`, reported as input tokens (`gen_ai.usage.input_tokens`).",
    )
    output_tokens: conint(ge=0) | None = Field(
        0,
        description="Of `used`, reported as output tokens (`gen_ai.usage.output_tokens`).",
    )
    pool_free: conint(ge=0) = Field(..., description="Tokens no agent holds.")
    pool_total: conint(ge=0) = Field(..., description="The pool's size.")
    remaining: conint(ge=0) = Field(
        ..., description="Tokens live agents may still reserve."
    )
    reserved: conint(ge=0) = Field(..., description="Tokens reserved now.")
    used: conint(ge=0) = Field(..., description="Tokens spent, by every agent ever.")
    used_by_mission: dict[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$"), conint(ge=0)] = (
        Field(..., description="Tokens spent per mission.")
    )
    used_by_role: dict[str, conint(ge=0)] = Field(
        ..., description="Tokens spent per role."
    )


class Totals(BaseModel):
    """
    Figures that outlive the messages they count (archiving removes messages, not counts).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    archived: conint(ge=0) = Field(..., description="Messages archived.")
    by_priority: dict[str, conint(ge=0)] = Field(..., description="Per priority.")
    by_type: dict[str, conint(ge=0)] = Field(..., description="Per type.")
    decision_times_ms: list[conint(ge=0)] = Field(
        ..., description="The latest question-to-decision times, in milliseconds."
    )
    decisions: conint(ge=0) = Field(
        ...,
        description="Questions decided (completions and overrides do not count again).",
    )
    escalations: conint(ge=0) = Field(..., description="Escalations made.")
    messages: conint(ge=0) = Field(
        ..., description="Messages accepted (an alert counts once)."
    )
    next_pos: conint(ge=0) = Field(
        ..., description="The next inbox position to hand out."
    )


class Waiter(BaseModel):
    """
    A consume call waiting for a message (a long poll).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: str = Field(..., description="Its id, chosen by the instance holding the call.")
    kinds: list[MessageType] | None = Field(
        None, description="Only messages of these types (every type when empty)."
    )
    owner: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Whose inbox it waits on.")
    )
    pos: conint(ge=0) = Field(
        ...,
        description="Its place among the owner's waiters: the longest waiting is served first.",
    )
    until: conint(ge=0) = Field(..., description="When it gives up.")


class AddDependency(BaseModel):
    """
    `mission_id` blocks on `depends_on` (the seed's `add_dependency(id, dep, "blocks_on", severity)`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    dependency_type: Literal["blocks_on"] | None = Field(
        "blocks_on", description="Always `blocks_on`."
    )
    depends_on: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission it waits for."
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependent."
    )
    severity: Severity | None = Field("hard", description="`hard` (default) or `soft`.")


class AgentQuery(BaseModel):
    """
    A filter over agents: `list` uses it as given; `find_available_agents` adds "available".
    """

    model_config = ConfigDict(
        extra="allow",
    )
    capabilities: list[str] | None = Field(
        [], description="Only agents holding every one of these capability names."
    )
    include_terminated: bool | None = Field(
        False,
        description="Include COMPLETED and FAILED agents (list only; off by default).",
    )
    parent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Only children of this agent."
    )
    role: (
        constr(
            pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
        )
        | None
    ) = Field(None, description="Only this role.")
    status: AgentStatus | None = Field(None, description="Only this status.")


class AllocateTask(BaseModel):
    """
    Gives an available agent a task (the seed's `allocate_task(agent_id, task_id)`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    phase: str | int | None = Field(
        None,
        description="The task's phase, checked against the agent's `scoped_to_phases`.",
    )
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The task (a mission id)."
    )


class AskQuestion(BaseModel):
    """
    A question for a decider (the seed's `bus.ask_question`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    decision_deadline_ms: conint(ge=0) | None = Field(
        None,
        description="With `requires_decision`: how long each decider has before the question escalates,\n1,000 (1 s) to 604,800,000 (7 days). Default: bus-svc's `--decision-deadline`\n(`GUILD_DECISION_DEADLINE`), 120 s.",
    )
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Your id for the message."
    )
    payload: Any | None = Field(
        None, description="Free-form JSON (the seed's reason, figures, options)."
    )
    priority: Priority | None = Field(None, description="Default HIGH.")
    requires_decision: bool | None = Field(
        False,
        description="It needs a DECISION; undecided, it escalates one level up (the asker's\norchestrator's orchestrator, then the operator) after `decision_deadline_ms`.",
    )
    subject: str = Field(..., description="A one-line subject.")
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The task (mission) concerned."
    )
    to: (
        constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") | None
    ) = Field(
        None,
        description="Who should answer; by default the asker's nearest orchestrator, else the operator.",
    )


class AuditRecord(BaseModel):
    """
    One record of the chain, as stored.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    about: str = Field(
        ..., description="The agent, mission or question concerned (a subject token)."
    )
    actor: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who acted.")
    )
    at: conint(ge=0) = Field(..., description="When it happened.")
    data: Any = Field(
        ..., description="The fact itself: a decision record, or the event."
    )
    id: str = Field(
        ...,
        description="A stable id: the JetStream de-duplication id, so a retried append is stored once.",
    )
    kind: AuditKind = Field(..., description="What it is about.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission concerned, when one is."
    )
    prev_hash: str = Field(
        ...,
        description="SHA-256 (hex) of the stored bytes of record `seq - 1`; [`GENESIS_HASH`] for the first.",
    )
    seq: conint(ge=0) = Field(
        ..., description="Its position: equal to its stream sequence."
    )
    signed_by: SignedBy | None = Field(
        None,
        description="The service that appended it and the key that signed it (absent in records made\nbefore records were signed).",
    )
    trace_id: str | None = Field(
        None, description="The W3C trace id of the operation, to find its trace."
    )
    v: conint(ge=0) = Field(..., description="Format version.")


class AuditRecords(BaseModel):
    """
    Audit records as stored (hash-chained, signed), oldest first.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    records: list[AuditRecord] = Field(..., description="The records.")


class Authority(BaseModel):
    """
    What an agent is allowed to do (the seed's `AgentAuthority`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    can_override_decisions: bool = Field(
        ...,
        description="Whether it may override decisions (and decide questions not addressed to it).",
    )
    can_spawn_agents: bool = Field(..., description="Whether it may spawn sub-agents.")
    forbidden_actions: list[str] | None = Field(
        [],
        description="Actions it must not take: Guild's own (`spawn_agent`, ...) or its tools' names.",
    )
    max_depth: conint(ge=0) | None = Field(
        None,
        description="How many generations of sub-agents may exist below it: 1 allows children but no\ngrandchildren, 0 no sub-agents at all. No cap when absent.",
    )
    max_descendants: conint(ge=0) | None = Field(
        None,
        description="How many agents may ever be spawned below it, every generation and terminated ones\nincluded (a lifetime count, unlike `max_parallel_agents`). No cap when absent.",
    )
    max_parallel_agents: conint(ge=0) = Field(
        ..., description="How many live sub-agents it may manage at once."
    )
    max_spawns_per_minute: conint(ge=0) | None = Field(
        None,
        description="How many agents may be spawned below it, every generation, within any 60 s. No\ncap when absent.",
    )
    scoped_to_phases: list[str | int] = Field(
        ..., description="The phases it may work in."
    )


class Authorize(BaseModel):
    """
    May `agent_id` take `action` (in `phase`)?
    """

    model_config = ConfigDict(
        extra="allow",
    )
    action: str = Field(
        ...,
        description="A Guild action (`spawn_agent`, ...) or a tool's own (`deploy_production`).",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The agent."
    )
    phase: str | int | None = Field(None, description="The phase the action is in.")


class BusRecord2(BaseModel):
    """
    One copy's new state.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    copy_: Copy1 | Copy2 | Copy3 = Field(..., alias="copy", description="The copy.")
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The message."
    )
    record: Literal["copy"]


class BusRecord4(BaseModel):
    """
    A consumer started waiting.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: str = Field(..., description="Its id, chosen by the instance holding the call.")
    kinds: list[MessageType] | None = Field(
        None, description="Only messages of these types (every type when empty)."
    )
    owner: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Whose inbox it waits on.")
    )
    pos: conint(ge=0) = Field(
        ...,
        description="Its place among the owner's waiters: the longest waiting is served first.",
    )
    until: conint(ge=0) = Field(..., description="When it gives up.")
    record: Literal["waiting"]


class Consume(BaseModel):
    """
    Takes the next message from the caller's inbox, waiting up to `timeout_ms`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    timeout_ms: conint(ge=0) | None = Field(
        0,
        description="How long to wait for a message (at most 30,000; default 0: do not wait).",
    )
    types: list[MessageType] | None = Field(
        [],
        description="Only messages of these types (every type when empty); the others stay queued.",
    )


class DecisionRecord(BaseModel):
    """
    A recorded decision.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    approver: constr(
        pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
    ) = Field(..., description="Who decided (the seed's `approver_agent`).")
    asker: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who asked.")
    )
    choice: str = Field(..., description="The choice.")
    completed_at: conint(ge=0) | None = Field(
        None, description="When the second call completed the record."
    )
    decided_at: conint(ge=0) = Field(..., description="When it was decided.")
    impact: Any | None = Field(None, description="Expected impact, free-form.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The mission the question concerned."
    )
    overrides: Overridden | None = Field(
        None, description="The decision it replaced, when it is an override."
    )
    question_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The question decided (the seed's `message_id`)."
    )
    rationale: str | None = Field(None, description="Why.")


class Dependency(BaseModel):
    """
    One `blocks_on` dependency: this mission waits for `mission_id`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission waited for."
    )
    severity: Severity = Field(..., description="Hard or soft.")


class ErrorBody(BaseModel):
    """
    What failed, which rule, which field.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    code: ErrorCode = Field(..., description="The coarse category.")
    field: str | None = Field(
        None, description="The request field at fault, when one is."
    )
    message: str = Field(
        ...,
        description="A sentence for people: what failed and, where it helps, what to do.",
    )
    rule: str = Field(
        ...,
        description="The rule broken, a stable snake_case name (`agent_limit_reached`,\n`dependency_cycle`, `payload_too_large`, ...).",
    )


class ErrorReply(BaseModel):
    """
    The body of every error reply: `{"error": {...}}`. A successful reply never has a
    top-level `error` field, so a client can tell them apart without headers.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    error: ErrorBody = Field(..., description="The error.")


class LoggedDecision(BaseModel):
    """
    A decision as the log keeps it: the record and where it sits in the chain.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    audit_seq: conint(ge=0) = Field(..., description="Its audit sequence.")
    kind: AuditKind = Field(..., description="Decision, completion or override.")
    record: DecisionRecord = Field(..., description="The decision.")


class Message(BaseModel):
    """
    A message on the bus: the envelope every delivery carries.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    created_at: conint(ge=0) = Field(..., description="When the bus accepted it.")
    decision_deadline_ms: conint(ge=0) | None = Field(
        None,
        description="For a QUESTION that needs a DECISION: how long its decider has before it escalates\none level up (the bus's `--decision-deadline`, 120 s by default, when unset). An\nescalation carries its question's.",
    )
    from_: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., alias="from", description="The sender.")
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="Unique id (also the de-duplication id)."
    )
    in_reply_to: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The message it answers."
    )
    is_critical: bool | None = Field(
        False,
        description="Raised as critical: an ALERT raised so, or an escalation (both go at CRITICAL).",
    )
    payload: Any = Field(..., description="Free-form JSON.")
    priority: Priority = Field(..., description="Its priority.")
    requires_decision: bool | None = Field(
        False, description="A QUESTION that needs a DECISION."
    )
    subject: str = Field(..., description="A one-line subject.")
    task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The task (mission) it concerns."
    )
    to: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|\*)$") = Field(
        ..., description='The addressee as routed (`"*"` for an alert).'
    )
    traceparent: str | None = Field(
        None,
        description="Its creation context, a W3C `traceparent` (set by the bus when traces are\nexported): a consumer's processing span takes it as parent, so handling the message\njoins the sender's trace. An escalation carries its question's.",
    )
    type: MessageType = Field(..., description="Its type.")


class MessageStats(BaseModel):
    """
    The seed's `{"total_messages": 342, "queue_size": 12, "decisions_recorded": 28}`, and more.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    archived_messages: conint(ge=0) = Field(
        ...,
        description="Messages moved out of the working set by the retention window.",
    )
    by_priority: dict[str, conint(ge=0)] = Field(
        ..., description="Messages per priority."
    )
    by_type: dict[str, conint(ge=0)] = Field(..., description="Messages per type.")
    decision_time: Percentiles = Field(
        ..., description="Question to decision time, over the latest decisions."
    )
    decisions_recorded: conint(ge=0) = Field(
        ...,
        description="Questions decided (completions and overrides do not count again).",
    )
    escalations: conint(ge=0) = Field(..., description="Escalations made.")
    queue_by_agent: dict[str, conint(ge=0)] = Field(
        ..., description="Waiting copies per inbox owner (agent id or `operator`)."
    )
    queue_size: conint(ge=0) = Field(
        ...,
        description="Copies waiting in inboxes, unacknowledged deliveries included.",
    )
    total_messages: conint(ge=0) = Field(
        ..., description="Messages accepted (an alert counts once)."
    )


class Mission(BaseModel):
    """
    A mission (the seed's `manager.create_mission(...)`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    assigned_agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent it is (to be) run by."
    )
    attempts: conint(ge=0) = Field(..., description="Attempts started so far.")
    created_at: conint(ge=0) = Field(..., description="When.")
    created_by: constr(
        pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
    ) = Field(..., description="Who created it.")
    dependents: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        [],
        description="Missions that depend on it (kept so completing it conflicts with a concurrent\n`add_dependency` on it).",
    )
    depends_on: list[Dependency] | None = Field(
        [], description="Its dependencies.", validate_default=True
    )
    end_reason: str | None = Field(
        None, description="Why it ended FAILED or CANCELLED."
    )
    failures: list[Attempt] | None = Field(
        None, description="Failed attempts, oldest first."
    )
    final_status: MissionStatus | None = Field(
        None, description="The outcome an ARCHIVED mission had."
    )
    finished_at: conint(ge=0) | None = Field(
        None, description="When it reached its outcome."
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Unique id.")
    input_data: Any | None = Field(None, description="Input, free-form.")
    max_retries: conint(ge=0) = Field(
        ...,
        description="Retries after the first attempt (3 by default: up to 4 attempts).",
    )
    name: str = Field(..., description="What it is.")
    output_data: Any | None = Field(
        None,
        description='Output: the seed\'s "shared intelligence", readable by any agent.',
    )
    phase: str | int = Field(..., description="Its phase.")
    priority: conint(ge=0, le=255) = Field(
        ..., description="1 (lowest) to 10 (highest)."
    )
    quality_gate: float | None = Field(
        None, description="A completion scoring below this counts as a failed attempt."
    )
    quality_score: float | None = Field(
        None, description="The last quality score, 0 to 1."
    )
    role: (
        constr(
            pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
        )
        | None
    ) = Field(
        None,
        description="The role that runs it: auto-scaling counts READY missions by it, and `claim_next`\nhands it only to an agent of that role. `None`: any agent, and no policy counts it.",
    )
    started_at: conint(ge=0) | None = Field(
        None, description="When its current (or last) attempt started."
    )
    status: MissionStatus = Field(..., description="Where it is in its life.")
    token_budget: conint(ge=0) = Field(..., description="Tokens it may use.")
    updated_at: conint(ge=0) = Field(..., description="When its record last changed.")
    waiting_on: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        [], description="Dependencies not yet satisfied; READY when empty."
    )


class MissionEvent1(BaseModel):
    """
    A mission was created.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who created it.")
    )
    event: Literal["created"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    phase: str | int = Field(..., description="Its phase.")
    status: MissionStatus = Field(..., description="PENDING or READY.")


class MissionEvent2(BaseModel):
    """
    A dependency was added.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["dependency_added"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependent."
    )
    on: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The dependency."
    )
    severity: Severity = Field(..., description="Hard or soft.")


class MissionEvent4(BaseModel):
    """
    A mission's status changed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["status_changed"]
    from_: MissionStatus = Field(..., alias="from", description="Before.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    to: MissionStatus = Field(..., description="After.")


class MissionEvent5(BaseModel):
    """
    A mission's dependencies are all met: it may start (pushed, nobody polls).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    assigned_agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent meant to run it."
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["ready"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    phase: str | int = Field(..., description="Its phase.")


class MissionEvent7(BaseModel):
    """
    A mission completed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["completed"]
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    phase: str | int = Field(..., description="Its phase.")
    quality_score: float | None = Field(None, description="Its quality score.")


class MissionEvent12(BaseModel):
    """
    Every mission of a phase has completed (the seed's sync point).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    at: conint(ge=0) = Field(..., description="When.")
    event: Literal["phase_completed"]
    missions: conint(ge=0) = Field(..., description="How many missions it had.")
    phase: str | int = Field(..., description="The phase.")


class MissionEvent(
    RootModel[
        MissionEvent1
        | MissionEvent2
        | MissionEvent3
        | MissionEvent4
        | MissionEvent5
        | MissionEvent6
        | MissionEvent7
        | MissionEvent8
        | MissionEvent9
        | MissionEvent10
        | MissionEvent11
        | MissionEvent12
        | MissionEvent13
        | MissionEvent14
        | MissionEvent15
    ]
):
    root: (
        MissionEvent1
        | MissionEvent2
        | MissionEvent3
        | MissionEvent4
        | MissionEvent5
        | MissionEvent6
        | MissionEvent7
        | MissionEvent8
        | MissionEvent9
        | MissionEvent10
        | MissionEvent11
        | MissionEvent12
        | MissionEvent13
        | MissionEvent14
        | MissionEvent15
    ) = Field(
        ...,
        description="A mission event. `name()` is its subject token; `about()` the mission (or phase).",
    )


class MissionList(BaseModel):
    """
    Missions.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    missions: list[Mission] = Field(..., description="Matching missions, newest first.")
    total: conint(ge=0) = Field(..., description="How many matched in all.")


class MissionOutcome(BaseModel):
    """
    The mission after `mark_complete` or `mark_failed`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission: Mission = Field(..., description="The mission now.")
    will_retry: bool = Field(
        ...,
        description="It went back to READY for another attempt (the seed's `mark_failed(...) -> True`).",
    )


class MissionQuery(BaseModel):
    """
    A filter over missions.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="Only missions assigned to this agent."
    )
    include_archived: bool | None = Field(
        False, description="Include ARCHIVED missions (off by default)."
    )
    limit: conint(ge=0) | None = Field(
        None, description="At most this many (default 1000)."
    )
    phase: str | int | None = Field(None, description="Only this phase.")
    status: MissionStatus | None = Field(None, description="Only this status.")


class MissionStatistics(BaseModel):
    """
    Mission figures plus what the spawner's ledgers say was spent on them.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    missions: MissionStats = Field(
        ..., description="Counts, success rate, retries, quality, throughput."
    )
    tokens_reserved: conint(ge=0) = Field(
        ..., description="Tokens reserved for missions now."
    )
    tokens_used: conint(ge=0) = Field(
        ..., description="Tokens spent on missions (from the spawner's ledgers)."
    )


class NewMission(BaseModel):
    """
    A new mission (the seed's `create_mission(name, phase, assigned_agent_id, token_budget,
    priority, input_data)`, plus retries, a quality gate and dependencies).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    assigned_agent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The agent meant to run it."
    )
    depends_on: list[Dependency] | None = Field(
        [], description="Dependencies to add at once.", validate_default=True
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Its id.")
    input_data: Any | None = Field(None, description="Input, free-form.")
    max_retries: conint(ge=0) | None = Field(
        3, description="Retries after the first attempt; 3 by default."
    )
    name: str = Field(..., description="What it is (1 to 200 characters).")
    phase: str | int = Field(..., description="Its phase.")
    priority: conint(ge=0, le=255) | None = Field(
        5, description="1 (lowest) to 10 (highest); 5 by default."
    )
    quality_gate: float | None = Field(
        None,
        description="A completion scoring below this (0 to 1) counts as a failed attempt.",
    )
    role: (
        constr(
            pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
        )
        | None
    ) = Field(
        None,
        description="The role that runs it: auto-scaling counts READY missions by it, and `claim_next`\nhands it only to an agent of that role. `None`: any agent, and no policy counts it.",
    )
    token_budget: conint(ge=0) | None = Field(0, description="Tokens it may use.")


class Output(BaseModel):
    """
    One mission's output.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    finished_at: conint(ge=0) | None = Field(None, description="When it completed.")
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The mission."
    )
    name: str = Field(..., description="Its name.")
    output_data: Any = Field(..., description="Its output.")
    phase: str | int = Field(..., description="Its phase.")
    quality_score: float | None = Field(None, description="Its quality score.")


class OutputQuery(BaseModel):
    """
    Whose outputs: one mission's, or a whole phase's.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="This mission."
    )
    phase: str | int | None = Field(
        None, description="Or every completed mission of this phase."
    )


class Outputs(BaseModel):
    """
    The seed's shared intelligence.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    outputs: list[Output] = Field(..., description="Completed missions' outputs.")


class Posted(BaseModel):
    """
    A message as the bus keeps it: the envelope and one copy per recipient, sorted by owner.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    copies: list[Copy1 | Copy2 | Copy3] = Field(
        ..., description="The copies, sorted by owner."
    )
    message: Message = Field(..., description="The envelope.")


class Problem8(BaseModel):
    """
    A record was signed by a service that does not append its kind (a mission-svc key
    on a decision, say).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    kind: AuditKind = Field(..., description="The record's kind.")
    problem: Literal["wrong_signer"]
    seq: conint(ge=0) = Field(..., description="Its stream sequence.")
    service: Service = Field(..., description="The service that signed it.")


class QuestionState(BaseModel):
    """
    A question that is being, or was, decided: the bus keeps one per QUESTION.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    decision: DecisionRecord | None = Field(None, description="The decision in force.")
    escalations: list[Escalation] | None = Field(
        None, description="Where it was escalated, in order."
    )
    question: Message = Field(..., description="The question as routed.")
    superseded: list[DecisionRecord] | None = Field(
        None, description="Decisions replaced by overrides, oldest first."
    )


class Scaling(BaseModel):
    """
    A policy in force, with what it has done so far.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    blocked_by: str | None = Field(
        None,
        description="The rule that held the last scale-up short, until one goes through: the owner is\nasked once per rule, not once per tick.",
    )
    last_change_at: conint(ge=0) | None = Field(
        None,
        description="Its last change of members, either way: the cool-down runs from it.",
    )
    policy: ScalingPolicy = Field(..., description="The policy.")
    set_at: conint(ge=0) = Field(..., description="When.")
    set_by: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$") = (
        Field(..., description="Who set it.")
    )
    spawned: conint(ge=0) | None = Field(
        0, description="Members spawned under it so far (names the next one)."
    )


class ScalingState(BaseModel):
    """
    A scaling policy in force and its live members.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    members: list[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        ..., description="Its live members."
    )
    scaling: Scaling = Field(..., description="The policy and what it has done.")


class SpawnRequest(BaseModel):
    """
    A request to spawn an agent (the seed's `spawner.spawn(...)`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    authority: Authority | None = Field(
        None,
        description="Its authority; by default its role's default, clamped to the parent's.",
    )
    capabilities: list[Capability] | None = Field(
        [], description="What it can do.", validate_default=True
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The new agent's id."
    )
    parent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="The spawning agent; `None` spawns a root agent (operator only).",
    )
    public_key: str | None = Field(
        None,
        description="The public nkey its credentials are to be minted for (`U...`). Generate the key\npair yourself and send only the public key, and no secret crosses the wire: the\nreply carries the JWT alone. Without one, Guild makes the key pair and the reply\ncarries a whole `.creds` bundle.",
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="Its role.")
    token_budget: conint(ge=0) = Field(
        ...,
        description="Tokens carved from the parent (or the global pool for a root).",
    )


class Spawned(BaseModel):
    """
    A spawned agent: its profile, and its credentials when Guild runs with authentication.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    assigned_at: conint(ge=0) | None = Field(
        None,
        description="When it was given that task: an allocation is judged by its own age\n([`crate::allocation`]).",
    )
    assigned_task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The task (mission) it is working on."
    )
    authority: Authority = Field(..., description="What it is allowed to do.")
    autoscaled: bool | None = Field(
        None,
        description="Spawned by its parent's scaling policy for its role: the policy may scale it down.",
    )
    budget: Budget = Field(..., description="Its tokens.")
    capabilities: list[Capability] | None = Field(
        [], description="What it can do.", validate_default=True
    )
    context_window: ContextWindow | None = Field(
        None, description="What it last reported about its context window."
    )
    credential_key: str | None = Field(
        None,
        description="The public key of the credentials Guild minted for it: the broker knows it by\nthis key. `None` where Guild runs without authentication.",
    )
    credentials: AgentCredentials | None = Field(
        None, description="Its credentials (absent on an insecure Guild)."
    )
    descendants_spawned: conint(ge=0) | None = Field(
        None,
        description="Agents spawned below it so far, every generation, terminated ones included: what\n`authority.max_descendants` caps (counted while it holds that cap).",
    )
    ended_at: conint(ge=0) | None = Field(None, description="When it was terminated.")
    free_since: conint(ge=0) | None = Field(
        None,
        description="Since when it has held no task (its spawn, its last task's release, or its return\nfrom BLOCKED); `None` while it holds one. Scaling down waits for a policy's idle\ntime from it.",
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Unique id.")
    last_heartbeat_at: conint(ge=0) | None = Field(
        None, description="Its last heartbeat; `None` until the first."
    )
    live_children: conint(ge=0) = Field(
        ..., description="Its live sub-agents, checked against `max_parallel_agents`."
    )
    parent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="The agent that spawned it; `None` for a root agent spawned by the operator.",
    )
    recent_spawns: list[conint(ge=0)] | None = Field(
        None,
        description="When the spawns below it within the last minute were made, oldest first: what\n`authority.max_spawns_per_minute` caps (kept while it holds that cap, at most that\nmany).",
    )
    reservations: dict[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$"), Reservation] | None = (
        Field(None, description="Open token reservations, by id.")
    )
    revoked_keys: list[RevokedKey] | None = Field(
        None,
        description="Keys of credentials it held before a re-issue; they are revoked, as its current key\nis once it is no longer live.",
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="Its role.")
    settled_reservations: list[Reservation] | None = Field(
        None,
        description="The last reservations committed or released ([`SETTLED_KEPT`], oldest first): a\nreserve delivered again after its reservation settled is recognised, not made\ntwice.",
    )
    spawned_at: conint(ge=0) = Field(..., description="When it was spawned.")
    spawned_by: constr(
        pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
    ) = Field(..., description="Who spawned it.")
    status: AgentStatus = Field(..., description="Where it is in its life.")
    status_reason: str | None = Field(
        None, description="Why it is BLOCKED or FAILED, when it is."
    )
    temporary: bool = Field(
        ...,
        description="Spawned by another agent: the orchestrator terminates it when its work is done.",
    )
    updated_at: conint(ge=0) = Field(..., description="When its record last changed.")


class SpawnerRecord5(BaseModel):
    """
    A scaling policy in force.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["scaling"]
    value: Scaling


class SpawnerStats(BaseModel):
    """
    The seed's `{"total_agents": 8, "active_agents": 3, "capacity": 0.4}`, plus the rest of
    what an operator watches.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    active_agents: conint(ge=0) = Field(..., description="Agents ACTIVE or WORKING.")
    by_role: dict[str, conint(ge=0)] = Field(..., description="Live agents per role.")
    by_status: dict[str, conint(ge=0)] = Field(
        ..., description="Agents per status, terminated ones included."
    )
    capacity: float = Field(..., description="`total_agents / max_agents`.")
    context_window_utilization: float | None = Field(
        None,
        description="Mean context-window utilization over live agents that reported one (the seed's\ntarget is 0.8 to 0.9); `None` when none reported.",
    )
    cost_usd: float = Field(
        ..., description="Cost of the tokens used, at the configured price."
    )
    max_agents: conint(ge=0) = Field(..., description="The global agent limit.")
    parallelization_efficiency: EfficiencyStats = Field(
        ..., description="Working agents over max agents."
    )
    price_per_1k_tokens: float = Field(
        ..., description="The configured price per 1,000 tokens."
    )
    terminated_agents: conint(ge=0) = Field(
        ..., description="Agents that ended (COMPLETED or FAILED), kept for lineage."
    )
    tokens: TokenStats = Field(..., description="Token figures.")
    total_agents: conint(ge=0) = Field(
        ..., description="Live agents (they count toward `max_agents`)."
    )


class VerifyReport(BaseModel):
    """
    The result of verifying the chain and its signatures.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    head_hash: str = Field(
        ...,
        description="The hash of the last record's bytes: keep it elsewhere, and a truncated or\nrewritten chain is caught by comparing (`guild decisions verify --expect-head`).",
    )
    last_seq: conint(ge=0) = Field(
        ..., description="The last record's sequence (0 when empty)."
    )
    ok: bool = Field(
        ...,
        description="No problems (unsigned records are not a problem: they predate signing).",
    )
    problems: list[
        Problem1
        | Problem2
        | Problem3
        | Problem4
        | Problem5
        | Problem6
        | Problem7
        | Problem8
    ] = Field(..., description="What is wrong, in stream order.")
    records: conint(ge=0) = Field(..., description="Records read.")
    signatures_checked: bool | None = Field(
        False,
        description="Whether signatures were checked (a key history was at hand).",
    )
    signed: conint(ge=0) | None = Field(
        0,
        description="Records whose signature verified, by a key of a service that appends their kind.",
    )
    unsigned: list[conint(ge=0)] | None = Field(
        [],
        description="Records that name no signer, made before records were signed: reported as\nunsigned, not as forged.",
    )


class AgentProfile(BaseModel):
    """
    An agent as the registry knows it (the seed's `AgentProfile`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    assigned_at: conint(ge=0) | None = Field(
        None,
        description="When it was given that task: an allocation is judged by its own age\n([`crate::allocation`]).",
    )
    assigned_task_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None, description="The task (mission) it is working on."
    )
    authority: Authority = Field(..., description="What it is allowed to do.")
    autoscaled: bool | None = Field(
        None,
        description="Spawned by its parent's scaling policy for its role: the policy may scale it down.",
    )
    budget: Budget = Field(..., description="Its tokens.")
    capabilities: list[Capability] | None = Field(
        [], description="What it can do.", validate_default=True
    )
    context_window: ContextWindow | None = Field(
        None, description="What it last reported about its context window."
    )
    credential_key: str | None = Field(
        None,
        description="The public key of the credentials Guild minted for it: the broker knows it by\nthis key. `None` where Guild runs without authentication.",
    )
    descendants_spawned: conint(ge=0) | None = Field(
        None,
        description="Agents spawned below it so far, every generation, terminated ones included: what\n`authority.max_descendants` caps (counted while it holds that cap).",
    )
    ended_at: conint(ge=0) | None = Field(None, description="When it was terminated.")
    free_since: conint(ge=0) | None = Field(
        None,
        description="Since when it has held no task (its spawn, its last task's release, or its return\nfrom BLOCKED); `None` while it holds one. Scaling down waits for a policy's idle\ntime from it.",
    )
    id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(..., description="Unique id.")
    last_heartbeat_at: conint(ge=0) | None = Field(
        None, description="Its last heartbeat; `None` until the first."
    )
    live_children: conint(ge=0) = Field(
        ..., description="Its live sub-agents, checked against `max_parallel_agents`."
    )
    parent_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") | None = Field(
        None,
        description="The agent that spawned it; `None` for a root agent spawned by the operator.",
    )
    recent_spawns: list[conint(ge=0)] | None = Field(
        None,
        description="When the spawns below it within the last minute were made, oldest first: what\n`authority.max_spawns_per_minute` caps (kept while it holds that cap, at most that\nmany).",
    )
    reservations: dict[constr(pattern=r"^[A-Za-z0-9_-]{1,64}$"), Reservation] | None = (
        Field(None, description="Open token reservations, by id.")
    )
    revoked_keys: list[RevokedKey] | None = Field(
        None,
        description="Keys of credentials it held before a re-issue; they are revoked, as its current key\nis once it is no longer live.",
    )
    role: constr(
        pattern=r"^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
    ) = Field(..., description="Its role.")
    settled_reservations: list[Reservation] | None = Field(
        None,
        description="The last reservations committed or released ([`SETTLED_KEPT`], oldest first): a\nreserve delivered again after its reservation settled is recognised, not made\ntwice.",
    )
    spawned_at: conint(ge=0) = Field(..., description="When it was spawned.")
    spawned_by: constr(
        pattern=r"^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
    ) = Field(..., description="Who spawned it.")
    status: AgentStatus = Field(..., description="Where it is in its life.")
    status_reason: str | None = Field(
        None, description="Why it is BLOCKED or FAILED, when it is."
    )
    temporary: bool = Field(
        ...,
        description="Spawned by another agent: the orchestrator terminates it when its work is done.",
    )
    updated_at: conint(ge=0) = Field(..., description="When its record last changed.")


class BusRecord1(BaseModel):
    """
    A new message and its copies.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    copies: list[Copy1 | Copy2 | Copy3] = Field(
        ..., description="The copies, sorted by owner."
    )
    message: Message = Field(..., description="The envelope.")
    record: Literal["posted"]


class BusRecord3(BaseModel):
    """
    A question's state (asked, decided, escalated).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    decision: DecisionRecord | None = Field(None, description="The decision in force.")
    escalations: list[Escalation] | None = Field(
        None, description="Where it was escalated, in order."
    )
    question: Message = Field(..., description="The question as routed.")
    superseded: list[DecisionRecord] | None = Field(
        None, description="Decisions replaced by overrides, oldest first."
    )
    record: Literal["question"]


class BusRecord(
    RootModel[
        BusRecord1
        | BusRecord2
        | BusRecord3
        | BusRecord4
        | BusRecord5
        | BusRecord6
        | BusRecord7
    ]
):
    root: (
        BusRecord1
        | BusRecord2
        | BusRecord3
        | BusRecord4
        | BusRecord5
        | BusRecord6
        | BusRecord7
    ) = Field(
        ...,
        description="What the bus saves: each record is one change, folded in order by every instance.",
    )


class Changed(BaseModel):
    """
    The agents an operation changed, as they are now.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agents: list[AgentProfile] = Field(..., description="Changed agents.")


class Claimed(BaseModel):
    """
    What a claim took.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    mission: Mission | None = Field(
        None,
        description="The mission now ACTIVE on the caller; `null` when no READY mission of the role is\nleft for it.",
    )


class DecisionList(BaseModel):
    """
    Decisions from the audit log, oldest first.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    decisions: list[LoggedDecision] = Field(..., description="The decisions.")


class DecisionOutcome(BaseModel):
    """
    What a decision call did.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    audit_seq: conint(ge=0) | None = Field(
        None,
        description="The audit record written for this call (none when unchanged).",
    )
    decision: DecisionRecord = Field(..., description="The decision in force.")
    ruling: RulingKind = Field(
        ..., description="Decided, completed, unchanged, or overridden."
    )


class Delivery(BaseModel):
    """
    A message handed to a consumer. Acknowledge it with `delivery_id` within the ack
    window, or it is delivered again.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    attempt: conint(ge=0) = Field(
        ..., description="1 on first delivery, more on redelivery."
    )
    delivery_id: str = Field(
        ..., description="What `ack` and `nak` take: `<message>.<owner>.<attempt>`."
    )
    message: Message = Field(..., description="The message.")


class QuestionList(BaseModel):
    """
    Questions, oldest first.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    questions: list[QuestionState] = Field(
        ..., description="Each with its decision, overrides and escalations."
    )


class Receipt(BaseModel):
    """
    The bus accepted a message: it is stored and will be delivered.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    created_at: conint(ge=0) = Field(..., description="When the bus accepted it.")
    decision: DecisionOutcome | None = Field(
        None, description="For a reply with `is_decision`: the decision."
    )
    delivered_to: list[constr(pattern=r"^([A-Za-z0-9_-]{1,64}|\*)$")] = Field(
        ..., description="The inboxes it went to."
    )
    duplicate: bool | None = Field(
        False,
        description="The same message id was sent before: nothing new was stored.",
    )
    message_id: constr(pattern=r"^[A-Za-z0-9_-]{1,64}$") = Field(
        ..., description="The message id."
    )
    priority: Priority = Field(..., description="Its priority.")
    to: constr(pattern=r"^([A-Za-z0-9_-]{1,64}|\*)$") = Field(
        ..., description="Its addressee as routed."
    )
    type: MessageType = Field(..., description="Its type.")


class ScalingList(BaseModel):
    """
    Scaling policies.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    policies: list[ScalingState] = Field(..., description="By owner and role.")


class SpawnerRecord1(BaseModel):
    """
    An agent.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    record: Literal["agent"]
    value: AgentProfile


class SpawnerRecord(
    RootModel[
        SpawnerRecord1
        | SpawnerRecord2
        | SpawnerRecord3
        | SpawnerRecord4
        | SpawnerRecord5
        | SpawnerRecord6
    ]
):
    root: (
        SpawnerRecord1
        | SpawnerRecord2
        | SpawnerRecord3
        | SpawnerRecord4
        | SpawnerRecord5
        | SpawnerRecord6
    ) = Field(
        ...,
        description="One durable piece of spawner state. A service stores each under its own key and feeds\nwhatever it reads back through [`Registry::apply`].",
    )


class AgentList(BaseModel):
    """
    Agents.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    agents: list[AgentProfile] = Field(..., description="The agents, by id.")


class Consumed(BaseModel):
    """
    The next message, or none when the timeout passed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    delivery: Delivery | None = Field(None, description="The message, if one came.")
