//! Auto-scaling against real services: a scaling policy turns READY missions of a role
//! into agents, within the tightest of its own limits and every rule a spawn obeys, and
//! back down when the work is done; two spawner-svc instances scale once; a load swinging
//! around the threshold does not flap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use guild_domain::Phase;
use guild_domain::agent::{Event, Role, ScalingPolicy};
use guild_domain::mission::{MissionStatus, NewMission};
use guild_sdk::Guild;
use guild_testkit::eventually_async;

fn developer_mission(name: &str) -> NewMission {
    let mut m = mission(name, Phase::DEVELOPMENT);
    m.role = Some(Role::Developer);
    m
}

/// `orch`'s policy for developers: `max` members of `budget` tokens each.
fn policy(max: u32, budget: u64) -> ScalingPolicy {
    let mut p = ScalingPolicy::new(id("orch"), Role::Developer, max, budget);
    p.cooldown_ms = 200;
    p.idle_ttl_ms = 300;
    p
}

/// Waits until the policies have `n` live members in all.
async fn until_members(guild: &Guild, n: usize, what: &str) {
    eventually_async(what, Duration::from_secs(10), || async {
        (members(guild).await.len() == n).then_some(())
    })
    .await;
}

async fn members(guild: &Guild) -> Vec<String> {
    let list = guild.spawner().list_scaling_policies(None).await.unwrap();
    list.policies
        .into_iter()
        .flat_map(|p| p.members)
        .map(|m| m.to_string())
        .collect()
}

/// Every `scaled` event spawner-svc publishes from now on.
async fn scaled_events(s: &Stack) -> async_nats::Subscriber {
    let admin = s.server.connect_admin().await;
    let sub = admin
        .subscribe(guild_wire::subject::event_everywhere("scaled"))
        .await
        .unwrap();
    admin.flush().await.unwrap();
    sub
}

/// The `scaled` events that arrived, as (from, to).
async fn drain(sub: &mut async_nats::Subscriber) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        if let Ok(Event::Scaled { from, to, .. }) = serde_json::from_slice(&m.payload) {
            out.push((from, to));
        }
    }
    out
}

/// A member at work: its credentials re-issued by the owner, a heartbeat, then claims and
/// completes developer missions until none is left. A member idle long enough may be
/// scaled down before or between its claims (the load falls as the others take it):
/// it then stops, having done what it did.
async fn work(s: &Stack, member: &str) -> usize {
    let gone = || async {
        let a = s.guild.spawner().get(&id(member)).await.unwrap();
        assert!(!a.is_live(), "{member} failed while live: {a:?}");
        assert!(a.assigned_task_id.is_none(), "scaled down at work: {a:?}");
    };
    let Ok(issued) = s
        .agent("orch")
        .spawner()
        .issue_credentials(&id(member), None)
        .await
    else {
        gone().await;
        return 0;
    };
    let me = s.team.join(&issued).await.unwrap();
    let mut done = 0;
    if me.spawner().heartbeat(None).await.is_err() {
        gone().await;
        return 0;
    }
    loop {
        match me.missions().claim_next(None).await {
            Ok(Some(m)) => {
                me.missions()
                    .mark_complete(&m.id, serde_json::json!({"by": member}), None)
                    .await
                    .unwrap();
                done += 1;
            }
            Ok(None) => return done,
            // Other claimers took every candidate it tried: there are more.
            Err(e) if e.rule() == Some("claim_contended") => {}
            Err(_) => {
                gone().await;
                return done;
            }
        }
    }
}

