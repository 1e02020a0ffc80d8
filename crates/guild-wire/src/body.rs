//! Request bodies in, reply bodies out: the rules every operation's body follows, in one
//! place, so the generated router ([`crate::api::Router`]) and anyone checking a body
//! (the fuzzer) apply the same ones.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ErrorBody, ErrorCode};

/// How deep a request body may nest. serde_json reads at most 128 levels, and what a
/// service stores or sends wraps a request's values in a few more (a journal entry's
/// records, a delivery's message, a question's state): a body nested up to 128 levels was
/// accepted and then could not be read back by its recipient, or from the journal (found
/// by the wire fuzzer, docs/FUZZING.md). Half the parser's limit leaves room for every
/// envelope.
pub const MAX_DEPTH: usize = 64;

/// Decodes a request body, which is exactly one JSON object: an empty body reads as `{}`
/// (so it is accepted only where no field is required), and anything else (an array, a
/// second value, trailing bytes) is refused with `malformed_json` and changes nothing.
/// The field at fault is named by its path (`id`, `authority.scoped_to_phases[0]`). A
/// body nested deeper than [`MAX_DEPTH`] is refused with `too_deep`, naming the member
/// that holds the depth.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ErrorBody> {
    let body: &[u8] = match body.trim_ascii_start().first() {
        None => b"{}",
        Some(b'{') => body,
        Some(_) => {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "malformed_json",
                "the request body must be one JSON object (`{...}`), or empty",
            ));
        }
    };
    if let Some(error) = too_deep(body) {
        return Err(error);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let mut error = ErrorBody::malformed(e.inner());
        let top = path.is_empty() || path == ".";
        // A missing or unknown member is named by serde inside the object the path
        // reaches: `context_window` + `window_tokens` is `context_window.window_tokens`.
        let field = match error.field.take() {
            Some(member) if !top && path.rsplit('.').next() != Some(member.as_str()) => {
                Some(format!("{path}.{member}"))
            }
            Some(_) if !top => Some(path),
            Some(member) => Some(member),
            None if !top => Some(path),
            None => None,
        };
        error.field = field;
        error
    })?;
    // Nothing but whitespace may follow the object.
    de.end().map_err(|e| ErrorBody::malformed(&e))?;
    Ok(value)
}

/// The refusal of a body nested deeper than [`MAX_DEPTH`], naming the top-level member
/// it happens in; `None` when it does not. A scan of the bytes (strings skipped), so it
/// costs nothing like a parse and stops at the first level too deep.
fn too_deep(body: &[u8]) -> Option<ErrorBody> {
    let (mut depth, mut in_string, mut escaped, mut expect_key) = (0usize, false, false, false);
    let (mut key_start, mut member) = (None, None::<String>);
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if let Some(start) = key_start.take() {
                    member = serde_json::from_slice::<String>(&body[start..=i]).ok();
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 && expect_key {
                    key_start = Some(i);
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = b == b'{';
                }
                if depth > MAX_DEPTH {
                    let error = ErrorBody::new(
                        ErrorCode::BadRequest,
                        "too_deep",
                        format!("the request nests deeper than {MAX_DEPTH} levels"),
                    );
                    return Some(match member {
                        Some(m) => error.with_field(m),
                        None => error,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    None
}

/// Encodes a reply.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ErrorBody> {
    serde_json::to_vec(value).map_err(|e| ErrorBody::internal(format!("encode reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Spawn {
        id: String,
        #[serde(default)]
        budget: u64,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Nothing {
        #[serde(default)]
        limit: Option<u32>,
    }

    /// Each of these was once accepted and changed state (issue 17).
    #[test]
    fn a_body_is_exactly_one_json_object() {
        let refused: [&[u8]; 7] = [
            br#"{"id":"a"}garbage"#,
            br#"{"id":"a"}{"id":"b"}"#,
            br#"["a", 5]"#,
            br#"{"id":"a"}]]"#,
            b"{\"id\":\"a\"}\xff",
            br#""a""#,
            b"null",
        ];
        for body in refused {
            let e = decode::<Spawn>(body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert_eq!(
                e.rule,
                "malformed_json",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            decode::<Spawn>(b" {\"id\":\"a\",\"budget\":5}\n ").ok(),
            Some(Spawn {
                id: "a".into(),
                budget: 5
            })
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(decode::<Nothing>(b"").ok(), Some(Nothing { limit: None }));
        assert_eq!(
            decode::<Nothing>(b" \n").ok(),
            Some(Nothing { limit: None })
        );
        let e = decode::<Spawn>(b"").expect_err("id is required");
        assert_eq!(e.field.as_deref(), Some("id"));
    }
}
