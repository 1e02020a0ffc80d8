//! Subject builders: the only place a Guild subject string is formatted.
//!
//! | subjects                                   | what                                         |
//! |--------------------------------------------|----------------------------------------------|
//! | `guild.<service>.v1.<op>.<principal>`      | service requests; the caller's id is a token |
//! | `guild.inbox.<agent>.<priority>`           | an agent's messages, priority as a token     |
//! | `guild.evt.<service>.<event>.<about>`      | events (stored in the `GUILD_EVENTS` stream) |
//! | `guild.audit.<kind>.<about>`               | the audit log (the `GUILD_AUDIT` stream)     |
//!
//! The principal (an agent id, or `operator`) sits in the request subject so per-agent NATS
//! credentials can pin identity at the broker instead of trusting a payload field.

use guild_domain::message::Priority;
use guild_domain::{AgentId, Principal};

/// The first token of every Guild subject.
pub const ROOT: &str = "guild";

/// The wire version, the third token of request subjects.
pub const VERSION_TOKEN: &str = "v1";

/// A Guild service.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Agent lifecycle, authority, budgets.
    Spawner,
    /// Messages, decisions, the audit log.
    Bus,
    /// Missions and their dependencies.
    Mission,
}

impl Service {
    /// All three.
    pub const ALL: [Service; 3] = [Service::Spawner, Service::Bus, Service::Mission];

    /// The subject token: `spawner`, `bus`, `mission`.
    pub const fn token(self) -> &'static str {
        match self {
            Service::Spawner => "spawner",
            Service::Bus => "bus",
            Service::Mission => "mission",
        }
    }

    /// The NATS micro service name (`$SRV.INFO.<name>`).
    pub const fn micro_name(self) -> &'static str {
        match self {
            Service::Spawner => "guild-spawner",
            Service::Bus => "guild-bus",
            Service::Mission => "guild-mission",
        }
    }

    /// The queue group instances share, so requests are load-balanced across them.
    pub const fn queue_group(self) -> &'static str {
        self.micro_name()
    }

    /// The request-subject prefix: `guild.<service>.v1`.
    pub fn group(self) -> String {
        format!("{ROOT}.{}.{VERSION_TOKEN}", self.token())
    }
}

/// `guild.<service>.v1.<op>.<principal>`: where a request for `op` on behalf of `by` goes.
pub fn request(service: Service, op: &str, by: &Principal) -> String {
    format!(
        "{ROOT}.{}.{VERSION_TOKEN}.{op}.{}",
        service.token(),
        by.token()
    )
}

/// `<op>.*`: the endpoint subject inside the service's group (any principal).
pub fn endpoint(op: &str) -> String {
    format!("{op}.*")
}

/// The principal token of a request subject (its last token).
pub fn principal_token(subject: &str) -> Option<&str> {
    subject.rsplit('.').next()
}

/// The inbox owner: an agent, or the operator.
fn owner_token(owner: &Principal) -> &str {
    owner.token()
}

/// `guild.inbox.<owner>.<priority>`: one inbox level.
pub fn inbox(owner: &Principal, priority: Priority) -> String {
    format!("{ROOT}.inbox.{}.{}", owner_token(owner), priority.as_str())
}

/// `guild.inbox.*.<priority>`: one level of every inbox.
pub fn inbox_level(priority: Priority) -> String {
    format!("{ROOT}.inbox.*.{}", priority.as_str())
}

/// `guild.inbox.<owner>.*`: every level of one inbox.
pub fn inbox_all_levels(owner: &Principal) -> String {
    format!("{ROOT}.inbox.{}.*", owner_token(owner))
}

/// `guild.inbox.>`: every inbox (what the inbox stream stores, and what `guild tail` reads).
pub const INBOX_WILDCARD: &str = "guild.inbox.>";

/// The owner and priority tokens of an inbox subject.
pub fn parse_inbox(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("guild.inbox.")?;
    let (owner, priority) = rest.split_once('.')?;
    (!priority.contains('.')).then_some((owner, priority))
}

/// `guild.evt.<service>.<event>.<about>`.
pub fn event(service: Service, name: &str, about: &str) -> String {
    format!("{ROOT}.evt.{}.{name}.{about}", service.token())
}

/// The subject of a spawner event.
pub fn spawner_event(e: &guild_domain::agent::Event) -> String {
    event(Service::Spawner, e.name(), e.about())
}

/// The subject of a mission event.
pub fn mission_event(e: &guild_domain::mission::Event) -> String {
    event(Service::Mission, e.name(), &e.about())
}

/// `guild.evt.<service>.>`: every event of a service.
pub fn events_of(service: Service) -> String {
    format!("{ROOT}.evt.{}.>", service.token())
}

/// `guild.evt.>`: every event (what the events stream stores).
pub const EVENTS_WILDCARD: &str = "guild.evt.>";

/// `guild.audit.<kind>.<about>`.
pub fn audit(kind: &str, about: &str) -> String {
    format!("{ROOT}.audit.{kind}.{about}")
}

/// `guild.audit.>`: the whole audit log.
pub const AUDIT_WILDCARD: &str = "guild.audit.>";

/// NATS micro discovery: `$SRV.<verb>.<micro name>` for one service, `$SRV.<verb>` for
/// every service (`verb` is `PING`, `INFO` or `STATS`).
pub fn discovery(verb: &str, service: Option<Service>) -> String {
    match service {
        Some(s) => format!("$SRV.{verb}.{}", s.micro_name()),
        None => format!("$SRV.{verb}"),
    }
}

/// `guild.inbox.<agent>.*` for an agent id (convenience for an agent's own subscription).
pub fn agent_inbox(agent: &AgentId) -> String {
    inbox_all_levels(&Principal::Agent(agent.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_subjects_carry_the_principal_last() {
        let by = Principal::from_token("dev-lead-1").unwrap();
        let s = request(Service::Bus, "request", &by);
        assert_eq!(s, "guild.bus.v1.request.dev-lead-1");
        assert_eq!(principal_token(&s), Some("dev-lead-1"));
        assert_eq!(
            request(Service::Spawner, "spawn", &Principal::Operator),
            "guild.spawner.v1.spawn.operator"
        );
        assert_eq!(
            format!(
                "{}.{}",
                Service::Mission.group(),
                endpoint("create_mission")
            ),
            "guild.mission.v1.create_mission.*"
        );
    }

    #[test]
    fn inbox_subjects_carry_the_priority() {
        let qa = Principal::from_token("qa-engineer-2").unwrap();
        let s = inbox(&qa, Priority::Critical);
        assert_eq!(s, "guild.inbox.qa-engineer-2.critical");
        assert_eq!(parse_inbox(&s), Some(("qa-engineer-2", "critical")));
        assert_eq!(parse_inbox("guild.inbox.a.b.c"), None);
        assert_eq!(
            inbox(&Principal::Operator, Priority::Low),
            "guild.inbox.operator.low"
        );
    }

    #[test]
    fn events_and_audit() {
        assert_eq!(
            event(Service::Spawner, "spawned", "dev-1"),
            "guild.evt.spawner.spawned.dev-1"
        );
        assert_eq!(audit("decision", "msg-1"), "guild.audit.decision.msg-1");
        assert_eq!(events_of(Service::Mission), "guild.evt.mission.>");
    }

    #[test]
    fn discovery_subjects_name_the_micro_service() {
        assert_eq!(discovery("PING", Some(Service::Bus)), "$SRV.PING.guild-bus");
        assert_eq!(discovery("INFO", None), "$SRV.INFO");
        assert_eq!(inbox_level(Priority::Critical), "guild.inbox.*.critical");
    }
}
