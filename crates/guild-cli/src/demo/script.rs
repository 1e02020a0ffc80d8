//! The scenario, step by step as the seed tells it. The orchestrator's part runs here;
//! every other agent runs its own script as a task, reacting to what reaches its inbox.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use guild_sdk::Agent;
use guild_sdk::api::bus::AskQuestion;
use guild_sdk::domain::agent::{Capability, Role, SpawnRequest};
use guild_sdk::domain::message::MessageType;
use guild_sdk::domain::mission::{MissionStatus, NewMission, Severity};
use guild_sdk::domain::{AgentId, MissionId, Phase, Principal};
use serde_json::json;
use tokio::sync::mpsc;

use super::Progress;
use super::cast::{Cast, expect, until};
use super::report::{self, Report};

/// Agents' failures reach the orchestrator here, so the demo stops at the first one.
type Failures = mpsc::UnboundedSender<anyhow::Error>;

fn play(
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

fn spawn_request(
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

/// A mission; its agent is named when it is assigned (agents are spawned as needed).
fn mission(id: &MissionId, name: &str, phase: Phase, budget: u64) -> NewMission {
    let mut m = NewMission::new(id.clone(), name, phase);
    m.token_budget = budget;
    m
}

/// A phase −1 researcher: takes its assignment, researches, posts the result to the
/// shared intelligence (the mission's output) and tells the orchestrator. The Architect
/// stays on afterwards to review what the developers ask.
async fn researcher(
    cast: Cast,
    id: AgentId,
    finding: &'static str,
    answer_reviews: bool,
) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let job = expect(&me, &[MessageType::Request], "its research assignment").await?;
    let task = job
        .message
        .task_id
        .clone()
        .context("the assignment names no mission")?;
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
async fn strategist(cast: Cast, id: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let job = expect(&me, &[MessageType::Request], "its planning assignment").await?;
    let task = job
        .message
        .task_id
        .clone()
        .context("the assignment names no mission")?;
    let q = me
        .bus()
        .ask_question(
            "Should we add OAuth or simple JWT?",
            json!({ "options": ["OAuth", "JWT"], "deadline": "phase 1" }),
            true,
        )
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
async fn dev_lead(cast: Cast, id: AgentId, failures: Failures) -> anyhow::Result<()> {
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
        spawner.spawn(spawn_request(
            &backend,
            Role::Developer,
            18_000,
            &id,
            &["python", "api"]
        )),
        spawner.spawn(spawn_request(
            &frontend,
            Role::Developer,
            18_000,
            &id,
            &["react"]
        )),
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
async fn backend_dev(
    cast: Cast,
    id: AgentId,
    architect: AgentId,
    qa: AgentId,
) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let job = expect(&me, &[MessageType::Request], "its assignment").await?;
    let task = job
        .message
        .task_id
        .clone()
        .context("the assignment names no mission")?;
    let asked = me
        .bus()
        .ask(&AskQuestion {
            to: Some(Principal::Agent(architect.clone())),
            subject: "Database schema approved?".into(),
            payload: json!({ "tables": ["users", "sessions"] }),
            requires_decision: false,
            priority: None,
            task_id: Some(task.clone()),
            message_id: None,
        })
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
    let release = expect(&me, &[MessageType::Request], "the release assignment").await?;
    let release_task = release
        .message
        .task_id
        .clone()
        .context("the release request names no mission")?;
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
            display_name_m(&release_task)
        ),
    );
    Ok(())
}

fn display_name_m(m: &MissionId) -> String {
    m.as_str()
        .rsplit_once('-')
        .map_or(m.as_str(), |(n, _)| n)
        .to_owned()
}

/// Frontend Dev: builds, hits the changed response format, raises a HIGH alert, and
/// finishes once told how the team handles it.
async fn frontend_dev(cast: Cast, id: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    let job = expect(&me, &[MessageType::Request], "its assignment").await?;
    let task = job
        .message
        .task_id
        .clone()
        .context("the assignment names no mission")?;
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
async fn qa(cast: Cast, id: AgentId, backend: AgentId) -> anyhow::Result<()> {
    let me = cast.join(&id).await?;
    me.bus()
        .ask(&AskQuestion {
            to: Some(Principal::Agent(backend)),
            subject: "Are the list endpoints paginated?".into(),
            payload: json!({ "for": "contract tests" }),
            requires_decision: false,
            priority: None,
            task_id: None,
            message_id: None,
        })
        .await?;
    cast.say(
        &id,
        "monitoring; → backend-dev: QUESTION \"Are the list endpoints paginated?\"",
    );
    expect(&me, &[MessageType::Reply], "backend's answer").await?;
    let handoff = expect(&me, &[MessageType::Handoff], "the release handoff").await?;
    let task = handoff
        .message
        .task_id
        .clone()
        .context("the handoff names no mission")?;
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

/// Assigns `m` to `agent` once it is up (its first heartbeat makes it ACTIVE), and tells it.
async fn assign_and_send(
    orch: &Agent,
    m: &MissionId,
    agent: &AgentId,
    subject: &str,
) -> anyhow::Result<()> {
    until(&format!("{agent} is up"), || async {
        let status = orch.spawner().get(agent).await?.status;
        Ok((status != guild_sdk::domain::agent::AgentStatus::Pending).then_some(()))
    })
    .await?;
    orch.missions().assign_mission(m, Some(agent)).await?;
    orch.bus()
        .send_request(&guild_sdk::api::bus::SendRequest {
            to: agent.clone(),
            subject: subject.into(),
            payload: json!({}),
            priority: None,
            task_id: Some(m.clone()),
            message_id: None,
        })
        .await?;
    Ok(())
}

async fn status_of(orch: &Agent, m: &MissionId) -> anyhow::Result<MissionStatus> {
    Ok(orch.missions().get_mission(m).await?.status)
}

/// Runs the seven steps and gathers the report.
pub(crate) async fn run(url: &str, progress: Progress) -> anyhow::Result<Report> {
    let cast = Cast::new(url, progress);
    let (failures, mut failed) = mpsc::unbounded_channel();
    let story = orchestrate(cast, failures);
    tokio::select! {
        r = story => r,
        Some(e) = failed.recv() => Err(e),
    }
}

async fn orchestrate(cast: Cast, failures: Failures) -> anyhow::Result<Report> {
    let p = cast.progress;
    let operator = guild_sdk::connect(&cast.url).await?;
    let orch_id = cast.agent("orchestrator")?;
    let market = cast.agent("market-analyst")?;
    let architect = cast.agent("architect")?;
    let security = cast.agent("security")?;
    let strategist_id = cast.agent("strategist")?;
    let lead = cast.agent("dev-lead")?;
    let qa_id = cast.agent("qa")?;
    let backend = cast.agent("backend-dev")?;
    let frontend = cast.agent("frontend-dev")?;
    let m_market = cast.mission("market-research")?;
    let m_arch = cast.mission("architecture-baseline")?;
    let m_sec = cast.mission("security-baseline")?;
    let m_plan = cast.mission("planning")?;
    let m_back = cast.mission("backend")?;
    let m_front = cast.mission("frontend")?;
    let m_release = cast.mission("release")?;
    let all_missions = [
        &m_market, &m_arch, &m_sec, &m_plan, &m_back, &m_front, &m_release,
    ];

    p.step(1, "The orchestrator starts a new project");
    operator
        .spawner()
        .spawn(SpawnRequest::new(
            orch_id.clone(),
            Role::Orchestrator,
            150_000,
        ))
        .await
        .context("spawning the orchestrator")?;
    let orch = cast.join(&orch_id).await?;
    cast.say(
        &orch_id,
        &format!("spawned (run {}), heartbeating", cast.tag),
    );
    for (m, name) in [
        (&m_market, "Market research"),
        (&m_arch, "Architecture baseline"),
        (&m_sec, "Security baseline"),
    ] {
        orch.missions()
            .create_mission(&mission(m, name, Phase::RESEARCH, 8_000))
            .await?;
    }
    let mut plan = mission(
        &m_plan,
        "Planning: product and auth strategy",
        Phase::PLANNING,
        6_000,
    );
    plan.depends_on = [&m_market, &m_arch, &m_sec]
        .into_iter()
        .map(|m| guild_sdk::domain::mission::Dependency {
            mission_id: m.clone(),
            severity: Severity::Hard,
        })
        .collect();
    orch.missions().create_mission(&plan).await?;
    cast.say(
        &orch_id,
        "created the phase −1 missions and phase 0 planning (blocked on all three)",
    );
    let spawner = orch.spawner();
    let (a, b, c) = tokio::join!(
        spawner.spawn(spawn_request(
            &market,
            Role::Specialist("market-analyst".into()),
            15_000,
            &orch_id,
            &["market-research"]
        )),
        spawner.spawn(spawn_request(
            &architect,
            Role::Architect,
            15_000,
            &orch_id,
            &["system-design"]
        )),
        spawner.spawn(spawn_request(
            &security,
            Role::Security,
            15_000,
            &orch_id,
            &["threat-modeling"]
        )),
    );
    a?;
    b?;
    c?;
    cast.say(
        &orch_id,
        "spawned market-analyst, architect, security (3 in parallel)",
    );
    play(
        &failures,
        &market,
        researcher(
            cast.clone(),
            market.clone(),
            "Market research complete, posting to shared-intelligence",
            false,
        ),
    );
    play(
        &failures,
        &architect,
        researcher(
            cast.clone(),
            architect.clone(),
            "Architecture baseline ready",
            true,
        ),
    );
    play(
        &failures,
        &security,
        researcher(
            cast.clone(),
            security.clone(),
            "Security baseline ready",
            false,
        ),
    );

    p.step(2, "Agents research in parallel");
    for (m, who, what) in [
        (&m_market, &market, "Research the market"),
        (&m_arch, &architect, "Draft the architecture baseline"),
        (&m_sec, &security, "Draft the security baseline"),
    ] {
        assign_and_send(&orch, m, who, what).await?;
    }
    for _ in 0..3 {
        expect(&orch, &[MessageType::Reply], "the researchers' results").await?;
    }

    p.step(3, "The orchestrator checks the sync point");
    let phase = until("phase −1 is complete", || async {
        let s = orch.missions().phase_status(Phase::RESEARCH).await?;
        Ok(s.complete.then_some(s))
    })
    .await?;
    let ready = orch.missions().readiness(&m_plan).await?;
    ensure!(
        ready.ready,
        "planning is not ready: waiting on {:?}",
        ready.waiting_on
    );
    cast.say(
        &orch_id,
        &format!(
            "phase −1 ({}) complete: all 3 dependencies met; phase 0 planning is READY",
            phase.name
        ),
    );
    for done in [&market, &security] {
        orch.spawner().terminate(done, false).await?;
    }
    cast.say(
        &orch_id,
        "terminated market-analyst and security (temporary, work done; unused budget returned)",
    );

    p.step(4, "Phase 0: planning");
    orch.spawner()
        .spawn(spawn_request(
            &strategist_id,
            Role::Business,
            10_000,
            &orch_id,
            &["strategy"],
        ))
        .await?;
    play(
        &failures,
        &strategist_id,
        strategist(cast.clone(), strategist_id.clone()),
    );
    assign_and_send(&orch, &m_plan, &strategist_id, "Plan the product").await?;
    let q = expect(&orch, &[MessageType::Question], "the strategist's question").await?;
    let choice = "Use OAuth for Phase 1, add JWT in Phase 2";
    orch.bus()
        .reply(
            &q.message.id,
            json!({ "decision": choice, "reason": "enterprise customers need SSO first" }),
            true,
        )
        .await?;
    let recorded = orch
        .bus()
        .record_decision(
            &q.message.id,
            choice,
            Some("enterprise customers need SSO first"),
            json!({ "phases": [1, 2] }),
        )
        .await?;
    cast.say(
        &orch_id,
        &format!(
            "→ DECISION \"{choice}\" (recorded once, audit #{})",
            recorded.audit_seq.map_or("?".into(), |s| s.to_string())
        ),
    );
    expect(&orch, &[MessageType::Reply], "the plan").await?;
    orch.spawner().terminate(&strategist_id, false).await?;

    p.step(5, "Development");
    for (m, name) in [(&m_back, "Backend API"), (&m_front, "Frontend")] {
        orch.missions()
            .create_mission(&mission(m, name, Phase::DEVELOPMENT, 14_000))
            .await?;
    }
    let mut release = mission(
        &m_release,
        "Integrate and verify the release",
        Phase::TESTING,
        10_000,
    );
    release.quality_gate = Some(0.8);
    orch.missions().create_mission(&release).await?;
    for dep in [&m_back, &m_front] {
        orch.missions()
            .add_dependency(&m_release, dep, Severity::Hard)
            .await?;
    }
    orch.spawner()
        .spawn(spawn_request(
            &lead,
            Role::Developer,
            50_000,
            &orch_id,
            &["leadership", "python"],
        ))
        .await?;
    orch.spawner()
        .spawn(spawn_request(
            &qa_id,
            Role::Qa,
            12_000,
            &orch_id,
            &["testing"],
        ))
        .await?;
    cast.say(&orch_id, "spawned dev-lead and qa");
    play(
        &failures,
        &lead,
        dev_lead(cast.clone(), lead.clone(), failures.clone()),
    );
    orch.bus()
        .request(&lead, "Staff the development team", json!({}))
        .await?;
    expect(&orch, &[MessageType::Reply], "the dev lead's team").await?;
    assign_and_send(&orch, &m_back, &backend, "Build the backend API").await?;
    assign_and_send(&orch, &m_front, &frontend, "Build the frontend").await?;
    play(
        &failures,
        &qa_id,
        qa(cast.clone(), qa_id.clone(), backend.clone()),
    );

    p.step(6, "When blocked");
    let alert = expect(&orch, &[MessageType::Alert], "an alert").await?;
    cast.say(
        &orch_id,
        &format!(
            "got the {} alert from {}",
            alert.message.priority, alert.message.from
        ),
    );
    orch.bus()
        .ask(&AskQuestion {
            to: Some(Principal::Agent(lead.clone())),
            subject: "Can we fix backwards compatibility?".into(),
            payload: json!({ "alert": alert.message.id }),
            requires_decision: true,
            priority: None,
            task_id: Some(m_front.clone()),
            message_id: None,
        })
        .await?;
    cast.say(
        &orch_id,
        "→ dev-lead: QUESTION \"Can we fix backwards compatibility?\"",
    );
    let decided = expect(&orch, &[MessageType::Decision], "the dev lead's decision").await?;
    orch.bus()
        .send_request(&guild_sdk::api::bus::SendRequest {
            to: frontend.clone(),
            subject: "Compatibility layer coming: carry on".into(),
            payload: json!({ "decision": decided.message.payload["decision"] }),
            priority: None,
            task_id: Some(m_front.clone()),
            message_id: None,
        })
        .await?;
    until("backend and frontend are complete", || async {
        let b = status_of(&orch, &m_back).await?;
        let f = status_of(&orch, &m_front).await?;
        Ok((b == MissionStatus::Completed && f == MissionStatus::Completed).then_some(()))
    })
    .await?;
    ensure!(
        orch.missions().check_ready(&m_release).await?,
        "the release is not ready"
    );
    cast.say(
        &orch_id,
        "backend and frontend complete: the release mission is READY",
    );
    assign_and_send(
        &orch,
        &m_release,
        &backend,
        "Integrate: build the compatibility layer",
    )
    .await?;
    until("QA completed the release", || async {
        Ok((status_of(&orch, &m_release).await? == MissionStatus::Completed).then_some(()))
    })
    .await?;

    p.step(7, "Completion");
    for m in all_missions {
        let s = status_of(&orch, m).await?;
        if s != MissionStatus::Completed {
            bail!("mission {m} is {s}, not COMPLETED");
        }
    }
    cast.say(&orch_id, "all 7 missions COMPLETED");
    let verify = orch.bus().verify_audit().await?;
    ensure!(
        verify.ok,
        "the audit log failed verification: {:?}",
        verify.problems
    );
    cast.say(
        &orch_id,
        &format!(
            "decision log verified: {} audit records, chain intact",
            verify.records
        ),
    );
    for temporary in [&lead, &architect, &qa_id] {
        orch.spawner().terminate(temporary, true).await?;
    }
    cast.say(&orch_id, "terminated the temporary agents (dev-lead with backend-dev and frontend-dev, architect, qa)");
    operator.spawner().terminate(&orch_id, false).await?;
    cast.say(
        &orch_id,
        "project done: orchestrator terminated, its budget back in the pool",
    );
    report::gather(&operator, &cast, &all_missions, verify).await
}
