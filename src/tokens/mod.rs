//! Tokens: what each call spent, read from its answer as the answer passes, and estimated
//! where no backend says.
//!
//! [`meter`] reads an answer's usage on the way to the client (a short JSON body from its end,
//! [`tail`]; a longer one through [`scan`]; a stream of server-sent events through [`sse`]; the
//! latter two on the incremental [`lex`]er), and can
//! take out of a stream the usage the gateway asked for on the client's behalf. [`estimate`]
//! counts a request's prompt before it is sent, with the model's [`tokenizer`] (byte-pair
//! encoding: [`bpe`]). [`usage`] is the
//! shape both end in.

pub mod bpe;
pub mod estimate;
pub mod lex;
pub mod meter;
pub mod scan;
pub mod sse;
pub mod tail;
pub mod tokenizer;
pub mod usage;
