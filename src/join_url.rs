//! The join URL (temporary minimal form until the full parser lands).

/// An absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinUrl(String);

/// Why a URL cannot be a join URL.
#[derive(Debug, thiserror::Error)]
#[error("the URL must start with http:// or https://")]
pub struct JoinUrlError;

impl JoinUrl {
    /// Parses a join URL.
    pub fn parse(raw: &str) -> Result<Self, JoinUrlError> {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            Ok(Self(raw.to_owned()))
        } else {
            Err(JoinUrlError)
        }
    }
}
