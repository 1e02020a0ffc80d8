//! Who may use which subject: the one permission table of Guild's identities.
//!
//! The broker enforces it. Every credential Guild mints carries exactly the lists [`grant`]
//! returns for its kind (agents through the scoped signing key's template, where
//! [`NAME`] stands for the agent id the credential is bound to), so a rule a credential
//! does not allow is refused by nats-server before any Guild code sees the message.
//!
//! | kind | publishes | subscribes |
//! |------|-----------|------------|
//! | an agent | its own request subjects on the three services | its reply inbox, its inbox log, events |
//! | the operator | the operator's request subjects, `$SRV.>`, read-only Direct Get and stream info on the events, audit and inbox streams | its reply inbox, every inbox log, events |
//! | the observer | the read operations as `observer`, the same read-only stream access | its reply inbox, every inbox log, events |
//! | a service | its journal, its events, its audit kinds, replies, the calls it makes to other services, JetStream (never deleting a stream or a message, never trimming or reconfiguring another's) | its requests, `$SRV` discovery, its reply inbox |
//!
//! Nobody may delete a stream or purge a stream it does not own; nobody but services has
//! JetStream rights, so no agent or operator can forge a journal entry, an audit record or
//! an event, or create a consumer on a journal.

use guild_domain::{Principal, Service};

use crate::api::operations_of;
use crate::audit::AuditKind;
use crate::store::{self, journal_of};
use crate::subject::{self, js};

/// The template the broker replaces with the credential's name (the agent id) when it
/// applies an agent's permissions (`{{name()}}`, nats-server 2.9+).
pub const NAME: &str = "{{name()}}";

/// The kinds of identity, each with one row of the table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A Guild service, its own and distinct from the others.
    Service(Service),
    /// The operator: the CLI and the humans behind it.
    Operator,
    /// Read-only: the operator's read rights, the read operations only.
    Observer,
    /// One agent (the credential's name is its id).
    Agent,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Service(Service::Spawner),
        Kind::Service(Service::Bus),
        Kind::Service(Service::Mission),
        Kind::Operator,
        Kind::Observer,
        Kind::Agent,
    ];

    /// The kind of a principal.
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Service(s) => Kind::Service(*s),
            Principal::Operator => Kind::Operator,
            Principal::Observer => Kind::Observer,
            Principal::Agent(_) => Kind::Agent,
        }
    }

    /// How the table names it.
    pub fn label(self) -> String {
        match self {
            Kind::Service(s) => format!("{}-svc", s.token()),
            Kind::Operator => "operator".into(),
            Kind::Observer => "observer".into(),
            Kind::Agent => "agent".into(),
        }
    }
}

/// One row: subjects allowed and denied, for publishing and for subscribing. A deny wins
/// over an allow; anything not allowed is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// Subjects it may publish on.
    pub publish: Vec<String>,
    /// Subjects it may not publish on, even where an allow matches.
    pub deny_publish: Vec<String>,
    /// Subjects it may subscribe to (a queue group is part of the subscription).
    pub subscribe: Vec<String>,
    /// Subjects it may not subscribe to.
    pub deny_subscribe: Vec<String>,
}

/// The streams anyone with read rights may read (Direct Get and stream info only: a
/// consumer-create permission cannot tell a durable consumer from an ephemeral one, so
/// readers get none).
pub const READABLE_STREAMS: [&str; 4] = [
    store::EVENTS_STREAM,
    store::AUDIT_STREAM,
    store::INBOX_STREAM,
    // `KV_guild_audit_keys`: the key history, so audit records verify from outside.
    "KV_guild_audit_keys",
];

/// The audit kinds a service may append: the broker holds each service to its own (a
/// compromised mission-svc cannot append a decision), and verification checks the same.
pub fn audit_kinds_of(service: Service) -> Vec<AuditKind> {
    AuditKind::ALL
        .into_iter()
        .filter(|k| k.appended_by().contains(&service))
        .collect()
}

