//! Locks the diagnostics of `#[mcp_tool]`: each `ui/*.rs` holds one mistake
//! and its `.stderr` the error the user sees, on the token they must change;
//! `ui/pass_*.rs` must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    for entry in std::fs::read_dir("tests/ui").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.ends_with(".rs") && !name.starts_with("pass_") {
            t.compile_fail(&path);
        }
    }
}
