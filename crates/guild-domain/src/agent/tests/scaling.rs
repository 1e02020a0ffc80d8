//! Auto-scaling: a policy turns READY missions into members and idle members back into
//! budget, within every rule a spawn obeys, and never flaps.

use super::*;
use crate::agent::ScalingPolicy;

const SPAWNER: Principal = Principal::Service(crate::Service::Spawner);

/// A world in safe mode (6 agents, 200,000 tokens) with a root orchestrator `lead`
/// holding `budget` tokens and a developer policy of `max` members, 1,000 tokens each.
fn scaled(budget: u64, max: u32) -> World {
    let mut w = World::safe();
    w.spawn(
        &Principal::Operator,
        "lead",
        Role::Orchestrator,
        None,
        budget,
    )
    .unwrap();
    w.heartbeat("lead");
    let mut p = ScalingPolicy::new(id("lead"), Role::Developer, max, 1_000);
    p.cooldown_ms = 1_000;
    p.idle_ttl_ms = 500;
    w.run(&Principal::Operator, Command::SetScalingPolicy(p))
        .unwrap();
    w
}

fn tick(w: &mut World, ready: u32) -> Vec<Event> {
    tick_awaiting(w, ready, &[])
}

/// A tick with READY missions meant for `awaited`.
fn tick_awaiting(w: &mut World, ready: u32, awaited: &[&str]) -> Vec<Event> {
    let cmd = Command::Autoscale {
        owner: id("lead"),
        role: Role::Developer,
        ready,
        awaited: awaited.iter().map(|a| id(a)).collect(),
    };
    w.run(&SPAWNER, cmd).unwrap()
}

fn members(w: &World) -> Vec<String> {
    w.reg
        .members(&id("lead"), &Role::Developer)
        .map(|a| a.id.to_string())
        .collect()
}

fn scaled_event(events: &[Event]) -> Option<(u32, u32, u32)> {
    events.iter().find_map(|e| match e {
        Event::Scaled {
            ready, from, to, ..
        } => Some((*ready, *from, *to)),
        _ => None,
    })
}

#[test]
fn a_burst_scales_up_to_the_policys_maximum_with_its_reason() {
    let mut w = scaled(100_000, 3);
    let events = tick(&mut w, 50);
    assert_eq!(scaled_event(&events), Some((50, 0, 3)), "{events:?}");
    assert_eq!(
        members(&w),
        ["lead-developer-1", "lead-developer-2", "lead-developer-3"]
    );
    let m = w.get("lead-developer-1");
    assert!(m.autoscaled && m.temporary);
    assert_eq!(m.parent_id, Some(id("lead")));
    assert_eq!(m.budget.allocated, 1_000, "carved from the owner");
    assert_eq!(w.get("lead").budget.allocated, 100_000 - 3_000);
    assert!(w.conserved());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Spawned { by, .. } if by == &agent("lead"))),
        "spawned under the owner's authority"
    );
    // At the maximum, more load changes nothing, and writes nothing.
    w.now = w.now.plus_millis(5_000);
    let effects = w
        .reg
        .decide(
            &SPAWNER,
            &Command::Autoscale {
                owner: id("lead"),
                role: Role::Developer,
                ready: 50,
                awaited: vec![],
            },
            w.now,
        )
        .unwrap();
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn the_tightest_rule_stops_a_scale_up_and_is_told_once() {
    // The mode allows 6 live agents: lead and 5 members, though the policy wants 10.
    let mut w = scaled(100_000, 10);
    let events = tick(&mut w, 50);
    assert_eq!(scaled_event(&events), Some((50, 0, 5)));
    let blocked: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::ScalingBlocked { .. }))
        .collect();
    assert!(
        matches!(blocked[..], [Event::ScalingBlocked { rule, wanted: 10, members: 5, .. }] if rule == "agent_limit_reached"),
        "{blocked:?}"
    );
    let s = w.reg.scaling(&id("lead"), &Role::Developer).unwrap();
    assert_eq!(s.blocked_by.as_deref(), Some("agent_limit_reached"));
    // Past the cool-down, the same rule holds it back again: nothing new is said.
    w.now = w.now.plus_millis(5_000);
    assert!(tick(&mut w, 50).is_empty());
}

