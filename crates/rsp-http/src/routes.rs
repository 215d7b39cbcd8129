//! One module per API surface.

pub mod admin;
pub mod oauth;
pub mod ops;
mod path;
