//! Prompt-cache placement: a call with a cache key goes to the backend its key prefers, so that
//! the next call with the same long prompt finds it in that resource's prompt cache, unless that
//! backend carries more than its share of the calls in flight.
//!
//! The preference is weighted rendezvous hashing (highest random weight), a form of consistent
//! hashing: each backend scores the key `weight / -ln(u)`, `u` a uniform draw from the key and
//! the backend's name; the highest score wins. A key's order of backends is its own and the same
//! in every replica and after a reload (names, not indexes, are hashed); a backend that leaves
//! the candidates (it rests, its circuit is open, it is short of room) moves only its own keys,
//! each to its next, and they come back when it returns; over many keys each backend gets its
//! weight's share.
//!
//! Bounded load (consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam):
//! a backend takes a key only while its calls in flight stay within `load_factor` times its
//! weighted share of the candidates' calls in flight, this one included, rounded up; otherwise
//! the key goes to the next backend of its order that has room. Since the bounds add up to more
//! than the calls in flight, one always has room. The count is this replica's, as its balancer
//! sees its own calls: each replica bounds its own share.

use std::fmt;

use super::set::Set;

/// Calls in flight per backend, by index.
pub trait Loads {
    fn in_flight(&self, index: usize) -> u64;
}

/// A call's cache key, and where to read the backends' loads.
#[derive(Clone, Copy)]
pub struct Affinity<'a> {
    pub key: u64,
    pub loads: &'a dyn Loads,
}

impl fmt::Debug for Affinity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Affinity({:016x})", self.key)
    }
}

/// The seed a backend named `name` mixes into each key: the same in every replica.
pub fn seed(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// How much backend `seed` of weight `weight` wants `key`: the highest wins.
fn score(key: u64, seed: u64, weight: u32) -> f64 {
    // A uniform draw in (0, 1) from the key and the backend (splitmix64's finalizer).
    let mut x = key ^ seed;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// The candidate `affinity`'s key goes to: the first of its order with room under
/// `load_factor`. `seed` and `weight` describe backend `i`.
pub fn pick(
    candidates: Set,
    affinity: Affinity<'_>,
    load_factor: f64,
    seed: impl Fn(usize) -> u64,
    weight: impl Fn(usize) -> u32,
) -> Option<usize> {
    let (mut total, mut weights) = (0u64, 0u64);
    for i in candidates.iter() {
        total += affinity.loads.in_flight(i);
        weights += u64::from(weight(i));
    }
    let mut best: Option<(f64, usize)> = None;
    let mut best_with_room: Option<(f64, usize)> = None;
    for i in candidates.iter() {
        let score = score(affinity.key, seed(i), weight(i));
        let share = (total + 1) as f64 * f64::from(weight(i)) / weights.max(1) as f64;
        let bound = (load_factor * share).ceil() as u64;
        let higher = |b: Option<(f64, usize)>| b.is_none_or(|(s, _)| score > s);
        if affinity.loads.in_flight(i) < bound && higher(best_with_room) {
            best_with_room = Some((score, i));
        }
        if higher(best) {
            best = Some((score, i));
        }
    }
    best_with_room.or(best).map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Counts(RefCell<Vec<u64>>);

    impl Loads for Counts {
        fn in_flight(&self, index: usize) -> u64 {
            self.0.borrow()[index]
        }
    }

    fn seeds(i: usize) -> u64 {
        seed(&format!("backend-{i}"))
    }

    fn all(n: usize) -> Set {
        (0..n).collect()
    }

    fn place(key: u64, set: Set, loads: &Counts, weights: &[u32]) -> usize {
        let affinity = Affinity { key, loads };
        pick(set, affinity, 1.25, seeds, |i| weights[i]).unwrap()
    }

    #[test]
    fn keys_spread_and_stay() {
        let idle = Counts(RefCell::new(vec![0; 3]));
        let mut per = [0; 3];
        for key in 0..3000u64 {
            let first = place(key, all(3), &idle, &[1, 1, 1]);
            assert_eq!(place(key, all(3), &idle, &[1, 1, 1]), first, "stable");
            per[first] += 1;
        }
        assert!(per.iter().all(|&n| (900..1100).contains(&n)), "{per:?}");
    }

    #[test]
    fn a_missing_backend_moves_only_its_own_keys_and_they_come_back() {
        let idle = Counts(RefCell::new(vec![0; 4]));
        let without_2: Set = [0, 1, 3].into_iter().collect();
        for key in 0..2000u64 {
            let first = place(key, all(4), &idle, &[1; 4]);
            let moved = place(key, without_2, &idle, &[1; 4]);
            if first == 2 {
                assert_ne!(moved, 2);
            } else {
                assert_eq!(moved, first, "key {key} moved though its backend stayed");
            }
        }
    }

    #[test]
    fn weights_hold_over_many_keys() {
        let idle = Counts(RefCell::new(vec![0; 2]));
        let first = (0..8000u64)
            .filter(|&key| place(key, all(2), &idle, &[3, 1]) == 0)
            .count();
        assert!((5800..6200).contains(&first), "{first} of 8000");
    }

    #[test]
    fn a_backend_over_its_bound_takes_no_more_keys_until_it_falls_back() {
        let loads = Counts(RefCell::new(vec![0; 3]));
        let weights = [1; 3];
        let key = (0..)
            .find(|&k| place(k, all(3), &loads, &weights) == 0)
            .unwrap();
        // One hot application: its calls pile up on its backend up to the bound, then spill.
        let mut placed = [0u64; 3];
        for _ in 0..30 {
            let i = place(key, all(3), &loads, &weights);
            loads.0.borrow_mut()[i] += 1;
            placed[i] += 1;
        }
        // 30 in flight, 10 a backend on average: at most ceil(1.25 * 10) on one.
        assert!(placed[0] <= 13 && placed[0] >= 12, "{placed:?}");
        let second = if placed[1] > placed[2] { 1 } else { 2 };
        assert!(
            placed[second] >= 12,
            "the key's next backend takes the overflow: {placed:?}"
        );
        // Its calls end: the key comes back.
        loads.0.borrow_mut()[0] = 0;
        assert_eq!(place(key, all(3), &loads, &weights), 0);
    }

    #[test]
    fn one_backend_always_has_room() {
        let loads = Counts(RefCell::new(vec![5, 5, 5]));
        for key in 0..100 {
            assert!(place(key, all(3), &loads, &[1, 1, 1]) < 3);
        }
    }
}
