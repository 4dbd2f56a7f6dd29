//! Byte-pair encoding, counting only: OpenAI's tokenizers split text into pieces by a pattern,
//! then merge each piece's bytes pair by pair, lowest rank first, until no adjacent pair is a
//! token; the pieces' token counts add up.
//!
//! The vocabulary is a flat table build.rs writes from OpenAI's encodings and the binary carries
//! ([`aoai_runtime::vocab`]): it is read in place, so an encoding costs no heap and no time to
//! load, and only the pages of it that counts touch are ever resident (4.6 MB for
//! `o200k_base`, 2.4 MB for `cl100k_base`, at most). The pattern is compiled on first use.
//! Text is split by hand where it is ASCII ([`ascii_piece`]), by the pattern elsewhere; pieces
//! counted lately are kept per thread ([`PieceCache`]).
//!
//! The patterns' `\s+(?!\S)` (a run of whitespace gives its last character to what follows)
//! needs a look-ahead the `regex` crates do not have; it is matched as `\s+` and the run
//! shortened by one character when a non-space follows it ([`Splitter::next`]). A run that holds
//! a line break is matched earlier by `\s*[\r\n]+`, which has no look-ahead, and is left alone.

use regex_automata::meta::{self, Regex};
use regex_automata::{Anchored, Input};

use aoai_runtime::vocab::Table;

/// `cl100k_base`'s pattern (GPT-4, GPT-3.5, text-embedding), `\s+(?!\S)|\s+` as `\s+`.
pub const CL100K_PATTERN: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+",
);

/// `o200k_base`'s pattern (GPT-4o and later), the same way.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+",
);

/// The lazy DFA's cache per thread, past which it starts over rather than grow: the patterns'
/// Unicode classes make many states, and a smaller cache (256 KiB) is rebuilt so often that
/// counting text that is not ASCII slows fourfold.
const DFA_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// Pieces longer than this merge with a heap rather than by scanning for the lowest pair, which
/// is quadratic in the piece's length (a run of 10,000 spaces is one piece).
const SCAN_MAX: usize = 128;

pub struct Bpe {
    table: Table<'static>,
    splitter: Splitter,
}

impl Bpe {
    /// The encoding whose table is `table` and whose pattern is `pattern`; `None` if either is
    /// broken (a build that went wrong).
    pub fn new(table: &'static [u8], pattern: &str) -> Option<Bpe> {
        let regex = meta::Builder::new()
            .configure(meta::Config::new().hybrid_cache_capacity(DFA_CACHE_BYTES))
            .build(pattern)
            .ok()?;
        Some(Bpe {
            table: Table::read(table)?,
            splitter: Splitter {
                regex,
                cased: pattern == O200K_PATTERN,
            },
        })
    }

    /// The tokens of `text`, special-token markers counted as plain text.
    pub fn count(&self, text: &str) -> usize {
        PIECES.with_borrow_mut(|pieces| {
            let pieces = pieces.get_or_insert_with(PieceCache::new);
            let mut count = 0;
            let mut at = 0;
            let mut parts = Vec::new();
            // The two encodings differ by their pattern, which so names a piece's encoding.
            let id = u8::from(self.splitter.cased);
            while let Some((start, end)) = self.splitter.next(text, at) {
                let piece = &text.as_bytes()[start..end];
                count += pieces.count(id, piece, || {
                    if self.table.rank(piece).is_some() {
                        1
                    } else if piece.len() <= SCAN_MAX {
                        self.scan_merge(piece, &mut parts)
                    } else {
                        self.heap_merge(piece)
                    }
                });
                at = end;
            }
            count
        })
    }

    /// The rank of `piece[start..end]`, `u32::MAX` if it is no token.
    #[inline]
    fn rank_of(&self, piece: &[u8], start: usize, end: usize) -> u32 {
        piece
            .get(start..end)
            .and_then(|bytes| self.table.rank(bytes))
            .unwrap_or(u32::MAX)
    }

