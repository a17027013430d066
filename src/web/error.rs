//! Request errors: the client sees a short generic page, the log gets the cause once.

use poem::error::ResponseError;
use poem::http::StatusCode;

use crate::store::StoreError;

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not count or read; the hit was not acknowledged.
    #[error("the store could not serve the request")]
    Store(#[from] StoreError),
    /// A template failed to render: a bug, since templates are compiled in.
    #[error("a template failed to render")]
    Render(#[from] minijinja::Error),
    /// The operating system gave no random bytes for a new visitor id.
    #[error("no random bytes for a visitor id")]
    Random(#[from] getrandom::Error),
    /// The request's input cannot be used. The message is the app's own sentence about
    /// what is wrong, never the input itself, so it is safe to show.
    #[error("{0}")]
    BadInput(String),
    /// A QR code could not be made for a join URL that passed validation.
    #[error("the QR code could not be rendered")]
    Qr(#[from] crate::qr::QrError),
    /// A task on the blocking pool panicked or was cancelled.
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl AppError {
    /// A 400 that tells the client what is wrong.
    pub fn bad_input(problem: impl ToString) -> Self {
        Self::BadInput(problem.to_string())
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadInput(_) => StatusCode::BAD_REQUEST,
            Self::Render(_) | Self::Random(_) | Self::Qr(_) | Self::Task(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The title and sentence shown for a failed request: fixed text per status, so no
/// error detail and no request input ever reaches the client.
pub fn public_message(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("Not found", "There is nothing at this address."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed",
            "This address does not take that kind of request.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Too large",
            "The request carries more data than this app accepts.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Counting is paused",
            "The counter cannot reach its database right now. Your visit was not counted; \
             please try again in a moment.",
        ),
        s if s.is_client_error() => ("Bad request", "The request could not be understood."),
        _ => (
            "Something went wrong",
            "The counter hit an unexpected problem.",
        ),
    }
}
