//! The API layer's one error type and its classification.
//!
//! Rules: every variant says which endpoint (or local path) failed and, where
//! there is one, what to do about it; no variant ever carries a token, a key or
//! a download URL; `is_retryable` tells callers whether trying again later can
//! help. The client maps host messages to variants here and nowhere else.

use std::path::PathBuf;
use std::time::Duration;

/// Something went wrong talking to the host.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `/authorize` refused the key pair or the username/password.
    #[error(
        "the host refused the credentials ({message}); check key1/key2 (or username/password) in the config or DCSYNC_KEY1/DCSYNC_KEY2"
    )]
    BadCredentials { message: String },

    /// The access token was refused even right after a fresh `/authorize`.
    #[error("{endpoint}: the host rejected a fresh access token ({message}); try again later")]
    TokenRejected {
        endpoint: &'static str,
        message: String,
    },

    /// The file, folder or scheduled item does not exist (or is not active).
    #[error("{endpoint}: {message}")]
    NotFound {
        endpoint: &'static str,
        message: String,
    },

    /// HTTP 429 from the host or the proxy in front of it.
    #[error("{endpoint}: the host is rate limiting requests{}; lower max_requests_per_second or try again later", match .retry_after { Some(d) => format!(" (retry after {} s)", d.as_secs()), None => String::new() })]
    RateLimited {
        endpoint: &'static str,
        retry_after: Option<Duration>,
    },

    /// HTTP 5xx (or another unexpected status) from the host or its proxy.
    #[error("{endpoint}: the host answered HTTP {status}{}; try again later", if .snippet.is_empty() { String::new() } else { format!(" ({})", .snippet) })]
    Server {
        endpoint: &'static str,
        status: u16,
        snippet: String,
    },

    /// The request or its answer was lost on the way (connect, reset, timeout).
    #[error("{endpoint}: could not reach the host ({detail}); check the network and api_url")]
    Transport {
        endpoint: &'static str,
        detail: String,
        /// True when the request certainly never reached the host
        /// (connection refused), so even a non-idempotent call may be repeated.
        not_sent: bool,
    },

    /// The answer was not what the API defines (not JSON, HTML, missing fields).
    #[error("{endpoint}: unexpected answer from the host: {detail}")]
    Protocol {
        endpoint: &'static str,
        detail: String,
    },

    /// The endpoint does not exist on this host (real HTTP 404).
    #[error("{endpoint}: this host does not offer the endpoint ({message}); is api_url right?")]
    UnknownEndpoint {
        endpoint: &'static str,
        message: String,
    },

    /// The host refused the request with a message (an error envelope).
    #[error("{endpoint}: the host refused: {message}")]
    Api {
        endpoint: &'static str,
        message: String,
    },

    /// A non-idempotent call failed in a way that leaves unknown whether the
    /// host carried it out. Re-list before doing it again, or it may be done twice.
    #[error(
        "{endpoint}: the host may or may not have carried this out ({source}); check the remote before retrying"
    )]
    OutcomeUnknown {
        endpoint: &'static str,
        #[source]
        source: Box<ApiError>,
    },

    /// Transferred bytes do not match what was expected (size or MD5).
    #[error("{what}: integrity check failed: {detail}; the transfer will be retried")]
    Integrity { what: String, detail: String },

    /// A transfer went wrong after the host stored a file that must not
    /// stay (the local file changed while it was sent, or the host stored
    /// other bytes), and trashing that file failed too: `id` is left on
    /// the host for the caller to deal with.
    #[error(
        "{what}: {detail}; the file it left on the host (file:{id}) could not be trashed: {cause}"
    )]
    LeftOnHost {
        what: String,
        detail: String,
        id: super::FileId,
        cause: String,
    },

    /// A local file could not be read or written during a transfer.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The configuration given to the client is unusable.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

