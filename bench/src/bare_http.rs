//! The bare HTTP handler: hyper's HTTP/1.1 server and serde_json, no
//! framework, answering the same frames as `hello`'s Streamable HTTP
//! endpoint: the reference the runtime's Streamable HTTP is measured against.
//!
//! Per request it does what any server must: read the body, parse it as
//! JSON-RPC and the tool arguments, build and serialize the result (the
//! same JSON work as the bare WebSocket loop, `bare_server::answer`), and
//! answer `application/json` (202 for notifications; `initialize` gets an
//! `Mcp-Session-Id`). It does not check sessions, origins or protocol
//! versions: that is the runtime's work on top.

use std::convert::Infallible;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::bare_server;

/// Binds like `hello` and announces itself with the same line.
pub async fn serve() -> anyhow::Result<()> {
    let listener = bare_server::bind_from_env().await?;
    println!("listening on ws://{}", listener.local_addr()?);
    accept_loop(listener).await
}

pub async fn accept_loop(listener: TcpListener) -> ! {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("bare-http-server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status_only(StatusCode::BAD_REQUEST)),
    };
    let Ok(text) = std::str::from_utf8(&body) else { return Ok(status_only(StatusCode::BAD_REQUEST)) };
    let Some(reply) = bare_server::answer(text) else { return Ok(status_only(StatusCode::ACCEPTED)) };
    let initialize = reply.contains(r#""protocolVersion""#);
    let mut response = Response::new(Full::new(Bytes::from(reply)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if initialize {
        response.headers_mut().insert("mcp-session-id", HeaderValue::from_static("bare"));
    }
    Ok(response)
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
