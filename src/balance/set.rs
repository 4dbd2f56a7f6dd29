//! A set of backends, by their index in the config: one `u128`, copied freely.

/// The most backends a gateway takes, so that a set of them is one `u128`.
pub const MAX_BACKENDS: usize = 128;

/// A set of backends, by index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Set(u128);

impl Set {
    pub fn insert(&mut self, i: usize) {
        self.0 |= 1 << i;
    }

    pub fn remove(&mut self, i: usize) {
        self.0 &= !(1 << i);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn contains(self, i: usize) -> bool {
        i < MAX_BACKENDS && self.0 & (1 << i) != 0
    }

    /// The members, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut left = self.0;
        std::iter::from_fn(move || {
            (left != 0).then(|| {
                let i = left.trailing_zeros() as usize;
                left &= left - 1;
                i
            })
        })
    }
}

impl FromIterator<usize> for Set {
    fn from_iter<I: IntoIterator<Item = usize>>(members: I) -> Set {
        let mut set = Set::default();
        for i in members {
            set.insert(i);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_in_order() {
        let set: Set = [5, 0, 127, 64].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 5, 64, 127]);
        assert_eq!(set.len(), 4);
        assert!(set.contains(127) && !set.contains(128) && !set.contains(1));
        let mut set = set;
        set.remove(5);
        assert_eq!(set.len(), 3);
    }
}
