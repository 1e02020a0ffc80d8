//! Reading command-line values into Guild's types, with errors that name the argument.

use guild_sdk::{AgentId, MessageId, MissionId, Phase, Principal};
use guild_sdk::{AgentStatus, Mode, Role};
use guild_sdk::{AuditKind, MissionStatus};
use guild_sdk::{MessageType, Priority};

/// A command-line value Guild's types do not accept (exit code 2).
#[derive(Debug)]
pub(crate) struct BadArgument(pub(crate) String);

impl std::fmt::Display for BadArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgument {}

fn bad(what: &str, value: &str, why: impl std::fmt::Display) -> anyhow::Error {
    BadArgument(format!("{what} {value:?}: {why}")).into()
}

pub(crate) fn agent(s: &str) -> anyhow::Result<AgentId> {
    AgentId::new(s).map_err(|e| bad("agent id", s, e))
}

pub(crate) fn principal(s: &str) -> anyhow::Result<Principal> {
    if s == "operator" {
        Ok(Principal::Operator)
    } else {
        agent(s).map(Principal::Agent)
    }
}

pub(crate) fn mission(s: &str) -> anyhow::Result<MissionId> {
    MissionId::new(s).map_err(|e| bad("mission id", s, e))
}

pub(crate) fn message(s: &str) -> anyhow::Result<MessageId> {
    MessageId::new(s).map_err(|e| bad("message id", s, e))
}

pub(crate) fn audit_kind(s: &str) -> anyhow::Result<AuditKind> {
    AuditKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
            bad("audit kind", s, format!("use one of {}", kinds.join(", ")))
        })
}

pub(crate) fn role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).map_err(|e| bad("role", s, e))
}

pub(crate) fn mode(s: &str) -> anyhow::Result<Mode> {
    Mode::parse(s).map_err(|e| bad("mode", s, e))
}

pub(crate) fn phase(s: &str) -> anyhow::Result<Phase> {
    Phase::parse(s).map_err(|e| bad("phase", s, e))
}

pub(crate) fn priority(s: &str) -> anyhow::Result<Priority> {
    Priority::parse(s).ok_or_else(|| bad("priority", s, "use critical, high, normal or low"))
}

pub(crate) fn message_type(s: &str) -> anyhow::Result<MessageType> {
    MessageType::parse(s).ok_or_else(|| {
        bad(
            "message type",
            s,
            "use request, question, alert, handoff, decision or reply",
        )
    })
}

pub(crate) fn agent_status(s: &str) -> anyhow::Result<AgentStatus> {
    AgentStatus::parse(s).ok_or_else(|| {
        bad(
            "status",
            s,
            "use pending, active, working, blocked, idle, completed or failed",
        )
    })
}

pub(crate) fn mission_status(s: &str) -> anyhow::Result<MissionStatus> {
    MissionStatus::parse(s).ok_or_else(|| {
        bad(
            "status",
            s,
            "use pending, ready, active, completed, failed, cancelled or archived",
        )
    })
}

/// Any JSON value (what `--payload` and the like take).
pub(crate) fn json_value(s: &str) -> anyhow::Result<serde_json::Value> {
    json("JSON value", s)
}

/// A clap value parser that checks `s` with `parse` and keeps the text: arguments are
/// refused as usage errors (exit 2) before Guild is contacted, and the command reads
/// them with the same function.
pub(crate) fn valid<T: 'static>(
    parse: fn(&str) -> anyhow::Result<T>,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |s: &str| parse(s).map(|_| s.to_owned()).map_err(|e| e.to_string())
}

pub(crate) fn json(what: &str, s: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| bad(what, s, format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_values_name_the_argument_and_are_usage_errors() {
        let e = agent("has space").unwrap_err();
        assert!(e.to_string().starts_with("agent id \"has space\""), "{e}");
        assert!(e.downcast_ref::<BadArgument>().is_some());
        assert!(
            json("--payload", "{nope")
                .unwrap_err()
                .to_string()
                .contains("--payload")
        );
        assert!(
            priority("urgent")
                .unwrap_err()
                .to_string()
                .contains("critical, high")
        );
    }

    #[test]
    fn operator_is_a_principal_not_an_agent() {
        assert_eq!(principal("operator").unwrap(), Principal::Operator);
        assert!(matches!(principal("dev-1").unwrap(), Principal::Agent(_)));
        assert_eq!(phase("-1").unwrap(), Phase::RESEARCH);
    }
}
