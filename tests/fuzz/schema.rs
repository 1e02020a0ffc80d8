//! Values generated from an operation's JSON Schema (`proto-schemas/`, from the types):
//! the valid bodies the mutations start from, and the "valid but odd" bodies the
//! over-the-wire target sends (boundary numbers, unicode, ids that exist and ids that do
//! not).
//!
//! It reads what schemars writes: `$ref` into `$defs`, `oneOf`/`anyOf` (with the
//! parent's keys merged into each branch), `allOf`, `const`, `enum`, `type` (one or a
//! list), `properties`/`required`/`additionalProperties`, `items`, `pattern`, `format`
//! with `minimum`/`maximum`. Where a schema says less than the decoder checks (a phase is
//! "a string or an integer"; a public key is "a string"), a hint by `$defs` name adds
//! values of the right shape beside the schema's own.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

/// Deeper than this, objects and arrays stop growing (recursive schemas end).
const MAX_DEPTH: u32 = 6;

/// A generator for one schema.
pub(crate) struct Gen {
    root: Value,
    /// Strings an id-shaped field takes half the time: ids that exist, or almost do.
    ids: Vec<String>,
}

/// Odd strings: unicode of every width, controls, escapes, lookalikes, the empty string.
pub(crate) const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\t\n\r",
    "é",
    "\u{301}e",
    "日本語",
    "🦀🦀🦀",
    "\u{202e}evil",
    "\u{200b}",
    "\u{feff}x",
    "ǅ",
    "\u{10ffff}",
    "a.b",
    "a*",
    "a>",
    "$SRV",
    "_INBOX.x",
    "operator",
    "observer",
    "service:bus",
    "service:nope",
    "../../etc/passwd",
    "\\u0000",
    "null",
    "{}",
    "'; DROP TABLE agents; --",
];

impl Gen {
    /// A generator for `schema` (a root schema, with its `$defs`).
    pub(crate) fn new(schema: Value, ids: Vec<String>) -> Self {
        Self { root: schema, ids }
    }

    /// Values of the root schema.
    pub(crate) fn values(&self) -> BoxedStrategy<Value> {
        self.of(&self.root.clone(), 0)
    }

    fn resolve(&self, reference: &str) -> Option<(String, Value)> {
        let name = reference.strip_prefix("#/$defs/")?;
        let def = self.root.get("$defs")?.get(name)?;
        Some((name.to_owned(), def.clone()))
    }

    fn of(&self, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
        let m = match schema {
            Value::Bool(true) => return any_json(2).boxed(),
            Value::Object(m) => m,
            _ => return Just(Value::Null).boxed(),
        };
        if let Some(Value::String(r)) = m.get("$ref") {
            let Some((name, def)) = self.resolve(r) else {
                return Just(Value::Null).boxed();
            };
            let own = self.of(&def, depth + 1);
            return match hint(&name) {
                Some(h) => prop_oneof![3 => h, 1 => own].boxed(),
                None => own,
            };
        }
        if let Some(c) = m.get("const") {
            return Just(c.clone()).boxed();
        }
        if let Some(Value::Array(values)) = m.get("enum") {
            return select(values.clone()).boxed();
        }
        if let Some(Value::Array(parts)) = m.get("allOf") {
            let mut merged = without(m, "allOf");
            for p in parts {
                merged = merge(&merged, p);
            }
            return self.of(&merged, depth);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = m.get(key) {
                let base = without(m, key);
                let strategies: Vec<BoxedStrategy<Value>> = branches
                    .iter()
                    .map(|b| self.of(&merge(&base, b), depth))
                    .collect();
                return union(strategies);
            }
        }
        match m.get("type") {
            Some(Value::Array(types)) => {
                let strategies = types
                    .iter()
                    .map(|t| {
                        let mut one = m.clone();
                        one.insert("type".into(), t.clone());
                        self.of(&Value::Object(one), depth)
                    })
                    .collect();
                union(strategies)
            }
            Some(Value::String(t)) => match t.as_str() {
                "null" => Just(Value::Null).boxed(),
                "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
                "integer" => integer(m),
                "number" => number(m),
                "string" => self.string(m),
                "array" => self.array(m, depth),
                "object" => self.object(m, depth),
                _ => any_json(2).boxed(),
            },
            _ if m.contains_key("properties") => self.object(m, depth),
            _ => any_json(2).boxed(),
        }
    }

