//! BENCHMARKS.md: the machine, the method, one table per scenario, and the plots.

use std::fmt::Write as _;

use crate::plot::Plot;

/// One measured figure, with the seed's target, the raw baseline and the ratio.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) metric: String,
    /// The seed's target, or Guild's own goal, as text.
    pub(crate) target: String,
    /// The raw NATS / JetStream figure measured in the same run, when the metric has one.
    /// `Some(NaN)` is a baseline that should be there and is not: it renders as `n/a`,
    /// which the quick mode's test refuses.
    pub(crate) baseline: Option<f64>,
    pub(crate) guild: f64,
    pub(crate) unit: &'static str,
    /// Whether the goal is met (None when there is no numeric goal).
    pub(crate) met: Option<bool>,
}

impl Row {
    /// A figure with no target, no baseline and no goal yet.
    pub(crate) fn new(metric: impl Into<String>, guild: f64, unit: &'static str) -> Self {
        Self {
            metric: metric.into(),
            target: "—".into(),
            baseline: None,
            guild,
            unit,
            met: None,
        }
    }

    pub(crate) fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    pub(crate) fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    pub(crate) fn goal(mut self, met: bool) -> Self {
        self.met = Some(met);
        self
    }

    /// Guild's figure over the baseline: None without a baseline, NaN when either figure
    /// is missing.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.baseline.map(|b| {
            if b > 0.0 && b.is_finite() && self.guild.is_finite() {
                self.guild / b
            } else {
                f64::NAN
            }
        })
    }
}

/// A plot that belongs to a section, written as `file` into the plots directory.
#[derive(Clone, Debug)]
pub(crate) struct Figure {
    pub(crate) file: String,
    pub(crate) plot: Plot,
}

/// One scenario's results.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) method: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
    pub(crate) figures: Vec<Figure>,
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn with_unit(v: f64, unit: &str) -> String {
    if v.is_finite() {
        format!("{} {unit}", fmt(v))
    } else {
        "n/a".into()
    }
}

/// The whole document. `plots` is the plots directory as a link from the document.
pub(crate) fn render(header: &str, sections: &[Section], plots: &str) -> String {
    let mut out = String::from(header);
    let figures: Vec<&Figure> = sections.iter().flat_map(|s| &s.figures).collect();
    if !figures.is_empty() {
        out.push_str("\n## Plots\n\n");
        for f in &figures {
            let _ = writeln!(out, "- [{}]({plots}/{})", f.plot.title, f.file);
        }
    }
    for s in sections {
        let _ = writeln!(out, "\n## {}\n\n{}\n", s.title, s.method);
        out.push_str("| metric | target | baseline (the method says which) | Guild | ratio | goal met |\n|---|---|---|---|---|---|\n");
        for r in &s.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.metric,
                r.target,
                r.baseline.map_or("—".into(), |b| with_unit(b, r.unit)),
                with_unit(r.guild, r.unit),
                r.ratio().map_or("—".into(), |x| {
                    if x.is_finite() {
                        format!("{x:.2}×")
                    } else {
                        "n/a".into()
                    }
                }),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                }
            );
        }
        let missed: Vec<&str> = s
            .rows
            .iter()
            .filter(|r| r.met == Some(false))
            .map(|r| r.metric.as_str())
            .collect();
        if !missed.is_empty() {
            let _ = writeln!(
                out,
                "\n**Goals missed in this run:** {}. The notes below say why, and what would close the gap.",
                missed.join("; ")
            );
        }
        for n in &s.notes {
            let _ = writeln!(out, "\n{n}");
        }
        for f in &s.figures {
            let _ = writeln!(out, "\n![{}]({plots}/{})", f.plot.title, f.file);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(rows: Vec<Row>) -> Section {
        Section {
            title: "T".into(),
            method: "M".into(),
            rows,
            notes: vec![],
            figures: vec![],
        }
    }

    #[test]
    fn a_missing_baseline_or_figure_shows_as_not_available() {
        let doc = render(
            "",
            &[section(vec![
                Row::new("a", 2.0, "ms").baseline(1.0).goal(false),
                Row::new("b", 2.0, "ms").baseline(f64::NAN),
                Row::new("c", f64::NAN, "ms"),
            ])],
            "bench",
        );
        assert!(
            doc.contains("| a | — | 1.000 ms | 2.000 ms | 2.00× | **no** |"),
            "{doc}"
        );
        assert!(
            doc.contains("| b | — | n/a | 2.000 ms | n/a | — |"),
            "{doc}"
        );
        assert!(doc.contains("| c | — | — | n/a | — | — |"), "{doc}");
        assert!(doc.contains("**Goals missed in this run:** a."), "{doc}");
    }
}