#[tokio::test]
async fn a_burst_scales_up_to_the_tightest_limit_and_back_to_the_minimum_when_done() {
    let s = stack(Default::default()).await;
    // orch holds 80,000 tokens after its two developers: 15,000 a member allows 5,
    // though the policy would go to 8.
    let mut p = policy(8, 15_000);
    p.min_agents = 1;
    let set = s.guild.spawner().set_scaling_policy(&p).await.unwrap();
    assert_eq!(set.scaling.policy, p);
    until_members(&s.guild, 1, "the minimum is spawned").await;

    let ms = s.guild.missions();
    for i in 0..50 {
        ms.create_mission(&developer_mission(&format!("burst-{i}")))
            .await
            .unwrap();
    }
    until_members(&s.guild, 5, "scaled up to the budget's limit").await;
    eventually_async(
        "held by the owner's budget",
        Duration::from_secs(10),
        || async {
            let state = s.guild.spawner().list_scaling_policies(None).await.ok()?;
            (state.policies[0].scaling.blocked_by.as_deref() == Some("budget_exceeded"))
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(members(&s.guild).await.len(), 5, "never past the limit");

    let names = members(&s.guild).await;
    let done: usize = futures_util::future::join_all(names.iter().map(|m| work(&s, m)))
        .await
        .into_iter()
        .sum();
    assert_eq!(done, 50, "every mission claimed and completed once");
    for i in 0..50 {
        let m = ms.get_mission(&m(&format!("burst-{i}"))).await.unwrap();
        assert_eq!(m.status, MissionStatus::Completed);
    }
    until_members(&s.guild, 1, "back to the minimum").await;
    let orch = s.guild.spawner().get(&id("orch")).await.unwrap();
    assert_eq!(
        orch.budget.remaining(),
        80_000 - 15_000,
        "the members' unspent tokens went back to the owner"
    );
}

#[tokio::test]
async fn two_spawner_instances_scale_once_for_the_same_load() {
    let s = stack(Default::default()).await;
    let _second = spawner(&s.server, Duration::from_secs(60)).await;
    let mut events = scaled_events(&s).await;
    let ms = s.guild.missions();
    for i in 0..10 {
        ms.create_mission(&developer_mission(&format!("load-{i}")))
            .await
            .unwrap();
    }
    let mut p = policy(4, 1_000);
    // Long enough that the burst is one change.
    p.cooldown_ms = 60_000;
    s.guild.spawner().set_scaling_policy(&p).await.unwrap();
    until_members(&s.guild, 4, "scaled to the maximum").await;
    // Both instances tick every 50 ms; give them many chances to scale twice.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let all = s
        .guild
        .spawner()
        .list(&guild_domain::agent::AgentQuery {
            parent_id: Some(id("orch")),
            include_terminated: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().filter(|a| a.autoscaled).count(), 4, "{:?}", all);
    assert_eq!(drain(&mut events).await, [(0, 4)], "one scaling decision");
}

/// The issue's flapping load: one READY mission around the scale-up threshold, every half
/// cool-down, for ten cool-downs.
#[tokio::test]
async fn a_load_swinging_around_the_threshold_does_not_flap() {
    let s = stack(Default::default()).await;
    let mut events = scaled_events(&s).await;
    let mut p = policy(5, 1_000);
    p.min_agents = 1;
    p.idle_ttl_ms = 100;
    s.guild.spawner().set_scaling_policy(&p).await.unwrap();
    until_members(&s.guild, 1, "the minimum is spawned").await;
    let ms = s.guild.missions();
    // At one member the threshold is ready_per_agent READY missions.
    for i in 0..p.ready_per_agent {
        ms.create_mission(&developer_mission(&format!("base-{i}")))
            .await
            .unwrap();
    }
    let half = Duration::from_millis(p.cooldown_ms / 2);
    let steps = 20u32;
    for i in 0..steps {
        let swing = m(&format!("swing-{i}"));
        if i % 2 == 0 {
            ms.create_mission(&developer_mission(swing.as_str()))
                .await
                .unwrap();
        } else {
            let prev = m(&format!("swing-{}", i - 1));
            ms.cancel_mission(&prev, "the load swings back")
                .await
                .unwrap();
        }
        tokio::time::sleep(half).await;
    }
    let changes = drain(&mut events).await;
    let ups = changes.iter().filter(|(from, to)| to > from).count() as u64;
    let downs: Vec<_> = changes
        .iter()
        .filter(|(from, to)| to < from)
        .filter(|(from, _)| *from > 1)
        .collect();
    // The first change is the minimum's spawn; then at most one up per cool-down.
    let bound = 1 + (u64::from(steps) * half.as_millis() as u64).div_ceil(p.cooldown_ms);
    assert!(ups <= bound, "{ups} scale-ups, bound {bound}: {changes:?}");
    assert!(
        downs.is_empty(),
        "no scale-down inside the band: {changes:?}"
    );
    assert_eq!(members(&s.guild).await.len(), 2, "{changes:?}");
}
