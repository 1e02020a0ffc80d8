//! The scripted agents other than the orchestrator. Each runs as its own task with its
//! own connection, consuming its inbox and acting on what arrives, as a real agent would.

use std::future::Future;
use std::time::Duration;

use anyhow::ensure;
use guild_sdk::Agent;
use guild_sdk::MessageType;
use guild_sdk::api::bus::{AskQuestion, SendRequest};
use guild_sdk::{AgentId, MissionId, Principal};
use guild_sdk::{Capability, Role, SpawnRequest};
use serde_json::json;
use tokio::sync::mpsc;

use super::cast::{Cast, expect, expect_task, untagged};

/// Agents' failures reach the orchestrator here, so the demo stops at the first one.
pub(super) type Failures = mpsc::UnboundedSender<anyhow::Error>;

pub(super) fn play(
    failures: &Failures,
    who: &AgentId,
    script: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    let failures = failures.clone();
    let who = who.clone();
    tokio::spawn(async move {
        if let Err(e) = script.await {
            let _ = failures.send(e.context(format!("agent {who}")));
        }
    });
}

/// A QUESTION to one agent.
pub(super) fn question(
    to: AgentId,
    subject: &str,
    payload: serde_json::Value,
    requires_decision: bool,
    task: Option<MissionId>,
) -> AskQuestion {
    AskQuestion {
        to: Some(Principal::Agent(to)),
        subject: subject.into(),
        payload,
        requires_decision,
        decision_deadline_ms: None,
        priority: None,
        task_id: task,
        message_id: None,
    }
}

/// A REQUEST about mission `task`.
pub(super) fn request(
    to: AgentId,
    subject: &str,
    payload: serde_json::Value,
    task: MissionId,
) -> SendRequest {
    SendRequest {
        to,
        subject: subject.into(),
        payload,
        priority: None,
        task_id: Some(task),
        message_id: None,
    }
}

/// A unit of pretend work under the budget: reserve `estimate`, "think", commit `used`.
async fn think(agent: &Agent, mission: &MissionId, estimate: u64, used: u64) -> anyhow::Result<()> {
    agent
        .work(estimate, Some(mission), || async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok::<_, String>(((), used))
        })
        .await?;
    Ok(())
}

pub(super) fn spawn_request(
    id: &AgentId,
    role: Role,
    budget: u64,
    parent: &AgentId,
    caps: &[&str],
) -> SpawnRequest {
    let mut r = SpawnRequest::new(id.clone(), role, budget).parent(parent.clone());
    r.capabilities = caps.iter().map(|c| Capability::named(*c)).collect();
    r
}

/// A phase −1 researcher: takes its assignment, researches, posts the result to the
/// shared intelligence (the mission's output) and tells the orchestrator. The Architect
/// stays on afterwards to review what the developers ask.
pub(super) async fn researcher(
    cast: Cast,
    id: AgentId,
    finding: &'static str,
    answer_reviews: bool,
) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let (job, task) = expect_task(&me, MessageType::Request, "its research assignment").await?;
    think(&me, &task, 8_000, 6_500).await?;
    me.missions()
        .mark_complete(&task, json!({ "finding": finding }), Some(0.9))
        .await?;
    me.bus()
        .reply(&job.message.id, json!({ "summary": finding }), false)
        .await?;
    cast.say(&id, &format!("→ bus: \"{finding}\""));
    if answer_reviews {
        let q = expect(&me, &[MessageType::Question], "a review question").await?;
        cast.say(
            &id,
            &format!("reviews \"{}\" → APPROVED", q.message.subject),
        );
        me.bus()
            .reply(
                &q.message.id,
                json!({ "verdict": "APPROVED", "notes": "indexes on users.email" }),
                false,
            )
            .await?;
    }
    Ok(())
}

/// The Business Strategist: plans, and asks the orchestrator the question that needs a decision.
pub(super) async fn strategist(cast: Cast, id: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let (job, task) = expect_task(&me, MessageType::Request, "its planning assignment").await?;
    let q = me
        .bus()
        .ask_question(&guild_sdk::AskQuestion::new(
            "Should we add OAuth or simple JWT?",
            json!({ "options": ["OAuth", "JWT"], "deadline": "phase 1" }),
            true,
        ))
        .await?;
    cast.say(
        &id,
        &format!(
            "→ bus: QUESTION \"Should we add OAuth or simple JWT?\" (requires decision, {})",
            q.message_id
        ),
    );
    let decision = expect(
        &me,
        &[MessageType::Decision],
        "the decision on OAuth or JWT",
    )
    .await?;
    think(&me, &task, 6_000, 4_200).await?;
    me.missions()
        .mark_complete(
            &task,
            json!({ "plan": "3 phases", "auth": decision.message.payload["decision"] }),
            Some(0.85),
        )
        .await?;
    me.bus()
        .reply(&job.message.id, json!({ "summary": "plan ready" }), false)
        .await?;
    cast.say(&id, "plan complete, following the decision");
    Ok(())
}

