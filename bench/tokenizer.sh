#!/usr/bin/env bash
# The tokenizer's speed and memory against the `tiktoken` crate's, in one run: tokens counted
# per second (best of 5), for both encodings, over about 1 MB of mixed prose (English, Chinese,
# Japanese), code and JSON that repeats its phrases, and over 1 MB of words drawn from 20,000
# (where caches of pieces help less); and the resident memory the two encodings add once
# loaded and used, each measured in a process of its own (bench/tokenizer.rs).
#
#   bench/tokenizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example tokenizer
BIN=target/release/examples/tokenizer
printf "%-7s %-12s %-9s %10s %12s\n" text encoding tokenizer tokens tokens/s
for which in tiktoken ours; do
  "$BIN" speed "$which" | while read -r kind name tokens rate; do
    printf "%-7s %-12s %-9s %10s %12s\n" "$kind" "$name" "$which" "$tokens" "$rate"
  done
done
echo
for which in tiktoken ours; do
  printf "memory added by both encodings, %-8s %6s KiB\n" "$which:" "$("$BIN" memory "$which")"
done
