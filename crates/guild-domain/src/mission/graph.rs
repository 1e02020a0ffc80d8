//! The dependency graph, kept in a topological order that is repaired incrementally
//! (Pearce and Kelly, "A Dynamic Topological Sort Algorithm for Directed Acyclic Graphs",
//! 2006). See `README.md` in this folder for the model and its costs.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::id::MissionId;

/// Hashes node numbers, which this graph hands out itself (small, dense, never chosen by
/// a caller), with one multiplication: the searches below hash every node they visit, and
/// SipHash's protection against chosen keys buys nothing here.
#[derive(Clone, Copy, Default)]
struct NodeHasher(u64);

impl Hasher for NodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Nodes = BuildHasherDefault<NodeHasher>;

/// Missions as nodes, "X must finish before D" as the edge X → D.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    index: HashMap<MissionId, u32>,
    ids: Vec<MissionId>,
    alive: Vec<bool>,
    /// Dependents of each node (edges out).
    succ: Vec<Vec<u32>>,
    /// Dependencies of each node (edges in).
    pred: Vec<Vec<u32>>,
    /// Each node's position in the topological order: every edge X → D has pos[X] < pos[D].
    pos: Vec<u32>,
    /// The node at each position (inverse of `pos`).
    at: Vec<u32>,
}

impl Graph {
    /// The node for `id`, added at the end of the order when new.
    pub(crate) fn node(&mut self, id: &MissionId) -> u32 {
        if let Some(&n) = self.index.get(id) {
            // An archived node stays out: archived missions never come back.
            return n;
        }
        let n = self.ids.len() as u32;
        self.index.insert(id.clone(), n);
        self.ids.push(id.clone());
        self.alive.push(true);
        self.succ.push(Vec::new());
        self.pred.push(Vec::new());
        self.pos.push(n);
        self.at.push(n);
        n
    }

    pub(crate) fn get(&self, id: &MissionId) -> Option<u32> {
        self.index
            .get(id)
            .copied()
            .filter(|&n| self.alive[n as usize])
    }

    pub(crate) fn id(&self, n: u32) -> &MissionId {
        &self.ids[n as usize]
    }

    /// Whether adding X → D would close a cycle; if so, the cycle as mission ids in
    /// "depends on" order: `[D, X, ..., D]`.
    pub(crate) fn cycle_if_added(&self, x: u32, d: u32) -> Option<Vec<MissionId>> {
        if x == d {
            return Some(vec![self.id(d).clone(), self.id(d).clone()]);
        }
        if self.pos[x as usize] < self.pos[d as usize] {
            return None; // The order already puts X first: D cannot reach X.
        }
        // D reaches X only through nodes ordered between them.
        let bound = self.pos[x as usize];
        let mut parent: HashMap<u32, u32, Nodes> = HashMap::default();
        let mut stack = vec![d];
        let mut seen: HashSet<u32, Nodes> = HashSet::default();
        seen.insert(d);
        while let Some(n) = stack.pop() {
            for &s in &self.succ[n as usize] {
                if self.pos[s as usize] > bound || !seen.insert(s) {
                    continue;
                }
                parent.insert(s, n);
                if s == x {
                    // Walk back X ← ... ← D: each node depends on the one before it.
                    let mut path = vec![self.id(d).clone(), self.id(x).clone()];
                    let mut cur = x;
                    while let Some(&p) = parent.get(&cur) {
                        path.push(self.id(p).clone());
                        cur = p;
                    }
                    return Some(path);
                }
                stack.push(s);
            }
        }
        None
    }

    /// Adds X → D and repairs the order. The caller has checked for cycles; if one slipped
    /// in (state written by an older, buggy writer), the edge is kept and the order is left
    /// as it was, so reads still work.
    pub(crate) fn add_edge(&mut self, x: u32, d: u32) {
        if self.succ[x as usize].contains(&d) {
            return;
        }
        self.succ[x as usize].push(d);
        self.pred[d as usize].push(x);
        let (lb, ub) = (self.pos[d as usize], self.pos[x as usize]);
        if ub < lb {
            return;
        }
        let Some(forward) = self.collect(d, ub, true) else {
            return;
        };
        let backward = self.collect(x, lb, false).unwrap_or_default();
        let mut slots: Vec<u32> = forward
            .iter()
            .chain(backward.iter())
            .map(|&n| self.pos[n as usize])
            .collect();
        slots.sort_unstable();
        let mut moved = backward;
        moved.sort_unstable_by_key(|&n| self.pos[n as usize]);
        let mut forward = forward;
        forward.sort_unstable_by_key(|&n| self.pos[n as usize]);
        moved.extend(forward);
        for (n, p) in moved.into_iter().zip(slots) {
            self.pos[n as usize] = p;
            self.at[p as usize] = n;
        }
    }

