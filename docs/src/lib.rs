//! The workspace's guides, compiled.
//!
//! Each guide is the documentation of a module here, so every ```` ```rust ````
//! block in it is a doctest that `cargo test --workspace` builds (and runs,
//! unless marked `no_run`): a guide whose code stops compiling fails the test
//! command. The tests in `tests/` check the guides' other facts against the
//! real services: the error texts a client sees, the quoted port code, and
//! the PostgreSQL import.

#[doc = include_str!("../migrating.md")]
pub mod migrating {}
