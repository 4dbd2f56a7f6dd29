//! The gateway's tokenizer against the `tiktoken` crate it replaced: tokens counted per second
//! and the memory each takes, for bench/tokenizer.sh. Run one measure per process, so that the
//! memory of one does not count against the other:
//!
//!   tokenizer speed ours|tiktoken     tokens/s over a mixed text, best of 5, and over text of
//!                                     many distinct words (a cache of pieces helps less)
//!   tokenizer memory ours|tiktoken    resident KiB the two encodings add, loaded and used

use std::time::Instant;

use aoai_gateway::tokens::tokenizer::Encoding;

/// About 1 MB of what prompts are made of: prose in three scripts, code and JSON.
fn text() -> String {
    let parts = [
        "The quick brown fox jumps over the lazy dog, and the assistant answers politely. ",
        "It's what we're counting: tokens, words and numbers like 1234567 or 3.14159.\n\n",
        "人工智能正在改变世界。我们今天讨论大语言模型的分词方法。",
        "日本語のテキストを数える。東京は日本の首都です。",
        "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n}\n",
        r#"{"role":"user","content":"Summarise the report","tools":[{"type":"function"}]} "#,
    ];
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < 1 << 20 {
        text.push_str(parts[i % parts.len()]);
        // Vary the words, so that a cache of whole pieces does not see only repeats.
        text.push_str(&format!("item{} ", i.wrapping_mul(2_654_435_761) % 100_000));
        i += 1;
    }
    text
}

/// About 1 MB of words drawn from 20,000 made-up ones, with capitals and punctuation.
fn varied() -> String {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<String> = (0..20_000)
        .map(|_| {
            let len = 2 + next() % 9;
            (0..len)
                .map(|_| char::from(b'a' + (next() % 26) as u8))
                .collect()
        })
        .collect();
    let mut text = String::new();
    while text.len() < 1 << 20 {
        let word = &words[(next() % 20_000) as usize];
        match next() % 10 {
            0 => text.push_str(&format!("{}{}. ", &word[..1].to_uppercase(), &word[1..])),
            1 => text.push_str(&format!("{word}, ")),
            2 => text.push_str(&format!("{} ", next() % 100_000)),
            _ => text.push_str(&format!("{word} ")),
        }
    }
    text
}

fn count(which: &str, encoding: Encoding, text: &str) -> usize {
    match which {
        "ours" => encoding.count(text) as usize,
        _ => tiktoken::get_encoding(encoding.name()).map_or(0, |bpe| bpe.count(text)),
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(measure), Some(which)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: tokenizer speed|memory ours|tiktoken");
        std::process::exit(2);
    };
    let text = text();
    let encodings = [Encoding::O200k, Encoding::Cl100k];
    match measure.as_str() {
        "speed" => {
            for (kind, text) in [("mixed", &text), ("varied", &varied())] {
                for encoding in encodings {
                    let tokens = count(which, encoding, text);
                    let best = (0..5)
                        .map(|_| {
                            let started = Instant::now();
                            std::hint::black_box(count(which, encoding, text));
                            started.elapsed().as_secs_f64()
                        })
                        .fold(f64::MAX, f64::min);
                    let rate = tokens as f64 / best;
                    println!("{kind} {} {tokens} {rate:.0}", encoding.name());
                }
            }
        }
        _ => {
            let before = resident_kib();
            for encoding in encodings {
                std::hint::black_box(count(which, encoding, &text));
            }
            println!("{}", resident_kib().saturating_sub(before));
        }
    }
}
