//! Spawn caps: how deep, how many over a lifetime, and how fast a spawn tree may grow
//! below an agent; each spawn counts against every capped ancestor.

use super::*;
use crate::agent::SpawnCap;

/// A world in extreme mode (20 agents) with a root `lead` holding `caps`.
fn capped(caps: impl FnOnce(&mut Authority)) -> World {
    let mut w = World::new(Mode::Extreme.limits());
    let mut authority = Authority::default_for(&Role::Orchestrator);
    caps(&mut authority);
    w.run(
        &Principal::Operator,
        Command::Spawn(SpawnRequest {
            id: id("lead"),
            role: Role::Orchestrator,
            capabilities: vec![],
            parent_id: None,
            token_budget: 100_000,
            authority: Some(authority),
            public_key: None,
        }),
    )
    .unwrap();
    w.heartbeat("lead");
    w
}

fn spawn_under(w: &mut World, name: &str, parent: &str) -> Result<Vec<Event>, Rejection> {
    w.spawn(&agent(parent), name, Role::Developer, Some(parent), 1_000)
}

fn reached(holder: &str, cap: SpawnCap, limit: u32, current: u32) -> Rejection {
    Rejection::SpawnCapReached {
        holder: id(holder),
        cap,
        limit,
        current,
    }
}

#[test]
fn a_spawn_deeper_than_an_ancestors_max_depth_is_refused_and_children_inherit_one_less() {
    let mut w = capped(|a| a.max_depth = Some(2));
    spawn_under(&mut w, "a", "lead").unwrap();
    assert_eq!(w.get("a").authority.max_depth, Some(1));
    w.heartbeat("a");
    spawn_under(&mut w, "b", "a").unwrap();
    assert_eq!(w.get("b").authority.max_depth, Some(0));
    w.heartbeat("b");
    let before: Vec<AgentProfile> = w.reg.agents().cloned().collect();
    let err = spawn_under(&mut w, "c", "b").unwrap_err();
    // The nearest cap refuses first: b may have no sub-agents at all.
    assert_eq!(err, reached("b", SpawnCap::MaxDepth, 0, 1));
    assert_eq!(err.rule(), "spawn_depth_exceeded");
    assert_eq!(err.field(), Some("max_depth"));
    let after: Vec<AgentProfile> = w.reg.agents().cloned().collect();
    assert_eq!(after, before, "a refusal changes nothing");
}

#[test]
fn an_explicit_depth_beyond_the_parents_is_refused_naming_the_field() {
    let mut w = capped(|a| a.max_depth = Some(2));
    let mut asked = Authority::default_for(&Role::Developer);
    asked.max_depth = Some(2);
    let err = w
        .run(
            &agent("lead"),
            Command::Spawn(SpawnRequest {
                id: id("a"),
                role: Role::Developer,
                capabilities: vec![],
                parent_id: Some(id("lead")),
                token_budget: 1_000,
                authority: Some(asked),
                public_key: None,
            }),
        )
        .unwrap_err();
    assert_eq!(err.rule(), "authority_exceeds_parent");
    assert_eq!(err.field(), Some("max_depth"));
}

#[test]
fn the_lifetime_cap_counts_every_generation_and_terminated_descendants() {
    let mut w = capped(|a| a.max_descendants = Some(3));
    spawn_under(&mut w, "a", "lead").unwrap();
    // Clamped to what is left of lead's count after this spawn.
    assert_eq!(w.get("a").authority.max_descendants, Some(2));
    w.heartbeat("a");
    // A grandchild counts against lead too.
    spawn_under(&mut w, "a1", "a").unwrap();
    assert_eq!(w.get("lead").descendants_spawned, 2);
    assert_eq!(w.get("a").descendants_spawned, 1);
    w.run(
        &Principal::Operator,
        Command::Terminate {
            agent: id("a1"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    spawn_under(&mut w, "b", "lead").unwrap();
    assert_eq!(w.get("lead").descendants_spawned, 3);
    // Two live below lead, but three were ever spawned: the cap is reached.
    let err = spawn_under(&mut w, "c", "lead").unwrap_err();
    assert_eq!(err, reached("lead", SpawnCap::MaxDescendants, 3, 3));
    assert_eq!(err.rule(), "descendants_exhausted");
    // Deeper down the same: a's own cap is not reached, lead's is.
    let err = spawn_under(&mut w, "a2", "a").unwrap_err();
    assert_eq!(err, reached("lead", SpawnCap::MaxDescendants, 3, 3));
}

#[test]
fn the_rate_cap_counts_spawns_within_the_last_minute() {
    let mut w = capped(|a| a.max_spawns_per_minute = Some(2));
    spawn_under(&mut w, "a", "lead").unwrap();
    w.now = w.now.plus_millis(30_000);
    spawn_under(&mut w, "b", "lead").unwrap();
    let err = spawn_under(&mut w, "c", "lead").unwrap_err();
    assert_eq!(err, reached("lead", SpawnCap::MaxSpawnsPerMinute, 2, 2));
    assert_eq!(err.rule(), "spawn_rate_exceeded");
    assert!(err.to_string().contains("try again later"), "{err}");
    // A minute after the first, one slot is free again; the memory stays bounded.
    w.now = w.now.plus_millis(30_000);
    spawn_under(&mut w, "c", "lead").unwrap();
    assert_eq!(w.get("lead").recent_spawns.len(), 2);
    assert!(spawn_under(&mut w, "d", "lead").is_err());
}

#[test]
fn an_uncapped_tree_keeps_no_counters() {
    let mut w = capped(|_| {});
    spawn_under(&mut w, "a", "lead").unwrap();
    assert_eq!(w.get("lead").descendants_spawned, 0);
    assert!(w.get("lead").recent_spawns.is_empty());
    assert_eq!(w.get("a").authority.max_descendants, None);
}

#[test]
fn a_cap_refusal_is_an_audited_denial_and_asks_the_parents_orchestrator() {
    let mut w = capped(|a| a.max_descendants = Some(1));
    spawn_under(&mut w, "a", "lead").unwrap();
    let cmd = Command::Spawn(SpawnRequest {
        id: id("b"),
        role: Role::Developer,
        capabilities: vec![],
        parent_id: Some(id("lead")),
        token_budget: 1_000,
        authority: None,
        public_key: None,
    });
    let err = w.reg.decide(&agent("lead"), &cmd, w.now).unwrap_err();
    let events = w.reg.refusal_events(&agent("lead"), &cmd, &err, w.now);
    assert!(
        matches!(&events[..], [
            Event::AuthorityDenied { action, .. },
            Event::SpawnCapReached { agent_id, child, holder, cap: SpawnCap::MaxDescendants, limit: 1, current: 1, .. },
        ] if action == "spawn_agent" && agent_id == &id("lead") && child == &id("b") && holder == &id("lead")),
        "{events:?}"
    );
    assert!(events[0].audit_kind().is_some(), "the denial is audited");
}
