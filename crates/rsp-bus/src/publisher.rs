//! [`Publisher`]: the front door use cases hand high-volume events to (a token issued, a decision denied),
//! so that recording a fact costs a request a channel send, not a round trip to Redis.
//!
//! Events queue in a bounded channel; one task publishes them in batches, to a bus or, where a bus would
//! have one consumer only ([`Publisher::start_direct`]), straight to that consumer's handler. A full queue makes `publish` wait
//! (backpressure): an event once accepted is never dropped. When the primary bus (Redis) fails, the batch
//! goes to the fallback bus (the database outbox, which the relay later forwards to Redis), and the primary
//! is left alone for `primary_cooldown` so that every batch does not first wait for a dead Redis. When both
//! fail, the batch is retried with backoff; the queue fills and callers slow down.

use std::sync::Arc;
use std::time::Duration;

use rsp_core::Event;
use rsp_core::bus::EventBus;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::consumer::EventHandler;
use crate::error::{ConfigError, PublishError};
use crate::{HandlerError, metrics};

/// How a [`Publisher`] batches and falls back.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Events queued at most; beyond it `publish` waits.
    pub capacity: usize,
    /// Events per publish call at most.
    pub max_batch: usize,
    /// How long a batch may wait for more events once the queue is empty. Zero publishes at once: under load
    /// batches still form while the previous one is being written, and a lone event is not delayed.
    pub linger: Duration,
    /// After a primary failure, how long batches go straight to the fallback before the primary is tried again.
    pub primary_cooldown: Duration,
    /// Longest pause between attempts when no bus takes a batch.
    pub retry_max: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            capacity: 16_384,
            max_batch: 256,
            linger: Duration::ZERO,
            primary_cooldown: Duration::from_secs(5),
            retry_max: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
enum Command {
    Event(Box<Event>),
    /// Answered once every event queued before it is published.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then the publisher stops taking events.
    Close(oneshot::Sender<()>),
}

/// The publishing front door. Clones share one queue and one publishing task.
#[derive(Debug, Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Command>,
}

impl Publisher {
    /// Starts the publishing task on the current Tokio runtime.
    pub fn start(
        primary: Arc<dyn EventBus>,
        fallback: Option<Arc<dyn EventBus>>,
        config: PublisherConfig,
    ) -> Result<Self, ConfigError> {
        Self::spawn(Destination::Bus(primary), fallback, config)
    }

    /// Starts a publisher that hands its batches to `handler` itself, for a deployment where a bus would
    /// have that one consumer only (the audit trail without Redis). The guarantee is the bus's: an event
    /// once accepted is stored or retried. What it saves is the bus's own rows: on the database bus an
    /// event costs a stream row, a delivery, a claim and a completion before the handler's write.
    pub fn start_direct(handler: Arc<dyn EventHandler>, config: PublisherConfig) -> Result<Self, ConfigError> {
        Self::spawn(Destination::Handler(handler), None, config)
    }

    fn spawn(
        primary: Destination,
        fallback: Option<Arc<dyn EventBus>>,
        config: PublisherConfig,
    ) -> Result<Self, ConfigError> {
        if config.capacity == 0 || config.max_batch == 0 {
            return Err(ConfigError::new("publisher capacity and max_batch", "must be at least 1"));
        }
        if config.retry_max.is_zero() {
            return Err(ConfigError::new("retry_max", "must be longer than zero"));
        }
        let (queue, receiver) = mpsc::channel(config.capacity);
        let worker = Worker { receiver, primary, fallback, config, primary_resting_until: None };
        tokio::spawn(worker.run());
        Ok(Self { queue })
    }

    /// Queues `event`, waiting while the queue is full.
    pub async fn publish(&self, event: Event) -> Result<(), PublishError> {
        self.queue.send(Command::Event(Box::new(event))).await.map_err(|_| PublishError::Closed)
    }

    /// Queues `event` if there is room now, for callers that must not wait.
    pub fn try_publish(&self, event: Event) -> Result<(), PublishError> {
        self.queue.try_send(Command::Event(Box::new(event))).map_err(|e| match e {
            mpsc::error::TrySendError::Full(Command::Event(event)) => PublishError::Full(event),
            _ => PublishError::Closed,
        })
    }

    /// Waits until every event queued before this call is stored by a bus.
    pub async fn flush(&self) -> Result<(), PublishError> {
        self.request(Command::Flush).await
    }

    /// Publishes everything queued, then stops taking events (from every clone). Waits as long as storing
    /// them takes: wrap it in a timeout at shutdown if both buses may be down.
    pub async fn close(&self) -> Result<(), PublishError> {
        self.request(Command::Close).await
    }

    async fn request(&self, command: fn(oneshot::Sender<()>) -> Command) -> Result<(), PublishError> {
        let (done, answered) = oneshot::channel();
        self.queue.send(command(done)).await.map_err(|_| PublishError::Closed)?;
        answered.await.map_err(|_| PublishError::Closed)
    }
}

/// Where the publishing task stores a batch first.
enum Destination {
    /// A bus, whose consumer groups then handle the events.
    Bus(Arc<dyn EventBus>),
    /// The one handler a bus would have delivered them to.
    Handler(Arc<dyn EventHandler>),
}

