//! The plan every missions run builds: the same missions and dependencies on every run.

use guild_domain::MissionId;

/// Dependencies added per mission as the plan grows.
pub(crate) const EDGES_PER_MISSION: u64 = 3;

/// How far back a dependency reaches: work depends on recent work, as most plans grow.
const WINDOW: u64 = 1_000;

/// A small, fast, seeded generator: the same plan on every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The plan's generator, seeded.
pub(crate) fn rng() -> Rng {
    Rng(0x9e37_79b9_7f4a_7c15)
}

pub(crate) fn mid(i: u64) -> MissionId {
    MissionId::new(format!("m{i}")).unwrap_or_else(|_| unreachable!("m<number> is a valid id"))
}

/// `count` dependencies, each from a mission in `from..to` to one of the [`WINDOW`]
/// missions created before it.
pub(crate) fn edges(from: u64, to: u64, count: u64, rng: &mut Rng) -> Vec<(u64, u64)> {
    let from = from.max(1);
    let mut out = Vec::with_capacity(count as usize);
    while (out.len() as u64) < count && from < to {
        let a = from + rng.below(to - from);
        let b = a - 1 - rng.below(a.min(WINDOW));
        out.push((a, b));
    }
    out
}

/// Dependencies against the creation order: from a mission in `0..n` to a later one
/// within the window. Each repairs the order, or closes a cycle and is refused.
pub(crate) fn backward_edges(n: u64, count: u64, rng: &mut Rng) -> Vec<(u64, u64)> {
    (0..count)
        .filter(|_| n > 1)
        .map(|_| {
            let a = rng.below(n - 1);
            (a, a + 1 + rng.below((n - a - 1).min(WINDOW)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_point_back_within_the_window_and_stay_in_range() {
        let e = edges(1_000, 3_000, 5_000, &mut rng());
        assert_eq!(e.len(), 5_000);
        assert!(
            e.iter()
                .all(|(a, b)| (1_000..3_000).contains(a) && b < a && a - b <= WINDOW)
        );
        assert!(
            edges(5, 5, 10, &mut rng()).is_empty(),
            "an empty range has no edges"
        );
        let back = backward_edges(100, 50, &mut rng());
        assert!(back.iter().all(|(a, b)| a < b && *b < 100));
    }
}