#[test]
fn a_budget_that_runs_out_stops_scaling_with_the_budget_rule() {
    // 2,500 tokens carve two members of 1,000.
    let mut w = scaled(2_500, 5);
    let events = tick(&mut w, 50);
    assert_eq!(scaled_event(&events), Some((50, 0, 2)));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ScalingBlocked { rule, .. } if rule == "budget_exceeded"))
    );
    assert!(w.conserved());
}

#[test]
fn a_cap_of_the_owner_holds_scaling_at_its_boundary() {
    let mut w = World::new(Mode::Extreme.limits());
    let mut authority = Authority::default_for(&Role::Orchestrator);
    authority.max_descendants = Some(2);
    w.run(
        &Principal::Operator,
        Command::Spawn(
            SpawnRequest::new(id("lead"), Role::Orchestrator, 100_000).authority(authority),
        ),
    )
    .unwrap();
    w.heartbeat("lead");
    let mut p = ScalingPolicy::new(id("lead"), Role::Developer, 5, 1_000);
    p.cooldown_ms = 100;
    w.run(&Principal::Operator, Command::SetScalingPolicy(p))
        .unwrap();
    let events = tick(&mut w, 5);
    assert_eq!(scaled_event(&events), Some((5, 0, 2)));
    assert!(events.iter().any(
        |e| matches!(e, Event::ScalingBlocked { rule, .. } if rule == "descendants_exhausted")
    ));
}

#[test]
fn the_cool_down_holds_a_second_change_and_idle_members_go_after_their_idle_time() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    assert_eq!(members(&w).len(), 2);
    w.now = w.now.plus_millis(999);
    assert!(tick(&mut w, 5).is_empty(), "inside the cool-down");
    w.now = w.now.plus_millis(1);
    assert_eq!(scaled_event(&tick(&mut w, 5)), Some((5, 2, 5)));

    // Work on one member keeps it; the others idle past the idle time go.
    let busy = id("lead-developer-1");
    w.heartbeat("lead-developer-1");
    w.run(
        &agent("lead"),
        Command::AllocateTask {
            agent: busy.clone(),
            task: MissionId::new("m-1").unwrap(),
            phase: None,
        },
    )
    .unwrap();
    w.now = w.now.plus_millis(1_000);
    let lead_before = w.get("lead").budget.allocated;
    let events = tick(&mut w, 0);
    let terminated = events
        .iter()
        .find_map(|e| match e {
            Event::Scaled { terminated, .. } => Some(terminated.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(terminated.len(), 4, "{events:?}");
    assert!(
        !terminated.contains(&busy),
        "a member at work is never scaled down"
    );
    assert_eq!(members(&w), [busy.to_string()]);
    assert_eq!(
        w.get("lead").budget.allocated,
        lead_before + 4_000,
        "the unspent budget goes back to the owner"
    );
    assert!(w.conserved());
}

#[test]
fn a_member_not_idle_long_enough_stays() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    w.now = w.now.plus_millis(1_000);
    // Released a task 100 ms ago: idle, but not for the policy's 500 ms.
    let m = id("lead-developer-1");
    w.heartbeat("lead-developer-1");
    let task = MissionId::new("m-1").unwrap();
    w.run(
        &agent("lead"),
        Command::AllocateTask {
            agent: m.clone(),
            task: task.clone(),
            phase: None,
        },
    )
    .unwrap();
    w.now = w.now.plus_millis(1);
    w.run(
        &agent("lead"),
        Command::ReleaseTask {
            agent: m.clone(),
            task: Some(task),
            allocated_at: None,
            reason: "done".into(),
        },
    )
    .unwrap();
    w.now = w.now.plus_millis(100);
    let events = tick(&mut w, 0);
    assert_eq!(scaled_event(&events), Some((0, 2, 1)));
    assert_eq!(members(&w), [m.to_string()]);
}

/// The flapping load: one mission around the scale-up threshold, every half
/// cool-down, for ten cool-downs.
#[test]
fn a_load_swinging_around_the_threshold_scales_up_at_most_once_per_cool_down_and_never_down() {
    let mut w = scaled(100_000, 5);
    let p = w
        .reg
        .scaling(&id("lead"), &Role::Developer)
        .unwrap()
        .policy
        .clone();
    // Start at one member: the threshold is then k = 1 READY mission.
    tick(&mut w, 1);
    let threshold = p.ready_per_agent;
    let (mut ups, mut downs) = (0, 0);
    let half = p.cooldown_ms / 2;
    let steps = 2 * 10;
    for i in 0..steps {
        w.now = w.now.plus_millis(half);
        let ready = if i % 2 == 0 { threshold + 1 } else { threshold };
        if let Some((_, from, to)) = scaled_event(&tick(&mut w, ready)) {
            if to > from {
                ups += 1;
            } else {
                downs += 1;
            }
        }
    }
    let bound = (steps as u64 * half).div_ceil(p.cooldown_ms);
    assert!(ups <= bound, "{ups} scale-ups in {bound} cool-downs");
    assert_eq!(downs, 0, "the band holds: no scale-down");
    assert_eq!(members(&w).len(), 2, "scaled up once, to 2, and held");
}

#[test]
fn only_the_operator_or_an_orchestrator_above_the_owner_sets_a_policy() {
    let mut w = scaled(100_000, 5);
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 1_000)
        .unwrap();
    w.heartbeat("dev");
    w.spawn(
        &Principal::Operator,
        "other",
        Role::Orchestrator,
        None,
        1_000,
    )
    .unwrap();
    w.heartbeat("other");
    let p = ScalingPolicy::new(id("lead"), Role::Qa, 2, 100);
    for by in [agent("dev"), agent("other"), Principal::Observer] {
        let err = w
            .run(&by, Command::SetScalingPolicy(p.clone()))
            .unwrap_err();
        assert_eq!(err.rule(), "forbidden_action", "{by}: {err}");
    }
    let events = w.run(&agent("lead"), Command::SetScalingPolicy(p)).unwrap();
    assert!(matches!(events[..], [Event::ScalingPolicySet { .. }]));
    let mut bad = ScalingPolicy::new(id("lead"), Role::Qa, 0, 100);
    bad.cooldown_ms = 100;
    let err = w
        .run(&Principal::Operator, Command::SetScalingPolicy(bad))
        .unwrap_err();
    assert_eq!(err.field(), Some("max_agents"));
    let err = w
        .run(
            &agent("lead"),
            Command::Autoscale {
                owner: id("lead"),
                role: Role::Qa,
                ready: 1,
                awaited: vec![],
            },
        )
        .unwrap_err();
    assert_eq!(
        err.rule(),
        "forbidden_action",
        "only Guild applies a policy"
    );
}

