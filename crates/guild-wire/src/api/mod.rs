//! Request and reply types for every operation, and the [`Operation`] trait that ties an
//! operation's name to its types. `spawner`, `bus` and `mission` each list their
//! operations in `OPS`: the services register exactly these endpoints, the SDK calls them,
//! and the schema generator and subject catalogue read them.

pub mod bus;
pub mod mission;
pub mod spawner;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::subject::Service;

/// A request/reply operation of a Guild service.
pub trait Operation {
    /// The service that serves it.
    const SERVICE: Service;
    /// The endpoint name (`$SRV.INFO`) and the subject token.
    const NAME: &'static str;
    /// Whether it only reads (the observer may call it).
    const READ_ONLY: bool;
    /// What the caller sends.
    type Request: Serialize + DeserializeOwned + JsonSchema;
    /// What a successful reply carries.
    type Response: Serialize + DeserializeOwned + JsonSchema;
}

/// An operation, described as data.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    /// The service.
    pub service: Service,
    /// The endpoint name.
    pub name: &'static str,
    /// Whether it only reads: the observer may call it, and nothing it does is written.
    pub read_only: bool,
    /// One line: what it does.
    pub summary: &'static str,
    /// The request type's schema name.
    pub request: fn() -> String,
    /// The response type's schema name.
    pub response: fn() -> String,
    /// The request type's JSON Schema.
    pub request_schema: fn() -> Schema,
    /// The response type's JSON Schema.
    pub response_schema: fn() -> Schema,
}

impl OpInfo {
    /// Whether an empty body is a valid request: it reads as `{}`, so exactly where the
    /// request requires no field (the catalogue says so, and the services answer so).
    pub fn accepts_empty_body(&self) -> bool {
        (self.request_schema)()
            .get("required")
            .and_then(serde_json::Value::as_array)
            .is_none_or(|r| r.is_empty())
    }
}

/// Every operation of every service.
pub fn all_operations() -> Vec<OpInfo> {
    spawner::OPS
        .iter()
        .chain(bus::OPS)
        .chain(mission::OPS)
        .copied()
        .collect()
}

/// The operations of one service.
pub fn operations_of(service: Service) -> &'static [OpInfo] {
    match service {
        Service::Spawner => spawner::OPS,
        Service::Bus => bus::OPS,
        Service::Mission => mission::OPS,
    }
}

/// The operator accepts a service's lost state (`guild admin recover`): every service
/// serves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// Must be `true`: what is missing is gone for good, and writes resume without it.
    #[serde(default)]
    pub accept_loss: bool,
}

/// What a `recover` accepted (empty when nothing was lost).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recovered {
    /// The losses accepted.
    pub lost: Vec<crate::store::Lost>,
}

/// An empty request or reply: `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub(crate) fn name_of<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

pub(crate) fn schema_of<T: JsonSchema>() -> Schema {
    SchemaGenerator::default().into_root_schema_for::<T>()
}

/// Declares a service's operations: a marker type per operation implementing
/// [`Operation`], and the service's `OPS` table.
macro_rules! operations {
    (@read_only read) => { true };
    (@read_only) => { false };
    ($service:ident { $( $(#[doc = $doc:literal])+ $op:ident = $name:literal $(, $ro:ident)? : $req:ty => $resp:ty; )+ }) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, Copy)]
            pub struct $op;

            impl $crate::api::Operation for $op {
                const SERVICE: $crate::subject::Service = $crate::subject::Service::$service;
                const NAME: &'static str = $name;
                const READ_ONLY: bool = $crate::api::operations!(@read_only $($ro)?);
                type Request = $req;
                type Response = $resp;
            }
        )+

        /// This service's operations, in catalogue order.
        pub const OPS: &[$crate::api::OpInfo] = &[
            $(
                $crate::api::OpInfo {
                    service: $crate::subject::Service::$service,
                    name: $name,
                    read_only: $crate::api::operations!(@read_only $($ro)?),
                    summary: concat!($($doc),+),
                    request: $crate::api::name_of::<$req>,
                    response: $crate::api::name_of::<$resp>,
                    request_schema: $crate::api::schema_of::<$req>,
                    response_schema: $crate::api::schema_of::<$resp>,
                },
            )+
        ];
    };
}
pub(crate) use operations;
