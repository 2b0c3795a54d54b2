//! A new user's first service, as the README's quick start leads to it:
//! notes kept in memory, with a list result (`search`), nested arguments
//! (`list`'s filter), a progress-reporting tool, shared state imported under
//! a name of the service's choosing, and a command-line flag of its own.
//!
//! `cargo run --release --bin notes -- --help`; `MCP_PORT=0` picks a port.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mcp_runtime::{RequestContext, Server, ServerArgs, State as Shared, ToolError, mcp_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// The notes, shared by every call. A `tokio` mutex, because `reindex`
/// holds it across `.await`s.
#[derive(Clone)]
struct Notes {
    all: Arc<Mutex<Vec<Note>>>,
    max: usize,
}

#[derive(Clone, Serialize, JsonSchema)]
struct Note {
    id: u64,
    title: String,
    body: String,
    tags: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct Added {
    id: u64,
}

/// Adds a note.
#[mcp_tool]
async fn add(
    notes: Shared<Notes>,
    /// A short title
    title: String,
    /// The text
    body: String,
    /// Tags to find it by
    #[mcp(default)]
    tags: Vec<String>,
) -> Result<Added, ToolError> {
    let mut all = notes.all.lock().await;
    if all.len() >= notes.max {
        return Err(ToolError::new(format!("the notebook is full ({} notes); delete one first", notes.max)));
    }
    let id = all.iter().map(|n| n.id).max().map_or(1, |id| id + 1);
    all.push(Note { id, title, body, tags });
    Ok(Added { id })
}

#[derive(Serialize, JsonSchema)]
struct Hit {
    id: u64,
    title: String,
    /// The share of the query's words the note contains
    score: f64,
}

/// Finds notes containing the query's words, best first.
#[mcp_tool(read_only)]
async fn search(
    notes: Shared<Notes>,
    /// Words to look for
    query: String,
    /// How many hits at most
    #[mcp(default = 10)]
    limit: usize,
) -> Vec<Hit> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let all = notes.all.lock().await;
    let mut hits: Vec<Hit> = all
        .iter()
        .filter_map(|note| {
            let text = format!("{} {}", note.title, note.body).to_lowercase();
            let found = words.iter().filter(|w| text.contains(w.as_str())).count();
            (found > 0).then(|| Hit {
                id: note.id,
                title: note.title.clone(),
                score: found as f64 / words.len() as f64,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits.truncate(limit);
    hits
}

/// Which notes to list.
#[derive(Deserialize, JsonSchema)]
struct Filter {
    /// Notes carrying all of these tags
    #[serde(default)]
    tags: Vec<String>,
    /// Notes whose title starts with this
    title_prefix: Option<String>,
}

/// Lists the notes matching a filter, oldest first.
#[mcp_tool(read_only)]
async fn list(notes: Shared<Notes>, filter: Option<Filter>) -> Vec<Note> {
    let all = notes.all.lock().await;
    all.iter()
        .filter(|note| {
            filter.as_ref().is_none_or(|f| {
                f.tags.iter().all(|t| note.tags.contains(t))
                    && f.title_prefix.as_ref().is_none_or(|p| note.title.starts_with(p.as_str()))
            })
        })
        .cloned()
        .collect()
}

/// Deletes a note; deleting one that is gone is not an error.
#[mcp_tool(destructive, idempotent)]
async fn delete(notes: Shared<Notes>, id: u64) -> bool {
    let mut all = notes.all.lock().await;
    let before = all.len();
    all.retain(|n| n.id != id);
    all.len() < before
}

/// Re-reads every note, reporting progress; stops when cancelled.
#[mcp_tool(read_only)]
async fn reindex(cx: RequestContext, notes: Shared<Notes>) -> usize {
    let all = notes.all.lock().await;
    for (done, _note) in all.iter().enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        cx.progress((done + 1) as f64, Some(all.len() as f64), None).await;
    }
    all.len()
}

/// Notes over MCP.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// How many notes the notebook holds
    #[arg(long, env = "NOTES_MAX", default_value_t = 1000)]
    max_notes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let notes = Notes { all: Arc::default(), max: cli.max_notes };
    Server::builder("notes", env!("CARGO_PKG_VERSION"))
        .discover_tools()
        .state(notes)
        .default_port(9001)
        .run_with(cli.server)
        .await
}