#[test]
fn a_dropped_policy_is_gone_and_its_members_stay() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    let remove = Command::RemoveScalingPolicy {
        owner: id("lead"),
        role: Role::Developer,
    };
    w.run(&Principal::Operator, remove.clone()).unwrap();
    assert!(w.reg.scaling(&id("lead"), &Role::Developer).is_none());
    assert_eq!(members(&w).len(), 2);
    let err = w.run(&Principal::Operator, remove).unwrap_err();
    assert_eq!(err.rule(), "unknown_scaling_policy");
}

#[test]
fn policies_survive_a_snapshot() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    let mut rebuilt = Registry::new(Mode::Safe.limits(), T0);
    for r in w.reg.records() {
        rebuilt.apply((*r).clone());
    }
    assert_eq!(
        rebuilt.scaling(&id("lead"), &Role::Developer),
        w.reg.scaling(&id("lead"), &Role::Developer)
    );
    assert_eq!(rebuilt.members(&id("lead"), &Role::Developer).count(), 2);
}

#[test]
fn without_a_band_the_cool_down_spaces_every_change() {
    let mut w = scaled(100_000, 5);
    let mut p = w
        .reg
        .scaling(&id("lead"), &Role::Developer)
        .unwrap()
        .policy
        .clone();
    p.hysteresis = 0.0;
    p.idle_ttl_ms = 100;
    w.run(&Principal::Operator, Command::SetScalingPolicy(p.clone()))
        .unwrap();
    tick(&mut w, 1);
    // Each swing would change the members: only the cool-down holds them.
    let mut changes = Vec::new();
    let half = p.cooldown_ms / 2;
    for i in 0..20u32 {
        w.now = w.now.plus_millis(half);
        let ready = if i % 2 == 0 { 2 } else { 1 };
        if scaled_event(&tick(&mut w, ready)).is_some() {
            changes.push(w.now);
        }
    }
    assert!(
        changes.len() >= 2,
        "the swing does change the members: {changes:?}"
    );
    for pair in changes.windows(2) {
        assert!(
            pair[1].millis_since(pair[0]) >= p.cooldown_ms,
            "two changes within a cool-down: {changes:?}"
        );
    }
}

