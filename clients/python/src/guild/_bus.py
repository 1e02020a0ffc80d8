"""The consultation bus (``guild-bus``), asyncio."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import _generated as wire
from . import _trace
from ._client import checked, parse
from .errors import GuildError, InvalidArgument
from .models import (
    AuditKind,
    AuditRecord,
    DecisionOutcome,
    Delivery,
    LoggedDecision,
    MarkdownExport,
    Message,
    MessagePriority,
    MessageStats,
    MessageType,
    QuestionState,
    Receipt,
    Recovered,
    Sent,
    VerifyReport,
)

if TYPE_CHECKING:
    from ._client import AsyncGuild

log = logging.getLogger("guild")

#: The longest a consume may wait on the bus (the contract's 30,000 ms).
MAX_CONSUME_WAIT = 30.0

Handler = Callable[[Message], Awaitable[Any] | Any]
MessageRef = str | Message


def _id_of(ref: MessageRef) -> str:
    return ref.id if isinstance(ref, Message) else str(ref)


def _types(types: Sequence[MessageType | str] | MessageType | str | None) -> list[str] | None:
    if types is None:
        return None
    if isinstance(types, (str, MessageType)):
        types = [types]
    out = []
    for t in types:
        value = t.value if isinstance(t, MessageType) else str(t).lower()
        if value not in {m.value for m in MessageType}:
            raise InvalidArgument(
                f"{t!r} is not a message type ({', '.join(m.value for m in MessageType)})",
                rule="invalid_message_type",
                field="types",
            )
        out.append(value)
    return out


def _ms(seconds: float, field: str) -> int:
    if seconds < 0 or seconds > MAX_CONSUME_WAIT:
        raise InvalidArgument(
            f"{seconds!r} s: a consume waits 0 to {MAX_CONSUME_WAIT:g} s", rule="invalid_timeout", field=field
        )
    return int(seconds * 1000)


class Subscription:
    """Messages of some types taken from one inbox and handed to a handler, in the
    background, until :meth:`stop`. A message is acknowledged once its handler
    returns; a handler that raises gives it back (``nak``) and stops the subscription,
    and :meth:`stop` (or :meth:`wait`) raises what it raised."""

    def __init__(self, task: asyncio.Task[None], agent_id: str, types: list[str] | None) -> None:
        self._task = task
        self.agent_id = agent_id
        self.types = types
        #: How many messages its handler has taken.
        self.handled = 0

    @property
    def running(self) -> bool:
        """Whether it still runs."""
        return not self._task.done()

    async def wait(self) -> None:
        """Waits until it ends (its handler failed, or it was stopped)."""
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def stop(self) -> None:
        """Stops it (a consume in flight is abandoned; its message comes again after the
        bus's ack window); raises its handler's error, if it failed."""
        if not self._task.done():
            self._task.cancel()
        await self.wait()


class AsyncBus:
    """Messages by priority between agents, questions and decisions, the audit log (the
    seed's ``ConsultationBus``). A send's ``from_agent`` is who sends, and the call goes
    over that agent's connection; ``None`` means the view's identity."""

    service = "bus"

    def __init__(self, guild: AsyncGuild, acting_as: str | None = None) -> None:
        self._guild = guild
        self._as = acting_as

    async def _send(self, operation: str, body: dict[str, Any], by: str | None, field: str = "from_agent") -> Sent:
        reply = await self._guild.call(self.service, operation, body, by=by or self._as, field=field)
        return Sent(parse(Receipt, reply, operation))

    async def _call(self, operation: str, body: dict[str, Any], by: str | None, field: str = "by", timeout: float | None = None) -> Any:
        return await self._guild.call(self.service, operation, body, by=by or self._as, field=field, timeout=timeout)

    async def request(
        self,
        *,
        to_agent: str,
        subject: str,
        payload: Any = None,
        from_agent: str | None = None,
        priority: MessagePriority | str | None = None,
        task_id: str | None = None,
        message_id: str | None = None,
    ) -> Sent:
        """A REQUEST from ``from_agent`` to ``to_agent`` (NORMAL by default); returns the
        message id. A retry with the same ``message_id`` is delivered once."""
        body = checked(
            wire.SendRequest,
            {"to": to_agent, "subject": subject, "payload": payload, "priority": _priority(priority),
             "task_id": task_id, "message_id": message_id},
            rename={"to": "to_agent"},
        )
        return await self._send("request", body, from_agent)

    async def ask_question(
        self,
        *,
        subject: str,
        payload: Any = None,
        requires_decision: bool = False,
        from_agent: str | None = None,
        to_agent: str | None = None,
        priority: MessagePriority | str | None = None,
        task_id: str | None = None,
        decision_deadline_ms: int | None = None,
        message_id: str | None = None,
    ) -> Sent:
        """A QUESTION (HIGH by default) to ``to_agent``, or to the asker's nearest
        orchestrator; one that ``requires_decision`` escalates, undecided, one level up
        after its deadline. The DECISION comes back to the asker's inbox."""
        body = checked(
            wire.AskQuestion,
            {"to": to_agent, "subject": subject, "payload": payload, "requires_decision": requires_decision,
             "priority": _priority(priority), "task_id": task_id, "decision_deadline_ms": decision_deadline_ms,
             "message_id": message_id},
            rename={"to": "to_agent"},
        )
        return await self._send("ask_question", body, from_agent)

    async def alert(
        self,
        *,
        subject: str,
        payload: Any = None,
        is_critical: bool = False,
        from_agent: str | None = None,
        message_id: str | None = None,
    ) -> Sent:
        """An ALERT to every live agent: CRITICAL with ``is_critical``, else HIGH."""
        body = checked(
            wire.RaiseAlert,
            {"subject": subject, "payload": payload, "is_critical": is_critical, "message_id": message_id},
        )
        return await self._send("alert", body, from_agent)

    async def handoff(
        self,
        *,
        to_agent: str,
        task_id: str,
        context: Any = None,
        from_agent: str | None = None,
        subject: str | None = None,
        message_id: str | None = None,
    ) -> Sent:
        """Hands task ``task_id``, which ``from_agent`` holds, to ``to_agent``; the
        mission's assignment moves with it."""
        body = checked(
            wire.Handoff,
            {"to": to_agent, "task_id": task_id, "context": context, "subject": subject, "message_id": message_id},
            rename={"to": "to_agent"},
        )
        return await self._send("handoff", body, from_agent)

    async def reply(
        self,
        *,
        to_message_id: MessageRef,
        payload: Any = None,
        is_decision: bool = False,
        from_agent: str | None = None,
        subject: str | None = None,
        priority: MessagePriority | str | None = None,
        message_id: str | None = None,
    ) -> Sent:
        """Answers a message; with ``is_decision``, decides a question (its payload's
        ``decision`` or ``choice`` is the choice, ``reason`` or ``rationale`` why)."""
        body = checked(
            wire.Reply,
            {"to_message_id": _id_of(to_message_id), "payload": payload, "is_decision": is_decision,
             "subject": subject, "priority": _priority(priority), "message_id": message_id},
        )
        return await self._send("reply", body, from_agent)

    async def record_decision(
        self,
        *,
        message_id: MessageRef,
        choice: str,
        approver_agent: str | None = None,
        rationale: str | None = None,
        impact: Any = None,
    ) -> DecisionOutcome:
        """Records the decision on question ``message_id`` in the audit log, once; after a
        reply that decided it, completes the record with rationale and impact."""
        body = checked(
            wire.RecordDecision,
            {"message_id": _id_of(message_id), "choice": choice, "rationale": rationale, "impact": impact},
        )
        reply = await self._call("record_decision", body, approver_agent, field="approver_agent")
        return parse(DecisionOutcome, reply, "record_decision")

    async def receive(
        self,
        agent_id: str | None = None,
        timeout: float = 0.0,
        types: Sequence[MessageType | str] | MessageType | str | None = None,
    ) -> Delivery | None:
        """The next message of ``agent_id``'s inbox, highest priority first, waiting up
        to ``timeout`` seconds (at most 30); it comes again unless acknowledged
        (:meth:`ack`) within the bus's ack window. ``None`` when none came."""
        body = checked(wire.Consume, {"timeout_ms": _ms(timeout, "timeout"), "types": _types(types)})
        reply = await self._call(
            "consume", body, agent_id, field="agent_id", timeout=timeout + self._guild.settings.timeout
        )
        consumed = parse(wire.Consumed, reply, "consume")
        if consumed.delivery is None:
            return None
        d = parse(Delivery, reply["delivery"], "consume")
        d.message.delivery_id, d.message.attempt = d.delivery_id, d.attempt
        return d

    async def consume(
        self,
        agent_id: str | None = None,
        timeout: float = 0.0,
        types: Sequence[MessageType | str] | MessageType | str | None = None,
        *,
        ack: bool = True,
    ) -> Message | None:
        """The seed's ``consume``: the next message of ``agent_id``'s inbox (highest
        priority first) within ``timeout`` seconds, or ``None``. Taken means gone: it is
        acknowledged at once. With ``ack=False`` it comes again unless you ``ack`` its
        ``delivery_id``."""
        d = await self.receive(agent_id, timeout, types)
        if d is None:
            return None
        if ack:
            await self.ack(d.delivery_id, agent_id=agent_id)
        return d.message

    async def ack(self, delivery_id: str | Message, *, agent_id: str | None = None) -> None:
        """Acknowledges a delivery: done, it will not come again."""
        body = checked(wire.Ack, {"delivery_id": _delivery_of(delivery_id)})
        parse(wire.Empty, await self._call("ack", body, agent_id, field="agent_id"), "ack")

    async def nak(self, delivery_id: str | Message, delay: float = 0.0, *, agent_id: str | None = None) -> None:
        """Gives a delivery back: it comes again after ``delay`` seconds."""
        body = checked(wire.Nak, {"delivery_id": _delivery_of(delivery_id), "delay_ms": int(delay * 1000)})
        parse(wire.Empty, await self._call("nak", body, agent_id, field="agent_id"), "nak")

    def subscribe(
        self,
        message_type: MessageType | str | Sequence[MessageType | str] | None,
        handler: Handler,
        agent_id: str | None = None,
        *,
        poll: float = 5.0,
    ) -> Subscription:
        """Hands every message of ``message_type`` arriving in ``agent_id``'s inbox to
        ``handler`` (a function or a coroutine function), in a background task, until the
        returned :class:`Subscription` is stopped. Messages of other types stay queued."""
        types = _types(message_type)
        who = agent_id or self._as
        _ms(poll, "poll")
        holder: list[Subscription] = []

        async def loop() -> None:
            while True:
                d = await self.receive(who, poll, types)
                if d is None:
                    continue
                try:
                    with _trace.handling_span(f"guild.handle {d.message.type.value}", d.message.traceparent):
                        result = handler(d.message)
                        if inspect.isawaitable(result):
                            await result
                except BaseException:
                    try:
                        await self.nak(d.delivery_id, agent_id=who)
                    except GuildError as e:
                        log.warning("could not give back delivery %s: %s", d.delivery_id, e)
                    raise
                await self.ack(d.delivery_id, agent_id=who)
                holder[0].handled += 1

        sub = Subscription(asyncio.ensure_future(loop()), who or (self._guild.principal or ""), types)
        holder.append(sub)
        return sub

    async def get_message_stats(self, *, by: str | None = None) -> MessageStats:
        """Message counts, queue sizes, decisions, decision time (the seed's
        ``get_message_stats``)."""
        return parse(MessageStats, await self._call("get_message_stats", {}, by), "get_message_stats")

    async def decision_history(
        self,
        *,
        agent: str | None = None,
        mission_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        by: str | None = None,
    ) -> list[LoggedDecision]:
        """Decisions from the audit log, by agent, mission and time (ms since the epoch)."""
        body = checked(
            wire.DecisionQuery,
            {"agent": agent, "mission_id": mission_id, "since": since, "until": until, "limit": limit},
        )
        return parse(wire.DecisionList, await self._call("decision_history", body, by), "decision_history").decisions

    async def verify_audit(self, *, by: str | None = None) -> VerifyReport:
        """Re-reads the audit log and checks its hash chain for gaps and altered records."""
        return parse(VerifyReport, await self._call("verify_audit", {}, by), "verify_audit")

    async def export_decisions(
        self,
        *,
        agent: str | None = None,
        mission_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        by: str | None = None,
    ) -> MarkdownExport:
        """The decision log as Markdown (the seed's ``decisions.md``)."""
        body = checked(
            wire.DecisionQuery,
            {"agent": agent, "mission_id": mission_id, "since": since, "until": until, "limit": limit},
        )
        return parse(MarkdownExport, await self._call("export_decisions", body, by), "export_decisions")

    async def get_question(self, question_id: MessageRef, *, by: str | None = None) -> QuestionState:
        """One question with its decision and escalations (yours, your team's; any as the
        operator or the observer)."""
        body = checked(wire.QuestionRef, {"question_id": _id_of(question_id)})
        return parse(QuestionState, await self._call("get_question", body, by), "get_question")

    async def list_questions(
        self, *, open_only: bool | None = None, limit: int | None = None, by: str | None = None
    ) -> list[QuestionState]:
        """Questions you may read, newest first; ``open_only`` for undecided ones."""
        body = checked(wire.QuestionQuery, {"open_only": open_only, "limit": limit})
        return parse(wire.QuestionList, await self._call("list_questions", body, by), "list_questions").questions

    async def audit_records(
        self,
        *,
        kinds: Sequence[AuditKind | str] | None = None,
        about: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
        by: str | None = None,
    ) -> list[AuditRecord]:
        """Audit records you may read (about you and your team; all as the operator)."""
        body = checked(
            wire.AuditQuery,
            {"kinds": list(kinds) if kinds is not None else None, "about": about, "since": since,
             "until": until, "limit": limit},
        )
        return parse(wire.AuditRecords, await self._call("audit_records", body, by), "audit_records").records

    async def recover(self, accept_loss: bool = False, *, by: str | None = None) -> Recovered:
        """The operator accepts the bus's lost state (``accept_loss=True``)."""
        body = checked(wire.Recover, {"accept_loss": accept_loss})
        return parse(Recovered, await self._call("recover", body, by), "recover")


def _priority(p: MessagePriority | str | None) -> str | None:
    if p is None:
        return None
    value = p.value if isinstance(p, MessagePriority) else str(p).upper()
    if value not in {m.value for m in MessagePriority}:
        raise InvalidArgument(
            f"{p!r} is not a priority (CRITICAL, HIGH, NORMAL, LOW)", rule="invalid_priority", field="priority"
        )
    return value


def _delivery_of(d: str | Message) -> str:
    if isinstance(d, Message):
        if d.delivery_id is None:
            raise InvalidArgument(
                "this message was acknowledged when consumed: consume with ack=False to ack it yourself",
                rule="no_delivery",
                field="delivery_id",
            )
        return d.delivery_id
    return d