/// The operations of another service a service calls, on behalf of whoever it acts for:
/// mission-svc has the spawner allocate and release agents (and reads them); bus-svc has
/// mission-svc move a mission on a handoff; the spawner reads a mission's budget.
pub fn calls_of(service: Service) -> Vec<(Service, &'static str)> {
    match service {
        Service::Spawner => vec![(Service::Mission, "get_mission")],
        Service::Bus => vec![
            (Service::Mission, "reassign_mission"),
            (Service::Mission, "get_mission"),
        ],
        Service::Mission => vec![
            (Service::Spawner, "allocate_task"),
            (Service::Spawner, "release_task"),
            (Service::Spawner, "get"),
            (Service::Spawner, "find_available_agents"),
        ],
    }
}

/// The row of `kind`.
pub fn grant(kind: Kind) -> Grant {
    match kind {
        Kind::Agent => agent(),
        Kind::Operator => reader(&Principal::Operator, false),
        Kind::Observer => reader(&Principal::Observer, true),
        Kind::Service(s) => service(s),
    }
}

/// An agent's own request subjects: `guild.<service>.v1.*.<id>` for each of the three
/// services by name. (`guild.*.v1.*.<id>` would also match `guild.audit.v1.x.<id>`, which
/// the audit stream captures, and the same for events and inboxes.)
fn requests_as(token: &str) -> Vec<String> {
    Service::ALL
        .iter()
        .map(|s| format!("{}.*.{token}", subject::group(*s)))
        .collect()
}

fn agent() -> Grant {
    // The reply inbox, written with the template for the id.
    let inbox = format!("_INBOX.agent.{NAME}.>");
    Grant {
        publish: requests_as(NAME),
        subscribe: vec![
            inbox,
            format!("{}.{NAME}.>", "guild.inbox"),
            subject::EVENTS_WILDCARD.to_owned(),
        ],
        ..Grant::default()
    }
}

/// The operator and the observer: their request subjects (the observer's read
/// operations only), discovery (the operator), Direct Get and info on the readable
/// streams, every inbox log and every event.
fn reader(principal: &Principal, read_only: bool) -> Grant {
    let mut publish = if read_only {
        Service::ALL
            .iter()
            .flat_map(|s| operations_of(*s).iter())
            .filter(|op| op.read_only)
            .map(|op| subject::request(op.service, op.name, principal))
            .collect()
    } else {
        let mut p = requests_as(principal.token());
        p.push(subject::DISCOVERY_WILDCARD.to_owned());
        p
    };
    for stream in READABLE_STREAMS {
        publish.extend(stream_readable(stream));
    }
    Grant {
        publish,
        subscribe: vec![
            format!("{}.>", subject::inbox_prefix(principal)),
            subject::INBOX_WILDCARD.to_owned(),
            subject::EVENTS_WILDCARD.to_owned(),
        ],
        ..Grant::default()
    }
}

/// Read-only access to a stream without a consumer: its info and Direct Get.
fn stream_readable(stream: &str) -> Vec<String> {
    vec![
        js::api("STREAM.INFO", stream),
        js::api("DIRECT.GET", stream),
        js::api_under("DIRECT.GET", stream, ">"),
    ]
}

/// A journal's three streams: the journal, its KV bucket, its snapshots.
fn journal_streams(service: Service) -> [String; 3] {
    let name = journal_of(service);
    [
        store::journal_stream(name),
        js::kv_stream(&store::journal_bucket(name)),
        js::object_stream(&store::snapshot_bucket(name)),
    ]
}

