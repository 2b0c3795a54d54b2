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

#[test]
fn list_tools_checks_the_settings_too_and_reports_them_all() {
    let builder = || {
        Server::builder("t", "1")
            .tool::<echo>()
            .tool::<echo_again>()
            .max_in_flight(0)
            .auth_token(" padded ")
            .log_to_godot(Some("http://godot:9060"))
    };
    for error in [builder().check().unwrap_err(), builder().catalog_markdown().unwrap_err()] {
        let message = error.to_string();
        assert_eq!(error.problems().len(), 4, "{message}");
        assert!(error.is_config() && error.is_duplicate_tool(), "{message}");
        assert!(message.contains("MCP_MAX_IN_FLIGHT"), "{message}");
        assert!(message.contains("MCP_AUTH_TOKEN"), "{message}");
        assert!(message.contains("GODOT_URL"), "{message}");
    }
    // build() finds the same problems.
    assert_eq!(builder().build().unwrap_err().problems().len(), 4);
}

#[test]
fn building_needs_no_runtime_even_with_the_godot_sink_on() {
    // Not inside a Tokio runtime: the sink's sender starts when serving does.
    let built = Server::builder("t", "1").tool::<echo>().log_to_godot(Some("ws://127.0.0.1:9/")).build();
    assert!(built.is_ok(), "{:?}", built.err());
    let error = Server::builder("t", "1").log_to_godot(Some("http://godot:9060")).build().unwrap_err();
    assert!(error.to_string().contains("ws://"), "{error}");
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
    assert!(
        markdown.contains(
            "## `answer`\n\nA number result: structured, wrapped as `{\"result\": 42}` for older protocols.\n\n\
             **Parameters**: none.\n\n**Output** (`structuredContent`): integer (int64); before protocol 2026-07-28 \
             wrapped as `{\"result\": ...}`."
        ),
        "{markdown}"
    );
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

#[derive(Clone)]
struct Cache;

/// Also needs the database.
#[mcp_tool]
async fn also_needs_db(db: State<Database>, cache: State<Cache>) -> u32 {
    let _ = (&*db, &*cache);
    0
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Query {
    text: String,
}

/// A flattened type plus another argument: only visible at start-up.
#[mcp_tool]
async fn flattened_and_more(#[mcp(flatten)] query: Query, limit: u32) -> String {
    format!("{} {limit}", query.text)
}

#[tokio::test]
async fn start_up_reports_every_problem_at_once() {
    let builder = || {
        Server::builder("t", "1")
            .tool::<needs_db>()
            .tool::<also_needs_db>()
            .tool::<echo>()
            .tool::<echo_again>()
            .tool::<flattened_and_more>()
    };
    let error = builder().bind("127.0.0.1:0").await.unwrap_err();
    assert_eq!(error.problems().len(), 4, "{error}");
    assert!(error.is_duplicate_tool() && error.is_missing_state() && error.is_invalid_tool(), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("4 problems stop the server from starting:\n  - "), "{message}");
    // One line per missing type, naming every tool that takes it.
    let database = message.lines().find(|l| l.contains("State<server_build::Database>")).expect(&message);
    assert!(
        database.contains("tools `needs_db` (declared at") && database.contains("and `also_needs_db`"),
        "{database}"
    );
    assert!(message.contains("tool `also_needs_db` (declared at"), "{message}");
    assert!(message.contains("State<server_build::Cache>"), "{message}");
    assert!(message.contains("`#[mcp(flatten)] query` takes the whole arguments object"), "{message}");
    assert!(message.contains("but `limit` is read from the arguments too"), "{message}");
    // `--list-tools` runs the same checks.
    assert_eq!(builder().catalog_markdown().unwrap_err().to_string(), message);
    assert_eq!(builder().check().unwrap_err().to_string(), message);
}

#[tokio::test]
async fn state_from_counts_for_the_checks_and_runs_only_when_serving() {
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = ran.clone();
    let builder = Server::builder("t", "1").tool::<needs_db>().state_from(move || async move {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, String>(State(Database))
    });
    builder.check().unwrap();
    assert!(builder.catalog_markdown().unwrap().contains("## `needs_db`"));
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "listing the tools opened the database");
    // `bind` checks the state that is there: `state_from` is run by `run()`.
    assert!(builder.bind("127.0.0.1:0").await.unwrap_err().is_missing_state());
}

#[test]
fn the_command_line_shows_its_defaults_and_composes_with_a_services_own() {
    let help = Server::builder("notes", "1.2.3").default_port(9040).command().render_long_help().to_string();
    for expected in [
        "--list-tools",
        "--host <ADDR>",
        "[env: MCP_HOST=]",
        "[default: 0.0.0.0]",
        "--port <PORT>",
        "[env: MCP_PORT=]",
        "[default: 9040]",
        "MCP_MAX_IN_FLIGHT",
        "[default: 64]",
        "notes 1.2.3",
    ] {
        assert!(help.contains(expected), "`{expected}` missing from:\n{help}");
    }
    let error = Server::builder("t", "1").command().try_get_matches_from(["t", "--lsit-tools"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("--list-tools"), "suggests the real flag: {error}");

    use clap::{FromArgMatches, Parser};
    /// A service with a flag and a subcommand of its own.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        server: mcp_runtime::ServerArgs,
        /// Where the notes live
        #[arg(long, default_value = "./notes")]
        notes_dir: String,
        #[command(subcommand)]
        command: Option<Command>,
    }
    #[derive(clap::Subcommand, Debug)]
    enum Command {
        /// Checks the notes directory and exits
        Fsck,
    }
    let cli = Cli::try_parse_from(["notes", "--port", "0", "--notes-dir", "/tmp/n", "--list-tools"]).unwrap();
    assert_eq!((cli.server.port, cli.server.list_tools, cli.notes_dir.as_str()), (Some(0), true, "/tmp/n"));
    let help = <Cli as clap::CommandFactory>::command().render_long_help().to_string();
    assert!(
        help.starts_with("A service with a flag and a subcommand of its own"),
        "the service keeps its about: {help}"
    );
    let cli = Cli::try_parse_from(["notes", "fsck"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Fsck)) && cli.server.port.is_none());
    let command = mcp_runtime::ServerArgs::with_defaults(<Cli as clap::CommandFactory>::command(), 9040);
    let help = command.clone().render_long_help().to_string();
    assert!(help.contains("[default: 9040]") && help.contains("MCP_SHUTDOWN_GRACE_SECS"), "{help}");
    let matches = command.try_get_matches_from(["notes"]).unwrap();
    assert_eq!(Cli::from_arg_matches(&matches).unwrap().server.port, Some(9040));
}