    /// Nodes reachable from `start` (forward through dependents, or backward through
    /// dependencies) inside the window the order allows. Forward returns `None` if it
    /// reaches a node ordered at `bound` itself, which means a cycle.
    fn collect(&self, start: u32, bound: u32, forward: bool) -> Option<Vec<u32>> {
        let mut seen: HashSet<u32, Nodes> = HashSet::default();
        seen.insert(start);
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            let next = if forward {
                &self.succ[n as usize]
            } else {
                &self.pred[n as usize]
            };
            for &m in next {
                let p = self.pos[m as usize];
                if forward && p == bound {
                    return None;
                }
                let inside = if forward { p < bound } else { p > bound };
                if inside && seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        Some(seen.into_iter().collect())
    }

    /// Removes X → D (the order stays valid).
    pub(crate) fn remove_edge(&mut self, x: u32, d: u32) {
        self.succ[x as usize].retain(|&s| s != d);
        self.pred[d as usize].retain(|&p| p != x);
    }

    /// Takes a node out of the graph (archived), with its edges.
    pub(crate) fn remove_node(&mut self, n: u32) {
        for s in std::mem::take(&mut self.succ[n as usize]) {
            self.pred[s as usize].retain(|&p| p != n);
        }
        for p in std::mem::take(&mut self.pred[n as usize]) {
            self.succ[p as usize].retain(|&s| s != n);
        }
        self.alive[n as usize] = false;
    }

    /// Each live node's layer: 0 without dependencies, else one more than its deepest
    /// dependency. Computed in one pass over the order.
    pub(crate) fn levels(&self) -> Vec<u32> {
        let mut level = vec![0u32; self.ids.len()];
        for &n in &self.at {
            if !self.alive[n as usize] {
                continue;
            }
            let l = self.pred[n as usize]
                .iter()
                .map(|&p| level[p as usize] + 1)
                .max()
                .unwrap_or(0);
            level[n as usize] = l;
        }
        level
    }

    /// Live nodes in topological order.
    pub(crate) fn in_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.at.iter().copied().filter(|&n| self.alive[n as usize])
    }

    #[cfg(test)]
    pub(crate) fn order_is_topological(&self) -> bool {
        (0..self.ids.len()).all(|x| {
            self.succ[x]
                .iter()
                .all(|&d| self.pos[x] < self.pos[d as usize])
        }) && self
            .at
            .iter()
            .enumerate()
            .all(|(p, &n)| self.pos[n as usize] as usize == p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> (Graph, Vec<u32>) {
        let mut g = Graph::default();
        let nodes = (0..n)
            .map(|i| g.node(&MissionId::new(format!("m{i}")).unwrap()))
            .collect();
        (g, nodes)
    }

    #[test]
    fn an_edge_against_the_order_reorders() {
        let (mut g, n) = ids(4);
        // m3 before m0: against insertion order.
        assert!(g.cycle_if_added(n[3], n[0]).is_none());
        g.add_edge(n[3], n[0]);
        g.add_edge(n[0], n[1]);
        assert!(g.order_is_topological());
    }

    #[test]
    fn a_closing_edge_is_reported_with_its_path() {
        let (mut g, n) = ids(3);
        g.add_edge(n[0], n[1]); // m1 depends on m0
        g.add_edge(n[1], n[2]); // m2 depends on m1
        // m0 depending on m2 would close m0 -> m2 -> m1 -> m0.
        let path = g.cycle_if_added(n[2], n[0]).unwrap();
        let names: Vec<_> = path.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["m0", "m2", "m1", "m0"]);
    }

    #[test]
    fn levels_layer_the_graph() {
        let (mut g, n) = ids(4);
        g.add_edge(n[0], n[2]);
        g.add_edge(n[1], n[2]);
        g.add_edge(n[2], n[3]);
        let l = g.levels();
        assert_eq!([l[0], l[1], l[2], l[3]], [0, 0, 1, 2]);
        g.remove_node(n[0]);
        g.remove_edge(n[1], n[2]);
        assert_eq!(g.levels()[n[2] as usize], 0);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Whether `to` is reachable from `from` by following dependents, naively.
    fn reaches(edges: &[(u32, u32)], from: u32, to: u32) -> bool {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                stack.extend(edges.iter().filter(|(x, _)| *x == n).map(|(_, d)| *d));
            }
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The incremental order stays topological, cycle detection agrees with a naive
        /// search, and removals keep both true.
        #[test]
        fn the_order_stays_topological_and_cycles_are_found(ops in proptest::collection::vec((0u32..12, 0u32..12, 0u8..8), 1..80)) {
            let mut g = Graph::default();
            let ids: Vec<u32> = (0..12).map(|i| g.node(&MissionId::new(format!("n{i}")).unwrap())).collect();
            let mut edges: Vec<(u32, u32)> = Vec::new();
            for (x, d, kind) in ops {
                let (x, d) = (ids[x as usize], ids[d as usize]);
                if kind == 0 {
                    if let Some(i) = edges.iter().position(|e| *e == (x, d)) {
                        edges.remove(i);
                        g.remove_edge(x, d);
                    }
                    continue;
                }
                let cycle = g.cycle_if_added(x, d);
                prop_assert_eq!(cycle.is_some(), x == d || reaches(&edges, d, x), "edge {} -> {}", x, d);
                if cycle.is_none() && !edges.contains(&(x, d)) {
                    g.add_edge(x, d);
                    edges.push((x, d));
                }
                prop_assert!(g.order_is_topological());
            }
            let levels = g.levels();
            for (x, d) in &edges {
                prop_assert!(levels[*x as usize] < levels[*d as usize]);
            }
        }
    }
}
