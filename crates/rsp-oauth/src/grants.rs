//! One module per grant type, reached through the single `match` in [`crate::AuthService::token`].

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub(crate) mod user_tokens;
