//! spawner-svc against a real nats-server: admission rules, bad input, races, crashes,
//! restarts, liveness, events, discovery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use common::*;
use futures_util::StreamExt;
use guild_domain::agent::{AgentQuery, AgentStatus, Authority, Role, Usage};
use guild_domain::{Phase, PhaseScope, ReservationId};
use guild_sdk::ErrorKind;
use guild_testkit::{NatsServer, Team, eventually_async};
use guild_wire::ErrorCode;

#[tokio::test]
async fn admission_rules_hold_over_nats() {
    let (server, _i, team) = setup(4, 100_000).await;
    let guild = team.operator();
    let orch = team.spawn(root("orch", Role::Orchestrator, 50_000)).await;
    assert_eq!(
        (orch.status, orch.budget.allocated),
        (AgentStatus::Pending, 50_000)
    );
    let as_orch = team.agent(&id("orch"));

    // A root spawn by an agent is refused.
    let e = as_orch
        .spawner()
        .spawn(root("rogue", Role::Developer, 1))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule()),
        (
            ErrorKind::Rejected(ErrorCode::Forbidden),
            Some("root_spawn_requires_operator")
        )
    );

    // A child asking for more than its parent has.
    let e = as_orch
        .spawner()
        .spawn(root("greedy", Role::Developer, 50_001).parent(id("orch")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule(), e.field()),
        (
            ErrorKind::Rejected(ErrorCode::BudgetExceeded),
            Some("budget_exceeded"),
            Some("token_budget")
        )
    );

    // A child asking for more authority than its parent has.
    let narrow = Authority {
        max_parallel_agents: 1,
        can_spawn_agents: true,
        can_override_decisions: false,
        scoped_to_phases: PhaseScope::Only([Phase::DEVELOPMENT].into()),
        forbidden_actions: BTreeSet::new(),
        max_depth: None,
        max_descendants: None,
        max_spawns_per_minute: None,
    };
    team.spawn(
        root("lead", Role::Developer, 1_000)
            .parent(id("orch"))
            .authority(narrow.clone()),
    )
    .await;
    let as_lead = team.agent(&id("lead"));
    let mut wider = narrow.clone();
    wider.scoped_to_phases = PhaseScope::All;
    let e = as_lead
        .spawner()
        .spawn(
            root("sub", Role::Developer, 10)
                .parent(id("lead"))
                .authority(wider),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule(), e.field()),
        (
            ErrorKind::Rejected(ErrorCode::Forbidden),
            Some("authority_exceeds_parent"),
            Some("scoped_to_phases")
        )
    );

    // The parent's own limit on live children.
    team.spawn(root("sub", Role::Developer, 10).parent(id("lead")))
        .await;
    let e = as_lead
        .spawner()
        .spawn(root("sub2", Role::Developer, 10).parent(id("lead")))
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("parent_at_capacity"));

    // The global limit: 3 live of 4; one more fits, then the house is full.
    guild
        .spawner()
        .spawn(root("fourth", Role::Qa, 10))
        .await
        .unwrap();
    let before = journal_sequence(&server).await;
    let e = guild
        .spawner()
        .spawn(root("fifth", Role::Qa, 10))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule()),
        (
            ErrorKind::Rejected(ErrorCode::Conflict),
            Some("agent_limit_reached")
        )
    );
    assert_eq!(
        journal_sequence(&server).await,
        before,
        "a refused spawn writes nothing"
    );
    let stats = guild.spawner().get_stats().await.unwrap();
    assert_eq!((stats.total_agents, stats.max_agents), (4, 4));
    assert_eq!(
        stats.tokens.pool_free + stats.tokens.allocated,
        stats.tokens.pool_total,
        "tokens conserved"
    );
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_writes_nothing() {
    let (server, _i, team) = setup(6, 100_000).await;
    let guild = team.operator();
    team.spawn(root("orch", Role::Orchestrator, 10_000)).await;
    let mut forbidden = Authority::default_for(&Role::Developer);
    forbidden.forbidden_actions.insert("spawn_agent".into());
    team.spawn(
        root("dev", Role::Developer, 100)
            .parent(id("orch"))
            .authority(forbidden),
    )
    .await;
    let client = guild.client().clone();
    // A request the broker would refuse anyone (a subject no principal can have), sent on
    // unlimited credentials: the service checks what it receives itself.
    let admin = server.connect_admin().await;
    let before = journal_sequence(&server).await;

    let raw = |subject: &'static str, body: &'static [u8]| {
        let client = client.clone();
        async move {
            let reply = client.request(subject, body.into()).await.unwrap();
            let code = reply
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Service-Error-Code"))
                .map(|v| v.to_string());
            let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            (
                code,
                body["error"]["rule"].as_str().unwrap_or("").to_owned(),
                body["error"]["field"].as_str().map(str::to_owned),
            )
        }
    };
    // Malformed JSON.
    let (code, rule, _) = raw("guild.spawner.v1.spawn.operator", b"{not json").await;
    assert_eq!(
        (code.as_deref(), rule.as_str()),
        (Some("400"), "malformed_json")
    );
    // A body is exactly one JSON object: a valid spawn followed by anything is refused
    // (each of these once spawned the agent).
    for body in [
        &br#"{"id":"tail1","role":"qa","token_budget":1}garbage"#[..],
        br#"{"id":"tail2","role":"qa","token_budget":1}{"id":"tail3","role":"qa","token_budget":1}"#,
        br#"["tail4","qa",1]"#,
        br#"{"id":"tail5","role":"qa","token_budget":1}]]"#,
        b"{\"id\":\"tail6\",\"role\":\"qa\",\"token_budget\":1}\xff",
    ] {
        let (code, rule, _) = raw("guild.spawner.v1.spawn.operator", body).await;
        assert_eq!(
            (code.as_deref(), rule.as_str()),
            (Some("400"), "malformed_json"),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // An unknown field is named.
    let (_, rule, field) = raw(
        "guild.spawner.v1.spawn.operator",
        br#"{"id":"x","role":"qa","token_budget":1,"colour":"red"}"#,
    )
    .await;
    assert_eq!(
        (rule.as_str(), field.as_deref()),
        ("malformed_json", Some("colour"))
    );
    // An id that is not a subject token, in the body.
    let (_, rule, field) = raw(
        "guild.spawner.v1.spawn.operator",
        br#"{"id":"a.b","role":"qa","token_budget":1}"#,
    )
    .await;
    assert_eq!(
        (rule.as_str(), field.as_deref()),
        ("malformed_json", Some("id"))
    );
    let (_, _, field) = raw("guild.spawner.v1.spawn.operator", br#"{"id":"x","role":"qa","token_budget":1,"authority":{"max_parallel_agents":1,"can_spawn_agents":true,"can_override_decisions":false,"scoped_to_phases":["12"]}}"#).await;
    assert_eq!(field.as_deref(), Some("authority.scoped_to_phases"));
    // ... and as the principal in the subject: nobody could receive an answer to it (a
    // reply goes only into the caller's own inbox), so it is neither handled nor answered.
    let unanswered = tokio::time::timeout(
        Duration::from_secs(1),
        admin.request(
            "guild.spawner.v1.get.bad$id",
            br#"{"agent_id":"orch"}"#.as_slice().into(),
        ),
    )
    .await;
    assert!(
        !matches!(unanswered, Ok(Ok(_))),
        "a request of no principal was answered"
    );
    // An unknown agent.
    let (code, rule, _) = raw("guild.spawner.v1.get.operator", br#"{"agent_id":"ghost"}"#).await;
    assert_eq!(
        (code.as_deref(), rule.as_str()),
        (Some("404"), "unknown_agent")
    );
    // A payload over the limit.
    let big = format!(
        r#"{{"agent_id":"orch","pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let reply = client
        .request("guild.spawner.v1.get.operator", big.into())
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["error"]["rule"], "payload_too_large");
    // A forbidden action.
    let e = team
        .agent(&id("dev"))
        .spawner()
        .spawn(root("sub", Role::Developer, 1).parent(id("dev")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule()),
        (
            ErrorKind::Rejected(ErrorCode::Forbidden),
            Some("forbidden_action")
        )
    );
    // A reservation over budget names the figures.
    let e = guild
        .spawner()
        .reserve_tokens(&id("dev"), &ReservationId::new("r").unwrap(), 101, None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("100 tokens left, 101 requested"),
        "{e}"
    );
    assert_eq!(e.field(), Some("amount"), "the reserve's input is `amount`");

    assert_eq!(
        journal_sequence(&server).await,
        before,
        "no refusal wrote state"
    );
    // The denial is audited.
    let js = jetstream::new(server.connect_admin().await);
    let audit = guild_store::AuditLog::open(&js, guild_store::Durability::default())
        .await
        .unwrap();
    eventually_async(
        "the denial in the audit log",
        Duration::from_secs(5),
        || {
            let audit = audit.clone();
            async move {
                let all = audit.read_all().await.ok()?;
                let denials = all
                    .iter()
                    .filter(|(_, b)| String::from_utf8_lossy(b).contains("\"kind\":\"denial\""))
                    .count();
                (denials >= 1).then_some(())
            }
        },
    )
    .await;
    // Every record verifies: the chain, and each signature by the spawner's own key.
    let report = audit.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.signatures_checked && report.unsigned.is_empty());
    assert_eq!(report.signed, report.records);
}

#[tokio::test]
async fn fifty_spawns_race_for_ten_slots_across_two_instances() {
    let server = NatsServer::start();
    let a = Instance::start(&server, config(10, 1_000_000)).await;
    let b = Instance::start(&server, config(10, 1_000_000)).await;
    let guild = server.operator().await;
    wait_for_instances(&guild, 2).await;
    let mut calls = Vec::new();
    for n in 0..50 {
        // Separate connections, so requests spread over both instances.
        let g = server.operator().await;
        calls.push(tokio::spawn(async move {
            g.spawner()
                .spawn(root(&format!("a{n}"), Role::Developer, 1_000))
                .await
        }));
    }
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.rule(), Some("agent_limit_reached"), "{e}"),
        }
    }
    assert_eq!(ok, 10);
    let agents = guild.spawner().list(&AgentQuery::default()).await.unwrap();
    assert_eq!(agents.len(), 10);
    let stats = guild.spawner().get_stats().await.unwrap();
    assert_eq!(stats.total_agents, 10);
    assert_eq!(stats.tokens.pool_free, 1_000_000 - 10 * 1_000);
    assert_eq!(
        stats.tokens.pool_free + stats.tokens.allocated,
        stats.tokens.pool_total
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_spawn_interrupted_after_its_commit_leaves_no_half_made_agent() {
    let server = NatsServer::start();
    let faults = guild_service::Faults::default();
    let a = Instance::start_with_faults(&server, config(6, 100_000), faults.clone()).await;
    let team = Team::new(&server).await;
    let guild = team.operator();
    wait_for_instances(guild, 1).await;
    team.spawn(root("orch", Role::Orchestrator, 40_000)).await;
    faults.crash_after_next_commit();
    let e = team
        .agent(&id("orch"))
        .spawner()
        .spawn(root("child", Role::Developer, 7_000).parent(id("orch")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Unavailable));
    a.kill();
    // A fresh instance finds the spawn whole and publishes what the dead one could not.
    let b = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(guild, 1).await;
    let child = guild.spawner().get(&id("child")).await.unwrap();
    assert_eq!(child.budget.allocated, 7_000);
    let orch = guild.spawner().get(&id("orch")).await.unwrap();
    assert_eq!((orch.budget.allocated, orch.live_children), (33_000, 1));
    let stats = guild.spawner().get_stats().await.unwrap();
    assert_eq!(
        stats.tokens.pool_free + stats.tokens.allocated,
        stats.tokens.pool_total,
        "conserved"
    );
    // The event and the audit record the dead instance never published, published once.
    let js = jetstream::new(server.connect_admin().await);
    let audit = guild_store::AuditLog::open(&js, guild_store::Durability::default())
        .await
        .unwrap();
    let spawn_records = |records: &[(u64, bytes::Bytes)]| {
        records
            .iter()
            .filter(|(_, b)| {
                let r: guild_wire::audit::AuditRecord = serde_json::from_slice(b).unwrap();
                r.entry.kind == guild_wire::audit::AuditKind::Spawn && r.entry.about == "child"
            })
            .count()
    };
    eventually_async("the spawn is audited", Duration::from_secs(10), || {
        let audit = audit.clone();
        async move { (spawn_records(&audit.read_all().await.ok()?) >= 1).then_some(()) }
    })
    .await;
    let mut events = js.get_stream("GUILD_EVENTS").await.unwrap();
    let info = events
        .info_with_subjects("guild.evt.spawner.spawned.child")
        .await
        .unwrap();
    let per_subject: std::collections::HashMap<String, usize> =
        futures_util::TryStreamExt::try_collect(info).await.unwrap();
    assert_eq!(
        per_subject.get("guild.evt.spawner.spawned.child"),
        Some(&1),
        "published once"
    );
    // Give a second sweep the chance to publish twice; it must not.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(spawn_records(&audit.read_all().await.unwrap()), 1);
    let _ = &mut events;
    b.stop().await;
}

#[tokio::test]
async fn restarts_of_the_service_and_of_nats_lose_nothing() {
    let mut server = NatsServer::start_with(guild_testkit::ServerOptions {
        sync_always: true,
        ..Default::default()
    });
    let a = Instance::start(&server, config(6, 100_000)).await;
    let team = Team::new(&server).await;
    let guild = team.operator().clone();
    wait_for_instances(&guild, 1).await;
    team.spawn(root("orch", Role::Orchestrator, 40_000)).await;
    team.spawn(root("dev", Role::Developer, 5_000).parent(id("orch")))
        .await;
    let before = guild
        .spawner()
        .list(&AgentQuery {
            include_terminated: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // The service restarts.
    a.stop().await;
    let b = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(&guild, 1).await;
    assert_eq!(
        guild
            .spawner()
            .list(&AgentQuery {
                include_terminated: true,
                ..Default::default()
            })
            .await
            .unwrap(),
        before
    );

    // nats-server restarts (killed, same store); clients and the service reconnect.
    server.restart();
    let after = eventually_async(
        "the spawner answers after the server restart",
        Duration::from_secs(20),
        || {
            let guild = guild.clone();
            async move {
                guild
                    .spawner()
                    .list(&AgentQuery {
                        include_terminated: true,
                        ..Default::default()
                    })
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(after, before);
    // And keeps working.
    eventually_async("a spawn after the restart", Duration::from_secs(20), || {
        let guild = guild.clone();
        async move { guild.spawner().spawn(root("qa", Role::Qa, 10)).await.ok() }
    })
    .await;
    let stats = guild.spawner().get_stats().await.unwrap();
    assert_eq!(
        (stats.total_agents, stats.tokens.pool_free),
        (3, 100_000 - 40_000 - 10)
    );
    b.stop().await;
}

#[tokio::test]
async fn agents_that_miss_heartbeats_fail_and_their_task_is_released() {
    let server = NatsServer::start();
    let mut cfg = config(6, 100_000);
    cfg.heartbeat_window = Duration::from_millis(400);
    let _i = Instance::start(&server, cfg).await;
    let team = Team::new(&server).await;
    let guild = team.operator().clone();
    wait_for_instances(&guild, 1).await;
    let mut events = guild
        .client()
        .subscribe("guild.evt.spawner.>")
        .await
        .unwrap();
    team.spawn(root("dev", Role::Developer, 100)).await;
    let dev = team.agent(&id("dev"));
    let ack = dev.spawner().heartbeat(None).await.unwrap();
    assert_eq!(
        (ack.status, ack.heartbeat_window_ms),
        (AgentStatus::Active, 400)
    );
    let task = guild_domain::MissionId::new("M-1").unwrap();
    guild
        .spawner()
        .allocate_task(&id("dev"), &task, None)
        .await
        .unwrap();
    // Silence: the agent stops sending heartbeats.
    let failed = eventually_async("the agent fails", Duration::from_secs(10), || {
        let guild = guild.clone();
        async move {
            let a = guild.spawner().get(&id("dev")).await.ok()?;
            (a.status == AgentStatus::Failed).then_some(a)
        }
    })
    .await;
    assert_eq!(failed.status_reason.as_deref(), Some("heartbeat_missed"));
    assert!(failed.assigned_task_id.is_none());
    let mut names = Vec::new();
    let released = loop {
        let m = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        let e: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        names.push(m.subject.to_string());
        if e["event"] == "task_released" {
            break e;
        }
    };
    assert_eq!(released["agent_lost"], true);
    assert_eq!(released["task_id"], "M-1");
    assert!(
        names.contains(&"guild.evt.spawner.spawned.dev".to_string()),
        "{names:?}"
    );
    // A FAILED agent's credentials are revoked: its connection is closed, and a new one
    // is refused.
    eventually_async(
        "the failed agent's connection is closed",
        Duration::from_secs(5),
        || {
            let dev = dev.clone();
            async move {
                (dev.client().connection_state() != async_nats::connection::State::Connected)
                    .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn events_are_published_on_their_documented_subjects() {
    let (_server, _i, team) = setup(6, 100_000).await;
    let guild = team.operator();
    let mut sub = guild
        .client()
        .subscribe("guild.evt.spawner.>")
        .await
        .unwrap();
    let sp = guild.spawner();
    team.spawn(root("orch", Role::Orchestrator, 1_000)).await;
    team.spawn(root("dev", Role::Developer, 100).parent(id("orch")))
        .await;
    sp.pause(&id("dev"), "over budget", false).await.unwrap();
    sp.resume(&id("dev"), false).await.unwrap();
    let _ = sp
        .reserve_tokens(
            &id("dev"),
            &ReservationId::new("r").unwrap(),
            1_000_000,
            None,
        )
        .await
        .unwrap_err();
    let _ = sp
        .authorize(&id("dev"), "deploy_production", Some(Phase::DEPLOYMENT))
        .await
        .unwrap();
    sp.terminate(&guild_sdk::Terminate::new(&id("dev"), false))
        .await
        .unwrap();
    let want = [
        "guild.evt.spawner.spawned.orch",
        "guild.evt.spawner.spawned.dev",
        "guild.evt.spawner.paused.dev",
        "guild.evt.spawner.resumed.dev",
        "guild.evt.spawner.budget_exceeded.dev",
        "guild.evt.spawner.terminated.dev",
        "guild.evt.spawner.status_changed.dev",
    ];
    let mut seen = BTreeSet::new();
    while !want.iter().all(|w| seen.contains(*w)) {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("events arrive")
            .unwrap();
        seen.insert(m.subject.to_string());
    }
    // The authorize "no" for a tool action is an authority-denied fact too.
    let authz = sp
        .authorize(&id("orch"), "run_tests", Some(Phase::DEVELOPMENT))
        .await
        .unwrap();
    assert!(authz.allowed);
}

#[tokio::test]
async fn service_info_lists_exactly_the_spawner_operations() {
    let (_server, _i, team) = setup(6, 100_000).await;
    let guild = team.operator();
    let reply = guild
        .client()
        .request("$SRV.INFO.guild-spawner", "".into())
        .await
        .unwrap();
    let info: async_nats::service::Info = serde_json::from_slice(&reply.payload).unwrap();
    let names: BTreeSet<String> = info.endpoints.iter().map(|e| e.name.clone()).collect();
    let ops: BTreeSet<String> = guild_wire::api::spawner::OPS
        .iter()
        .map(|o| o.name.to_owned())
        .collect();
    assert_eq!(names, ops);
    for want in [
        "spawn",
        "find_available_agents",
        "allocate_task",
        "get_stats",
        "heartbeat",
        "authorize",
        "reserve_tokens",
        "reallocate_budget",
        "terminate",
        "pause",
    ] {
        assert!(names.contains(want), "{want}");
    }
    assert!(info.endpoints.iter().all(|e| e.subject.starts_with("guild.spawner.v1.") && e.queue_group == "guild-spawner"));
}

#[tokio::test]
async fn reallocation_and_token_accounting_over_nats() {
    let (_server, _i, team) = setup(6, 100_000).await;
    let sp = team.operator().spawner();
    team.spawn(root("orch", Role::Orchestrator, 10_000)).await;
    let orch = team.agent(&id("orch"));
    team.spawn(root("a", Role::Developer, 1_000).parent(id("orch")))
        .await;
    team.spawn(root("b", Role::Developer, 1_000).parent(id("orch")))
        .await;
    let moved = orch
        .spawner()
        .reallocate_budget(&id("a"), &id("b"), 300)
        .await
        .unwrap();
    assert_eq!(
        (moved.from.budget.allocated, moved.to.budget.allocated),
        (700, 1_300)
    );
    let e = orch
        .spawner()
        .reallocate_budget(&id("a"), &id("b"), 701)
        .await
        .unwrap_err();
    assert_eq!(
        (e.rule(), e.field()),
        (Some("budget_exceeded"), Some("amount")),
        "the reallocation's input is `amount`"
    );
    let a = team.agent(&id("a"));
    let r = ReservationId::new("unit-1").unwrap();
    let reserved = a
        .spawner()
        .reserve_tokens(&id("a"), &r, 500, None)
        .await
        .unwrap();
    assert_eq!(reserved.budget.reserved, 500);
    // A retry (its reply lost) is answered as the first; another amount under the id is
    // refused.
    let again = a
        .spawner()
        .reserve_tokens(&id("a"), &r, 500, None)
        .await
        .unwrap();
    assert_eq!(again, reserved, "a retried reserve reserves nothing more");
    let e = a
        .spawner()
        .reserve_tokens(&id("a"), &r, 501, None)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule(), e.field()),
        (
            ErrorKind::Rejected(ErrorCode::Conflict),
            Some("reservation_conflict"),
            Some("amount")
        )
    );
    let after = a.spawner().commit_tokens(&id("a"), &r, 420).await.unwrap();
    assert_eq!((after.budget.used, after.budget.reserved), (420, 0));
    // Input and output tokens apart, as agent platforms count them.
    let split = ReservationId::new("unit-2").unwrap();
    a.spawner()
        .reserve_tokens(&id("a"), &split, 100, None)
        .await
        .unwrap();
    let after = a
        .spawner()
        .commit_tokens(&id("a"), &split, Usage::split(60, 20))
        .await
        .unwrap();
    assert_eq!(
        (
            after.budget.used,
            after.budget.input_tokens,
            after.budget.output_tokens
        ),
        (500, 60, 20)
    );
    let stats = sp.get_stats().await.unwrap();
    assert_eq!(
        (
            stats.tokens.used,
            stats.tokens.input_tokens,
            stats.tokens.output_tokens
        ),
        (500, 60, 20)
    );
    assert!((stats.cost_usd - 500.0 / 1000.0 * 0.003).abs() < 1e-12);
    let avail = sp
        .find_available_agents(&guild_sdk::AgentQuery {
            role: Some(Role::Developer),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        avail.is_empty(),
        "PENDING agents are not available until they report"
    );
    a.spawner().heartbeat(None).await.unwrap();
    let avail = sp
        .find_available_agents(&guild_sdk::AgentQuery {
            role: Some(Role::Developer),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        avail.iter().map(|x| x.id.to_string()).collect::<Vec<_>>(),
        ["a"]
    );
}

#[test]
fn options_resolve_modes_and_explicit_limits() {
    use clap::Parser;
    // The keys `guild dev` would make: spawner-svc needs the custodian's to start.
    let dir = tempfile::tempdir().unwrap();
    let layout = guild_auth::Layout::under(dir.path());
    guild_auth::init(&layout, &dir.path().join("jwt"), Default::default()).unwrap();
    let spawner_creds = layout
        .service_creds(guild_domain::Service::Spawner)
        .display()
        .to_string();
    let keys = [
        "--creds".to_owned(),
        spawner_creds.clone(),
        "--custodian".to_owned(),
        layout.custodian().display().to_string(),
        "--system-creds".to_owned(),
        layout.system_creds().display().to_string(),
    ];
    let parse = |args: &[&str]| {
        let mut all: Vec<String> = vec!["spawner-svc".into()];
        all.extend(keys.iter().cloned());
        all.extend(args.iter().map(|a| (*a).to_owned()));
        spawner_svc::Options::try_parse_from(all)
            .unwrap()
            .into_config()
    };
    let c = parse(&["--mode", "aggressive", "--max-agents", "3"]).unwrap();
    assert_eq!((c.limits.max_agents, c.limits.token_pool), (3, 300_000));
    assert!(c.custodian.is_some());
    let e = parse(&["--mode", "ludicrous"]).unwrap_err();
    assert!(e.contains("--mode"), "{e}");
    let e = parse(&["--heartbeat-window", "5"]).unwrap_err();
    assert!(e.contains("--heartbeat-window"), "{e}");
    // Without the custodian's keys it does not start (unless told to run insecure)...
    let e = spawner_svc::Options::try_parse_from(["spawner-svc", "--creds", &spawner_creds])
        .unwrap()
        .into_config()
        .unwrap_err();
    assert!(e.contains("--custodian"), "{e}");
    // ...nor without credentials of its own.
    let e = spawner_svc::Options::try_parse_from(["spawner-svc"])
        .unwrap()
        .into_config()
        .unwrap_err();
    assert!(e.contains("--creds") && e.contains("--insecure"), "{e}");
    let c = spawner_svc::Options::try_parse_from(["spawner-svc", "--insecure"])
        .unwrap()
        .into_config()
        .unwrap();
    assert!(c.custodian.is_none());
}

#[test]
fn the_binary_reads_the_environment_and_exits_64_on_bad_configuration() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spawner-svc"))
        .arg("--insecure")
        .env("GUILD_MODE", "ludicrous")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode"));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_spawner-svc"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--mode",
        "--max-agents",
        "--heartbeat-window",
        "GUILD_MODE",
        "NATS_URL",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
}

/// A flood of one refusal is not a flood of audit records (issue 17: 6,000 junk requests
/// once left 86 permanent denial records): the first is recorded, the rest are counted,
/// and one record carries the count when the window closes.
#[tokio::test]
async fn a_flood_of_one_refusal_adds_two_audit_records_not_one_per_refusal() {
    let server = NatsServer::start();
    let mut c = config(6, 100_000);
    c.common.refusal_window = Duration::from_secs(2);
    let _instance = Instance::start(&server, c).await;
    let team = Team::new(&server).await;
    wait_for_instances(team.operator(), 1).await;
    let mut forbidden = Authority::default_for(&Role::Developer);
    forbidden.forbidden_actions.insert("deploy".into());
    team.spawn(root("junk", Role::Developer, 100).authority(forbidden))
        .await;
    let junk = team.agent(&id("junk"));
    let denials = || async {
        guild_sdk::audit::export(team.operator())
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str::<guild_wire::audit::AuditRecord>(&r.record).unwrap())
            .filter(|r| r.entry.kind == guild_wire::audit::AuditKind::Denial)
            .collect::<Vec<_>>()
    };
    for _ in 0..300 {
        let verdict = junk
            .spawner()
            .authorize(&id("junk"), "deploy", None)
            .await
            .unwrap();
        assert!(!verdict.allowed);
    }
    // Every refusal is accounted for: a record of its own (the first of a window) or in
    // a count; whatever the number of windows the 300 spanned, the records are few.
    let accounted = |d: &[guild_wire::audit::AuditRecord]| -> u64 {
        d.iter()
            .map(|r| r.entry.data["repeated"].as_u64().unwrap_or(1))
            .sum()
    };
    let recorded = eventually_async(
        "every refusal is recorded or counted",
        Duration::from_secs(20),
        || async {
            let d = denials().await;
            (accounted(&d) == 300).then_some(d)
        },
    )
    .await;
    let firsts = recorded
        .iter()
        .filter(|r| r.entry.data.get("repeated").is_none())
        .count();
    assert!(firsts >= 1 && recorded.len() <= 2 * firsts, "{recorded:?}");
    assert!(
        recorded.len() <= 10,
        "{} records for 300 refusals",
        recorded.len()
    );
}