impl Destination {
    async fn store(&self, events: &[Event]) -> Result<(), String> {
        let handler = match self {
            Self::Bus(bus) => return bus.publish(events).await.map_err(|e| e.to_string()),
            Self::Handler(handler) => handler,
        };
        if let Some(Ok(())) = handler.handle_batch(events).await {
            return Ok(());
        }
        // As a consumer does after a failed batch: one by one, so one event the handler refuses for good
        // does not hold back the rest. Handlers tolerate repeats, so a retry may redo the events before it.
        for event in events {
            match handler.handle(event).await {
                Ok(()) => {}
                Err(HandlerError::Transient(error)) => return Err(error),
                Err(HandlerError::Permanent(error)) => {
                    metrics::refused(1);
                    tracing::error!(kind = event.kind.as_str(), id = %event.id, %error, "event refused by its handler and dropped");
                }
            }
        }
        Ok(())
    }
}

struct Worker {
    receiver: mpsc::Receiver<Command>,
    primary: Destination,
    fallback: Option<Arc<dyn EventBus>>,
    config: PublisherConfig,
    primary_resting_until: Option<Instant>,
}

/// One batch being gathered, and who waits for it.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    waiting: Vec<oneshot::Sender<()>>,
    closing: bool,
}

impl Batch {
    fn add(&mut self, command: Command) {
        match command {
            Command::Event(event) => self.events.push(*event),
            Command::Flush(done) => self.waiting.push(done),
            Command::Close(done) => {
                self.waiting.push(done);
                self.closing = true;
            }
        }
    }
}

impl Worker {
    async fn run(mut self) {
        while let Some(first) = self.receiver.recv().await {
            let mut batch = Batch::default();
            batch.add(first);
            self.gather(&mut batch).await;
            if batch.closing {
                // No sender can queue more now; what was queued before the close still goes out.
                self.receiver.close();
                while let Some(command) = self.receiver.recv().await {
                    batch.add(command);
                }
            }
            for chunk in batch.events.chunks(self.config.max_batch) {
                self.deliver(chunk).await;
            }
            for done in batch.waiting {
                let _ = done.send(());
            }
            if batch.closing {
                return;
            }
        }
    }

    /// Adds what is queued (and, with a linger, what arrives soon) until the batch is full or someone waits.
    async fn gather(&mut self, batch: &mut Batch) {
        let deadline = Instant::now() + self.config.linger;
        while batch.events.len() < self.config.max_batch && batch.waiting.is_empty() {
            match self.receiver.try_recv() {
                Ok(command) => batch.add(command),
                Err(mpsc::error::TryRecvError::Empty) if !self.config.linger.is_zero() => {
                    match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                        Ok(Some(command)) => batch.add(command),
                        Ok(None) | Err(_) => return,
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Stores `events` in the primary, else the fallback, else retries both until one takes them.
    async fn deliver(&mut self, events: &[Event]) {
        let mut failures = 0u32;
        loop {
            if self.primary_resting_until.is_none_or(|until| Instant::now() >= until) {
                match self.primary.store(events).await {
                    Ok(()) => {
                        self.primary_resting_until = None;
                        metrics::record_published(events);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, count = events.len(), "primary event bus failed");
                        self.primary_resting_until = Some(Instant::now() + self.config.primary_cooldown);
                    }
                }
            }
            match &self.fallback {
                Some(fallback) => match fallback.publish(events).await {
                    Ok(()) => {
                        metrics::record_published(events);
                        metrics::fallback(events.len());
                        return;
                    }
                    Err(error) => tracing::error!(%error, count = events.len(), "fallback event bus failed"),
                },
                // Without a fallback, resting the primary would only delay the next attempt.
                None => self.primary_resting_until = None,
            }
            failures = failures.saturating_add(1);
            let pause = crate::consumer::backoff::delay(Duration::from_millis(100), self.config.retry_max, failures);
            tokio::time::sleep(pause).await;
        }
    }
}

/// An [`EventHandler`] that publishes each event to another bus: the outbox relay is a consumer of group
/// `relay` on the SQL bus with this handler forwarding to Redis. Duplicates it may cause (a crash between
/// forwarding and acknowledging) are removed by the consumers' claims on the target bus.
pub struct ForwardHandler {
    target: Arc<dyn EventBus>,
}

impl ForwardHandler {
    pub fn new(target: Arc<dyn EventBus>) -> Self {
        Self { target }
    }
}

impl std::fmt::Debug for ForwardHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardHandler").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventHandler for ForwardHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.target.publish(std::slice::from_ref(event)).await.map_err(|e| HandlerError::Transient(e.to_string()))
    }
}

/// The use cases' [`EventSink`](rsp_core::bus::EventSink): an event waits only for room in the queue. A
/// closed publisher (shutdown) can no longer take events; the event is logged by kind and id and dropped.
#[async_trait::async_trait]
impl rsp_core::bus::EventSink for Publisher {
    async fn emit(&self, event: Event) {
        let (kind, id) = (event.kind.clone(), event.id.clone());
        if let Err(error) = self.publish(event).await {
            tracing::warn!(kind = kind.as_str(), id = %id, %error, "event not recorded");
        }
    }

    fn try_emit(&self, event: Event) -> bool {
        self.try_publish(event).is_ok()
    }
}
