//! An MCP-shaped API protected by jwtgrant access tokens, as an MCP server is under
//! MCP's authorization: `POST /mcp` answers a few JSON-RPC 2.0 methods
//! (`initialize`, `ping`, `tools/list`, and `tools/call` of one `whoami` tool)
//! for a token with the `mcp:tools` scope whose `aud` is this resource, and the
//! resource's RFC 9728 metadata is served at
//! `/.well-known/oauth-protected-resource/mcp`. A client without a token gets a
//! 401 whose challenge names that document, which names the authorization server.
//! Only the authorization is real: no sessions, no streaming, one tool.
//!
//! ```sh
//! jwtgrant serve --access-token-audience http://127.0.0.1:9000/mcp   # the issuer's side
//! JWTGRANT_URL=http://127.0.0.1:8080 LISTEN=127.0.0.1:9000 \
//!   cargo run -p jwtgrant-client --example mcp_server
//! curl -i -X POST http://127.0.0.1:9000/mcp
//! # 401, WWW-Authenticate: Bearer scope="mcp:tools",
//! #   resource_metadata="http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp"
//! curl http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp
//! curl -X POST http://127.0.0.1:9000/mcp -H "Authorization: Bearer $TOKEN" \
//!   -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
//! ```
//!
//! `RESOURCE` sets the resource identifier when the server is reached by another
//! URL than `http://LISTEN/mcp` (behind a proxy, with TLS).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use jwtgrant_client::{
    AccessTokenClaims, Jwtgrant, ProtectedResource, RequireAccessToken, Verifier,
};
use serde_json::{Value, json};

/// The scope a token needs to use the tools.
pub const SCOPE: &str = "mcp:tools";
/// The MCP revision whose answers these are.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// The API: `POST /mcp` behind the token check for `resource`, and the resource's
/// metadata, open. A function of its own so the SDK's tests serve exactly this
/// router.
pub fn app(verifier: Verifier, resource: ProtectedResource) -> Router {
    let guard = RequireAccessToken::new(verifier)
        .scopes([SCOPE])
        .resource(resource.resource_name("jwtgrant example MCP server"));
    Router::new()
        .route("/mcp", post(mcp))
        .route_layer(guard.clone())
        .merge(guard.metadata_router())
}

/// One JSON-RPC message: a request is answered with its result or error, a
/// notification (no `id`) with 202 and no body, as MCP's HTTP transport says.
async fn mcp(Extension(claims): Extension<AccessTokenClaims>, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return Json(error(Value::Null, -32700, "parse error")).into_response();
    };
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let result = match method {
        "initialize" => json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "jwtgrant-example", "version": env!("CARGO_PKG_VERSION")},
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{
            "name": "whoami",
            "description": "Who the access token speaks for",
            "inputSchema": {"type": "object", "properties": {}},
        }]}),
        "tools/call" if message.pointer("/params/name") == Some(&json!("whoami")) => json!({
            "content": [{
                "type": "text",
                "text": format!("{} via {} ({})", claims.sub, claims.client_id, claims.scope),
            }],
        }),
        "tools/call" => return Json(error(id, -32602, "unknown tool")).into_response(),
        _ => return Json(error(id, -32601, "method not found")).into_response(),
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwtgrant_client=debug".into()),
        )
        .init();

    let issuer = std::env::var("JWTGRANT_URL").map_err(|_| "set JWTGRANT_URL")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let address = listener.local_addr()?;
    let resource = std::env::var("RESOURCE").unwrap_or_else(|_| format!("http://{address}/mcp"));
    let resource = ProtectedResource::new(resource)?;

    let verifier = Jwtgrant::new(&issuer)?.verifier().build()?;
    // Fail at start rather than on the first request when the server is unreachable.
    verifier.refresh().await?;

    println!(
        "{} guarded; metadata at {}",
        resource.resource(),
        resource.metadata_url()
    );
    axum::serve(listener, app(verifier, resource)).await?;
    Ok(())
}
