"""A Guild agent in Python, written from proto-schemas/README.md alone (no Guild code).

It connects with the credentials its parent received when it spawned it (NATS_CREDS, a
.creds file) and the reply-inbox prefix its credentials allow (_INBOX.agent.<id>), then
heartbeats, asks its orchestrator a question that needs a decision, waits for the
DECISION (consuming only decisions), then consumes and acknowledges the other message
waiting for it. It prints one JSON line with what it saw, for the Rust test to check.

    NATS_URL=nats://127.0.0.1:4222 NATS_CREDS=agent.creds GUILD_AGENT_ID=<id> python agent.py
"""

import asyncio
import json
import os

import nats
from nats.errors import NoRespondersError


async def call(nc, op, me, body, timeout=10.0):
    """One request to guild-bus or guild-spawner; raises on an error reply."""
    service = "spawner" if op == "heartbeat" else "bus"
    msg = await nc.request(f"guild.{service}.v1.{op}.{me}", json.dumps(body).encode(), timeout=timeout)
    if msg.headers and "Nats-Service-Error-Code" in msg.headers:
        raise RuntimeError(f"{op}: {msg.data.decode()}")
    return json.loads(msg.data)


async def main(url, creds, me):
    nc = await nats.connect(url, user_credentials=creds, inbox_prefix=f"_INBOX.agent.{me}")
    # The first heartbeat may come before the services have seen the spawn everywhere.
    for _ in range(50):
        try:
            await call(nc, "heartbeat", me, {})
            break
        except NoRespondersError:
            await asyncio.sleep(0.1)
    asked = await call(
        nc,
        "ask_question",
        me,
        {
            "subject": "Do we have token budget for extra tests?",
            "payload": {"current_spend": 24000, "requested": 3000},
            "requires_decision": True,
        },
    )
    question = asked["message_id"]

    decision = None
    for _ in range(10):
        got = await call(nc, "consume", me, {"timeout_ms": 3000, "types": ["decision"]}, timeout=10)
        delivery = got.get("delivery")
        if delivery and delivery["message"]["in_reply_to"] == question:
            decision = delivery["message"]
            await call(nc, "ack", me, {"delivery_id": delivery["delivery_id"]})
            break

    other = await call(nc, "consume", me, {"timeout_ms": 3000}, timeout=10)
    request = other.get("delivery")
    if request:
        await call(nc, "ack", me, {"delivery_id": request["delivery_id"]})
    # Acknowledged: nothing comes again.
    after = await call(nc, "consume", me, {"timeout_ms": 0})

    print(
        json.dumps(
            {
                "question": question,
                "asked_to": asked["to"],
                "decision": decision and decision["payload"].get("decision"),
                "decision_type": decision and decision["type"],
                "request": request and request["message"]["subject"],
                "request_priority": request and request["message"]["priority"],
                "left": after["delivery"],
            }
        )
    )
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(os.environ["NATS_URL"], os.environ["NATS_CREDS"], os.environ["GUILD_AGENT_ID"]))
