//! The request an operation runs for: its id, its W3C trace id and, once authenticated, who made it.
//!
//! The HTTP layer scopes each request's handler with [`RequestContext::scope`]; events built anywhere
//! below read it through [`current`]. Ambient rather than a parameter because it is cross-cutting, like a
//! tracing span: threading it through every use case would add an argument to each signature that only the
//! audit trail reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    actor: OnceLock<String>,
    wrote: AtomicBool,
}

impl RequestContext {
    pub fn new(request_id: Option<String>, trace_id: Option<String>) -> Arc<Self> {
        Arc::new(Self { request_id, trace_id, actor: OnceLock::new(), wrote: AtomicBool::new(false) })
    }

    /// Records who is acting, once authenticated. The first caller wins: a request has one actor.
    pub fn set_actor(&self, actor: impl Into<String>) {
        let _ = self.actor.set(actor.into());
    }

    pub fn actor(&self) -> Option<String> {
        self.actor.get().cloned()
    }

    /// Whether this request has written to the primary database: from then on its reads go to the
    /// primary too, so it reads its own writes even when replicas lag.
    pub fn has_written(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }

    /// Runs `future` with this context as the current one.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

/// The context of the request this task serves, if any.
pub fn current() -> Option<Arc<RequestContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Records the actor on the current request, if there is one.
pub fn set_actor(actor: impl Into<String>) {
    if let Some(context) = current() {
        context.set_actor(actor);
    }
}

/// Records that the current request wrote to the primary database (see [`RequestContext::has_written`]).
pub fn note_write() {
    if let Some(context) = current() {
        context.wrote.store(true, Ordering::Relaxed);
    }
}

/// Whether a read may go to a read replica: outside a request, or in one that has not written yet.
pub fn replica_read_allowed() -> bool {
    current().is_none_or(|c| !c.has_written())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_inside_a_scope_see_its_ids_and_actor() {
        let context = RequestContext::new(Some("req-1".into()), Some("0af7651916cd43dd8448eb211c80319c".into()));
        let seen = context
            .scope(async {
                set_actor("client-a");
                set_actor("client-b");
                current().map(|c| (c.request_id.clone(), c.actor()))
            })
            .await;
        assert_eq!(seen, Some((Some("req-1".to_owned()), Some("client-a".to_owned()))));
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn a_write_sends_later_reads_of_the_request_to_the_primary() {
        let context = RequestContext::new(None, None);
        let (before, after) = context
            .scope(async {
                let before = replica_read_allowed();
                note_write();
                (before, replica_read_allowed())
            })
            .await;
        assert!(before && !after);
        assert!(replica_read_allowed());
    }
}