    fn string(&self, m: &Map<String, Value>) -> BoxedStrategy<Value> {
        let odd = select(ODD_STRINGS).prop_map(|s| Value::String(s.to_owned()));
        let Some(Value::String(pattern)) = m.get("pattern") else {
            return prop_oneof![
                4 => "[a-z][a-z0-9 _.-]{0,12}".prop_map(Value::String),
                1 => odd,
                1 => any::<String>().prop_map(Value::String),
                1 => ".{200,300}".prop_map(Value::String),
            ]
            .boxed();
        };
        let inner = pattern.trim_start_matches('^').trim_end_matches('$');
        let matching = match proptest::string::string_regex(inner) {
            Ok(s) => s.prop_map(Value::String).boxed(),
            Err(_) => any::<String>().prop_map(Value::String).boxed(),
        };
        if self.ids.is_empty() {
            prop_oneof![6 => matching, 1 => odd].boxed()
        } else {
            let ids = select(self.ids.clone()).prop_map(Value::String);
            prop_oneof![4 => ids, 3 => matching, 1 => odd].boxed()
        }
    }

    fn array(&self, m: &Map<String, Value>, depth: u32) -> BoxedStrategy<Value> {
        let items = m.get("items").cloned().unwrap_or(Value::Bool(true));
        let min = m.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = m
            .get("maxItems")
            .and_then(Value::as_u64)
            .map_or(min + 3, |x| (x as usize).min(min + 3));
        let max = if depth >= MAX_DEPTH { min } else { max };
        let unique = m.get("uniqueItems").and_then(Value::as_bool) == Some(true);
        proptest::collection::vec(self.of(&items, depth + 1), min..=max.max(min))
            .prop_map(move |mut v| {
                if unique {
                    let mut seen = Vec::new();
                    v.retain(|x| {
                        let fresh = !seen.contains(x);
                        seen.push(x.clone());
                        fresh
                    });
                }
                Value::Array(v)
            })
            .boxed()
    }

    fn object(&self, m: &Map<String, Value>, depth: u32) -> BoxedStrategy<Value> {
        let required: Vec<&str> = m
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
        if let Some(Value::Object(props)) = m.get("properties") {
            for (name, schema) in props {
                let value = self.of(schema, depth + 1);
                let name = name.clone();
                if required.contains(&name.as_str()) {
                    fields.push(value.prop_map(move |v| Some((name.clone(), v))).boxed());
                } else if depth < MAX_DEPTH {
                    fields.push(
                        proptest::option::weighted(0.6, value)
                            .prop_map(move |v| v.map(|v| (name.clone(), v)))
                            .boxed(),
                    );
                }
            }
        }
        let extra = match m.get("additionalProperties") {
            Some(Value::Bool(false)) => None,
            _ if depth >= MAX_DEPTH => None,
            Some(Value::Object(s)) => Some(self.of(&Value::Object(s.clone()), depth + 1)),
            // Free-form objects (`params`, `input_data`): a few keys of any JSON.
            Some(Value::Bool(true)) => Some(any_json(2).boxed()),
            _ if m.contains_key("properties") => None,
            _ => Some(any_json(2).boxed()),
        };
        let extra = match extra {
            Some(v) => proptest::collection::vec(("[a-z]{1,8}", v), 0..3).boxed(),
            None => Just(Vec::new()).boxed(),
        };
        (fields, extra)
            .prop_map(|(fields, extra)| {
                let mut out = Map::new();
                for (k, v) in extra {
                    out.insert(k, v);
                }
                for (k, v) in fields.into_iter().flatten() {
                    out.insert(k, v);
                }
                Value::Object(out)
            })
            .boxed()
    }
}

