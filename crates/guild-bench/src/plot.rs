//! Line plots written as SVG by hand: axes with ticks, a grid, labelled lines with their
//! points, a legend. The benchmark's few figures need a page of code, not a plotting
//! dependency, and the files stay small, diffable text.

use std::fmt::Write as _;

/// How an axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// From zero to a round number above the largest value.
    Linear,
    /// Whole decades around the values; values ≤ 0 cannot be drawn and are left out.
    Log,
}

#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub(crate) label: String,
    pub(crate) scale: Scale,
}

impl Axis {
    pub(crate) fn new(label: impl Into<String>, scale: Scale) -> Self {
        Self {
            label: label.into(),
            scale,
        }
    }
}

/// One line. Series of one system share a colour; `dashed` tells a second figure of it
/// (p50 next to p99) apart.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64)>,
    pub(crate) color: usize,
    pub(crate) dashed: bool,
}

impl Series {
    pub(crate) fn new(label: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            dashed: false,
        }
    }

    pub(crate) fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Plot {
    pub(crate) title: String,
    pub(crate) x: Axis,
    pub(crate) y: Axis,
    pub(crate) series: Vec<Series>,
}

/// Colour-blind-safe enough, and distinct in print (the Tableau 10 start).
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const WIDTH: f64 = 780.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 72.0;
/// Room for the legend on the right.
const RIGHT: f64 = 250.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;

/// An axis's range and ticks, fitted to the values.
struct Fitted {
    scale: Scale,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Fitted {
    fn drawable(scale: Scale, v: f64) -> bool {
        v.is_finite() && (scale == Scale::Linear || v > 0.0)
    }

    fn new(scale: Scale, values: impl Iterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.filter(|v| Self::drawable(scale, *v)).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match scale {
            Scale::Linear => {
                let lo = if min.is_finite() { min.min(0.0) } else { 0.0 };
                let hi = if max.is_finite() && max > lo {
                    max
                } else {
                    lo + 1.0
                };
                let step = nice_step((hi - lo) / 5.0);
                let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
                let ticks = (0..)
                    .map(|i| lo + f64::from(i) * step)
                    .take_while(|t| *t <= hi + step / 2.0)
                    .collect();
                Self {
                    scale,
                    lo,
                    hi,
                    ticks,
                }
            }
            Scale::Log => {
                let (lo, hi) = if min.is_finite() {
                    (min.log10().floor() as i32, max.log10().ceil() as i32)
                } else {
                    (0, 1)
                };
                let hi = hi.max(lo + 1);
                let mut ticks = Vec::new();
                for e in lo..=hi {
                    let decade = 10f64.powi(e);
                    ticks.push(decade);
                    // Two decades or fewer leave room for 2 and 5 between them.
                    if hi - lo <= 2 && e < hi {
                        ticks.extend([2.0 * decade, 5.0 * decade]);
                    }
                }
                Self {
                    scale,
                    lo: 10f64.powi(lo),
                    hi: 10f64.powi(hi),
                    ticks,
                }
            }
        }
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi`.
    fn fraction(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * decade)
}

/// A tick label: 2500 → "2.5k", 0.05 → "0.05".
fn short(v: f64) -> String {
    let (v, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{suffix}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Plot {
    /// The SVG document.
    pub(crate) fn svg(&self) -> String {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let x = Fitted::new(self.x.scale, points().map(|p| p.0));
        let y = Fitted::new(self.y.scale, points().map(|p| p.1));
        let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let px = |v: f64| LEFT + x.fraction(v) * plot_w;
        let py = |v: f64| TOP + (1.0 - y.fraction(v)) * plot_h;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        let _ = writeln!(
            out,
            r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        let bottom = TOP + plot_h;
        for t in &x.ticks {
            let p = px(*t);
            let _ = writeln!(
                out,
                r##"<line x1="{p:.1}" y1="{TOP}" x2="{p:.1}" y2="{bottom}" stroke="#e6e6e6"/><text x="{p:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                bottom + 16.0,
                short(*t)
            );
        }
        for t in &y.ticks {
            let p = py(*t);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{p:.1}" x2="{:.1}" y2="{p:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{p:.1}" dy="0.35em" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                short(*t)
            );
        }
        let _ = writeln!(
            out,
            r#"<path d="M{LEFT},{TOP} V{bottom} H{:.1}" fill="none" stroke="black"/>"#,
            LEFT + plot_w
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 14.0,
            escape(&self.x.label)
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            escape(&self.y.label)
        );
        let mut drawn = 0;
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[s.color % PALETTE.len()];
            let dash = if s.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let mut pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(a, b)| {
                    Fitted::drawable(self.x.scale, *a) && Fitted::drawable(self.y.scale, *b)
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            drawn += pts.len();
            let path: Vec<String> = pts
                .iter()
                .map(|(a, b)| format!("{:.1},{:.1}", px(*a), py(*b)))
                .collect();
            if pts.len() > 1 {
                let _ = writeln!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                    path.join(" ")
                );
            }
            for (a, b) in &pts {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{}: {} at {}</title></circle>"#,
                    px(*a),
                    py(*b),
                    escape(&s.label),
                    short(*b),
                    short(*a)
                );
            }
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let lx = LEFT + plot_w + 16.0;
            let _ = writeln!(
                out,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"{dash}/><text x="{:.1}" y="{ly:.1}" dy="0.35em">{}</text>"#,
                lx + 24.0,
                lx + 30.0,
                escape(&s.label)
            );
        }
        if drawn == 0 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(x: Scale, y: Scale, series: Vec<Series>) -> Plot {
        Plot {
            title: "Latency <p99> & load".into(),
            x: Axis::new("offered load (msg/s)", x),
            y: Axis::new("latency (ms)", y),
            series,
        }
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_values() {
        let f = Fitted::new(Scale::Linear, [3.0, 97.0].into_iter());
        assert_eq!(f.ticks, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!((f.lo, f.hi), (0.0, 100.0));
    }

    #[test]
    fn log_ticks_are_decades_and_skip_what_cannot_be_drawn() {
        let f = Fitted::new(Scale::Log, [0.0, -1.0, 0.3, 40_000.0].into_iter());
        assert_eq!(f.ticks, [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]);
        let narrow = Fitted::new(Scale::Log, [2.0, 30.0].into_iter());
        assert_eq!(narrow.ticks, [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(2_500.0), "2.5k");
        assert_eq!(short(100_000.0), "100k");
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(20.0), "20");
    }

    #[test]
    fn an_svg_has_every_series_its_points_and_escaped_text() {
        let svg = plot(
            Scale::Log,
            Scale::Linear,
            vec![
                Series::new(
                    "raw",
                    0,
                    vec![(100.0, 0.2), (1000.0, f64::NAN), (500.0, 0.3)],
                ),
                Series::new("guild p50", 1, vec![(100.0, 0.5), (500.0, 0.9)]).dashed(),
            ],
        )
        .svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("<circle").count(),
            4,
            "the NaN point is left out"
        );
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("Latency &lt;p99&gt; &amp; load"));
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn nothing_to_draw_says_so() {
        let svg = plot(
            Scale::Log,
            Scale::Log,
            vec![Series::new("a", 0, vec![(0.0, 1.0)])],
        )
        .svg();
        assert!(svg.contains("no data"));
    }
}
