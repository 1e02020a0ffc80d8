//! The scenario, step by step as the seed tells it. The orchestrator's part runs here;
//! every other agent runs its own script (`agents.rs`) as a task, reacting to its inbox.

use anyhow::{Context, bail, ensure};
use guild_sdk::Agent;
use guild_sdk::MessageType;
use guild_sdk::{AgentId, MissionId, Phase};
use guild_sdk::{MissionStatus, NewMission, Severity};
use guild_sdk::{Role, SpawnRequest};
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
        Ok((status != guild_sdk::AgentStatus::Pending).then_some(()))
    })
    .await?;
    orch.missions().assign_mission(m, Some(agent)).await?;
    orch.bus()
        .request(&request(agent.clone(), subject, json!({}), m.clone()))
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

/// The orchestrator's part, the seed's seven steps one after another; the other agents
/// play theirs meanwhile (`agents.rs`).
async fn orchestrate(cast: Cast, failures: Failures) -> anyhow::Result<Report> {
    let story = Story::begin(cast, failures).await?;
    story.research().await?;
    story.sync_point().await?;
    story.planning().await?;
    story.development().await?;
    story.when_blocked().await?;
    story.completion().await
}

/// Who and what the story is about: this run's agent ids and mission ids.
struct Names {
    orch_id: AgentId,
    market: AgentId,
    architect: AgentId,
    security: AgentId,
    strategist_id: AgentId,
    lead: AgentId,
    qa_id: AgentId,
    backend: AgentId,
    frontend: AgentId,
    m_market: MissionId,
    m_arch: MissionId,
    m_sec: MissionId,
    m_plan: MissionId,
    m_back: MissionId,
    m_front: MissionId,
    m_release: MissionId,
}

/// The orchestrator's side of the story once it is spawned: what every step needs.
struct Story {
    cast: Cast,
    failures: Failures,
    /// The operator's connection (it spawns and finally terminates the orchestrator).
    operator: guild_sdk::Guild,
    /// The bus's figures before the run: the report counts this run's messages only.
    messages_before: guild_sdk::MessageStats,
    /// The orchestrator, on its own connection.
    orch: Agent,
    names: Names,
}

