//! Deciding several bus commands in one pass, none committed yet.

use super::*;
use crate::Effect;
use crate::Rejection;
use crate::agent::Registry;
use crate::id::Principal;
use crate::time::Timestamp;

/// Commands decided one after another before any is committed, each against the office as
/// the effects before it leave it: a batch decided in one pass, committed as one entry.
///
/// The first command reads the office itself; the first one that saves anything makes a
/// working copy with its records folded in, which the later commands read. (A copy of the
/// whole office, made once per batch: a batch costs one copy, not one per command.)
pub struct Batch<'a> {
    base: &'a PostOffice,
    /// The office with the batch's records so far folded in, once there are any.
    ahead: Option<PostOffice>,
    effects: Vec<BusEffect>,
}

impl<'a> Batch<'a> {
    /// An empty batch over `office`.
    pub fn new(office: &'a PostOffice) -> Self {
        Self {
            base: office,
            ahead: None,
            effects: Vec::new(),
        }
    }

    /// The office as the batch's effects so far leave it.
    pub fn office(&self) -> &PostOffice {
        self.ahead.as_ref().unwrap_or(self.base)
    }

    /// Decides `command` against the office as the batch leaves it and adds its effects.
    /// A refused command adds nothing, and the batch goes on.
    pub fn decide(
        &mut self,
        registry: &Registry,
        by: &Principal,
        command: &Command,
        now: Timestamp,
    ) -> Result<&[BusEffect], Rejection> {
        let effects = self.office().decide(registry, by, command, now)?;
        let saves = effects.iter().any(|e| matches!(e, Effect::Save(_)));
        if saves {
            let ahead = self.ahead.get_or_insert_with(|| self.base.clone());
            for e in &effects {
                if let Effect::Save(r) = e {
                    ahead.apply(r.clone());
                }
            }
        }
        let from = self.effects.len();
        self.effects.extend(effects);
        Ok(&self.effects[from..])
    }

    /// Every effect of the batch, in the order decided.
    pub fn into_effects(self) -> Vec<BusEffect> {
        self.effects
    }
}
