//! # Errors: the one place where a failure becomes an HTTP status
//!
//! Every refusal a client can see is an [`ApiError`]: a status, a stable machine-readable `code`
//! and a human `detail`, sent as `{"error": code, "detail": text}`. Handlers return
//! `Result<_, ApiError>`; game rule violations convert via `From<GameError>`; extractor failures
//! (bad JSON, bad query) are routed here by the `*Config` error handlers in `server.rs`.
//!
//! Serialising our own replies goes through [`to_json`] too: it cannot fail for the plain types
//! we send, so a failure is a bug of ours — logged, and answered `500 internal` (or, where no
//! status can be sent any more, with a well-formed fallback), never with an empty body or frame.

use std::fmt;

use actix_web::{
    error::{JsonPayloadError, QueryPayloadError},
    http::StatusCode,
    HttpResponse, ResponseError,
};
use serde::Serialize;

use crate::game::GameError;
use crate::refusal::Refused;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this needs a player session: join first (cookie) or send Authorization: Bearer <token>",
        )
    }

    /// `401` for a credential that was presented but is not valid: says which one and what to do,
    /// so a client is not told to "join first" when it sent a spent ticket.
    pub fn bad_credential(detail: &'static str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail)
    }

    /// A bug of ours, not the client's: `500 internal`.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The JSON body, also used for WebSocket `error` messages.
    pub fn body(&self) -> String {
        let body = Body {
            error: self.code,
            detail: &self.detail,
        };
        // `code` is one of our identifiers: safe to write into JSON as it is.
        to_json(&body, "an error body").unwrap_or_else(|_| {
            format!(
                r#"{{"error":"{}","detail":"(the detail could not be encoded)"}}"#,
                self.code
            )
        })
    }

    /// Turns a JSON body extractor failure into the right status and code.
    pub fn from_json(err: &JsonPayloadError) -> ApiError {
        match err {
            JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ),
            JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body has {length} bytes; at most {limit} are accepted"),
            ),
            JsonPayloadError::Overflow { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
            ),
            JsonPayloadError::Deserialize(e) => ApiError::bad_request("bad_json", e.to_string()),
            other => ApiError::bad_request("bad_json", other.to_string()),
        }
    }

    pub fn from_query(err: &QueryPayloadError) -> ApiError {
        let detail = match err {
            QueryPayloadError::Deserialize(e) => format!(
                "{e}: `since` must be a whole number >= 0 and `epoch` a string; no other keys"
            ),
            other => other.to_string(),
        };
        ApiError::bad_request("bad_query", detail)
    }
}

/// Serialises one of our own values for the wire.
///
/// Our types always serialise (plain structs and enums, string keys, no custom `Serialize`
/// that can fail), so an error here is a bug in this server. It is logged with `what` was being
/// written and returned as `500 internal`; a caller that can no longer send a status (an event
/// in the log, a reply on a socket) sends a well-formed fallback of its own instead. The road
/// not taken, `unwrap_or_default()`, sent an empty body or an empty frame, which a client
/// would blame on itself.
pub fn to_json<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|err| {
        tracing::error!(%err, what, "did not serialise: a bug in the server");
        ApiError::internal(format!("{what} could not be encoded"))
    })
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.content_type("application/json");
        if let Some(seconds) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        let mut res = res.body(self.body());
        // For the middleware that counts refusals by defence (`security::record_refusals`): the
        // response body is already bytes, this is the same code and detail as data.
        res.extensions_mut().insert(Refused {
            status: self.status.as_u16(),
            error: self.code,
            detail: self.detail.clone(),
        });
        res
    }
}

impl From<GameError> for ApiError {
    fn from(err: GameError) -> ApiError {
        let detail = err.to_string();
        match err {
            GameError::InvalidName(_) => ApiError::bad_request("invalid_name", detail),
            GameError::NameTaken(_) => ApiError::new(StatusCode::CONFLICT, "name_taken", detail),
            GameError::GameFull { .. } => ApiError::new(StatusCode::CONFLICT, "game_full", detail),
            // The token was valid a moment ago but the player has just left: same as no session.
            GameError::UnknownPlayer(_) => ApiError::unauthorized(),
            GameError::JoinsClosed => ApiError::new(StatusCode::FORBIDDEN, "joins_closed", detail),
            GameError::OutOfBoard { .. } => ApiError::bad_request("out_of_board", detail),
            GameError::RoundNotStarted { .. } => {
                ApiError::new(StatusCode::CONFLICT, "round_not_started", detail)
            }
        }
    }
}