impl Story {
    /// Step 1: the operator spawns the orchestrator, which creates the research and
    /// planning missions and spawns the three researchers.
    async fn begin(cast: Cast, failures: Failures) -> anyhow::Result<Self> {
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
            .map(|m| guild_sdk::Dependency {
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
        Ok(Self {
            cast,
            failures,
            operator,
            messages_before,
            orch,
            names: Names {
                orch_id,
                market,
                architect,
                security,
                strategist_id,
                lead,
                qa_id,
                backend,
                frontend,
                m_market,
                m_arch,
                m_sec,
                m_plan,
                m_back,
                m_front,
                m_release,
            },
        })
    }

    /// Step 2: the researchers work their missions in parallel and report back.
    async fn research(&self) -> anyhow::Result<()> {
        let Story { orch, names, .. } = self;
        let Names {
            market,
            architect,
            security,
            m_market,
            m_arch,
            m_sec,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(2, "Agents research in parallel");
        for (m, who, what) in [
            (&m_market, &market, "Research the market"),
            (&m_arch, &architect, "Draft the architecture baseline"),
            (&m_sec, &security, "Draft the security baseline"),
        ] {
            assign_and_send(orch, m, who, what).await?;
        }
        for _ in 0..3 {
            expect(orch, &[MessageType::Reply], "the researchers' results").await?;
        }
        Ok(())
    }

    /// Step 3: the research phase completes, planning becomes READY, and the researchers
    /// who are done are terminated.
    async fn sync_point(&self) -> anyhow::Result<()> {
        let Story {
            cast, orch, names, ..
        } = self;
        let Names {
            orch_id,
            market,
            security,
            m_plan,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(3, "The orchestrator checks the sync point");
        let phase = until("phase −1 is complete", || async {
            let s = orch.missions().phase_status(Phase::RESEARCH).await?;
            Ok(s.complete.then_some(s))
        })
        .await?;
        let ready = orch.missions().check_ready(m_plan).await?;
        ensure!(
            ready.ready,
            "planning is not ready: waiting on {:?}",
            ready.waiting_on
        );
        cast.say(
            orch_id,
            &format!(
                "phase −1 ({}) complete: all 3 dependencies met; phase 0 planning is READY",
                phase.name
            ),
        );
        for done in [&market, &security] {
            orch.spawner()
                .terminate(&guild_sdk::Terminate::new(done, false))
                .await?;
        }
        cast.say(
            orch_id,
            "terminated market-analyst and security (temporary, work done; unused budget returned)",
        );
        Ok(())
    }

    /// Step 4: the strategist plans, asks, and the orchestrator decides.
    async fn planning(&self) -> anyhow::Result<()> {
        let Story {
            cast,
            failures,
            orch,
            names,
            ..
        } = self;
        let Names {
            orch_id,
            strategist_id,
            m_plan,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(4, "Phase 0: planning");
        cast.spawn(
            &orch.spawner(),
            spawn_request(
                strategist_id,
                Role::Business,
                10_000,
                orch_id,
                &["strategy"],
            ),
        )
        .await?;
        play(
            failures,
            strategist_id,
            strategist(cast.clone(), strategist_id.clone()),
        );
        assign_and_send(orch, m_plan, strategist_id, "Plan the product").await?;
        let q = expect(orch, &[MessageType::Question], "the strategist's question").await?;
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
            orch_id,
            &format!(
                "→ DECISION \"{choice}\" (recorded once, audit #{})",
                recorded.audit_seq.map_or("?".into(), |s| s.to_string())
            ),
        );
        expect(orch, &[MessageType::Reply], "the plan").await?;
        orch.spawner()
            .terminate(&guild_sdk::Terminate::new(strategist_id, false))
            .await?;
        Ok(())
    }

    /// Step 5: the development and release missions, the dev lead and its team, and QA.
    async fn development(&self) -> anyhow::Result<()> {
        let Story {
            cast,
            failures,
            orch,
            names,
            ..
        } = self;
        let Names {
            orch_id,
            lead,
            qa_id,
            backend,
            frontend,
            m_back,
            m_front,
            m_release,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(5, "Development");
        for (m, name) in [(&m_back, "Backend API"), (&m_front, "Frontend")] {
            orch.missions()
                .create_mission(&mission(m, name, Phase::DEVELOPMENT, 14_000))
                .await?;
        }
        let mut release = mission(
            m_release,
            "Integrate and verify the release",
            Phase::TESTING,
            10_000,
        );
        release.quality_gate = Some(0.8);
        orch.missions().create_mission(&release).await?;
        for dep in [&m_back, &m_front] {
            orch.missions()
                .add_dependency(m_release, dep, Severity::Hard)
                .await?;
        }
        cast.spawn(
            &orch.spawner(),
            spawn_request(
                lead,
                Role::Developer,
                50_000,
                orch_id,
                &["leadership", "python"],
            ),
        )
        .await?;
        cast.spawn(
            &orch.spawner(),
            spawn_request(qa_id, Role::Qa, 12_000, orch_id, &["testing"]),
        )
        .await?;
        cast.say(orch_id, "spawned dev-lead and qa");
        play(
            failures,
            lead,
            dev_lead(cast.clone(), lead.clone(), failures.clone()),
        );
        orch.bus()
            .request(&guild_sdk::SendRequest::new(
                lead,
                "Staff the development team",
                json!({}),
            ))
            .await?;
        expect(orch, &[MessageType::Reply], "the dev lead's team").await?;
        assign_and_send(orch, m_back, backend, "Build the backend API").await?;
        assign_and_send(orch, m_front, frontend, "Build the frontend").await?;
        play(
            failures,
            qa_id,
            qa(cast.clone(), qa_id.clone(), backend.clone()),
        );
        Ok(())
    }

    /// Step 6: an alert, a question to the dev lead, its decision passed on, and the
    /// release integrated and verified.
    async fn when_blocked(&self) -> anyhow::Result<()> {
        let Story {
            cast, orch, names, ..
        } = self;
        let Names {
            orch_id,
            lead,
            backend,
            frontend,
            m_back,
            m_front,
            m_release,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(6, "When blocked");
        let alert = expect(orch, &[MessageType::Alert], "an alert").await?;
        cast.say(
            orch_id,
            &format!(
                "got the {} alert from {}",
                alert.message.priority, alert.message.from
            ),
        );
        orch.bus()
            .ask_question(&question(
                lead.clone(),
                "Can we fix backwards compatibility?",
                json!({ "alert": alert.message.id }),
                true,
                Some(m_front.clone()),
            ))
            .await?;
        cast.say(
            orch_id,
            "→ dev-lead: QUESTION \"Can we fix backwards compatibility?\"",
        );
        let decided = expect(orch, &[MessageType::Decision], "the dev lead's decision").await?;
        orch.bus()
            .request(&request(
                frontend.clone(),
                "Compatibility layer coming: carry on",
                json!({ "decision": decided.message.payload["decision"] }),
                m_front.clone(),
            ))
            .await?;
        until("backend and frontend are complete", || async {
            let b = status_of(orch, m_back).await?;
            let f = status_of(orch, m_front).await?;
            Ok((b == MissionStatus::Completed && f == MissionStatus::Completed).then_some(()))
        })
        .await?;
        ensure!(
            orch.missions().check_ready(m_release).await?.ready,
            "the release is not ready"
        );
        cast.say(
            orch_id,
            "backend and frontend complete: the release mission is READY",
        );
        assign_and_send(
            orch,
            m_release,
            backend,
            "Integrate: build the compatibility layer",
        )
        .await?;
        until("QA completed the release", || async {
            Ok((status_of(orch, m_release).await? == MissionStatus::Completed).then_some(()))
        })
        .await?;
        Ok(())
    }

    /// Step 7: every mission complete, the audit chain verified, the agents terminated,
    /// and the report.
    async fn completion(&self) -> anyhow::Result<Report> {
        let Story {
            cast,
            operator,
            messages_before,
            orch,
            names,
            ..
        } = self;
        let Names {
            orch_id,
            architect,
            lead,
            qa_id,
            backend: _,
            frontend: _,
            m_market,
            m_arch,
            m_sec,
            m_plan,
            m_back,
            m_front,
            m_release,
            ..
        } = names;
        let p = self.cast.progress;
        p.step(7, "Completion");
        for m in [m_market, m_arch, m_sec, m_plan, m_back, m_front, m_release] {
            let s = status_of(orch, m).await?;
            if s != MissionStatus::Completed {
                bail!("mission {m} is {s}, not COMPLETED");
            }
        }
        cast.say(orch_id, "all 7 missions COMPLETED");
        let verify = orch.bus().verify_audit().await?;
        ensure!(
            verify.ok,
            "the audit log failed verification: {:?}",
            verify.problems
        );
        cast.say(
            orch_id,
            &format!(
                "decision log verified: {} audit records, chain intact",
                verify.records
            ),
        );
        for temporary in [&lead, &architect, &qa_id] {
            orch.spawner()
                .terminate(&guild_sdk::Terminate::new(temporary, true))
                .await?;
        }
        cast.say(orch_id, "terminated the temporary agents (dev-lead with backend-dev and frontend-dev, architect, qa)");
        operator
            .spawner()
            .terminate(&guild_sdk::Terminate::new(orch_id, false))
            .await?;
        cast.say(
            orch_id,
            "project done: orchestrator terminated, its budget back in the pool",
        );
        let all_missions = [m_market, m_arch, m_sec, m_plan, m_back, m_front, m_release];
        report::gather(operator, cast, &all_missions, verify, messages_before).await
    }
}
