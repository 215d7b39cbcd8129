//! Blocking reads. `XREADGROUP ... BLOCK` holds its connection until it answers, so it cannot share the
//! multiplexed connection every other call uses; waiting consumers each borrow a connection of their own
//! from this small pool and give it back when the read answers.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client};
use rsp_core::bus::BusError;

use super::keys::GroupKeys;
use super::reply::{bus_error, is_missing_group};

/// More idle connections than this are closed rather than kept: it is more consumers waiting at once than
/// one process runs.
const MAX_IDLE: usize = 32;

pub(crate) enum ReadError {
    MissingGroup,
    Bus(BusError),
}

pub(crate) struct Waiting {
    client: Client,
    idle: Mutex<Vec<MultiplexedConnection>>,
    /// How long past the block time an answer may take before the connection is given up.
    response_timeout: Duration,
    connection_timeout: Duration,
}

impl Waiting {
    pub fn new(client: Client, response_timeout: Duration, connection_timeout: Duration) -> Self {
        Self { client, idle: Mutex::new(Vec::new()), response_timeout, connection_timeout }
    }

    /// New events of the group's event streams, waiting up to `block` (at least a millisecond: Redis reads
    /// `BLOCK 0` as "forever"). A read cancelled by the caller drops its connection, so a half-finished
    /// answer never reaches the next reader.
    pub async fn read(
        &self,
        keys: &GroupKeys,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<StreamReadReply, ReadError> {
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        let events = keys.streams().get(..5).unwrap_or_default();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(count).arg("BLOCK").arg(block_ms);
        cmd.arg("STREAMS").arg(events).arg(vec![">"; events.len()]);

        let mut connection = self.connection().await?;
        let answer = tokio::time::timeout(block + self.response_timeout, cmd.query_async(&mut connection)).await;
        match answer {
            Ok(Ok(reply)) => {
                self.give_back(connection);
                Ok(reply)
            }
            Ok(Err(e)) if is_missing_group(&e) => {
                self.give_back(connection);
                Err(ReadError::MissingGroup)
            }
            Ok(Err(e)) => Err(ReadError::Bus(bus_error(e))),
            Err(_) => Err(ReadError::Bus(BusError::Unavailable("blocking read did not answer in time".into()))),
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, ReadError> {
        if let Some(connection) = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(connection);
        }
        // No response timeout on the connection itself: `read` bounds each call by its own block time.
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(self.connection_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| ReadError::Bus(bus_error(e)))
    }

    fn give_back(&self, connection: MultiplexedConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }
}
