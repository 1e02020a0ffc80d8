//! The subject catalogue as data: every subject Guild uses, who publishes and who
//! subscribes, its payload and headers. `proto-schemas/README.md` is generated from it
//! (`just schemas`), and a test fails when the file is stale, so an agent written in
//! another language can rely on the catalogue alone.

use guild_domain::{agent, mission};

use crate::api::all_operations;
use crate::audit::AuditKind;
use crate::subject::{ROOT, Service, VERSION_TOKEN};

/// One subject (or family of subjects) in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectEntry {
    /// The subject; `{name}` stands for one token.
    pub template: String,
    /// How it is used: request/reply, a stream, discovery.
    pub pattern: &'static str,
    /// Who publishes.
    pub publishers: &'static str,
    /// Who subscribes.
    pub subscribers: &'static str,
    /// The payload (schema names in `proto-schemas/`).
    pub payload: String,
    /// Headers carried.
    pub headers: &'static str,
    /// What it is for.
    pub summary: String,
}

const REQUEST_HEADERS: &str = "in: `traceparent`, `tracestate` (optional: the caller's span, parent of the handling span); error replies: `Nats-Service-Error`, `Nats-Service-Error-Code`";
const INBOX_HEADERS: &str = "`Guild-Priority`, `Guild-Message-Type`, `Guild-Message-Id`, `Guild-From`, `Guild-Schema`, `Nats-Msg-Id`, `traceparent` (the message's creation context, also `Message.traceparent`)";
const EVENT_HEADERS: &str =
    "`Guild-Schema`, `Nats-Msg-Id`, `traceparent` (the change that published it)";
const AUDIT_HEADERS: &str = "`Nats-Msg-Id` (the record id), `Nats-Expected-Last-Sequence`, `traceparent` (the append's span)";

fn svc_name(s: Service) -> &'static str {
    match s {
        Service::Spawner => "spawner-svc",
        Service::Bus => "bus-svc",
        Service::Mission => "mission-svc",
    }
}

/// Every entry, in the order the catalogue lists them.
pub fn catalogue() -> Vec<SubjectEntry> {
    let mut out = Vec::new();
    for op in all_operations() {
        let empty = if op.accepts_empty_body() {
            " (an empty body is `{}`)"
        } else {
            ""
        };
        out.push(SubjectEntry {
            template: format!(
                "{ROOT}.{}.{VERSION_TOKEN}.{}.{{principal}}",
                op.service.token(),
                op.name
            ),
            pattern: "request/reply",
            publishers: "agents, the CLI, services (for `{principal}`: an agent id or `operator`)",
            subscribers: svc_name(op.service),
            payload: format!("`{}`{empty} → `{}`", (op.request)(), (op.response)()),
            headers: REQUEST_HEADERS,
            summary: op.summary.to_owned(),
        });
    }
    out.push(SubjectEntry {
        template: format!("{ROOT}.inbox.{{owner}}.{{priority}}"),
        pattern: "stream `GUILD_INBOX`",
        publishers: "bus-svc",
        subscribers: "agents watching their own inbox (core subscription, e.g. `.critical`), `guild tail`; read-only: messages are consumed through `guild.bus.v1.consume`",
        payload: "`Message`".into(),
        headers: INBOX_HEADERS,
        summary: "The inbox log: every message as it entered `{owner}`'s inbox (an agent id or `operator`) at `{priority}` (`critical`, `high`, `normal` or `low`).".into(),
    });
    for name in agent::Event::NAMES {
        out.push(event_entry(
            Service::Spawner,
            name,
            "{agent}",
            "SpawnerEvent",
            spawner_listeners(name),
        ));
    }
    for name in mission::Event::NAMES {
        let about = if name == "phase_completed" {
            "{phase}"
        } else {
            "{mission}"
        };
        out.push(event_entry(
            Service::Mission,
            name,
            about,
            "MissionEvent",
            mission_listeners(name),
        ));
    }
    for kind in AuditKind::ALL {
        out.push(SubjectEntry {
            template: format!("{ROOT}.audit.{}.{{about}}", kind.as_str()),
            pattern: "stream `GUILD_AUDIT`",
            publishers: audit_writers(kind),
            subscribers: "bus-svc (`verify_audit`, `decision_history`, `export_decisions`, `audit_records`)",
            payload: "`AuditRecord`".into(),
            headers: AUDIT_HEADERS,
            summary: format!("Audit records of kind `{}`, hash-chained.", kind.as_str()),
        });
    }
    for verb in ["PING", "INFO", "STATS"] {
        out.push(SubjectEntry {
            template: format!("$SRV.{verb}.{{service}}"),
            pattern: "request/reply (NATS micro, ADR-32)",
            publishers: "`guild services`, any NATS tool",
            subscribers: "every service instance",
            payload: "empty → `io.nats.micro.v1` response".into(),
            headers: "",
            summary: format!("Discovery: `{{service}}` is `guild-spawner`, `guild-bus` or `guild-mission`; `$SRV.{verb}` alone asks every service."),
        });
    }
    out
}

