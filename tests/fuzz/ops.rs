//! Every operation with its concrete request and reply types.
//!
//! `guild_wire::api` declares each operation with the `operations!` macro: a marker type
//! implementing [`Operation`] (its request and reply types) and a row of the service's
//! `OPS` table (names and schemas, but no types). A test that must call
//! `decode::<Request>` for every operation needs the types, so this file visits the marker
//! types the same declaration lists (`guild_wire::api::visit_all`) and turns each into an
//! [`Op`]: its catalogue row and two functions monomorphized for its types.
//! [`every_operation_is_listed`] checks the visit and `all_operations()` agree.

use guild_wire::ErrorBody;
use guild_wire::api::{OpInfo, Operation, Visit, all_operations, visit_all};
use guild_wire::subject::Service;
use serde_json::Value;

/// One operation: its catalogue row, and its request and reply types as functions.
#[derive(Clone, Copy)]
pub(crate) struct Op {
    /// The catalogue's row (service, name, schemas).
    pub(crate) info: OpInfo,
    /// `guild_service::decode::<Request>`, the decoded request re-encoded as JSON.
    pub(crate) decode: fn(&[u8]) -> Result<Value, ErrorBody>,
    /// Parses a success reply as the operation's reply type.
    pub(crate) reply: fn(&[u8]) -> Result<(), String>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.info.service.token(), self.info.name)
    }
}

fn decode_as<T: Operation>(body: &[u8]) -> Result<Value, ErrorBody> {
    let request: T::Request = guild_service::decode(body)?;
    // A request the decoder accepted always encodes again (the round trip is checked by
    // the caller).
    Ok(serde_json::to_value(&request)
        .unwrap_or_else(|e| panic!("{} decoded a request it cannot encode: {e}", T::NAME)))
}

fn reply_as<T: Operation>(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<T::Response>(body)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn op<T: Operation>() -> Op {
    let info = all_operations()
        .into_iter()
        .find(|o| o.service == T::SERVICE && o.name == T::NAME)
        .unwrap_or_else(|| panic!("{} is not in the catalogue", T::NAME));
    Op {
        info,
        decode: decode_as::<T>,
        reply: reply_as::<T>,
    }
}

/// Collects an [`Op`] for each operation [`visit_all`] names.
struct Collect(Vec<Op>);

impl Visit for Collect {
    fn operation<O: Operation>(&mut self) {
        self.0.push(op::<O>());
    }
}

/// Every operation of every service, in catalogue order.
pub(crate) fn all() -> Vec<Op> {
    let mut ops = Collect(Vec::new());
    visit_all(&mut ops);
    ops.0
}

/// The operation `name` of `service`.
pub(crate) fn find(service: Service, name: &str) -> Option<Op> {
    all()
        .into_iter()
        .find(|o| o.info.service == service && o.info.name == name)
}

#[test]
fn every_operation_is_listed() {
    let listed: Vec<(Service, &str)> = all()
        .iter()
        .map(|o| (o.info.service, o.info.name))
        .collect();
    let catalogue: Vec<(Service, &str)> = all_operations()
        .iter()
        .map(|o| (o.service, o.name))
        .collect();
    assert_eq!(
        listed, catalogue,
        "guild_wire::api::visit_all must visit every operation of all_operations(), in its order"
    );
}
