//! Mutations of a valid body: structural ones, which break one field and so expect the
//! refusal to name it, and byte-level ones, which may break anything.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use crate::schema::{ODD_STRINGS, any_json};

/// A marker replaced in the serialized body by raw text no `Value` can hold.
const RAW: &str = "\u{1}__fuzz_raw__";

/// What a mutation does.
#[derive(Clone, Debug)]
pub(crate) enum Mutation {
    /// The body as it is.
    Keep,
    /// The first bytes only.
    Truncate(Index),
    /// One byte replaced.
    Flip(Index, u8),
    /// Bytes inserted.
    Insert(Index, Vec<u8>),
    /// A range removed.
    Cut(Index, usize),
    /// Bytes after the object (issue 17: each of these was accepted once).
    Trailing(Vec<u8>),
    /// A field removed.
    Remove(Index),
    /// A field's value replaced by one of another JSON type.
    Retype(Index, Value),
    /// A field no type has, added to an object.
    Unknown(Index, String),
    /// A field's value replaced by a number no integer type holds (raw text).
    Huge(Index, &'static str),
    /// A field's value replaced by arrays or objects nested `n` deep.
    Nest(Index, usize, bool),
    /// A string field's value replaced by an odd string.
    Odd(Index, &'static str),
    /// A field given twice.
    Twice(Index, Value),
}

/// Numbers past every integer type, and the ones just inside.
const HUGE: &[&str] = &[
    "18446744073709551616",
    "18446744073709551615",
    "340282366920938463463374607431768211456",
    "-1",
    "-9223372036854775809",
    "1e400",
    "-1e400",
    "1e-400",
    "4294967296",
    "256",
    "1.5",
    "1e2",
    "0.0",
    "-0",
    "00",
    "NaN",
    "Infinity",
];

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Keep),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Cut(i, n)),
        2 => prop_oneof![
            Just(b"garbage".to_vec()),
            Just(b"{}".to_vec()),
            Just(b"]]".to_vec()),
            Just(b"}".to_vec()),
            Just(vec![0xff]),
            Just(b"\0".to_vec()),
            Just(b" null".to_vec()),
            Just(b"\n{\"id\":\"b\"}".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..6),
        ]
        .prop_map(Mutation::Trailing),
        3 => any::<Index>().prop_map(Mutation::Remove),
        3 => (any::<Index>(), any_json(2)).prop_map(|(i, v)| Mutation::Retype(i, v)),
        2 => (any::<Index>(), "[a-z_]{1,12}").prop_map(|(i, k)| Mutation::Unknown(i, k)),
        2 => (any::<Index>(), proptest::sample::select(HUGE)).prop_map(|(i, h)| Mutation::Huge(i, h)),
        1 => (any::<Index>(), prop_oneof![1usize..200, 120usize..140, 1_000usize..20_000], any::<bool>())
            .prop_map(|(i, n, arrays)| Mutation::Nest(i, n, arrays)),
        2 => (any::<Index>(), proptest::sample::select(ODD_STRINGS)).prop_map(|(i, s)| Mutation::Odd(i, s)),
        1 => (any::<Index>(), any_json(1)).prop_map(|(i, v)| Mutation::Twice(i, v)),
    ]
}

/// A mutated body, and the field it broke when the mutation broke exactly one.
#[derive(Clone, Debug)]
pub(crate) struct Mutant {
    pub(crate) body: Vec<u8>,
    /// The path of the field broken (`authority.max_parallel_agents`, `capabilities[0]`):
    /// a refusal must name it, or a field containing it, or one inside it.
    pub(crate) field: Option<String>,
}

