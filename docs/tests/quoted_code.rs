//! The guide quotes the real ports' code. A quoted block is marked with
//! `<!-- quoted from PATH -->` on the line before its fence; every line a
//! reader sees (not rustdoc's hidden `# ` lines, not a `// ...` standing for
//! lines left out) must appear in PATH, in the same order. A hidden
//! `# fn main` ends the quotation: what follows is the guide's own code. The doctests prove
//! the quotations compile against the ports' crates; this proves they are
//! still what the ports say, so a port that changes fails here until the
//! guide follows. The guide's links into the READMEs are followed too.

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

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The guide links into the READMEs, which other work edits: a renamed
/// section or a moved file fails here instead of leaving a dead link.
#[test]
fn the_guides_links_lead_somewhere() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for piece in GUIDE.split("](").skip(1) {
        let Some(target) = piece.split(')').next() else { continue };
        if target.starts_with("http") || target.contains(' ') {
            continue;
        }
        let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
        let text = if path.is_empty() {
            GUIDE.to_owned()
        } else {
            let file = docs.join(path);
            assert!(file.exists(), "docs/migrating.md links to {path}, which does not exist");
            if file.is_dir() || fragment.is_empty() {
                checked += 1;
                continue;
            }
            std::fs::read_to_string(&file).unwrap()
        };
        if !fragment.is_empty() {
            assert!(
                anchors(&text).iter().any(|a| a == fragment),
                "docs/migrating.md links to {target}, but {} has no heading with that anchor",
                if path.is_empty() { "the guide" } else { path }
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} links found: is the parser still reading the guide?");
}
