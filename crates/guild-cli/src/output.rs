//! Printing results: text for people by default, JSON with `--json`.

use std::io::Write;

use serde::Serialize;

/// Where results go, and in which form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Prints `value` as JSON, or the text `human` makes of it.
    pub(crate) fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            line(
                &serde_json::to_string_pretty(value)
                    .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string()),
            );
        } else {
            let text = human(value);
            if !text.is_empty() {
                line(text.trim_end_matches('\n'));
            }
        }
    }

    /// A progress or status line: text only (stderr with `--json`, so stdout stays JSON).
    pub(crate) fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            line(text);
        }
    }
}

/// One line on stdout; a closed pipe (`guild tail | head`) is not an error worth a panic.
pub(crate) fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// A compact one-line JSON rendering of a payload, cut to `max` characters.
pub(crate) fn brief(value: &serde_json::Value, max: usize) -> String {
    let s = value.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
