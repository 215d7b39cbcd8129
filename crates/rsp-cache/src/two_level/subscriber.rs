//! The task that listens on `{prefix}:invalidate` for a replica, on a connection of its own (a subscribed
//! connection can do nothing else). It also pings that connection, so a silently dead one is noticed
//! within `maintenance_interval` plus `connect_timeout`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use redis::aio::PubSub;
use rsp_core::cache::{Invalidation, Origin};

use super::Inner;
use crate::l2::L2Error;
use crate::wire::Message;

/// Opens a pub/sub connection and subscribes, within the configured timeouts.
pub(super) async fn connect(inner: &Inner) -> Result<PubSub, L2Error> {
    let timeout = inner.config.redis.connect_timeout;
    let subscribe = async {
        let mut pubsub = inner.client.get_async_pubsub().await?;
        pubsub.subscribe(inner.l2.keys().channel()).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    Ok(tokio::time::timeout(timeout, subscribe).await.map_err(|_| L2Error::Timeout(timeout))??)
}

/// Runs until the cache is dropped (which aborts it). `connection` is the subscription made at start, if
/// Redis was reachable then.
pub(super) async fn run(inner: Arc<Inner>, mut connection: Option<PubSub>) {
    // A replica that started without the channel may have cached entries whose invalidation it missed.
    let mut missed = connection.is_none();
    loop {
        let pubsub = match connection.take() {
            Some(pubsub) => pubsub,
            None => match connect(&inner).await {
                Ok(pubsub) => pubsub,
                Err(error) => {
                    tracing::debug!(%error, "invalidation channel still unavailable");
                    tokio::time::sleep(inner.config.redis.retry_after).await;
                    continue;
                }
            },
        };
        if missed {
            // Subscribed first, emptied second: nothing published from now on can be missed.
            tracing::info!("invalidation channel back: emptying L1, which may hold entries invalidated meanwhile");
            inner.apply(Invalidation::All, Origin::Remote).await;
        }
        inner.listening.store(true, Ordering::Release);
        listen(&inner, pubsub).await;
        inner.listening.store(false, Ordering::Release);
        tracing::warn!("invalidation channel lost: reconnecting; L1 will be emptied then");
        missed = true;
    }
}

/// Applies messages until the connection ends or stops answering pings.
async fn listen(inner: &Inner, pubsub: PubSub) {
    let (mut sink, mut messages) = pubsub.split();
    let mut tick = tokio::time::interval(inner.config.redis.maintenance_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => on_message(inner, message.get_payload_bytes()).await,
                None => return,
            },
            _ = tick.tick() => {
                let timeout = inner.config.redis.connect_timeout;
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "invalidation channel ping failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(?timeout, "invalidation channel ping timed out");
                        return;
                    }
                }
            }
        }
    }
}

/// Applies another replica's invalidation. A message this version cannot read empties every L1: dropping
/// too much costs loads, missing an invalidation serves stale data.
async fn on_message(inner: &Inner, payload: &[u8]) {
    let invalidation = match serde_json::from_slice::<Message>(payload) {
        Ok(message) if message.origin == inner.origin => return,
        Ok(message) if message.invalidation.check().is_ok() => message.invalidation,
        Ok(_) => Invalidation::All,
        Err(error) => {
            tracing::warn!(%error, "unreadable invalidation message: emptying L1");
            Invalidation::All
        }
    };
    inner.apply(invalidation, Origin::Remote).await;
}
