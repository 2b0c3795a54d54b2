use mcp_runtime::mcp_tool;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Note {
    title: String,
}

#[mcp_tool]
async fn twice(#[mcp(flatten)] a: Note, #[mcp(flatten)] b: Note) -> String {
    a.title + &b.title
}

#[mcp_tool]
async fn optional(#[mcp(flatten)] note: Option<Note>) -> String {
    note.map(|n| n.title).unwrap_or_default()
}

#[mcp_tool]
async fn defaulted(#[mcp(flatten, default)] note: Note) -> String {
    note.title
}

fn main() {}
