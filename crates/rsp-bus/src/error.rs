//! Errors of this crate's own making. Bus calls fail with the port's [`rsp_core::bus::BusError`]; what is
//! here concerns setting things up (a configuration that cannot work) and the publisher's front door.

/// A configuration value that cannot work, found before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// Why [`crate::RedisStreamsBus::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("redis unavailable: {0}")]
    Redis(String),
    /// The server answered but lacks what the bus needs (Redis 7.0 commands).
    #[error("unsupported redis server: {0}")]
    Unsupported(String),
}

/// Why the [`crate::Publisher`] did not take or deliver events.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publisher was closed: nothing more is accepted.
    #[error("publisher is closed")]
    Closed,
    /// `try_publish` found the queue full; the event is handed back so the caller decides.
    #[error("publisher queue is full")]
    Full(Box<rsp_core::Event>),
}

/// Group and consumer names become parts of Redis keys and SQL values: 1 to 64 visible ASCII characters,
/// without `:` (the key separator) so that two different names never produce the same key.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), ConfigError> {
    let visible = name.chars().all(|c| ('\x21'..='\x7e').contains(&c) && c != ':');
    if name.is_empty() || name.len() > 64 || !visible {
        return Err(ConfigError::new(field, "must be 1 to 64 visible ASCII characters without ':'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("group", "audit").is_ok());
        assert!(check_name("group", "relay-2_x.y").is_ok());
        assert!(check_name("group", "").is_err());
        assert!(check_name("group", "a:b").is_err());
        assert!(check_name("group", "with space").is_err());
        assert!(check_name("group", &"x".repeat(65)).is_err());
    }
}
