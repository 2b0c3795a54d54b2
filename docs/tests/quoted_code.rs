//! The guide quotes the real ports' code. A quoted block is marked with
//! `<!-- quoted from PATH -->` on the line before its fence; every line a
//! reader sees (not rustdoc's hidden `# ` lines, not a `// ...` standing for
//! lines left out) must appear in PATH, in the same order. A hidden
//! `# fn main` ends the quotation: what follows is the guide's own code. The doctests prove
//! the quotations compile against the ports' crates; this proves they are
//! still what the ports say, so a port that changes fails here until the
//! guide follows.

mod guide;

use std::path::Path;

use guide::GUIDE;

/// A quoted block: the file it claims to come from, where it starts in the
/// guide, and the lines a reader sees.
struct Quote {
    path: String,
    guide_line: usize,
    visible: Vec<String>,
}

fn quotes() -> Vec<Quote> {
    let lines: Vec<&str> = GUIDE.lines().collect();
    let mut quotes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(path) = line.trim().strip_prefix("<!-- quoted from ").and_then(|l| l.strip_suffix(" -->")) else {
            continue;
        };
        let fence = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        assert!(
            fence.starts_with("```rust"),
            "guide line {}: a quote marker must sit right above a ```rust fence",
            i + 1
        );
        // The quotation ends with the block, or where a hidden `fn main`
        // starts code of the guide's own (a check of what was quoted).
        let body = lines[i + 2..].iter().take_while(|l| l.trim() != "```" && !l.trim().starts_with("# fn main"));
        let visible = body
            .filter(|l| {
                let t = l.trim_start();
                !(t == "#" || t.starts_with("# ") || t == "// ...")
            })
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        quotes.push(Quote { path: path.to_owned(), guide_line: i + 1, visible });
    }
    quotes
}

#[test]
fn quoted_port_code_is_what_the_ports_say() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("docs/ sits in the workspace");
    let quotes = quotes();
    // The worked examples and the shape of a port are quoted, not retold.
    for expected in ["horace/src/tools/files.rs", "godot/src/tools.rs", "dewey/src/main.rs"] {
        assert!(quotes.iter().any(|q| q.path == expected), "the guide no longer quotes {expected}");
    }
    for quote in &quotes {
        let source = std::fs::read_to_string(workspace.join(&quote.path))
            .unwrap_or_else(|e| panic!("guide line {}: cannot read {}: {e}", quote.guide_line, quote.path));
        let mut source_lines = source.lines().map(str::trim);
        for line in &quote.visible {
            assert!(
                source_lines.any(|s| s == line),
                "guide line {}: the quotation of {} has `{line}`, which {} no longer has there (in this order); \
                 update the guide",
                quote.guide_line,
                quote.path,
                quote.path
            );
        }
    }
}