#[test]
fn a_lowered_maximum_scales_idle_members_down_whatever_the_load() {
    let mut w = scaled(100_000, 4);
    tick(&mut w, 10);
    assert_eq!(members(&w).len(), 4);
    let mut p = w
        .reg
        .scaling(&id("lead"), &Role::Developer)
        .unwrap()
        .policy
        .clone();
    p.max_agents = 2;
    w.run(&Principal::Operator, Command::SetScalingPolicy(p))
        .unwrap();
    w.now = w.now.plus_millis(1_000);
    let events = tick(&mut w, 10);
    assert_eq!(scaled_event(&events), Some((10, 4, 2)), "{events:?}");
}

#[test]
fn a_load_that_falls_clears_what_held_the_scale_up_so_the_next_is_told() {
    let mut w = scaled(2_500, 5);
    tick(&mut w, 50);
    let held = |w: &World| {
        w.reg
            .scaling(&id("lead"), &Role::Developer)
            .unwrap()
            .blocked_by
            .clone()
    };
    assert_eq!(held(&w).as_deref(), Some("budget_exceeded"));
    w.now = w.now.plus_millis(1_000);
    // Two READY missions for two members: nothing is held any more.
    assert!(tick(&mut w, 2).is_empty(), "no event for clearing it");
    assert_eq!(held(&w), None);
    w.now = w.now.plus_millis(1_000);
    let again = tick(&mut w, 50);
    assert!(
        again
            .iter()
            .any(|e| matches!(e, Event::ScalingBlocked { .. })),
        "told again: {again:?}"
    );
}

#[test]
fn a_policy_of_an_ended_owner_can_still_be_dropped() {
    let mut w = scaled(100_000, 5);
    w.run(
        &Principal::Operator,
        Command::Terminate {
            agent: id("lead"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let remove = Command::RemoveScalingPolicy {
        owner: id("lead"),
        role: Role::Developer,
    };
    w.run(&Principal::Operator, remove).unwrap();
    assert!(w.reg.scaling(&id("lead"), &Role::Developer).is_none());
}

#[test]
fn an_orchestrator_that_may_not_spawn_sets_no_policy() {
    let mut w = World::safe();
    let mut authority = Authority::default_for(&Role::Orchestrator);
    authority.forbidden_actions.insert("spawn_agent".into());
    w.run(
        &Principal::Operator,
        Command::Spawn(
            SpawnRequest::new(id("lead"), Role::Orchestrator, 10_000).authority(authority),
        ),
    )
    .unwrap();
    w.heartbeat("lead");
    let p = ScalingPolicy::new(id("lead"), Role::Developer, 2, 100);
    let err = w
        .run(&agent("lead"), Command::SetScalingPolicy(p))
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action", "{err}");
}

#[test]
fn a_member_back_from_a_pause_idles_from_its_return() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    let m = id("lead-developer-1");
    w.heartbeat("lead-developer-1");
    w.run(
        &Principal::Operator,
        Command::Pause {
            agent: m.clone(),
            reason: "look".into(),
            subtree: false,
        },
    )
    .unwrap();
    w.now = w.now.plus_millis(5_000);
    w.run(
        &Principal::Operator,
        Command::Resume {
            agent: m.clone(),
            subtree: false,
        },
    )
    .unwrap();
    assert_eq!(w.get("lead-developer-1").free_since, Some(w.now));
    // Only the other member has idled past the idle time.
    let events = tick(&mut w, 0);
    assert_eq!(scaled_event(&events), Some((0, 2, 1)), "{events:?}");
    assert_eq!(members(&w), [m.to_string()]);
}

#[test]
fn a_member_a_ready_mission_waits_for_is_not_scaled_down() {
    let mut w = scaled(100_000, 5);
    tick(&mut w, 2);
    w.now = w.now.plus_millis(5_000);
    // A retried mission waits READY for member 1: only member 2 is idle.
    let events = tick_awaiting(&mut w, 0, &["lead-developer-1"]);
    assert_eq!(scaled_event(&events), Some((0, 2, 1)), "{events:?}");
    assert_eq!(members(&w), ["lead-developer-1"]);
}
