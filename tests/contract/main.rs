//! proto-schemas/ checked from Python (the language of many agent frameworks): the golden
//! examples validate against the generated schemas, which enforce their required fields.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn golden_examples_validate_against_the_schemas_in_python() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("tests/contract/check_examples.py"))
        .arg(root.join("proto-schemas"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("examples valid"), "{stdout}");
}
