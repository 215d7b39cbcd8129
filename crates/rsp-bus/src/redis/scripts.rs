//! The Lua scripts that make each state change of a delivery one atomic step in Redis: a crash between two
//! commands can then never leave an event neither pending, scheduled, acknowledged nor dead-lettered.
//! The sources sit beside this file; their headers document keys and arguments.

use std::sync::LazyLock;

use redis::Script;

pub(crate) static RECEIVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/receive.lua")));
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/ack.lua")));
pub(crate) static RETRY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/retry.lua")));
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/dead_letter.lua")));
pub(crate) static STATS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/stats.lua")));
pub(crate) static ENSURE_GROUP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/ensure_group.lua")));
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
