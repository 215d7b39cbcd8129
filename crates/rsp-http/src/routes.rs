//! One module per API surface.

pub mod admin;
pub mod decision;
pub mod oauth;
pub mod ops;
mod path;
pub mod signin;