/// The Dev Lead: staffs the team (spawns Backend and Frontend under itself), then decides
/// what the orchestrator asks it.
pub(super) async fn dev_lead(cast: Cast, id: AgentId, failures: Failures) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let job = expect(
        &me,
        &[MessageType::Request],
        "the request to staff the team",
    )
    .await?;
    let backend = cast.agent("backend-dev")?;
    let frontend = cast.agent("frontend-dev")?;
    let spawner = me.spawner();
    let (b, f) = tokio::join!(
        cast.spawn(
            &spawner,
            spawn_request(&backend, Role::Developer, 18_000, &id, &["python", "api"])
        ),
        cast.spawn(
            &spawner,
            spawn_request(&frontend, Role::Developer, 18_000, &id, &["react"])
        ),
    );
    b?;
    f?;
    cast.say(
        &id,
        "spawned backend-dev and frontend-dev (temporary, under dev-lead)",
    );
    let architect = cast.agent("architect")?;
    let qa = cast.agent("qa")?;
    play(
        &failures,
        &backend,
        backend_dev(cast.clone(), backend.clone(), architect, qa),
    );
    play(
        &failures,
        &frontend,
        frontend_dev(cast.clone(), frontend.clone()),
    );
    me.bus()
        .reply(
            &job.message.id,
            json!({ "backend": backend, "frontend": frontend }),
            false,
        )
        .await?;
    let q = expect(&me, &[MessageType::Question], "the orchestrator's question").await?;
    let choice = "Adding compatibility layer";
    me.bus()
        .reply(
            &q.message.id,
            json!({ "decision": choice, "reason": "keeps v1 clients working" }),
            true,
        )
        .await?;
    let outcome = me
        .bus()
        .record_decision(
            &q.message.id,
            choice,
            Some("keeps v1 clients working"),
            json!({ "missions": ["release"] }),
        )
        .await?;
    cast.say(
        &id,
        &format!(
            "→ DECISION \"{choice}\" (audit #{})",
            outcome.audit_seq.map_or("?".into(), |s| s.to_string())
        ),
    );
    Ok(())
}

/// Backend Dev: asks the Architect, builds, answers QA, then builds the compatibility
/// layer on the release mission and hands it to QA.
pub(super) async fn backend_dev(
    cast: Cast,
    id: AgentId,
    architect: AgentId,
    qa: AgentId,
) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let (_, task) = expect_task(&me, MessageType::Request, "its assignment").await?;
    let asked = me
        .bus()
        .ask_question(&question(
            architect.clone(),
            "Database schema approved?",
            json!({ "tables": ["users", "sessions"] }),
            false,
            Some(task.clone()),
        ))
        .await?;
    cast.say(&id, "→ architect: QUESTION \"Database schema approved?\"");
    let answer = expect(&me, &[MessageType::Reply], "the architect's review").await?;
    ensure!(
        answer.message.in_reply_to.as_ref() == Some(&asked.message_id),
        "the reply answers another message"
    );
    cast.say(
        &id,
        &format!("architect says {}", answer.message.payload["verdict"]),
    );
    think(&me, &task, 12_000, 9_800).await?;
    let qa_question = expect(&me, &[MessageType::Question], "QA's question").await?;
    me.bus()
        .reply(
            &qa_question.message.id,
            json!({ "answer": "yes, cursor-based, 50 per page" }),
            false,
        )
        .await?;
    cast.say(&id, "answers QA: list endpoints are paginated");
    me.missions()
        .mark_complete(&task, json!({ "api": "v2", "endpoints": 12 }), Some(0.9))
        .await?;
    cast.say(&id, "backend mission complete");
    let (_, release_task) =
        expect_task(&me, MessageType::Request, "the release assignment").await?;
    think(&me, &release_task, 5_000, 3_100).await?;
    me.bus()
        .handoff(
            &qa,
            &release_task,
            json!({ "compatibility_layer": "v1 responses kept", "ready_for": "verification" }),
        )
        .await?;
    cast.say(
        &id,
        &format!(
            "built the compatibility layer; → HANDOFF {} to qa",
            untagged(release_task.as_str())
        ),
    );
    Ok(())
}

/// Frontend Dev: builds, hits the changed response format, raises a HIGH alert, and
/// finishes once told how the team handles it.
pub(super) async fn frontend_dev(cast: Cast, id: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let (_, task) = expect_task(&me, MessageType::Request, "its assignment").await?;
    think(&me, &task, 12_000, 8_700).await?;
    let alert = me
        .bus()
        .alert(
            "Backend API response format changed, breaking tests",
            json!({ "failing_tests": 14 }),
            false,
        )
        .await?;
    cast.say(
        &id,
        &format!(
            "→ ALERT ({}) \"Backend API response format changed, breaking tests\"",
            alert.priority
        ),
    );
    let go = expect(
        &me,
        &[MessageType::Request],
        "word on the compatibility question",
    )
    .await?;
    think(&me, &task, 4_000, 2_600).await?;
    me.missions()
        .mark_complete(
            &task,
            json!({ "screens": 9, "api_compat": go.message.payload["decision"] }),
            Some(0.88),
        )
        .await?;
    cast.say(&id, "frontend mission complete");
    Ok(())
}

/// QA: watches the build, asks Backend a question, and verifies the release handed to it.
pub(super) async fn qa(cast: Cast, id: AgentId, backend: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    me.bus()
        .ask_question(&question(
            backend,
            "Are the list endpoints paginated?",
            json!({ "for": "contract tests" }),
            false,
            None,
        ))
        .await?;
    cast.say(
        &id,
        "monitoring; → backend-dev: QUESTION \"Are the list endpoints paginated?\"",
    );
    expect(&me, &[MessageType::Reply], "backend's answer").await?;
    let (_, task) = expect_task(&me, MessageType::Handoff, "the release handoff").await?;
    think(&me, &task, 5_000, 3_900).await?;
    me.missions()
        .mark_complete(&task, json!({ "tests": 212, "passed": 212 }), Some(0.92))
        .await?;
    cast.say(
        &id,
        "release verified: 212/212 tests pass (quality 0.92 ≥ gate 0.80)",
    );
    Ok(())
}
