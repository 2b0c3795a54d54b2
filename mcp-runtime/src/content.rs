//! Rich tool results: content blocks (text, image, audio, an embedded
//! resource, a link to a resource) and [`CallToolResult`], the whole result
//! a tool can build itself.
//!
//! A tool returning a plain serializable value needs none of this: the
//! runtime sends the value as `structuredContent` plus a JSON text block.
//! Return a [`Content`], a `Vec<Content>` or a [`CallToolResult`] to choose
//! the blocks yourself:
//!
//! ```
//! use mcp_runtime::content::{CallToolResult, Content};
//! use mcp_runtime::mcp_tool;
//!
//! /// A chart of the numbers, and their total as structured output.
//! #[mcp_tool]
//! async fn chart(numbers: Vec<f64>) -> CallToolResult<f64> {
//!     let png: Vec<u8> = render(&numbers);
//!     CallToolResult::structured(numbers.iter().sum())
//!         .with_content(vec![Content::text("the chart:"), Content::image(&png, "image/png")])
//! }
//! # fn render(_: &[f64]) -> Vec<u8> { vec![0x89, b'P', b'N', b'G'] }
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Map, Value};

/// One content block of a tool result (MCP `ContentBlock`).
///
/// Build it with the constructors ([`Content::text`], [`Content::image`],
/// [`Content::embedded_text`], ...) or the variants themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Content {
    #[serde(rename = "text")]
    Text {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<ContentAnnotations>,
    },
    /// `data` is base64.
    #[serde(rename = "image")]
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<ContentAnnotations>,
    },
    /// `data` is base64.
    #[serde(rename = "audio")]
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<ContentAnnotations>,
    },
    /// A resource's contents, embedded in the result.
    #[serde(rename = "resource")]
    Resource {
        resource: ResourceContents,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<ContentAnnotations>,
    },
    /// A link to a resource the client may read (or not).
    #[serde(rename = "resource_link")]
    ResourceLink(ResourceLink),
}

impl Content {
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text { text: text.into(), annotations: None }
    }

    /// An image from its bytes (base64-encoded here), e.g. `"image/png"`.
    pub fn image(bytes: impl AsRef<[u8]>, mime_type: impl Into<String>) -> Content {
        Content::image_base64(BASE64.encode(bytes), mime_type)
    }

    /// An image already encoded as base64.
    pub fn image_base64(data: impl Into<String>, mime_type: impl Into<String>) -> Content {
        Content::Image { data: data.into(), mime_type: mime_type.into(), annotations: None }
    }

    /// Audio from its bytes (base64-encoded here), e.g. `"audio/wav"`.
    pub fn audio(bytes: impl AsRef<[u8]>, mime_type: impl Into<String>) -> Content {
        Content::audio_base64(BASE64.encode(bytes), mime_type)
    }

    /// Audio already encoded as base64.
    pub fn audio_base64(data: impl Into<String>, mime_type: impl Into<String>) -> Content {
        Content::Audio { data: data.into(), mime_type: mime_type.into(), annotations: None }
    }

    /// An embedded resource with text contents.
    pub fn embedded_text(uri: impl Into<String>, mime_type: impl Into<String>, text: impl Into<String>) -> Content {
        Content::Resource {
            resource: ResourceContents::Text { uri: uri.into(), mime_type: Some(mime_type.into()), text: text.into() },
            annotations: None,
        }
    }

    /// An embedded resource with binary contents (base64-encoded here).
    pub fn embedded_blob(uri: impl Into<String>, mime_type: impl Into<String>, bytes: impl AsRef<[u8]>) -> Content {
        Content::Resource {
            resource: ResourceContents::Blob {
                uri: uri.into(),
                mime_type: Some(mime_type.into()),
                blob: BASE64.encode(bytes),
            },
            annotations: None,
        }
    }

    /// A link to the resource at `uri`, called `name`; see [`ResourceLink`]
    /// for the optional fields.
    pub fn resource_link(uri: impl Into<String>, name: impl Into<String>) -> Content {
        Content::ResourceLink(ResourceLink::new(uri, name))
    }

    /// The same block with `annotations` (who it is for, how important).
    pub fn annotated(mut self, with: ContentAnnotations) -> Content {
        match &mut self {
            Content::Text { annotations, .. }
            | Content::Image { annotations, .. }
            | Content::Audio { annotations, .. }
            | Content::Resource { annotations, .. } => *annotations = Some(with),
            Content::ResourceLink(link) => link.annotations = Some(with),
        }
        self
    }
}

/// Hints about a content block for the client (MCP `Annotations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentAnnotations {
    /// Who the block is meant for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<Role>>,
    /// 0 (least important) to 1 (most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// ISO 8601, e.g. `"2025-01-12T15:00:58Z"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// The contents of an embedded resource: text or base64 bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResourceContents {
    Text {
        uri: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        text: String,
    },
    Blob {
        uri: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        blob: String,
    },
}

/// A `resource_link` content block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLink {
    pub uri: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ContentAnnotations>,
}

impl ResourceLink {
    pub fn new(uri: impl Into<String>, name: impl Into<String>) -> ResourceLink {
        ResourceLink {
            uri: uri.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            size: None,
            annotations: None,
        }
    }
}

/// A whole tool result built by the tool: its content blocks, optional
/// structured output `T`, the error flag and `_meta`.
///
/// `T` is the structured output, published as the tool's `outputSchema`
/// exactly as when the tool returns a `T` (wrapped for older protocol
/// versions when it is not an object); the default `()` means none.
///
/// - `CallToolResult::new(blocks)`: content only.
/// - `CallToolResult::structured(value)`: `value` as `structuredContent`,
///   and as a JSON text block unless [`with_content`](Self::with_content)
///   gives other blocks.
/// - `CallToolResult::error(blocks)`: a failure the model should read
///   (`isError: true`), like returning `Err(..)` but with any blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct CallToolResult<T = ()> {
    pub(crate) content: Option<Vec<Content>>,
    pub(crate) structured: T,
    pub(crate) is_error: bool,
    pub(crate) meta: Option<Map<String, Value>>,
}

impl CallToolResult {
    /// A result of these content blocks, with no structured output.
    pub fn new(content: impl Into<Vec<Content>>) -> CallToolResult {
        CallToolResult { content: Some(content.into()), structured: (), is_error: false, meta: None }
    }

    /// A failed call whose blocks tell the model what went wrong.
    pub fn error(content: impl Into<Vec<Content>>) -> CallToolResult {
        CallToolResult { is_error: true, ..CallToolResult::new(content) }
    }
}

impl<T> CallToolResult<T> {
    /// `value` as `structuredContent` (and, until
    /// [`with_content`](Self::with_content), as a JSON text block).
    pub fn structured(value: T) -> CallToolResult<T> {
        CallToolResult { content: None, structured: value, is_error: false, meta: None }
    }

    /// These blocks instead of the JSON text block.
    pub fn with_content(mut self, content: impl Into<Vec<Content>>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// Sets the result's `_meta`.
    pub fn with_meta(mut self, meta: Map<String, Value>) -> Self {
        self.meta = Some(meta);
        self
    }
}

impl From<Content> for Vec<Content> {
    fn from(content: Content) -> Vec<Content> {
        vec![content]
    }
}
