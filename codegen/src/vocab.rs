//! The tokenizer's vocabularies, written at build time as the flat tables the gateway carries in
//! its binary and reads in place ([`aoai_runtime::vocab`]). The ranks come from the `tiktoken`
//! crate's copy of OpenAI's published encodings, a build-time dependency only.

use std::path::Path;

/// The encodings Azure OpenAI's models use, by tiktoken's names.
pub const ENCODINGS: [&str; 2] = ["o200k_base", "cl100k_base"];

/// Writes `<name>.vocab` into `out_dir` for each of [`ENCODINGS`].
pub fn write(out_dir: &Path) -> Result<(), String> {
    for name in ENCODINGS {
        let bpe = tiktoken::get_encoding(name).ok_or(format!("no encoding {name}"))?;
        // The ordinary tokens' ranks run from 0 without a gap; special tokens follow them and are
        // not part of what is counted.
        let tokens: Vec<Vec<u8>> = (0..bpe.vocab_size() as u32)
            .map(|rank| bpe.decode(&[rank]))
            .collect();
        if let Some(rank) = tokens.iter().position(Vec::is_empty) {
            return Err(format!("{name}: rank {rank} has no token"));
        }
        let path = out_dir.join(format!("{name}.vocab"));
        std::fs::write(&path, aoai_runtime::vocab::write(&tokens))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
