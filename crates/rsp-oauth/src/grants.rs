//! One module per grant type, reached through the single `match` in [`crate::AuthService::token`].

pub mod client_credentials;
