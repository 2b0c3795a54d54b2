//! What the guide's tests share: the guide's text, and the check that a
//! text the real services produce is quoted in it verbatim.
//!
//! After changing a message in the runtime or a port, run the guide's tests
//! with `GUIDE_LIST_QUOTES=1` (and `-- --nocapture`, or libtest keeps the
//! output of passing tests) to print every text the guide must quote
//! instead of stopping at the first one it lacks.

#![allow(dead_code)]

/// docs/migrating.md, as the tests were built with it.
pub const GUIDE: &str = include_str!("../../migrating.md");

/// Fails unless the guide contains `text` exactly, so a message the runtime
/// or a port changes cannot leave a stale quotation behind.
#[track_caller]
pub fn assert_quoted(text: &str) {
    if GUIDE.contains(text) {
        return;
    }
    if std::env::var_os("GUIDE_LIST_QUOTES").is_some() {
        eprintln!("MISSING QUOTE ({}):\n{text}\n", std::panic::Location::caller());
        return;
    }
    panic!("docs/migrating.md must quote this text exactly as the service produced it (update the guide):\n{text}");
}
