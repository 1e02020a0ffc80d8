//! Request and reply types for every operation, and the [`Operation`] trait that ties an
//! operation's name to its types. `spawner`, `bus` and `mission` each list their
//! operations in `OPS`: the services register exactly these endpoints, the SDK calls them,
//! and the schema generator and subject catalogue read them.

pub mod bus;
pub mod mission;
mod route;
pub mod spawner;

pub use route::{Failure, Router, unknown_operation};

/// The operation every service has and the runtime serves: `recover`.
pub const RECOVER: &str = "recover";

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

/// Code run once per operation with its types: see [`visit_all`].
pub trait Visit {
    /// Called with each operation's marker type.
    fn operation<O: Operation>(&mut self);
}

/// Calls `visitor` for every operation of every service, in the order of
/// [`all_operations`].
pub fn visit_all(visitor: &mut impl Visit) {
    spawner::op::visit(visitor);
    bus::op::visit(visitor);
    mission::op::visit(visitor);
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

/// Declares a service's operations, once: a marker type per operation implementing
/// [`Operation`], the service's `OPS` table (read by `$SRV.INFO`, the catalogue and the
/// schemas), the `Handler` trait with one method per operation, and `Routes`, the
/// [`Router`] over a `Handler`. Every service also has `recover`, appended here: the
/// runtime serves it (`guild_service::serve`), so it is in `OPS` but not in `Handler`.
macro_rules! operations {
    (@read_only read) => { true };
    (@read_only) => { false };
    ($service:ident { $( $(#[doc = $doc:literal])+ $op:ident = $method:ident $(, $ro:ident)? : $req:ty => $resp:ty; )+ }) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, Copy)]
            pub struct $op;

            impl $crate::api::Operation for $op {
                const SERVICE: $crate::subject::Service = $crate::subject::Service::$service;
                const NAME: &'static str = stringify!($method);
                const READ_ONLY: bool = $crate::api::operations!(@read_only $($ro)?);
                type Request = $req;
                type Response = $resp;
            }
        )+

        /// The operator accepts this service's lost state (journal entries or audit records gone); audited.
        #[derive(Debug, Clone, Copy)]
        pub struct Recover;

        impl $crate::api::Operation for Recover {
            const SERVICE: $crate::subject::Service = $crate::subject::Service::$service;
            const NAME: &'static str = $crate::api::RECOVER;
            const READ_ONLY: bool = false;
            type Request = $crate::api::Recover;
            type Response = $crate::api::Recovered;
        }

        /// This service's operations, in catalogue order.
        pub const OPS: &[$crate::api::OpInfo] = &[
            $(
                $crate::api::OpInfo {
                    service: $crate::subject::Service::$service,
                    name: stringify!($method),
                    read_only: $crate::api::operations!(@read_only $($ro)?),
                    summary: concat!($($doc),+),
                    request: $crate::api::name_of::<$req>,
                    response: $crate::api::name_of::<$resp>,
                    request_schema: $crate::api::schema_of::<$req>,
                    response_schema: $crate::api::schema_of::<$resp>,
                },
            )+
            $crate::api::OpInfo {
                service: $crate::subject::Service::$service,
                name: $crate::api::RECOVER,
                read_only: false,
                summary: " The operator accepts this service's lost state (journal entries or audit records gone); audited.",
                request: $crate::api::name_of::<$crate::api::Recover>,
                response: $crate::api::name_of::<$crate::api::Recovered>,
                request_schema: $crate::api::schema_of::<$crate::api::Recover>,
                response_schema: $crate::api::schema_of::<$crate::api::Recovered>,
            },
        ];

        /// Calls `visitor.operation::<O>()` for each of this service's operations, in
        /// catalogue order (`recover` last): code generic over every operation's types (a
        /// fuzzer decoding each request type) reads this list, never a copy of it.
        pub fn visit(visitor: &mut impl $crate::api::Visit) {
            $( visitor.operation::<$op>(); )+
            visitor.operation::<Recover>();
        }

        /// What serving this service's operations takes: one method per operation, given
        /// who asked (the subject's principal, already checked) and the decoded request,
        /// answering its response or a [`Failure`]($crate::api::Failure). The method
        /// runs inside the request's SERVER span. Implement it, and serve it through
        /// [`Routes`].
        pub trait Handler: Send + Sync + 'static {
            $(
                $(#[doc = $doc])+
                fn $method(
                    &self,
                    by: $crate::domain::Principal,
                    request: $req,
                ) -> impl ::std::future::Future<Output = Result<$resp, $crate::api::Failure>> + Send;
            )+
        }

        /// A [`Handler`] as the service's [`Router`]($crate::api::Router).
        #[derive(Debug, Clone)]
        pub struct Routes<H>(pub H);

        impl<H: Handler> From<H> for Routes<H> {
            fn from(handler: H) -> Self {
                Self(handler)
            }
        }

        impl<H: Handler> $crate::api::Router for Routes<H> {
            const SERVICE: $crate::subject::Service = $crate::subject::Service::$service;

            async fn route(
                &self,
                op: &str,
                by: $crate::domain::Principal,
                body: &[u8],
            ) -> Result<Vec<u8>, $crate::ErrorBody> {
                $(
                    if op == stringify!($method) {
                        let request: $req = $crate::body::decode(body)?;
                        let response = Handler::$method(&self.0, by, request).await?;
                        return $crate::body::encode(&response);
                    }
                )+
                Err($crate::api::unknown_operation(Self::SERVICE, op))
            }
        }
    };
}
pub(crate) use operations;
