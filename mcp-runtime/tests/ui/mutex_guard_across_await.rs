use std::sync::Mutex;

use mcp_runtime::{State, mcp_tool};

#[derive(Clone, Default)]
struct Notes(std::sync::Arc<Mutex<Vec<String>>>);

async fn save() {}

#[mcp_tool]
async fn add(notes: State<Notes>, text: String) -> usize {
    let mut list = notes.0.0.lock().unwrap();
    list.push(text);
    save().await;
    list.len()
}

fn main() {}
