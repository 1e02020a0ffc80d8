"""The seed's "Usage in Code: In Agent (e.g., Dev Lead)", runnable against `guild dev`.

    python examples/agent.py

The block marked SEED is the seed's code. The set-up before it makes what the seed takes
for granted: a ``dev-lead-1`` under ``orchestrator-1`` (spawned here unless it exists),
heartbeating, and someone to decide its question: unless ``--no-decider``, this process
also plays orchestrator-1 and answers "proceed" (run ``examples/orchestrator.py --serve``
and pass ``--no-decider`` to have another process decide).
"""

from __future__ import annotations

import sys

from _setup import ensure

from guild import AgentRole, Message, default

# -- set-up the seed takes for granted (ensure: _setup.py) ----------------------------

client = default()
if "--no-decider" not in sys.argv:
    ensure("orchestrator-1", AgentRole.ORCHESTRATOR)
ensure("dev-lead-1", AgentRole.DEVELOPER, parent_id="orchestrator-1")

if "--no-decider" not in sys.argv:

    def decide(msg: Message) -> None:
        client.bus.record_decision(message_id=msg.id, approver_agent="orchestrator-1", choice="proceed")

    client.bus.subscribe("question", decide, agent_id="orchestrator-1", poll=1.0)


def write_extra_tests() -> None:
    print("decision: proceed -> writing the extra tests")


def skip_extra_tests() -> None:
    print("decision: no -> skipping the extra tests")


# -- SEED: "In Agent (e.g., Dev Lead)" ------------------------------------------------
from guild import get_bus  # noqa: E402

bus = get_bus()

# Ask question
msg_id = bus.ask_question(
    from_agent="dev-lead-1",
    subject="Do we have token budget for extra tests?",
    payload={"current_spend": 24000, "requested": 3000},
    requires_decision=True
)

# Wait for response
while True:
    response = bus.consume(agent_id="dev-lead-1", timeout=1.0)
    if response and response.message_type.value == "decision":
        if response.payload.get("choice") == "proceed":
            write_extra_tests()
        else:
            skip_extra_tests()
        break
# -- end of SEED ----------------------------------------------------------------------

print(f"question {msg_id} decided by {response.sender}")
