//! The rotations: one per api-version and deployment, by smooth weighted round-robin (each
//! candidate gains its weight, the one with the most is chosen and gives back the candidates'
//! total), so that with weights 3 and 1 three calls in four go to the first, evenly spread.
//! Backends not among a turn's candidates keep their weight for when they are again. With
//! shared state, `begin.lua` keeps the same rotation in Redis instead.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;
use super::set::Set;

/// Rotations kept per api-version at most; past this (deployment names a client invents) they
/// start afresh.
const MAX_ROTATIONS: usize = 4096;

/// Each backend's current weight in one rotation, by index.
type Weights = Vec<i64>;

/// Each rotation's current weights, by api-version and deployment.
#[derive(Default)]
pub(super) struct Rotations {
    current: Mutex<HashMap<&'static str, HashMap<Box<str>, Weights>>>,
}

impl Rotations {
    /// Takes the next turn of `deployment` on `version` among `candidates`, whose weights
    /// `weight` gives; `backends` is how many there are.
    pub(super) fn turn(
        &self,
        version: &'static str,
        deployment: &str,
        candidates: Set,
        backends: usize,
        weight: impl Fn(usize) -> i64,
    ) -> Option<usize> {
        let mut members = candidates.iter();
        let first = members.next()?;
        if members.next().is_none() {
            return Some(first);
        }
        let mut rotations = lock(&self.current);
        let of_version = rotations.entry(version).or_default();
        if !of_version.contains_key(deployment) {
            if of_version.len() >= MAX_ROTATIONS {
                of_version.clear();
            }
            of_version.insert(deployment.into(), vec![0; backends]);
        }
        let current = of_version.get_mut(deployment)?;
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in candidates.iter() {
            let weight = weight(i);
            current[i] += weight;
            total += weight;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            current[b] -= total;
        }
        best
    }
}