/// One place in a value: its path as `serde_path_to_error` writes it.
#[derive(Clone, Debug)]
struct Place {
    path: Vec<Step>,
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every field (object member or array element) inside `v`, depth first.
fn places(v: &Value) -> Vec<Place> {
    fn walk(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Place>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(Step::Key(k.clone()));
                    out.push(Place { path: path.clone() });
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(Step::Index(i));
                    out.push(Place { path: path.clone() });
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Every object inside `v` (itself included), by path.
fn objects(v: &Value) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    if v.is_object() {
        out.push(Vec::new());
    }
    out.extend(
        places(v)
            .into_iter()
            .filter(|p| get(v, &p.path).is_some_and(Value::is_object))
            .map(|p| p.path),
    );
    out
}

fn get<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

fn json_type(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// `v` with the raw marker replaced by `raw`.
fn with_raw(v: &Value, raw: &str) -> Vec<u8> {
    let text = serde_json::to_string(v).unwrap_or_default();
    let marker = serde_json::to_string(RAW).unwrap_or_default();
    text.replacen(&marker, raw, 1).into_bytes()
}

fn nested(n: usize, arrays: bool) -> String {
    if arrays {
        format!("{}1{}", "[".repeat(n), "]".repeat(n))
    } else {
        format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
    }
}

/// Applies `m` to `base`.
pub(crate) fn apply(base: &Value, m: &Mutation) -> Mutant {
    let plain = bytes(base);
    let raw = |b: Vec<u8>| Mutant {
        body: b,
        field: None,
    };
    let all = places(base);
    let pick = |i: &Index| (!all.is_empty()).then(|| all[i.index(all.len())].clone());
    match m {
        Mutation::Keep => raw(plain),
        Mutation::Truncate(i) => {
            let n = i.index(plain.len().max(1));
            raw(plain[..n.min(plain.len())].to_vec())
        }
        Mutation::Flip(i, b) => {
            let mut body = plain;
            if !body.is_empty() {
                let n = i.index(body.len());
                body[n] = *b;
            }
            raw(body)
        }
        Mutation::Insert(i, b) => {
            let mut body = plain;
            let n = i.index(body.len() + 1);
            body.splice(n..n, b.iter().copied());
            raw(body)
        }
        Mutation::Cut(i, len) => {
            let mut body = plain;
            if !body.is_empty() {
                let n = i.index(body.len());
                let end = (n + len).min(body.len());
                body.drain(n..end);
            }
            raw(body)
        }
        Mutation::Trailing(b) => {
            let mut body = plain;
            body.extend_from_slice(b);
            raw(body)
        }
        Mutation::Remove(i) => {
            let Some(p) = pick(i) else { return raw(plain) };
            let mut v = base.clone();
            let (last, parent) = p
                .path
                .split_last()
                .map_or((None, &[][..]), |(l, r)| (Some(l), r));
            match (get_mut(&mut v, parent), last) {
                (Some(Value::Object(o)), Some(Step::Key(k))) => {
                    o.remove(k);
                }
                (Some(Value::Array(a)), Some(Step::Index(n))) => {
                    a.remove(*n);
                }
                _ => {}
            }
            // A missing member is named by its own path; a shorter array by the array's.
            let field = match last {
                Some(Step::Key(_)) => display(&p.path),
                _ => display(parent),
            };
            Mutant {
                body: bytes(&v),
                field: Some(field),
            }
        }
        Mutation::Retype(i, new) => {
            let Some(p) = pick(i) else { return raw(plain) };
            let mut v = base.clone();
            let Some(slot) = get_mut(&mut v, &p.path) else {
                return raw(plain);
            };
            if json_type(slot) == json_type(new) {
                return raw(plain);
            }
            *slot = new.clone();
            Mutant {
                body: bytes(&v),
                field: Some(display(&p.path)),
            }
        }
        Mutation::Unknown(i, key) => {
            let objs = objects(base);
            if objs.is_empty() {
                return raw(plain);
            }
            let path = objs[i.index(objs.len())].clone();
            let mut v = base.clone();
            let key = format!("zz_{key}");
            match get_mut(&mut v, &path) {
                Some(Value::Object(o)) if !o.contains_key(&key) => {
                    o.insert(key.clone(), json!(1));
                }
                _ => return raw(plain),
            }
            let mut field = path;
            field.push(Step::Key(key));
            Mutant {
                body: bytes(&v),
                field: Some(display(&field)),
            }
        }
        Mutation::Huge(i, text) => replace_raw(base, pick(i), text),
        Mutation::Nest(i, n, arrays) => replace_raw(base, pick(i), &nested(*n, *arrays)),
        Mutation::Odd(i, s) => {
            let Some(p) = pick(i) else { return raw(plain) };
            let mut v = base.clone();
            match get_mut(&mut v, &p.path) {
                Some(slot @ Value::String(_)) => *slot = json!(s),
                _ => return raw(plain),
            }
            Mutant {
                body: bytes(&v),
                field: Some(display(&p.path)),
            }
        }
        Mutation::Twice(i, again) => {
            let objs = objects(base);
            let members: Vec<(Vec<Step>, String)> = objs
                .iter()
                .flat_map(|path| match get(base, path) {
                    Some(Value::Object(o)) => o
                        .keys()
                        .map(|k| (path.clone(), k.clone()))
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .collect();
            if members.is_empty() {
                return raw(plain);
            }
            let (path, key) = members[i.index(members.len())].clone();
            let mut v = base.clone();
            let Some(Value::Object(o)) = get_mut(&mut v, &path) else {
                return raw(plain);
            };
            // serde_json maps keep one value per key, so the second one goes in as raw text.
            let mut rebuilt = Map::new();
            for (k, val) in o.iter() {
                rebuilt.insert(k.clone(), val.clone());
                if *k == key {
                    rebuilt.insert(RAW.to_owned(), Value::Null);
                }
            }
            *o = rebuilt;
            let text = serde_json::to_string(&v).unwrap_or_default();
            let marker = format!("{}:null", serde_json::to_string(RAW).unwrap_or_default());
            let again = format!(
                "{}:{}",
                serde_json::to_string(&key).unwrap_or_default(),
                serde_json::to_string(again).unwrap_or_default()
            );
            let mut field = path;
            field.push(Step::Key(key));
            Mutant {
                body: text.replacen(&marker, &again, 1).into_bytes(),
                field: Some(display(&field)),
            }
        }
    }
}

fn replace_raw(base: &Value, place: Option<Place>, text: &str) -> Mutant {
    let Some(p) = place else {
        return Mutant {
            body: bytes(base),
            field: None,
        };
    };
    let mut v = base.clone();
    if let Some(slot) = get_mut(&mut v, &p.path) {
        *slot = json!(RAW);
    }
    Mutant {
        body: with_raw(&v, text),
        field: Some(display(&p.path)),
    }
}

/// Whether a refusal naming `named` names the field `broken`: the same, one containing
/// it, or one inside it (`a.b` for `a`; `a` for `a.b`; `a[0]` for `a`).
pub(crate) fn names(named: &str, broken: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    within(named, broken) || within(broken, named)
}
