//! A BPE vocabulary in one flat, read-only table, so that it can live in the binary as it is
//! written at build time and be used in place: no parsing at start, no heap, and only the pages
//! a count touches are ever read in (they are the binary's own, shared by every process that
//! runs it).
//!
//! Layout, every integer a little-endian `u32`:
//!
//! ```text
//! "AOVB" | tokens n | log2 of the slot count | arena length
//! pairs[65536]   the rank + 1 of each two-byte token, by its bytes (0: none): most lookups of
//!                a merge are of two bytes, and this answers them in one read
//! ends[n]        token r is arena[ends[r - 1] .. ends[r]] (ends[-1] = 0); a rank without a
//!                token (a gap) is empty
//! slots[2^k]     open addressing, linear probing from hash(bytes), two words each: rank + 1
//!                (0 for empty), and the hash's high half, which turns most other tokens away
//!                without reading their bytes
//! arena          every token's bytes, by rank
//! ```

const MAGIC: &[u8; 4] = b"AOVB";
const HEADER: usize = 16;
const PAIRS: usize = 1 << 16;

/// The hash the slots are placed by: FxHash's multiply-rotate over 8 bytes at a time, with the
/// length folded in (tokens may hold zero bytes).
#[inline]
pub fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let mix = |h: u64, word: u64| (h ^ word).wrapping_mul(K).rotate_left(26);
    let n = bytes.len();
    let mut h = (n as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        h = mix(h, u64_at(chunk, 0));
    }
    // The last bytes, read without a copy: whole words that overlap what came before (tokens
    // are short, and a copy of a few bytes costs a call to memcpy).
    let rest = chunks.remainder().len();
    if rest > 0 {
        let tail = if n >= 8 {
            u64_at(bytes, n - 8)
        } else if n >= 4 {
            u64::from(u32_at(bytes, 0)) | u64::from(u32_at(bytes, n - 4)) << 32
        } else {
            u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16
        };
        h = mix(h, tail);
    }
    // The high bits are the best mixed: fold them down for the slot index.
    h ^ (h >> 29)
}

/// Whether `a` and `b` are equal, compared as a few overlapping words when they are short (most
/// tokens and pieces are): a call to `memcmp` costs more than the comparison.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // Both words together cover every byte.
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        4..=7 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        _ => a == b,
    }
}

/// The little-endian word at `at` (the caller keeps it in bounds; else 0).
#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[inline]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Writes the table of `tokens`, by rank (an empty one is a gap).
pub fn write(tokens: &[Vec<u8>]) -> Vec<u8> {
    let present = tokens.iter().filter(|t| !t.is_empty()).count();
    // Up to 4/5 full: the tags turn probes of other tokens away cheaply, 8 slots a cache line.
    let mut log2 = 4u32;
    while (1usize << log2) * 4 < present * 5 {
        log2 += 1;
    }
    let mask = (1usize << log2) - 1;
    let mut pairs = vec![0u32; PAIRS];
    let mut slots = vec![0u32; 2 << log2];
    let mut ends = Vec::with_capacity(tokens.len());
    let mut arena = Vec::new();
    for (rank, token) in tokens.iter().enumerate() {
        arena.extend_from_slice(token);
        ends.push(arena.len() as u32);
        if let &[a, b] = token.as_slice() {
            pairs[usize::from(a) << 8 | usize::from(b)] = rank as u32 + 1;
        }
        if token.is_empty() {
            continue;
        }
        let h = hash(token);
        let mut i = h as usize & mask;
        while slots[2 * i] != 0 {
            i = (i + 1) & mask;
        }
        slots[2 * i] = rank as u32 + 1;
        slots[2 * i + 1] = (h >> 32) as u32;
    }
    let words = pairs.len() + ends.len() + slots.len();
    let mut out = Vec::with_capacity(HEADER + 4 * words + arena.len());
    out.extend_from_slice(MAGIC);
    for n in [tokens.len() as u32, log2, arena.len() as u32] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for n in pairs.iter().chain(&ends).chain(&slots) {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&arena);
    out
}

/// A table [`write`] made, read in place.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    pairs: &'a [u8],
    ends: &'a [u8],
    slots: &'a [u8],
    mask: usize,
    arena: &'a [u8],
}

/// The `i`th little-endian `u32` of a table's part.
#[inline]
fn word(bytes: &[u8], i: usize) -> u32 {
    u32_at(bytes, i * 4)
}

impl<'a> Table<'a> {
    /// The table in `bytes`; `None` if they do not hold one whole.
    pub fn read(bytes: &'a [u8]) -> Option<Table<'a>> {
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        let (n, log2, arena_len) = (
            word(bytes, 1) as usize,
            word(bytes, 2),
            word(bytes, 3) as usize,
        );
        let slots_len = 1usize.checked_shl(log2)?;
        let (pairs, rest) = bytes.get(HEADER..)?.split_at_checked(PAIRS * 4)?;
        let (ends, rest) = rest.split_at_checked(n * 4)?;
        let (slots, arena) = rest.split_at_checked(slots_len * 8)?;
        (arena.len() == arena_len).then_some(Table {
            pairs,
            ends,
            slots,
            mask: slots_len - 1,
            arena,
        })
    }

    /// How many ranks it has (gaps included).
    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of the token of rank `rank`.
    #[inline]
    pub fn token(&self, rank: u32) -> &'a [u8] {
        let r = rank as usize;
        let start = if r == 0 { 0 } else { word(self.ends, r - 1) };
        self.arena
            .get(start as usize..word(self.ends, r) as usize)
            .unwrap_or(&[])
    }

    /// The rank of the token `bytes`, if it is one.
    #[inline]
    pub fn rank(&self, bytes: &[u8]) -> Option<u32> {
        if let &[a, b] = bytes {
            return word(self.pairs, usize::from(a) << 8 | usize::from(b)).checked_sub(1);
        }
        let h = hash(bytes);
        let tag = (h >> 32) as u32;
        let mut i = h as usize & self.mask;
        loop {
            let slot = word(self.slots, 2 * i);
            if slot == 0 {
                return None;
            }
            if word(self.slots, 2 * i + 1) == tag && same(self.token(slot - 1), bytes) {
                return Some(slot - 1);
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_their_bytes_and_nothing_else() {
        let tokens: Vec<Vec<u8>> = (0..=255u8)
            .map(|b| vec![b])
            .chain([
                b"ab".to_vec(),
                Vec::new(),
                b"ab\0".to_vec(),
                b"hello world!".to_vec(),
            ])
            .collect();
        let bytes = write(&tokens);
        let table = Table::read(&bytes).unwrap();
        assert_eq!(table.len(), 260);
        for (rank, token) in tokens.iter().enumerate() {
            if !token.is_empty() {
                assert_eq!(table.rank(token), Some(rank as u32));
                assert_eq!(table.token(rank as u32), token.as_slice());
            }
        }
        assert_eq!(table.rank(b"abc"), None);
        assert_eq!(table.rank(b""), None);
        assert_eq!(table.rank(b"hello world?"), None);
        assert!(Table::read(&bytes[..bytes.len() - 1]).is_none());
        assert!(Table::read(b"AOVB").is_none());
    }

    #[test]
    fn short_strings_compare_byte_for_byte() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..=24 {
            for at in 0..text.len() - n {
                let a = &text[..n];
                let b = &text[at..at + n];
                assert_eq!(same(a, b), a == b, "{n} {at}");
                let mut c = a.to_vec();
                for i in 0..n {
                    c[i] ^= 1;
                    assert!(!same(a, &c), "differs at {i} of {n}");
                    c[i] ^= 1;
                }
            }
        }
    }
}