/// The same error (class, message, source chain), for each of several
/// operations one call failed (a folder listing shared by the folders made
/// in it). A local I/O error keeps its kind and message.
impl Clone for ApiError {
    fn clone(&self) -> Self {
        match self {
            ApiError::BadCredentials { message } => ApiError::BadCredentials {
                message: message.clone(),
            },
            ApiError::TokenRejected { endpoint, message } => ApiError::TokenRejected {
                endpoint,
                message: message.clone(),
            },
            ApiError::NotFound { endpoint, message } => ApiError::NotFound {
                endpoint,
                message: message.clone(),
            },
            ApiError::RateLimited {
                endpoint,
                retry_after,
            } => ApiError::RateLimited {
                endpoint,
                retry_after: *retry_after,
            },
            ApiError::Server {
                endpoint,
                status,
                snippet,
            } => ApiError::Server {
                endpoint,
                status: *status,
                snippet: snippet.clone(),
            },
            ApiError::Transport {
                endpoint,
                detail,
                not_sent,
            } => ApiError::Transport {
                endpoint,
                detail: detail.clone(),
                not_sent: *not_sent,
            },
            ApiError::Protocol { endpoint, detail } => ApiError::Protocol {
                endpoint,
                detail: detail.clone(),
            },
            ApiError::UnknownEndpoint { endpoint, message } => ApiError::UnknownEndpoint {
                endpoint,
                message: message.clone(),
            },
            ApiError::Api { endpoint, message } => ApiError::Api {
                endpoint,
                message: message.clone(),
            },
            ApiError::OutcomeUnknown { endpoint, source } => ApiError::OutcomeUnknown {
                endpoint,
                source: source.clone(),
            },
            ApiError::Integrity { what, detail } => ApiError::Integrity {
                what: what.clone(),
                detail: detail.clone(),
            },
            ApiError::LeftOnHost {
                what,
                detail,
                id,
                cause,
            } => ApiError::LeftOnHost {
                what: what.clone(),
                detail: detail.clone(),
                id: *id,
                cause: cause.clone(),
            },
            ApiError::Io { path, source } => ApiError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            ApiError::Config(m) => ApiError::Config(m.clone()),
        }
    }
}

impl ApiError {
    /// Whether the same request may succeed if tried again later, without any
    /// change by the user. `OutcomeUnknown` is retryable only after re-listing.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::RateLimited { .. }
            | ApiError::Server { .. }
            | ApiError::Transport { .. }
            | ApiError::TokenRejected { .. }
            | ApiError::Integrity { .. }
            | ApiError::LeftOnHost { .. }
            | ApiError::OutcomeUnknown { .. } => true,
            ApiError::Protocol { .. } => true,
            ApiError::BadCredentials { .. }
            | ApiError::NotFound { .. }
            | ApiError::UnknownEndpoint { .. }
            | ApiError::Api { .. }
            | ApiError::Config(_) => false,
            ApiError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// Whether this error means "the thing is not there".
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }

    /// For a non-idempotent call: whether the host may have done the work
    /// even though the call failed.
    pub(crate) fn may_have_been_applied(&self) -> bool {
        match self {
            ApiError::Transport { not_sent, .. } => !not_sent,
            ApiError::Server { .. } | ApiError::Protocol { .. } => true,
            _ => false,
        }
    }
}

/// How an error envelope's message is classified (public for in-process
/// hosts, which answer with the message alone).
pub fn classify_message(endpoint: &'static str, message: String) -> ApiError {
    let m = message.to_ascii_lowercase();
    if m.contains("could not validate access_token") {
        ApiError::TokenRejected { endpoint, message }
    } else if m.contains("could not authenticate user")
        || (endpoint == "authorize" && m.contains("characters in length"))
    {
        ApiError::BadCredentials { message }
    } else if m.contains("could not find") {
        ApiError::NotFound { endpoint, message }
    } else {
        ApiError::Api { endpoint, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_map_to_classes() {
        let c = |m: &str| classify_message("file/info", m.to_owned());
        assert!(matches!(
            c(
                "Could not validate access_token and account_id, please reauthenticate or try again."
            ),
            ApiError::TokenRejected { .. }
        ));
        assert!(matches!(
            c("Could not validate access_token, please reauthenticate or try again."),
            ApiError::TokenRejected { .. }
        ));
        assert!(matches!(
            c("Could not find file based on file_id."),
            ApiError::NotFound { .. }
        ));
        assert!(matches!(
            c("Could not find the destination folder id defined by new_parent_folder_id."),
            ApiError::NotFound { .. }
        ));
        assert!(matches!(
            c("Filesize received was zero."),
            ApiError::Api { .. }
        ));
        assert!(matches!(
            classify_message(
                "authorize",
                "Please provide key1. It must be 64 characters in length.".into()
            ),
            ApiError::BadCredentials { .. }
        ));
    }

    #[test]
    fn retryable_classes() {
        assert!(
            ApiError::Server {
                endpoint: "x",
                status: 502,
                snippet: String::new()
            }
            .is_retryable()
        );
        assert!(
            !ApiError::Api {
                endpoint: "x",
                message: "no".into()
            }
            .is_retryable()
        );
        assert!(
            !ApiError::BadCredentials {
                message: "no".into()
            }
            .is_retryable()
        );
        let msg = ApiError::RateLimited {
            endpoint: "folder/listing",
            retry_after: Some(Duration::from_secs(3)),
        }
        .to_string();
        assert!(msg.contains("retry after 3 s"), "{msg}");
    }
}