    /// Merges `piece` as OpenAI's tiktoken does: `parts` holds each part's start and the rank of
    /// it joined with the next, then the end; the lowest (the first, among equals) joins, until
    /// none can.
    fn scan_merge(&self, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
        parts.clear();
        parts.extend((0..piece.len()).map(|i| (i, self.rank_of(piece, i, i + 2))));
        parts.push((piece.len(), u32::MAX));
        // Parts i and i + 1 joined: from i's start to the start of what follows i + 1.
        let joined = |parts: &[(usize, u32)], i: usize| -> u32 {
            match (parts.get(i), parts.get(i + 2)) {
                (Some(&(start, _)), Some(&(end, _))) => self.rank_of(piece, start, end),
                _ => u32::MAX,
            }
        };
        loop {
            let mut lowest = (u32::MAX, 0);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < lowest.0 {
                    lowest = (rank, i);
                }
            }
            let (rank, i) = lowest;
            if rank == u32::MAX {
                break;
            }
            parts.remove(i + 1);
            parts[i].1 = joined(parts, i);
            if i > 0 {
                parts[i - 1].1 = joined(parts, i - 1);
            }
        }
        parts.len() - 1
    }

    /// The same merge for a long piece, in O(n log n): candidate joins in a heap by (rank,
    /// start), the parts as a linked list; a candidate whose parts changed since is skipped.
    fn heap_merge(&self, piece: &[u8]) -> usize {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let n = piece.len();
        // Per part (by its start): the start of the next part, the previous part's start, and
        // whether it is still a part.
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.saturating_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, start: usize, next: &[usize]| {
            let mid = next[start];
            if mid < n {
                let end = next[mid];
                let rank = self.rank_of(piece, start, end);
                if rank != u32::MAX {
                    heap.push(Reverse((rank, start, end)));
                }
            }
        };
        for i in 0..n {
            push(&mut heap, i, &next);
        }
        let mut count = n;
        while let Some(Reverse((_, start, end))) = heap.pop() {
            // Stale: a part was joined since this candidate was pushed.
            let mid = next[start];
            if !alive[start] || mid >= n || next[mid] != end {
                continue;
            }
            alive[mid] = false;
            next[start] = end;
            if end < n {
                prev[end] = start;
            }
            count -= 1;
            push(&mut heap, start, &next);
            if start > 0 {
                push(&mut heap, prev[start], &next);
            }
        }
        count
    }
}

/// Pieces counted lately, per thread: text repeats its words, and a system prompt repeats from
/// call to call, so most pieces are counted from here, without a look at the vocabulary. Only
/// pieces of up to [`PIECE_MAX`] bytes, kept whole, so a hit is always exact.
struct PieceCache {
    slots: Box<[Piece]>,
}

/// Bytes of a piece the cache keeps: most words, with their leading space, and a clause of
/// Chinese or Japanese (up to 17 characters), which the pattern leaves whole.
const PIECE_MAX: usize = 52;
/// Slots per thread: 16,384 of one cache line each, 1 MiB (tiktoken keeps 1.2 MB a thread).
/// A quarter of that counted words drawn from a 20,000-word vocabulary 30% slower: most of
/// their pieces missed the cache.
const PIECE_SLOTS: usize = 16384;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Piece {
    hash: u64,
    bytes: [u8; PIECE_MAX],
    /// The encoding's id + 1 (0: empty), the piece's length, and its count.
    encoding: u8,
    len: u8,
    count: u16,
}

thread_local! {
    static PIECES: std::cell::RefCell<Option<PieceCache>> = const { std::cell::RefCell::new(None) };
}

impl PieceCache {
    fn new() -> PieceCache {
        PieceCache {
            slots: vec![
                Piece {
                    hash: 0,
                    bytes: [0; PIECE_MAX],
                    encoding: 0,
                    len: 0,
                    count: 0,
                };
                PIECE_SLOTS
            ]
            .into_boxed_slice(),
        }
    }

