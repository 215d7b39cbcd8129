//! Gives each request its [`RequestContext`]: the request id set by the layer above and the W3C trace id of
//! an incoming `traceparent` header, so events built while handling it name both.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use rsp_core::context::RequestContext;

pub async fn scope(request: Request, next: Next) -> Response {
    // Owned copies, read before the await: the request body is not `Sync`, so no borrow of it may live
    // across the await.
    let context = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let trace_id = header("traceparent").and_then(trace_id_of).map(str::to_owned);
        RequestContext::new(header("x-request-id").map(str::to_owned), trace_id)
    };
    context.scope(next.run(request)).await
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), unless it is malformed or all
/// zeros (Trace Context §3.2.2.3: such a header is ignored).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0')
        && (version != "00" || parts.next().is_none());
    valid.then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::trace_id_of;

    #[test]
    fn reads_valid_traceparents_and_ignores_the_rest() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_of(&format!("00-{id}-00f067aa0ba902b7-01")), Some(id));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
    }
}
