//! The lost-state rule, at the service (ARCHITECTURE.md, "Lost state"): a service whose
//! journal or audit log is missing what it should hold still starts and answers, serves
//! reads, refuses every write with 503 `state_lost` naming what is gone, publishes one
//! `state_lost` event (bus-svc makes it an ALERT to the operator), and reports `degraded`
//! in its `$SRV.INFO` metadata, until the operator accepts the loss with `recover`
//! (`guild admin recover`), which is audited. It never starts an empty chain or refills
//! budgets or the pool on its own.

use std::future::Future;
use std::pin::Pin;

use guild_domain::{Principal, Rejection, Service};
use guild_store::{Lost, Record};
use guild_wire::api::{Recover, Recovered};
use guild_wire::audit::AuditKind;
use guild_wire::{ErrorBody, ErrorCode, subject};

use crate::{Outgoing, State};

/// The refusal of a write while something is lost.
pub fn state_lost(service: Service, lost: &[Lost]) -> ErrorBody {
    let what: Vec<String> = lost.iter().map(ToString::to_string).collect();
    ErrorBody::new(
        ErrorCode::Unavailable,
        "state_lost",
        format!(
            "{}-svc is missing {}: writes are refused until the operator accepts the loss \
             (`guild admin recover --service {}`); reads are served",
            service.token(),
            what.join(", "),
            service.token()
        ),
    )
}

/// The `$SRV.INFO` metadata that says a service's state: `state` is `ok` or `degraded`,
/// `lost` what is missing.
pub fn metadata(lost: &[Lost]) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    if lost.is_empty() {
        m.insert("state".into(), "ok".into());
    } else {
        m.insert("state".into(), "degraded".into());
        let what: Vec<String> = lost.iter().map(ToString::to_string).collect();
        m.insert("lost".into(), what.join("; "));
    }
    m
}

/// What `serve` needs of a service's storage: its losses, and the way to accept them.
pub trait Storage: Send + Sync + 'static {
    /// What is missing now.
    fn lost(&self) -> Vec<Lost>;
    /// Changes to what is missing.
    fn watch(&self) -> Vec<tokio::sync::watch::Receiver<Vec<Lost>>>;
    /// The operator accepts the losses (`recover`).
    fn recover<'a>(
        &'a self,
        by: &'a Principal,
        request: Recover,
    ) -> Pin<Box<dyn Future<Output = Result<Recovered, ErrorBody>> + Send + 'a>>;
}

impl<S: Send + Sync + 'static, R: Record> State<S, R> {
    /// What this state's journal and audit log are missing.
    pub fn lost(&self) -> Vec<Lost> {
        let mut lost = self.journal.health().lost();
        lost.extend(self.publisher.audit_log().health().lost());
        lost
    }

    /// Upkeep the settle loop does: records how far the audit log reached (so a shorter
    /// one is noticed at the next start), notices a loss another instance's `recover`
    /// accepted, and announces a new loss once (`state_lost`, which bus-svc turns into an
    /// ALERT to the operator).
    pub async fn maintain(&self) {
        let audit = self.publisher.audit_log();
        if let Err(e) = self.journal.record_audit_head(audit.seen()).await {
            tracing::debug!(error = %e, "could not record the audit head");
        }
        if let Err(e) = self.journal.refresh_loss().await {
            tracing::debug!(error = %e, "could not check for a recovery");
        }
        let refreshed = match self.journal.audit_head().await {
            Ok(head) => audit.refresh_loss(head).await,
            Err(e) => Err(e),
        };
        match refreshed {
            Ok(true) => {
                if let Err(e) = self.journal.reset_audit_head(audit.seen()).await {
                    tracing::warn!(error = %e, "could not record the new audit head");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "could not check for a recovery"),
        }
        let lost = self.lost();
        if lost.is_empty() {
            return;
        }
        let mut out = Outgoing::new(crate::now());
        for l in &lost {
            // One event per loss, whichever instance sends it: its id is the loss.
            let id = format!("state-lost-{}-{}", self.service.token(), l).replace(' ', "-");
            out.event_with_id(
                subject::event(self.service, "state_lost", self.service.token()),
                &serde_json::json!({
                    "event": "state_lost",
                    "service": self.service,
                    "lost": l,
                    "at": crate::now(),
                }),
                id,
            );
        }
        if let Err(e) = self.announce(&out).await {
            tracing::debug!(error = %e, "could not announce the loss");
        }
    }

    async fn accept(&self, by: &Principal, request: Recover) -> Result<Recovered, ErrorBody> {
        if *by != Principal::Operator {
            return Err(ErrorBody::from(&Rejection::Forbidden {
                actor: by.to_string(),
                action: "recover".into(),
                reason: "only the operator accepts lost state".into(),
            }));
        }
        let lost = self.lost();
        if lost.is_empty() {
            return Ok(Recovered { lost });
        }
        if !request.accept_loss {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "loss_not_accepted",
                format!(
                    "recovering means accepting the loss of {} for good; send accept_loss: true",
                    lost.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_field("accept_loss"));
        }
        let audit = self.publisher.audit_log();
        for l in &lost {
            match l {
                Lost::Journal { .. } => self.journal.accept_loss().await,
                Lost::Audit { .. } => match audit.accept_loss(self.durability).await {
                    Ok(()) => self.journal.reset_audit_head(audit.seen()).await,
                    Err(e) => Err(e),
                },
            }
            .map_err(|e| ErrorBody::from(&e))?;
        }
        let mut out = Outgoing::new(crate::now());
        out.audit(
            AuditKind::Recovery,
            by,
            self.service.token(),
            None,
            &serde_json::json!({ "service": self.service, "lost": lost }),
        );
        self.announce(&out).await?;
        tracing::warn!(
            service = self.service.token(),
            ?lost,
            "the operator accepted lost state"
        );
        Ok(Recovered { lost })
    }
}

impl<S: Send + Sync + 'static, R: Record> Storage for State<S, R> {
    fn lost(&self) -> Vec<Lost> {
        State::lost(self)
    }

    fn watch(&self) -> Vec<tokio::sync::watch::Receiver<Vec<Lost>>> {
        vec![
            self.journal.health().watch(),
            self.publisher.audit_log().health().watch(),
        ]
    }

    fn recover<'a>(
        &'a self,
        by: &'a Principal,
        request: Recover,
    ) -> Pin<Box<dyn Future<Output = Result<Recovered, ErrorBody>> + Send + 'a>> {
        Box::pin(self.accept(by, request))
    }
}
