//! BENCHMARKS.md: the machine, the method, and one table per scenario.

use std::fmt::Write as _;

/// One measured figure, with the seed's target, the raw baseline and the ratio.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) metric: String,
    /// The seed's target, or Guild's own goal, as text.
    pub(crate) target: String,
    /// The raw NATS / JetStream figure measured in the same run, when there is one.
    pub(crate) baseline: Option<f64>,
    pub(crate) guild: f64,
    pub(crate) unit: &'static str,
    /// Whether the goal is met (None when there is no numeric goal).
    pub(crate) met: Option<bool>,
}

impl Row {
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.baseline.filter(|b| *b > 0.0).map(|b| self.guild / b)
    }
}

/// One scenario's results.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) method: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The whole document.
pub(crate) fn render(header: &str, sections: &[Section]) -> String {
    let mut out = String::from(header);
    for s in sections {
        let _ = writeln!(out, "\n## {}\n\n{}\n", s.title, s.method);
        out.push_str("| metric | target | baseline (raw NATS) | Guild | ratio | goal met |\n|---|---|---|---|---|---|\n");
        for r in &s.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} {} | {} | {} |",
                r.metric,
                r.target,
                r.baseline
                    .map_or("—".into(), |b| format!("{} {}", fmt(b), r.unit)),
                fmt(r.guild),
                r.unit,
                r.ratio().map_or("—".into(), |x| format!("{x:.2}×")),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                }
            );
        }
        for n in &s.notes {
            let _ = writeln!(out, "\n{n}");
        }
    }
    out
}
