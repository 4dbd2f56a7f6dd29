//! What a checked request body says that the gateway acts on, and the edits a backend needs.
//!
//! [`request`] reads a JSON body's facts once (whether it streams, what it may spend, where its
//! top-level members are); [`deployment`] finds where a call names its deployment and renames
//! it for a backend; [`compat`] rewrites the parameters a reasoning deployment takes by other
//! names; [`cache_key`] says which calls share a cached prompt; [`edit`] applies such edits as splices of the client's bytes, in one copy.

pub mod cache_key;
pub mod compat;
pub mod deployment;
pub mod edit;
pub mod request;
