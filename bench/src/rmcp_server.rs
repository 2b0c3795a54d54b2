//! rmcp, the official Rust SDK, serving the same `echo` tool over its
//! Streamable HTTP server: the comparison the runtime's Streamable HTTP is
//! reported beside. A bench-only dependency.
//!
//! Two configurations: rmcp's default (sessions, every POST answered with
//! an SSE stream), and its fastest for this echo (stateless, `application/json`
//! answers).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

use crate::bare_server;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArguments {
    /// Any text
    text: String,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct Echoed {
    text: String,
}

#[derive(Debug, Clone)]
struct EchoServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl EchoServer {
    fn new() -> Self {
        EchoServer { tool_router: Self::tool_router() }
    }

    #[tool(description = "Returns the text it is given.")]
    async fn echo(&self, Parameters(EchoArguments { text }): Parameters<EchoArguments>) -> Json<Echoed> {
        Json(Echoed { text })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Serves `/mcp` until killed; `json`: stateless with JSON answers, else rmcp's defaults.
pub async fn serve(json: bool) -> anyhow::Result<()> {
    let listener = bare_server::bind_from_env().await?;
    println!("listening on ws://{}", listener.local_addr()?);
    let config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    let config = if json { config.with_legacy_session_mode(false).with_json_response(true) } else { config };
    let service: StreamableHttpService<EchoServer, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(EchoServer::new()), Default::default(), config);
    let app = axum::Router::new().nest_service("/mcp", service);
    // As every contender does: small answers, no Nagle delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
