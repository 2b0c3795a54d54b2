//! What `bind()` refuses, and the Markdown catalog `--list-tools` prints.

mod server_harness;

use mcp_runtime::{Server, State, mcp_tool};
use serde_json::json;
use server_harness::TestServer;
use server_harness::tools::{add, answer, echo, greet};

/// A second tool claiming the name `echo`.
#[mcp_tool(name = "echo")]
async fn echo_again(text: String) -> String {
    text
}

#[derive(Clone)]
struct Database;

/// Needs a database the builder never got.
#[mcp_tool]
async fn needs_db(db: State<Database>, id: u32) -> u32 {
    let _ = &*db;
    id
}

#[tokio::test]
async fn duplicate_tool_names_fail_bind_naming_both_places() {
    let error = Server::builder("t", "1").tool::<echo>().tool::<echo_again>().bind("127.0.0.1:0").await.unwrap_err();
    assert!(error.is_duplicate_tool(), "{error}");
    let message = error.to_string();
    assert!(message.contains("`echo`"), "{message}");
    assert!(message.contains("server_harness/tools.rs"), "first location missing: {message}");
    assert!(message.contains("server_build.rs"), "second location missing: {message}");
}

#[tokio::test]
async fn the_same_tool_registered_twice_is_kept_once() {
    let twice = || Server::builder("t", "1").tool::<echo>().tool::<echo>();
    let markdown = twice().catalog_markdown().unwrap();
    assert_eq!(markdown.matches("## `echo`").count(), 1, "{markdown}");
    let server = TestServer::start(twice()).await;
    let mut client = server.session().await;
    let listed = client.request(json!(1), "tools/list", None).await;
    let names: Vec<&str> =
        listed["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo"], "{listed}");
}

#[tokio::test]
async fn missing_state_fails_bind_naming_tool_and_type() {
    let error = Server::builder("t", "1").tool::<needs_db>().bind("127.0.0.1:0").await.unwrap_err();
    assert!(error.is_missing_state(), "{error}");
    let message = error.to_string();
    assert!(message.contains("`needs_db`"), "{message}");
    assert!(message.contains("Database"), "{message}");
    assert!(message.contains(".state("), "says how to fix it: {message}");
    // With the state it binds.
    assert!(Server::builder("t", "1").tool::<needs_db>().state(Database).bind("127.0.0.1:0").await.is_ok());
}

#[tokio::test]
async fn unusable_settings_fail_bind() {
    let error = Server::builder("t", "1").tools_page_size(0).bind("127.0.0.1:0").await.unwrap_err();
    assert!(error.is_config(), "{error}");
    assert!(error.to_string().contains("page size"), "{error}");
    let error = Server::builder("t", "1").bind("256.0.0.1:0").await.unwrap_err();
    assert!(error.is_bind(), "{error}");
    assert!(error.to_string().contains("256.0.0.1:0"), "{error}");
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let error = Server::builder("t", "1").bind(addr.as_str()).await.unwrap_err();
    assert!(error.is_bind(), "{error}");
}

#[test]
fn the_catalog_lists_what_tools_list_serves() {
    let markdown = Server::builder("catalog-test", "9.9.9")
        .instructions("Call add to add.")
        .tool::<echo>()
        .tool::<add>()
        .tool::<greet>()
        .tool::<answer>()
        .catalog_markdown()
        .unwrap();
    assert!(markdown.starts_with("# catalog-test 9.9.9\n\nCall add to add.\n\n4 tools.\n"), "{markdown}");
    // Listing order, one section per tool.
    let sections: Vec<&str> = markdown.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(sections, ["## `echo`", "## `add`", "## `greet`", "## `answer`"]);
    assert!(markdown.contains("Returns its text."));
    assert!(markdown.contains("Hints: read-only."));
    assert!(markdown.contains("| `text` | string | yes |  |  |"), "{markdown}");
    assert!(markdown.contains("| `a` | integer (int64) | yes |"), "{markdown}");
    assert!(
        markdown.contains("**Output** (`structuredContent`): an object with `sum` (integer (int64))."),
        "{markdown}"
    );
    assert!(markdown.contains("## `answer`\n\nA number result: no output schema, so text only.\n\n**Parameters**: none.\n\n**Output**: text."), "{markdown}");
}

#[test]
fn the_catalog_shows_defaults_optional_parameters_and_descriptions() {
    /// Says hi.
    #[mcp_tool(title = "Greeter", idempotent)]
    async fn hi(
        /// Who to greet | with a pipe
        who: Option<String>,
        /// How many times
        #[mcp(default = 2)]
        times: u8,
    ) -> String {
        format!("{who:?}{times}")
    }
    let markdown = Server::builder("t", "1").tool::<hi>().catalog_markdown().unwrap();
    assert!(markdown.contains("## `hi`: Greeter"), "{markdown}");
    assert!(markdown.contains("Hints: idempotent."), "{markdown}");
    assert!(markdown.contains("| `who` | string | no |  | Who to greet \\| with a pipe |"), "{markdown}");
    assert!(markdown.contains("| `times` | integer (uint8) | no | `2` | How many times |"), "{markdown}");
}

#[test]
fn the_catalog_reports_duplicates_too() {
    let error = Server::builder("t", "1").tool::<echo>().tool::<echo_again>().catalog_markdown().unwrap_err();
    assert!(error.is_duplicate_tool());
}