/// Values of the right shape for `$defs` the schema describes loosely.
fn hint(def: &str) -> Option<BoxedStrategy<Value>> {
    match def {
        "Phase" => Some(
            prop_oneof![
                (-1i64..=7).prop_map(|p| json!(p.to_string())),
                (-1i64..=7).prop_map(|p| json!(p)),
                select(vec![
                    "research",
                    "development",
                    "deployment",
                    "8",
                    "-2",
                    "",
                    "x"
                ])
                .prop_map(|s| json!(s)),
                select(vec![-128i64, 127, 8, -2, 1000]).prop_map(|p| json!(p)),
            ]
            .boxed(),
        ),
        "PublicKey" => Some(
            prop_oneof![
                "U[A-Z2-7]{55}".prop_map(Value::String),
                "[A-Z2-7]{56}".prop_map(Value::String),
            ]
            .boxed(),
        ),
        "PhaseScope" => Some(
            prop_oneof![
                Just(json!(["*"])),
                proptest::collection::vec((-1i64..=7).prop_map(|p| json!(p.to_string())), 0..3)
                    .prop_map(Value::Array),
            ]
            .boxed(),
        ),
        _ => None,
    }
}

fn union(mut strategies: Vec<BoxedStrategy<Value>>) -> BoxedStrategy<Value> {
    match strategies.len() {
        0 => Just(Value::Null).boxed(),
        1 => strategies.remove(0),
        _ => proptest::strategy::Union::new(strategies).boxed(),
    }
}

fn without(m: &Map<String, Value>, key: &str) -> Value {
    let mut out = m.clone();
    out.remove(key);
    Value::Object(out)
}

/// `branch` on top of `base`: properties and required lists joined, other keys replaced.
fn merge(base: &Value, branch: &Value) -> Value {
    let (Value::Object(base), Value::Object(branch)) = (base, branch) else {
        return branch.clone();
    };
    let mut out = base.clone();
    // The parent's description and default say nothing about the branch.
    out.remove("default");
    for (k, v) in branch {
        match (k.as_str(), out.get_mut(k), v) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (pk, pv) in theirs {
                    mine.insert(pk.clone(), pv.clone());
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for r in theirs {
                    if !mine.contains(r) {
                        mine.push(r.clone());
                    }
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The bounds a `format` gives an integer, narrowed by `minimum` and `maximum`.
fn integer(m: &Map<String, Value>) -> BoxedStrategy<Value> {
    let (lo, hi): (i128, i128) = match m.get("format").and_then(Value::as_str) {
        Some("uint8") => (0, u8::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        Some("uint64" | "uint") => (0, u64::MAX.into()),
        Some("int8") => (i8::MIN.into(), i8::MAX.into()),
        Some("int16") => (i16::MIN.into(), i16::MAX.into()),
        Some("int32") => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    };
    let lo = m
        .get("minimum")
        .and_then(Value::as_f64)
        .map_or(lo, |x| lo.max(x.ceil() as i128));
    let hi = m
        .get("maximum")
        .and_then(Value::as_f64)
        .map_or(hi, |x| hi.min(x.floor() as i128));
    let mut edges: Vec<i128> = vec![
        lo,
        hi,
        lo + 1,
        hi - 1,
        0,
        1,
        2,
        10,
        100,
        1_000,
        1 << 31,
        1 << 32,
        1 << 53,
        (1 << 53) + 1,
    ];
    edges.retain(|x| (lo..=hi).contains(x));
    let small_hi = hi.min(lo.max(0) + 50_000);
    let to_json = |x: i128| {
        if x < 0 {
            json!(x as i64)
        } else {
            json!(x as u64)
        }
    };
    prop_oneof![
        3 => (lo.max(0).min(small_hi)..=small_hi).prop_map(to_json),
        2 => select(edges).prop_map(to_json),
        1 => (lo..=hi).prop_map(to_json),
    ]
    .boxed()
}

fn number(m: &Map<String, Value>) -> BoxedStrategy<Value> {
    let lo = m.get("minimum").and_then(Value::as_f64).unwrap_or(-1e308);
    let hi = m.get("maximum").and_then(Value::as_f64).unwrap_or(1e308);
    let edges: Vec<f64> = [
        lo,
        hi,
        0.0,
        -0.0,
        0.5,
        1.0,
        1e-300,
        f64::MIN_POSITIVE,
        1e300,
    ]
    .into_iter()
    .filter(|x| (lo..=hi).contains(x))
    .collect();
    prop_oneof![
        2 => (lo.max(-1e6)..=hi.min(1e6)).prop_map(|x| json!(x)),
        1 => select(edges).prop_map(|x| json!(x)),
    ]
    .boxed()
}

/// Any JSON value, nested at most `depth` deep.
pub(crate) fn any_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|x| json!(x)),
        select(ODD_STRINGS).prop_map(|s| json!(s)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}|.{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
