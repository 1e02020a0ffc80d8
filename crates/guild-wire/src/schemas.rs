//! Every wire type's JSON Schema, for `proto-schemas/`.

use std::collections::BTreeMap;

use guild_domain::agent::{self, AgentProfile};
use guild_domain::message::{Message, OfficeRecord, QuestionState};
use guild_domain::mission::{self, Mission};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::api::{all_operations, bus::Delivery};
use crate::audit::AuditRecord;
use crate::error::ErrorReply;

fn root<T: JsonSchema>() -> (String, Schema) {
    (
        T::schema_name().into_owned(),
        SchemaGenerator::default().into_root_schema_for::<T>(),
    )
}

/// Every wire type by schema name: requests and replies of every operation, messages,
/// events, records as the journals store them, the audit record and the error envelope.
/// Fails if two different types share a name.
pub fn all() -> Result<BTreeMap<String, Schema>, String> {
    let mut out: BTreeMap<String, Schema> = BTreeMap::new();
    let mut add = |(name, schema): (String, Schema)| -> Result<(), String> {
        match out.get(&name) {
            Some(existing) if existing != &schema => {
                Err(format!("two wire types are named {name}"))
            }
            _ => {
                out.insert(name, schema);
                Ok(())
            }
        }
    };
    for op in all_operations() {
        add(((op.request)(), (op.request_schema)()))?;
        add(((op.response)(), (op.response_schema)()))?;
    }
    add(root::<Message>())?;
    add(root::<Delivery>())?;
    add(root::<agent::Event>())?;
    add(root::<mission::Event>())?;
    add(root::<agent::Record>())?;
    add(root::<OfficeRecord>())?;
    add(root::<AgentProfile>())?;
    add(root::<Mission>())?;
    add(root::<QuestionState>())?;
    add(root::<AuditRecord>())?;
    add(root::<ErrorReply>())?;
    Ok(out)
}
