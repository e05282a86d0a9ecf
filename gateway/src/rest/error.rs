//! A failed REST call as the client sees it: `{"code": <gRPC code>, "message": "..."}` (plus
//! `"field"` for bad input) with grpc-gateway's HTTP status for the code.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::Value;
use tonic::Code;

use super::response::json_response;
use crate::wire::http_status;

/// A REST error: gRPC code, HTTP status from it, public message, maybe the field.
#[derive(Debug)]
pub(crate) struct RestError {
    pub(super) code: Code,
    /// Overrides the status of `code` (413, 414).
    pub(super) status: Option<StatusCode>,
    pub(super) message: String,
    pub(super) field: Option<String>,
}

impl RestError {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        RestError {
            code,
            status: None,
            message: message.into(),
            field: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        RestError::new(Code::InvalidArgument, message)
    }

    /// An upstream's `grpc-status` and `grpc-message`.
    pub(super) fn status(code: i32, message: String) -> Self {
        RestError::new(Code::from_i32(code), message)
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let status = self.status.unwrap_or_else(|| http_status(self.code as i32));
        let mut body = serde_json::json!({ "code": self.code as i32, "message": self.message });
        if let (Some(field), Some(object)) = (self.field, body.as_object_mut()) {
            object.insert("field".into(), Value::String(field));
        }
        json_response(status, body.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_gateway_status_mapping() {
        let expected = [
            200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
        ];
        for (code, status) in expected.iter().enumerate() {
            assert_eq!(http_status(code as i32).as_u16(), *status, "code {code}");
        }
    }
}
