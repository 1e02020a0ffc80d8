//! The SDK's public surface, held by a committed listing (`public-api.txt`): a change to it
//! fails here until the listing is written again with `GUILD_BLESS=1 cargo nextest run -p
//! guild-sdk --test public_api`, and the change goes into CHANGELOG.md.
//!
//! The listing is read from the source with `syn` (stable Rust, no rustdoc JSON): every
//! `pub` item of every module, the `pub` methods of each `impl`, `pub` fields, and each
//! `pub use` as written. Re-exported types are listed by name, not expanded: their shape is
//! the wire contract's, held by guild-wire's contract tests and `proto-schemas/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use quote::ToTokens;
use syn::{ImplItem, Item, Visibility};

fn is_pub(v: &Visibility) -> bool {
    matches!(v, Visibility::Public(_))
}

/// Tokens as one line, without attributes or bodies.
fn text(t: &impl ToTokens) -> String {
    t.to_token_stream().to_string()
}

fn list_items(module: &str, items: &[Item], dir: &Path, out: &mut Vec<String>) {
    let at = |name: &str| {
        if module.is_empty() {
            name.to_owned()
        } else {
            format!("{module}::{name}")
        }
    };
    for item in items {
        match item {
            Item::Use(u) if is_pub(&u.vis) => {
                out.push(format!("{module}: pub use {}", text(&u.tree)))
            }
            Item::Fn(f) if is_pub(&f.vis) => out.push(format!("{module}: {}", text(&f.sig))),
            Item::Const(c) if is_pub(&c.vis) => out.push(format!(
                "{}: const {}",
                at(&c.ident.to_string()),
                text(&c.ty)
            )),
            Item::Struct(s) if is_pub(&s.vis) => {
                out.push(format!(
                    "{}: struct{}",
                    at(&s.ident.to_string()),
                    text(&s.generics)
                ));
                for f in s.fields.iter().filter(|f| is_pub(&f.vis)) {
                    let name = f
                        .ident
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string);
                    out.push(format!(
                        "{}.{name}: {}",
                        at(&s.ident.to_string()),
                        text(&f.ty)
                    ));
                }
            }
            Item::Enum(e) if is_pub(&e.vis) => {
                let variants: Vec<String> = e.variants.iter().map(|v| text(&v.ident)).collect();
                out.push(format!(
                    "{}: enum {{ {} }}",
                    at(&e.ident.to_string()),
                    variants.join(", ")
                ));
            }
            Item::Trait(t) if is_pub(&t.vis) => {
                out.push(format!("{}: trait", at(&t.ident.to_string())))
            }
            Item::Type(t) if is_pub(&t.vis) => out.push(format!(
                "{}: type = {}",
                at(&t.ident.to_string()),
                text(&t.ty)
            )),
            Item::Impl(i) => {
                let on = text(&i.self_ty);
                let of = i.trait_.as_ref().map(|(_, p, _)| text(p));
                if let Some(trait_) = &of {
                    out.push(format!("{module}: impl {trait_} for {on}"));
                    continue;
                }
                for m in &i.items {
                    if let ImplItem::Fn(f) = m
                        && is_pub(&f.vis)
                    {
                        out.push(format!("{}: {}", at(&on), text(&f.sig)));
                    }
                }
            }
            Item::Mod(m) => {
                let name = m.ident.to_string();
                if m.content.is_none() {
                    let file = dir.join(format!("{name}.rs"));
                    let source = std::fs::read_to_string(&file).unwrap();
                    let parsed = syn::parse_file(&source).unwrap();
                    let visible = if is_pub(&m.vis) { "pub mod" } else { "mod" };
                    out.push(format!("{}: {visible}", at(&name)));
                    list_items(&at(&name), &parsed.items, dir, out);
                } else if let Some((_, inner)) = &m.content
                    && is_pub(&m.vis)
                {
                    list_items(&at(&name), inner, dir, out);
                }
            }
            _ => {}
        }
    }
}

fn listing() -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = syn::parse_file(&std::fs::read_to_string(src.join("lib.rs")).unwrap()).unwrap();
    let mut out = Vec::new();
    list_items("", &lib.items, &src, &mut out);
    let mut text = String::from(
        "# guild-sdk's public surface (crates/guild-sdk/tests/public_api.rs; GUILD_BLESS=1 writes it)\n",
    );
    for line in out {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[test]
fn the_public_surface_is_the_committed_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("public-api.txt");
    let now = listing();
    if std::env::var_os("GUILD_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != now {
        let removed: Vec<&str> = committed
            .lines()
            .filter(|l| !now.lines().any(|n| n == *l))
            .collect();
        let added: Vec<&str> = now
            .lines()
            .filter(|l| !committed.lines().any(|c| c == *l))
            .collect();
        panic!(
            "guild-sdk's public surface changed: say so in CHANGELOG.md and write \
             public-api.txt again (GUILD_BLESS=1)\nremoved:\n  {}\nadded:\n  {}",
            removed.join("\n  "),
            added.join("\n  ")
        );
    }
}

#[test]
fn the_domains_state_types_are_out_of_reach() {
    let now = listing();
    assert!(
        !now.lines().any(|l| l.trim_end().ends_with(":: domain")),
        "the whole domain is re-exported"
    );
    for internal in ["Registry", "Board", "PostOffice", "Faults"] {
        assert!(
            !now.lines().any(|l| l.contains(internal)),
            "{internal} is reachable through guild-sdk"
        );
    }
}
