//! Cryptography the server needs beyond JOSE verification: sealing keys at rest, hashing client
//! secrets, generating signing keys and random values. Everything rests on aws-lc-rs.

pub mod master_key;
pub mod random;
pub mod secret_hash;
pub mod signing;

pub use master_key::{KeySealer, MasterKey, MasterKeyError};
pub use random::random_token;
pub use secret_hash::SecretHasher;
pub use signing::{GeneratedKey, SigningError, TokenSigner};