fn service(s: Service) -> Grant {
    let name = journal_of(s);
    let mut publish = vec![
        store::journal_subject(name),
        subject::events_of(s),
        js::kv(&store::journal_bucket(name)),
        // Its audit signing keys in the key history, under its own name only.
        format!("$KV.{}.{}.>", store::AUDIT_KEYS_BUCKET, s.token()),
        js::objects(&store::snapshot_bucket(name)),
        subject::REPLY_WILDCARD.to_owned(),
        js::ACCOUNT_INFO.to_owned(),
        // Its own health check (`<service> --health-check`) pings it.
        subject::discovery("PING", Some(s)),
    ];
    publish.extend(
        audit_kinds_of(s)
            .into_iter()
            .map(|k| subject::audit(k.as_str(), "*")),
    );
    if s == Service::Bus {
        publish.push(subject::INBOX_WILDCARD.to_owned());
    }
    publish.extend(
        calls_of(s)
            .into_iter()
            .map(|(to, op)| format!("{}.{op}.*", subject::group(to))),
    );
    // JetStream: the API as a whole (a list of every call on every stream would not fit
    // in nats-server's 4 KB connect line), with what it may not do denied: delete a stream
    // or a stored message; trim or reconfigure a stream it does not own (its journal's
    // three; the bus the inbox log too), the audit log and the events included.
    publish.extend([
        js::API_WILDCARD.to_owned(),
        js::ACK_WILDCARD.to_owned(),
        js::FC_WILDCARD.to_owned(),
    ]);
    let mut deny_publish = vec![
        js::api("STREAM.DELETE", "*"),
        js::api("STREAM.MSG.DELETE", "*"),
    ];
    let others = Service::ALL
        .into_iter()
        .filter(|o| *o != s)
        .flat_map(journal_streams)
        .chain([store::AUDIT_STREAM, store::EVENTS_STREAM].map(str::to_owned))
        .chain((s != Service::Bus).then(|| store::INBOX_STREAM.to_owned()));
    for stream in others {
        deny_publish.push(js::api("STREAM.PURGE", &stream));
        deny_publish.push(js::api("STREAM.UPDATE", &stream));
    }
    let mut subscribe = vec![
        format!("{}.>", subject::group(s)),
        format!("{}.>", subject::inbox_prefix(&Principal::Service(s))),
    ];
    subscribe.extend(subject::discovery_responder(s));
    Grant {
        publish,
        deny_publish,
        subscribe,
        deny_subscribe: Vec::new(),
    }
}

