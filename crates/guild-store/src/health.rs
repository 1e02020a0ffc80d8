//! What a service found missing from its storage, and the one rule for it (ARCHITECTURE.md,
//! "Lost state"): a journal whose entries were removed with no snapshot covering them, or
//! audit records gone. A service tells a first start from a loss by state kept elsewhere:
//! the journal's first sequence against its snapshot, the audit head its journal last saw
//! against the audit stream. On a loss it keeps serving reads and refuses writes
//! (`state_lost`) until the operator accepts the loss (`recover`); it never starts an empty
//! chain or refills budgets on its own.

use std::sync::Arc;

use tokio::sync::watch;

pub use guild_wire::store::Lost;

/// What one store found missing, watched by whoever serves from it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Health {
    lost: Arc<watch::Sender<Vec<Lost>>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            lost: Arc::new(watch::channel(Vec::new()).0),
        }
    }
}

impl Health {
    /// Reports `lost` (once: the same loss again changes nothing). Returns whether it is
    /// new.
    pub fn report(&self, lost: Lost) -> bool {
        let mut added = false;
        self.lost.send_if_modified(|l| {
            if l.contains(&lost) {
                return false;
            }
            tracing::error!(lost = %lost, "state lost: writes are refused until the operator recovers");
            l.push(lost.clone());
            added = true;
            true
        });
        added
    }

    /// Forgets every loss (the operator accepted them).
    pub fn clear(&self) {
        self.lost.send_if_modified(|l| {
            let had = !l.is_empty();
            l.clear();
            had
        });
    }

    /// What is lost now.
    pub fn lost(&self) -> Vec<Lost> {
        self.lost.borrow().clone()
    }

    /// Changes, for whoever reports the service's state.
    pub fn watch(&self) -> watch::Receiver<Vec<Lost>> {
        self.lost.subscribe()
    }
}
