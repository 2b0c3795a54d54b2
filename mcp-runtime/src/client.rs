//! MCP client over WebSocket: many calls in flight on one connection, matched by id.
