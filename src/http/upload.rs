//! Reading images from requests: a base64 string in JSON, or a file field of a multipart form.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::dev::RequestHead;
use actix_web::http::header::CONTENT_TYPE;
use futures_util::StreamExt;

use crate::error::{ApiError, Code};

/// Where an image came from, before intake.
#[derive(Debug)]
pub enum ImageSource {
    /// Base64 text (plain or `data:` URL).
    Base64(String),
    /// Raw bytes of a multipart file field.
    Bytes(Vec<u8>),
}

/// Guard: the request is `multipart/form-data`.
pub fn is_multipart(head: &RequestHead) -> bool {
    head.headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// Most fields a form may have.
pub const MAX_FIELDS: usize = 16;
/// Bytes all fields together may have beyond the largest field (room for small text fields).
pub const FORM_SLACK_BYTES: usize = 64 * 1024;

/// Reads every field of a multipart form into memory: each field at most `max_field` bytes, at
/// most [`MAX_FIELDS`] fields, and `max_field` + [`FORM_SLACK_BYTES`] in all, so many large fields
/// cannot add up to an unbounded buffer.
pub async fn read_form(
    mut form: Multipart,
    max_field: usize,
) -> Result<HashMap<String, Vec<u8>>, ApiError> {
    let mut fields = HashMap::new();
    let mut total = 0usize;
    while let Some(field) = form.next().await {
        if fields.len() >= MAX_FIELDS {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("a form may have at most {MAX_FIELDS} fields"),
            ));
        }
        let mut field = field.map_err(|e| {
            ApiError::new(Code::BadRequest, format!("malformed multipart body: {e}"))
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(Code::BadRequest, format!("malformed multipart body: {e}"))
            })?;
            if data.len() + chunk.len() > max_field {
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!("field {name} exceeds {max_field} bytes"),
                )
                .with_details(serde_json::json!({ "field": name, "limit_bytes": max_field })));
            }
            total += chunk.len();
            if total > max_field + FORM_SLACK_BYTES {
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!(
                        "the form exceeds {} bytes in all",
                        max_field + FORM_SLACK_BYTES
                    ),
                )
                .with_details(serde_json::json!({ "limit_bytes": max_field + FORM_SLACK_BYTES })));
            }
            data.extend_from_slice(&chunk);
        }
        fields.insert(name, data);
    }
    Ok(fields)
}

/// A text field of a form, as UTF-8.
pub fn text_field(
    fields: &HashMap<String, Vec<u8>>,
    name: &'static str,
) -> Result<Option<String>, ApiError> {
    fields
        .get(name)
        .map(|b| {
            String::from_utf8(b.clone()).map_err(|_| {
                ApiError::new(Code::InvalidInput, format!("{name} is not UTF-8 text"))
                    .with_details(serde_json::json!({ "field": name }))
            })
        })
        .transpose()
}

/// A required field is absent.
pub fn missing(field: &'static str) -> ApiError {
    ApiError::new(Code::InvalidInput, format!("{field} is required"))
        .with_details(serde_json::json!({ "field": field }))
}