/// The table as Markdown (ARCHITECTURE.md and `proto-schemas/README.md` are generated from
/// it).
pub fn table_markdown() -> String {
    let mut out =
        String::from("| identity | may publish | may subscribe | denied |\n|---|---|---|---|\n");
    let code = |v: &[String]| {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for kind in Kind::ALL {
        let g = grant(kind);
        let denied: Vec<String> = g
            .deny_publish
            .iter()
            .map(|s| format!("pub {s}"))
            .chain(g.deny_subscribe.iter().map(|s| format!("sub {s}")))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            kind.label(),
            code(&g.publish),
            code(&g.subscribe),
            code(&denied)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NATS-style subject match: `*` one token, `>` the rest.
    fn matches(pattern: &str, subject: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        for (i, t) in p.iter().enumerate() {
            if *t == ">" {
                return s.len() > i;
            }
            match s.get(i) {
                Some(x) if *t == "*" || t == x => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    fn allowed(g: &Grant, subject: &str) -> bool {
        g.publish.iter().any(|p| matches(p, subject))
            && !g.deny_publish.iter().any(|p| matches(p, subject))
    }

    fn as_agent(g: &Grant, id: &str) -> Grant {
        let fill = |v: &Vec<String>| v.iter().map(|s| s.replace(NAME, id)).collect();
        Grant {
            publish: fill(&g.publish),
            deny_publish: fill(&g.deny_publish),
            subscribe: fill(&g.subscribe),
            deny_subscribe: fill(&g.deny_subscribe),
        }
    }

    #[test]
    fn an_agent_publishes_only_its_own_requests() {
        let a = as_agent(&grant(Kind::Agent), "a");
        assert!(allowed(&a, "guild.bus.v1.request.a"));
        assert!(allowed(&a, "guild.spawner.v1.heartbeat.a"));
        for refused in [
            "guild.bus.v1.request.b",
            "guild.bus.v1.request.operator",
            "guild.journal.spawner",
            "guild.audit.decision.q1",
            "guild.audit.v1.x.a",
            "guild.evt.v1.x.a",
            "guild.inbox.v1.x.a",
            "guild.evt.spawner.spawned.a",
            "$JS.API.STREAM.DELETE.GUILD_AUDIT",
            "$SRV.PING",
            "_INBOX.agent.b.x",
        ] {
            assert!(!allowed(&a, refused), "{refused}");
        }
    }

    #[test]
    fn the_observer_publishes_read_operations_only() {
        let o = grant(Kind::Observer);
        assert!(allowed(&o, "guild.spawner.v1.get_stats.observer"));
        assert!(allowed(&o, "guild.bus.v1.verify_audit.observer"));
        assert!(!allowed(&o, "guild.spawner.v1.spawn.observer"));
        assert!(!allowed(&o, "guild.spawner.v1.get_stats.operator"));
        assert!(allowed(&o, "$JS.API.DIRECT.GET.GUILD_AUDIT"));
        assert!(!allowed(&o, "$JS.API.CONSUMER.CREATE.GUILD_AUDIT"));
    }

    #[test]
    fn the_operator_has_no_write_to_streams() {
        let o = grant(Kind::Operator);
        assert!(allowed(&o, "guild.spawner.v1.spawn.operator"));
        assert!(allowed(&o, "$SRV.INFO.guild-bus"));
        for refused in [
            "$JS.API.STREAM.DELETE.GUILD_AUDIT",
            "$JS.API.STREAM.PURGE.GUILD_JOURNAL_BUS",
            "$JS.API.CONSUMER.CREATE.GUILD_INBOX",
            "$JS.API.CONSUMER.DURABLE.CREATE.GUILD_JOURNAL_SPAWNER.x",
            "guild.journal.bus",
            "guild.audit.decision.x",
        ] {
            assert!(!allowed(&o, refused), "{refused}");
        }
    }

    #[test]
    fn a_service_writes_only_its_own_journal_and_audit_kinds() {
        let m = grant(Kind::Service(Service::Mission));
        assert!(allowed(&m, "guild.journal.mission"));
        assert!(!allowed(&m, "guild.journal.spawner"));
        assert!(!allowed(&m, "guild.journal.bus"));
        assert!(allowed(&m, "guild.audit.mission.m1"));
        assert!(!allowed(&m, "guild.audit.decision.q1"));
        assert!(allowed(&m, "guild.spawner.v1.allocate_task.dev-1"));
        assert!(!allowed(&m, "guild.spawner.v1.spawn.dev-1"));
        assert!(!allowed(&m, "$JS.API.STREAM.DELETE.GUILD_JOURNAL_MISSION"));
        assert!(!allowed(&m, "$JS.API.STREAM.MSG.DELETE.GUILD_AUDIT"));
        assert!(allowed(
            &m,
            "$JS.API.CONSUMER.MSG.NEXT.GUILD_JOURNAL_SPAWNER.c"
        ));
        assert!(!allowed(&m, "$JS.API.STREAM.UPDATE.GUILD_JOURNAL_SPAWNER"));
        assert!(!allowed(&m, "$JS.API.STREAM.PURGE.GUILD_INBOX"));
        assert!(!allowed(&m, "$JS.API.STREAM.PURGE.GUILD_JOURNAL_SPAWNER"));
        assert!(allowed(&m, "$JS.API.STREAM.PURGE.GUILD_JOURNAL_MISSION"));
        assert!(!allowed(&m, "$JS.API.STREAM.PURGE.GUILD_AUDIT"));
        let b = grant(Kind::Service(Service::Bus));
        assert!(allowed(&b, "guild.audit.decision.q1"));
        assert!(allowed(&b, "guild.inbox.dev-1.high"));
    }

    #[test]
    fn the_readable_key_history_is_the_audit_keys_bucket() {
        assert!(READABLE_STREAMS.contains(&js::kv_stream(store::AUDIT_KEYS_BUCKET).as_str()));
        let b = grant(Kind::Service(Service::Bus));
        assert!(allowed(&b, "$KV.guild_audit_keys.bus.UKEY"));
        assert!(!allowed(&b, "$KV.guild_audit_keys.spawner.UKEY"));
    }

    #[test]
    fn every_audit_kind_has_a_service_that_appends_it() {
        for k in AuditKind::ALL {
            assert!(!k.appended_by().is_empty(), "{k:?}");
        }
    }
}
