//! Just enough of a Dockerfile to know each stage's base and the user it runs as.

/// One `FROM` ... up to the next `FROM`.
#[derive(Debug)]
pub(crate) struct Stage {
    /// `AS <name>`, if any.
    pub(crate) name: Option<String>,
    /// The image or earlier stage it starts from.
    pub(crate) base: String,
    /// The last `USER` in the stage, if any.
    pub(crate) user: Option<String>,
}

/// The stages of a Dockerfile, in order.
pub(crate) fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for line in instructions(text) {
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words.collect();
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => {
                // FROM [--platform=...] <image> [AS <name>]
                let args: Vec<&str> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
                let name = match args.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                    _ => None,
                };
                stages.push(Stage {
                    name,
                    base: args.first().copied().unwrap_or_default().to_owned(),
                    user: None,
                });
            }
            "USER" => {
                if let Some(stage) = stages.last_mut() {
                    stage.user = Some(args.join(" "));
                }
            }
            _ => {}
        }
    }
    stages
}

/// The user stage `index` runs as: its own `USER`, else the one of the earlier stage it
/// is built `FROM`; `None` when only the base image could say (unknown here).
pub(crate) fn effective_user(stages: &[Stage], index: usize) -> Option<&str> {
    let stage = &stages[index];
    if let Some(user) = &stage.user {
        return Some(user);
    }
    let parent = stages[..index]
        .iter()
        .rposition(|s| s.name.as_deref() == Some(stage.base.as_str()))?;
    effective_user(stages, parent)
}

/// Whether `USER <user>[:<group>]` is someone other than root.
pub(crate) fn is_non_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default().trim();
    !name.is_empty() && name != "root" && name != "0"
}

/// Instructions with continuation lines joined, comments and blank lines left out.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# syntax=docker/dockerfile:1
ARG V=1
FROM rust:${V} AS build
RUN cargo build \\
    --release
FROM --platform=linux/amd64 debian:bookworm-slim AS runtime
USER 10001:10001
FROM runtime AS app
COPY --from=build /x /x
FROM runtime AS root-again
USER root
FROM alpine
";

    #[test]
    fn users_are_inherited_from_named_stages_only() {
        let s = stages(EXAMPLE);
        let names: Vec<Option<&str>> = s.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("build"),
                Some("runtime"),
                Some("app"),
                Some("root-again"),
                None
            ]
        );
        assert_eq!(s[1].base, "debian:bookworm-slim");
        assert_eq!(effective_user(&s, 0), None);
        assert_eq!(effective_user(&s, 2), Some("10001:10001"));
        assert_eq!(effective_user(&s, 3), Some("root"));
        assert_eq!(effective_user(&s, 4), None);
    }

    #[test]
    fn root_by_name_or_number_is_root() {
        assert!(is_non_root("65532:65532"));
        assert!(is_non_root("nonroot"));
        assert!(!is_non_root("root"));
        assert!(!is_non_root("0:0"));
        assert!(!is_non_root(""));
    }
}
