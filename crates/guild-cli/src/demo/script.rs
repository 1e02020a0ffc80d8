//! The scenario, step by step as the seed tells it. The orchestrator's part runs here;
//! every other agent runs its own script (`agents.rs`) as a task, reacting to its inbox.

use anyhow::{Context, bail, ensure};
use guild_sdk::Agent;
use guild_sdk::domain::agent::{Role, SpawnRequest};
use guild_sdk::domain::message::MessageType;
use guild_sdk::domain::mission::{MissionStatus, NewMission, Severity};
use guild_sdk::domain::{AgentId, MissionId, Phase};
use serde_json::json;
use tokio::sync::mpsc;

use super::Progress;
use super::agents::{
    Failures, dev_lead, play, qa, question, request, researcher, spawn_request, strategist,
};
use super::cast::{Cast, expect, until};
use super::report::{self, Report};

/// A mission; its agent is named when it is assigned (agents are spawned as needed).
fn mission(id: &MissionId, name: &str, phase: Phase, budget: u64) -> NewMission {
    let mut m = NewMission::new(id.clone(), name, phase);
    m.token_budget = budget;
    m
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
        .send_request(&request(agent.clone(), subject, json!({}), m.clone()))
        .await?;
    Ok(())
}

async fn status_of(orch: &Agent, m: &MissionId) -> anyhow::Result<MissionStatus> {
    Ok(orch.missions().get_mission(m).await?.status)
}

/// Runs the seven steps and gathers the report.
pub(crate) async fn run(
    operator: &guild_sdk::NatsOptions,
    progress: Progress,
) -> anyhow::Result<Report> {
    let cast = Cast::new(operator, progress);
    let (failures, mut failed) = mpsc::unbounded_channel();
    let story = orchestrate(cast, failures);
    tokio::select! {
        r = story => r,
        Some(e) = failed.recv() => Err(e),
    }
}

async fn orchestrate(cast: Cast, failures: Failures) -> anyhow::Result<Report> {
    let p = cast.progress;
    let operator = guild_sdk::connect(&cast.operator).await?;
    // The bus's figures before the run: the report counts this run's messages only.
    let messages_before = operator.bus().get_message_stats().await?;
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
    cast.spawn(
        &operator.spawner(),
        SpawnRequest::new(orch_id.clone(), Role::Orchestrator, 150_000),
    )
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
        cast.spawn(
            &spawner,
            spawn_request(
                &market,
                Role::Specialist("market-analyst".into()),
                15_000,
                &orch_id,
                &["market-research"]
            )
        ),
        cast.spawn(
            &spawner,
            spawn_request(
                &architect,
                Role::Architect,
                15_000,
                &orch_id,
                &["system-design"]
            )
        ),
        cast.spawn(
            &spawner,
            spawn_request(
                &security,
                Role::Security,
                15_000,
                &orch_id,
                &["threat-modeling"]
            )
        ),
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
    cast.spawn(
        &orch.spawner(),
        spawn_request(
            &strategist_id,
            Role::Business,
            10_000,
            &orch_id,
            &["strategy"],
        ),
    )
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
    cast.spawn(
        &orch.spawner(),
        spawn_request(
            &lead,
            Role::Developer,
            50_000,
            &orch_id,
            &["leadership", "python"],
        ),
    )
    .await?;
    cast.spawn(
        &orch.spawner(),
        spawn_request(&qa_id, Role::Qa, 12_000, &orch_id, &["testing"]),
    )
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
        .ask(&question(
            lead.clone(),
            "Can we fix backwards compatibility?",
            json!({ "alert": alert.message.id }),
            true,
            Some(m_front.clone()),
        ))
        .await?;
    cast.say(
        &orch_id,
        "→ dev-lead: QUESTION \"Can we fix backwards compatibility?\"",
    );
    let decided = expect(&orch, &[MessageType::Decision], "the dev lead's decision").await?;
    orch.bus()
        .send_request(&request(
            frontend.clone(),
            "Compatibility layer coming: carry on",
            json!({ "decision": decided.message.payload["decision"] }),
            m_front.clone(),
        ))
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
    report::gather(&operator, &cast, &all_missions, verify, &messages_before).await
}
