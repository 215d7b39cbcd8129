//! Gathers single-key commands issued concurrently (the runner claims a whole batch at once, and completes
//! events one after another while the next handler runs) into one pipeline. Redis answers a pipeline of 256
//! `SET`s about as fast as one; the client's per-request costs (a timer, two channel hops, a response
//! parse) are what made per-event commands the runner's bottleneck.

use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};
use tokio::sync::oneshot;

type Waiting = Vec<(Cmd, oneshot::Sender<RedisResult<Value>>)>;

pub(crate) struct Batcher {
    connection: ConnectionManager,
    queue: Arc<Mutex<Waiting>>,
}

impl Batcher {
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection, queue: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Sends `cmd` with whatever other commands are issued meanwhile. The first command of a batch starts a
    /// task that sends it; being a task of its own, a caller that gives up waiting cannot strand the others.
    pub async fn query(&self, cmd: Cmd) -> RedisResult<Value> {
        let (answer, answered) = oneshot::channel();
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.push((cmd, answer));
            queue.len() == 1
        };
        if first {
            let queue = Arc::clone(&self.queue);
            let connection = self.connection.clone();
            tokio::spawn(async move {
                // Let the other commands issued in the same breath join this batch.
                tokio::task::yield_now().await;
                let batch = std::mem::take(&mut *queue.lock().unwrap_or_else(PoisonError::into_inner));
                send(batch, connection).await;
            });
        }
        answered.await.unwrap_or_else(|_| Err(RedisError::from((ErrorKind::Io, "batched command was dropped"))))
    }
}

async fn send(batch: Waiting, mut connection: ConnectionManager) {
    let (commands, waiting): (Vec<Cmd>, Vec<_>) = batch.into_iter().unzip();
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in commands {
        pipe.add_command(cmd);
    }
    match pipe.query_async::<Vec<RedisResult<Value>>>(&mut connection).await {
        Ok(answers) if answers.len() == waiting.len() => {
            for (waiting, answer) in waiting.into_iter().zip(answers) {
                let _ = waiting.send(answer);
            }
        }
        Ok(_) => {
            for waiting in waiting {
                let _ = waiting.send(Err(RedisError::from((ErrorKind::Parse, "pipeline answer count mismatch"))));
            }
        }
        Err(error) => {
            for waiting in waiting {
                let _ = waiting.send(Err(error.clone()));
            }
        }
    }
}
