//! The scenarios. Each starts what it needs, measures, and returns its section.

pub(crate) mod bus;
pub(crate) mod missions;
pub(crate) mod spawn;