    /// The count of `piece` in encoding `id`: kept, or `merge`d and kept.
    #[inline]
    fn count(&mut self, id: u8, piece: &[u8], merge: impl FnOnce() -> usize) -> usize {
        if piece.len() > PIECE_MAX {
            return merge();
        }
        let h = aoai_runtime::vocab::hash(piece) ^ u64::from(id);
        let slot = &mut self.slots[h as usize % PIECE_SLOTS];
        let len = piece.len();
        // The full hash first: a slot of another piece is turned away without a byte compared.
        if slot.hash == h
            && slot.encoding == id + 1
            && usize::from(slot.len) == len
            && aoai_runtime::vocab::same(&slot.bytes[..len], piece)
        {
            return usize::from(slot.count);
        }
        let count = merge();
        if let Ok(small) = u16::try_from(count) {
            slot.bytes[..len].copy_from_slice(piece);
            slot.hash = h;
            slot.encoding = id + 1;
            slot.len = len as u8;
            slot.count = small;
        }
        count
    }
}

/// Splits text into the pattern's pieces.
struct Splitter {
    regex: Regex,
    /// `o200k_base`'s pattern (letters split by case, `/` after punctuation), else
    /// `cl100k_base`'s.
    cased: bool,
}

impl Splitter {
    /// The next piece at or after `at`, as byte offsets: by hand where the text is ASCII (most
    /// prompts, and several times faster than the regex), else by the pattern.
    fn next(&self, text: &str, at: usize) -> Option<(usize, usize)> {
        if at >= text.len() {
            return None;
        }
        if let Some(end) = ascii_piece(text.as_bytes(), at, self.cased) {
            return Some((at, end));
        }
        self.by_pattern(text, at)
    }

    /// The same, by the pattern alone.
    fn by_pattern(&self, text: &str, at: usize) -> Option<(usize, usize)> {
        // Anchored: pieces follow each other without a gap, so only the forward half of the
        // search (where the piece ends) is needed.
        let found = self
            .regex
            .search(&Input::new(text).range(at..).anchored(Anchored::Yes))?;
        let (start, mut end) = (found.start(), found.end());
        let piece = text.get(start..end)?;
        // `\s+(?!\S)`: a run of spaces, without a line break, that a non-space follows keeps
        // its last character for what follows, when it has more than one.
        if end < text.len()
            && piece.chars().all(char::is_whitespace)
            && !piece.ends_with(['\r', '\n'])
            && text[end..].starts_with(|c: char| !c.is_whitespace())
            && let Some((last, _)) = piece.char_indices().next_back()
            && last > 0
        {
            end = start + last;
        }
        Some((start, end))
    }
}

const UPPER: u8 = 1;
const LOWER: u8 = 2;
const LETTER: u8 = UPPER | LOWER;
const DIGIT: u8 = 4;
const NEWLINE: u8 = 8;
/// `\s` in ASCII but for line breaks: space, tab, vertical tab, form feed.
const SPACE: u8 = 16;
const OTHER: u8 = 32;

