//! Client for the File Upload API v2 (disccloud.com and hosts of the same product).
//!
//! Owns everything about talking to a host: authorization and the shared
//! token, one typed method per endpoint, tolerant decoding, error classes,
//! retries, and streaming transfers. It knows nothing about sync, local
//! folders or the state database, and never logs a secret.
//!
//! Layout: [`client`] (endpoints and the request loop), [`transfer`]
//! (upload/download streaming), [`host`] (the [`host::Host`] seam the engine calls through), [`auth`] (credentials, shared token),
//! [`types`] and [`de`] (decoding), [`error`], [`retry`].

pub mod auth;
pub mod bwlimit;
pub mod client;
mod de;
pub mod error;
pub mod folders;
pub mod host;
pub mod names;
pub mod retry;
pub mod transfer;
pub mod types;

pub use auth::{Credentials, Secret, Token, TokenStore};
pub use client::{Client, ClientOptions};
pub use error::ApiError;
pub use retry::RetryPolicy;
pub use transfer::{Downloaded, Expected, Progress};
pub use types::*;
