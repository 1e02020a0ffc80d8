"""Guild's operator in Python with nats-py, written from proto-schemas/README.md alone (no Guild code).

It reads the operator's credentials where `guild dev` writes them
(<GUILD_HOME>/creds/operator.creds), connects with the operator's reply-inbox prefix
(_INBOX.operator), and spawns two agents with guild.spawner.v1.spawn.operator: an
orchestrator, and under it a developer. Each spawn reply (`Spawned`) carries the agent's
credentials; each `.creds` is written to a file only its owner reads (mode 0600) in
CREDS_DIR. Then, on the orchestrator's own connection with its credentials, it
heartbeats, sends the developer a request, and runs the minimal agent (agent.py) as the
developer while answering the question it asks with a decision. It prints one JSON line:
what the spawns returned, what the orchestrator saw, and what agent.py printed.

    GUILD_HOME=.guild NATS_URL=nats://127.0.0.1:4222 CREDS_DIR=/tmp/creds python guild_operator.py
"""

import asyncio
import json
import os
import sys

import nats

HERE = os.path.dirname(os.path.abspath(__file__))
ORCHESTRATOR = "py-orch"
AGENT = "py-agent"


async def call(nc, service, op, principal, body, timeout=10.0):
    """One request to guild-<service> as <principal>; raises on an error reply."""
    subject = f"guild.{service}.v1.{op}.{principal}"
    msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    if msg.headers and "Nats-Service-Error-Code" in msg.headers:
        raise RuntimeError(f"{subject}: {msg.headers['Nats-Service-Error-Code']} {msg.data.decode()}")
    return json.loads(msg.data)


def write_creds(folder, agent_id, spawned):
    """The agent's .creds from its spawn reply, in a file only its owner may read."""
    creds = spawned["credentials"]["creds"]
    path = os.path.join(folder, f"{agent_id}.creds")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(creds)
    return path


async def answer_one_question(orch):
    """As the orchestrator: take the next question from its inbox, decide it, ack it."""
    for _ in range(10):
        got = await call(orch, "bus", "consume", ORCHESTRATOR, {"timeout_ms": 3000, "types": ["question"]})
        delivery = got.get("delivery")
        if delivery:
            question = delivery["message"]
            await call(
                orch,
                "bus",
                "reply",
                ORCHESTRATOR,
                {
                    "to_message_id": question["id"],
                    "payload": {"decision": "proceed", "reason": "budget allows"},
                    "is_decision": True,
                },
            )
            await call(orch, "bus", "ack", ORCHESTRATOR, {"delivery_id": delivery["delivery_id"]})
            return question
    raise RuntimeError("no question reached the orchestrator")


async def main(url, home, creds_dir):
    operator_creds = os.path.join(home, "creds", "operator.creds")
    nc = await nats.connect(url, user_credentials=operator_creds, inbox_prefix="_INBOX.operator")

    # A root agent (no parent_id): only the operator may spawn one.
    orch_spawned = await call(
        nc,
        "spawner",
        "spawn",
        "operator",
        {"id": ORCHESTRATOR, "role": "orchestrator", "token_budget": 20000},
    )
    orch_creds = write_creds(creds_dir, ORCHESTRATOR, orch_spawned)
    agent_spawned = await call(
        nc,
        "spawner",
        "spawn",
        "operator",
        {
            "id": AGENT,
            "role": "developer",
            "token_budget": 5000,
            "parent_id": ORCHESTRATOR,
            "capabilities": [{"name": "python"}],
        },
    )
    agent_creds = write_creds(creds_dir, AGENT, agent_spawned)

    # The orchestrator on its own connection, with the credentials its spawn returned.
    orch = await nats.connect(url, user_credentials=orch_creds, inbox_prefix=f"_INBOX.agent.{ORCHESTRATOR}")
    beat = await call(orch, "spawner", "heartbeat", ORCHESTRATOR, {})
    await call(
        orch,
        "bus",
        "request",
        ORCHESTRATOR,
        {"to": AGENT, "subject": "Code review needed", "payload": {"code_path": "backend/app.py"}},
    )

    # The agent, in a process of its own, with only its credentials.
    env = dict(os.environ, NATS_URL=url, NATS_CREDS=agent_creds, GUILD_AGENT_ID=AGENT)
    env.pop("GUILD_HOME", None)
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        os.path.join(HERE, "agent.py"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    question = await answer_one_question(orch)
    out, _ = await asyncio.wait_for(agent.communicate(), timeout=60)
    if agent.returncode != 0:
        raise RuntimeError(f"agent.py exited {agent.returncode}")

    print(
        json.dumps(
            {
                "spawned": [
                    {
                        "id": s["id"],
                        "role": s["role"],
                        "status": s["status"],
                        "parent_id": s.get("parent_id"),
                        "spawned_by": s["spawned_by"],
                        "public_key": s["credentials"]["public_key"],
                    }
                    for s in (orch_spawned, agent_spawned)
                ],
                "creds_files": [orch_creds, agent_creds],
                "orchestrator_status": beat["status"],
                "question_from": question["from"],
                "question_subject": question["subject"],
                "agent": json.loads(out),
            }
        )
    )
    await orch.close()
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(os.environ["NATS_URL"], os.environ.get("GUILD_HOME", ".guild"), os.environ["CREDS_DIR"]))