fn event_entry(
    s: Service,
    name: &str,
    about: &str,
    payload: &str,
    subscribers: &'static str,
) -> SubjectEntry {
    SubjectEntry {
        template: format!("{ROOT}.evt.{}.{name}.{about}", s.token()),
        pattern: "stream `GUILD_EVENTS`",
        publishers: svc_name(s),
        subscribers,
        payload: format!("`{payload}` with `\"event\": \"{name}\"`"),
        headers: EVENT_HEADERS,
        summary: if about == "{phase}" {
            format!(
                "The `{name}` event; `{{phase}}` is `phase` and its number: `phase3`, `phase-1`."
            )
        } else {
            format!("The `{name}` event.")
        },
    }
}

fn spawner_listeners(name: &str) -> &'static str {
    match name {
        // A terminated agent's mission is caught by mission-svc's reconciler, which reads
        // the spawner's state rather than this event.
        "task_released" => "mission-svc (agent loss), `guild tail`",
        _ => "`guild tail`, agents that watch",
    }
}

fn mission_listeners(name: &str) -> &'static str {
    match name {
        "failed" => "bus-svc (turns it into an ALERT), `guild tail`",
        _ => "`guild tail`, agents that watch",
    }
}

fn audit_writers(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::Decision
        | AuditKind::DecisionCompleted
        | AuditKind::DecisionOverride
        | AuditKind::Escalation
        | AuditKind::Conflict => "bus-svc",
        AuditKind::Mission => "mission-svc",
        _ => "spawner-svc",
    }
}

/// Whether `subject` is an instance of `template` (`{x}` matches one token).
pub fn matches(template: &str, subject: &str) -> bool {
    let t: Vec<&str> = template.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    t.len() == s.len()
        && t.iter()
            .zip(&s)
            .all(|(t, s)| (t.starts_with('{') && t.ends_with('}')) || t == s)
}

/// The catalogue section of `proto-schemas/README.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    let mut section = "";
    for e in catalogue() {
        let heading = if e.template.starts_with("$SRV") {
            "Discovery"
        } else if e.template.starts_with("guild.inbox") {
            "Inboxes"
        } else if e.template.starts_with("guild.evt") {
            "Events"
        } else if e.template.starts_with("guild.audit") {
            "Audit log"
        } else if e.template.starts_with("guild.spawner") {
            "guild-spawner requests"
        } else if e.template.starts_with("guild.bus") {
            "guild-bus requests"
        } else {
            "guild-mission requests"
        };
        if heading != section {
            section = heading;
            out.push_str(&format!("\n### {heading}\n\n| subject | pattern | publishers | subscribers | payload | headers | what |\n|---|---|---|---|---|---|---|\n"));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            e.template, e.pattern, e.publishers, e.subscribers, e.payload, e.headers, e.summary
        ));
    }
    out
}
