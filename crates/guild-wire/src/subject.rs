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

/// A Guild service (defined in the domain, where it is also a principal).
pub use guild_domain::Service;

/// The request-subject prefix of a service: `guild.<service>.v1`.
pub fn group(service: Service) -> String {
    format!("{ROOT}.{}.{VERSION_TOKEN}", service.token())
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

/// `guild.evt.*.<event>.*`: one event of every service.
pub fn event_everywhere(name: &str) -> String {
    format!("{ROOT}.evt.*.{name}.*")
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

/// The template of audit subjects of `kind`, `guild.audit.<kind>.{about}`: a span's name
/// (the messaging conventions name spans after the subject without its varying parts).
pub fn audit_template(kind: &str) -> String {
    format!("{ROOT}.audit.{kind}.{{about}}")
}

/// The template of inbox subjects, `guild.inbox.{owner}.{priority}` (span names).
pub const INBOX_TEMPLATE: &str = "guild.inbox.{owner}.{priority}";

/// The template of an event subject (`guild.evt.<service>.<event>.<about>`): its last
/// token, what the event is about, as `{about}` (span names).
pub fn event_template(subject: &str) -> String {
    match subject.rsplit_once('.') {
        Some((head, _)) => format!("{head}.{{about}}"),
        None => subject.to_owned(),
    }
}

/// NATS micro discovery: `$SRV.<verb>.<micro name>` for one service, `$SRV.<verb>` for
/// every service (`verb` is `PING`, `INFO` or `STATS`).
pub fn discovery(verb: &str, service: Option<Service>) -> String {
    match service {
        Some(s) => format!("$SRV.{verb}.{}", s.micro_name()),
        None => format!("$SRV.{verb}"),
    }
}

/// The reply-inbox prefix of a principal's connection (`custom_inbox_prefix` in
/// async-nats, `inbox_prefix` in nats-py): `_INBOX.agent.<id>`, `_INBOX.operator`,
/// `_INBOX.observer` or `_INBOX.service.<name>`. Each identity may subscribe under its
/// own prefix only, so no one reads another's replies; the default `_INBOX` is refused.
pub fn inbox_prefix(principal: &Principal) -> String {
    match principal {
        Principal::Agent(id) => format!("_INBOX.agent.{id}"),
        Principal::Operator => format!("_INBOX.{}", guild_domain::OPERATOR_TOKEN),
        Principal::Observer => format!("_INBOX.{}", guild_domain::OBSERVER_TOKEN),
        Principal::Service(s) => format!("{SERVICE_INBOXES}.{}", s.token()),
    }
}

/// `_INBOX.service`: where the services' reply inboxes are.
pub const SERVICE_INBOXES: &str = "_INBOX.service";

/// `_INBOX.>`: every reply inbox (services answer anyone who asks).
pub const REPLY_WILDCARD: &str = "_INBOX.>";

/// JetStream API subjects, for the permission table: `$JS.API.<verb>.<stream>` and the
/// ack and flow-control subjects of a stream's consumers.
pub mod js {
    /// `$JS.API.<verb>.<stream>` (`STREAM.INFO`, `DIRECT.GET`, `CONSUMER.CREATE`, ...).
    pub fn api(verb: &str, stream: &str) -> String {
        format!("$JS.API.{verb}.{stream}")
    }

    /// `$JS.API.<verb>.<stream>.<rest>` (a consumer name, a filter subject).
    pub fn api_under(verb: &str, stream: &str, rest: &str) -> String {
        format!("$JS.API.{verb}.{stream}.{rest}")
    }

    /// `$JS.API.>`: every JetStream API call.
    pub const API_WILDCARD: &str = "$JS.API.>";
    /// `$JS.ACK.>`: every consumer's acknowledgements.
    pub const ACK_WILDCARD: &str = "$JS.ACK.>";
    /// `$JS.FC.>`: every push consumer's flow control.
    pub const FC_WILDCARD: &str = "$JS.FC.>";

    /// `$JS.API.INFO`: the account's JetStream usage.
    pub const ACCOUNT_INFO: &str = "$JS.API.INFO";

    /// `$JS.ACK.<stream>.>`: acknowledgements of the stream's consumers.
    pub fn acks(stream: &str) -> String {
        format!("$JS.ACK.{stream}.>")
    }

    /// `$JS.FC.<stream>.>`: flow control of the stream's push consumers.
    pub fn flow_control(stream: &str) -> String {
        format!("$JS.FC.{stream}.>")
    }

    /// `$KV.<bucket>.>`: a KV bucket's keys.
    pub fn kv(bucket: &str) -> String {
        format!("$KV.{bucket}.>")
    }

    /// `$O.<bucket>.>`: an object store's chunks and metadata.
    pub fn objects(bucket: &str) -> String {
        format!("$O.{bucket}.>")
    }

    /// The stream behind KV bucket `bucket`: `KV_<bucket>`.
    pub fn kv_stream(bucket: &str) -> String {
        format!("KV_{bucket}")
    }

    /// The stream behind object store `bucket`: `OBJ_<bucket>`.
    pub fn object_stream(bucket: &str) -> String {
        format!("OBJ_{bucket}")
    }
}

/// The system account's requests Guild's custodian (spawner-svc) makes: pushing the
/// account JWT with its revocations, reading it back, listing and closing connections.
/// Only the custodian's system-account user may publish them; agent, operator and service
/// credentials live in Guild's account and cannot reach `$SYS.>`.
pub mod sys {
    /// `$SYS.REQ.CLAIMS.UPDATE`: store an account JWT in the resolver.
    pub const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";

    /// `$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`: the account JWT the resolver holds.
    pub fn claims_lookup(account: &str) -> String {
        format!("$SYS.REQ.ACCOUNT.{account}.CLAIMS.LOOKUP")
    }

    /// `$SYS.REQ.ACCOUNT.<account>.CONNZ`: the account's connections, from every server.
    pub fn connz(account: &str) -> String {
        format!("$SYS.REQ.ACCOUNT.{account}.CONNZ")
    }

    /// `$SYS.REQ.SERVER.<server id>.KICK`: close one connection.
    pub fn kick(server_id: &str) -> String {
        format!("$SYS.REQ.SERVER.{server_id}.KICK")
    }

    /// `$SYS.ACCOUNT.<account>.CONNECT`: a client of the account connected (with its
    /// user key, connection id and server).
    pub fn connect_events(account: &str) -> String {
        format!("$SYS.ACCOUNT.{account}.CONNECT")
    }

    /// What the custodian's system user may subscribe to, besides its reply inbox.
    pub fn custodian_events() -> Vec<String> {
        vec![connect_events("*")]
    }

    /// What the custodian's system user may publish.
    pub fn custodian_requests() -> Vec<String> {
        vec![
            CLAIMS_UPDATE.to_owned(),
            claims_lookup("*"),
            connz("*"),
            kick("*"),
            "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE".to_owned(),
        ]
    }
}

/// NATS micro's discovery subjects a service answers: `$SRV.<verb>`, then by name, then by
/// instance (`$SRV.*`, `$SRV.*.<name>`, `$SRV.*.<name>.*`).
pub fn discovery_responder(service: Service) -> [String; 3] {
    [
        "$SRV.*".to_owned(),
        format!("$SRV.*.{}", service.micro_name()),
        format!("$SRV.*.{}.*", service.micro_name()),
    ]
}

/// `$SRV.>`: every discovery request.
pub const DISCOVERY_WILDCARD: &str = "$SRV.>";

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
            format!("{}.{}", group(Service::Mission), endpoint("create_mission")),
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
