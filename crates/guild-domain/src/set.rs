//! A set kept as a sorted vector: for the handful of ids a mission links to, a fraction of
//! a `BTreeSet`'s memory (whose smallest node holds eleven slots), with the same JSON.

use serde::{Deserialize, Serialize};

/// A sorted set of a few elements. Serializes as a JSON array in ascending order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SmallSet<T: Ord>(Vec<T>);

impl<T: Ord> Default for SmallSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> SmallSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; false when it was there.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false when it was not there.
    pub fn remove(&mut self, value: &T) -> bool {
        match self.0.binary_search(value) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> bool {
        self.0.binary_search(value).is_ok()
    }

    /// The elements, ascending.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Ord> FromIterator<T> for SmallSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v: Vec<T> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self(v)
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SmallSet<T> {
    fn from(values: [T; N]) -> Self {
        values.into_iter().collect()
    }
}

impl<'a, T: Ord> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de, T: Ord + Deserialize<'de>> Deserialize<'de> for SmallSet<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<T>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(feature = "schema")]
impl<T: Ord + schemars::JsonSchema> schemars::JsonSchema for SmallSet<T> {
    fn inline_schema() -> bool {
        <std::collections::BTreeSet<T> as schemars::JsonSchema>::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <std::collections::BTreeSet<T> as schemars::JsonSchema>::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeSet<T> as schemars::JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_sorted_set() {
        let mut s: SmallSet<u32> = [3, 1, 3].into();
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 3]);
        assert!(s.insert(2) && !s.insert(2));
        assert!(s.contains(&2) && !s.contains(&4));
        assert!(s.remove(&1) && !s.remove(&1));
        assert_eq!(s.len(), 2);
        assert_eq!(serde_json::to_string(&s).unwrap(), "[2,3]");
        let back: SmallSet<u32> = serde_json::from_str("[9,2,9]").unwrap();
        assert_eq!(back, [2, 9].into());
        assert!(SmallSet::<u32>::new().is_empty());
        let mut seen = Vec::new();
        for x in &s {
            seen.push(*x);
        }
        assert_eq!(seen, [2, 3]);
    }
}