/// The class of each ASCII byte.
const ASCII_CLASS: [u8; 128] = {
    let mut table = [OTHER; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            b'\r' | b'\n' => NEWLINE,
            b' ' | b'\t' | 0x0b | 0x0c => SPACE,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// The end of the piece at `at`, read by hand as the pattern would match it, as long as every
/// byte the match depends on is ASCII; `None` where one is not (the regex decides then).
fn ascii_piece(text: &[u8], at: usize, cased: bool) -> Option<usize> {
    // The class of the byte at `i`, one bit: 0 past the end; `Err` for a byte that is not
    // ASCII, whose class only the regex knows.
    let class = |i: usize| -> Result<u8, ()> {
        match text.get(i) {
            None => Ok(0),
            Some(&b) => ASCII_CLASS.get(usize::from(b)).copied().ok_or(()),
        }
    };
    let is = |i: usize, wanted: u8| -> Result<bool, ()> { Ok(class(i)? & wanted != 0) };
    // The end of the run of `wanted` from `i`.
    let run = |mut i: usize, wanted: u8| -> Result<usize, ()> {
        while is(i, wanted)? {
            i += 1;
        }
        Ok(i)
    };
    // `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `i`: its end.
    let contraction = |i: usize| -> Result<Option<usize>, ()> {
        if text.get(i) != Some(&b'\'') {
            return Ok(None);
        }
        // Case-insensitive in Unicode's sense: `'ſ` (a long s) is one too; the regex decides.
        if text.get(i + 1).is_some_and(|&b| b >= 0x80) {
            return Err(());
        }
        let lower = |j: usize| text.get(j).map(u8::to_ascii_lowercase);
        Ok(match (lower(i + 1), lower(i + 2)) {
            (Some(b's' | b't' | b'm' | b'd'), _) => Some(i + 2),
            (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => {
                Some(i + 3)
            }
            _ => None,
        })
    };
    let first = class(at).ok().filter(|&c| c != 0)?;
    let letters_at = if first & LETTER != 0 {
        Some(at)
    } else if first & (NEWLINE | DIGIT) == 0 && is(at + 1, LETTER).ok()? {
        // `[^\r\n\p{L}\p{N}]?` then letters.
        Some(at + 1)
    } else {
        None
    };
    if !cased {
        // cl100k: contractions first, then `[^\r\n\p{L}\p{N}]?\p{L}+`.
        if let Some(end) = contraction(at).ok()? {
            return Some(end);
        }
        if let Some(start) = letters_at {
            let end = run(start, LETTER).ok()?;
            // A letter that is not ASCII would carry the run on.
            class(end).ok()?;
            return Some(end);
        }
    } else if let Some(start) = letters_at {
        // o200k: `[A-Z]*[a-z]+` or else `[A-Z]+[a-z]*`, then a contraction, if any.
        let upper = run(start, UPPER).ok()?;
        let end = run(upper, LOWER).ok()?;
        // Past the letters, a byte that is not ASCII may be a letter of either case, or a mark.
        class(end).ok()?;
        return Some(contraction(end).ok()?.unwrap_or(end));
    }
    match first {
        DIGIT => {
            let mut end = at + 1;
            while end < at + 3 && is(end, DIGIT).ok()? {
                end += 1;
            }
            // Under three digits, a digit that is not ASCII would extend the number.
            if end < at + 3 {
                class(end).ok()?;
            }
            Some(end)
        }
        OTHER | SPACE if first == OTHER || (text[at] == b' ' && is(at + 1, OTHER).ok()?) => {
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*` (o200k: `[\r\n/]*`); a byte that is not ASCII in the
            // run may be punctuation that carries it on.
            let start = if first == SPACE { at + 1 } else { at };
            let mut end = run(start, OTHER).ok()?;
            while matches!(text.get(end), Some(b'\r' | b'\n'))
                || (cased && text.get(end) == Some(&b'/'))
            {
                end += 1;
            }
            Some(end)
        }
        _ => {
            // Whitespace: `\s*[\r\n]+` up to the run's last line break, else `\s+` less its last
            // character when a non-space follows.
            let end = run(at, SPACE | NEWLINE).ok()?;
            class(end).ok()?;
            if let Some(last) = (at..end).rev().find(|&i| matches!(text[i], b'\r' | b'\n')) {
                return Some(last + 1);
            }
            if end < text.len() && end - at > 1 {
                return Some(end - 1);
            }
            Some(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::tokenizer::Encoding;

    /// Text of every kind the service sees, and the kinds that stress a tokenizer.
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "Hello world! It's a test; we're counting tokens, aren't we? I'LL SHOUT.",
            "The quick brown fox jumps over the lazy dog.\n\nNew paragraph:\r\n\tindented  twice   spaced.",
            "人工智能正在改变世界。我们今天讨论大语言模型的分词方法，以及它们如何处理中文文本。",
            "日本語のテキストを数える。東京は日本の首都です。カタカナとひらがな、漢字が混ざっています。",
            "한국어 문장도 있습니다. Ελληνικά κείμενα. Русский текст с цифрами 12345 и знаками!",
            "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
            "def f(a, b=3):\n\treturn {'k': [a, b, None]}  # comment\n\n\nclass C(object): pass",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\" \\ \u00e9"}],"n":1,"x":-1.5e10}"#,
            "emoji: 😀😃😄😁 👩‍👩‍👧‍👦 🇯🇵🇺🇸 ❤️‍🔥 and combining: é (e\u{301}) ñ ü",
            "CamelCaseIdentifiers HTTPServerError getHTTPResponseCode XMLHttpRequest iPhone McDonald's",
            "numbers 1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ⅷ ½",
            "URL https://example.com/path/to/file.html?query=1&b=2#frag and a/b/c.txt\n/",
            "",
            " ",
            "\n",
            "   leading and trailing   ",
            "tabs\t\t\tand\u{a0}non-breaking\u{2003}spaces\u{3000}end",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for c in [' ', 'a', '\n', '.', '0', '日', '😀', '\t'] {
            texts.push(c.to_string().repeat(5000));
        }
        texts.push(format!("{}x", " ".repeat(300)));
        texts.push("ab".repeat(3000));
        // ASCII of every class the patterns tell apart, at random: the hand-written splitter's
        // cases, each against the regex's.
        let alphabet = b"aAzZqQ09 \t\r\n\x0b\x0c'sStTrReEvVmMlLdD.,!?/-_\"\\{}[]()#$%\x1f";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in [1, 2, 3, 5, 8, 13, 50, 200, 2000] {
            for _ in 0..40 {
                let ascii: String = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize] as char
                    })
                    .collect();
                texts.push(ascii);
            }
        }
        // And with letters, digits, spaces and marks that are not ASCII among them.
        for (i, extra) in [
            "é", "ſ", "\u{a0}", "\u{3000}", "٣", "Ω", "\u{301}", "—", "\u{85}",
        ]
        .iter()
        .enumerate()
        {
            texts.push(format!(
                "ab{extra}cd 's{extra} 12{extra}3 !!{extra}? x  {extra}y \n{extra} A{extra}B{i}"
            ));
            texts.push(format!(
                "don'{extra} {extra}'s HTTP{extra}Server  {extra}\t\n{extra}"
            ));
        }
        // Random bytes, as text: what a client's binary junk becomes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [10, 100, 1000, 20_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        texts
    }

    #[test]
    fn counts_as_tiktoken_does_on_every_kind_of_text() {
        for (encoding, name) in [
            (Encoding::O200k, "o200k_base"),
            (Encoding::Cl100k, "cl100k_base"),
        ] {
            let reference = tiktoken::get_encoding(name).unwrap();
            for text in corpus() {
                let expected = reference.count(&text);
                assert_eq!(
                    encoding.count(&text),
                    expected as u64,
                    "{name} on {:?}",
                    text.chars().take(60).collect::<String>()
                );
            }
        }
    }

    #[test]
    fn the_hand_written_splitter_splits_as_the_pattern_does() {
        for (pattern, cased) in [(O200K_PATTERN, true), (CL100K_PATTERN, false)] {
            let splitter = Splitter {
                regex: Regex::new(pattern).unwrap(),
                cased,
            };
            for text in corpus() {
                for at in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                    if let Some(end) = ascii_piece(text.as_bytes(), at, cased) {
                        assert_eq!(
                            Some((at, end)),
                            splitter.by_pattern(&text, at),
                            "{pattern} at {at} of {text:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn long_pieces_merge_as_short_ones_do() {
        let bpe = Bpe::new(
            include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.vocab")),
            O200K_PATTERN,
        )
        .unwrap();
        let mut parts = Vec::new();
        for piece in [
            "aaaaaaaaaaaaaaaaaaaaaaab",
            "        ",
            "日本語日本語",
            "xyzzyqwertyuiopasdf",
        ] {
            let bytes = piece.as_bytes();
            assert_eq!(
                bpe.scan_merge(bytes, &mut parts),
                bpe.heap_merge(bytes),
                "{piece}"
            );
        }
    }
}
