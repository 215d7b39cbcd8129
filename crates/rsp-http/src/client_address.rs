//! The address of the client behind a request, for the login throttle and the audit trail.
//!
//! The peer of the TCP connection is the client only when nothing stands between them. Behind a load
//! balancer or an ingress every login would otherwise come from the proxy's address, and the per-IP
//! throttle would then lock out everyone at once. `X-Forwarded-For` names the real client, but any client
//! can send that header, so it is believed only as far as the chain runs through proxies the operator
//! listed (`trusted_proxies`): the header is read from the right, each hop a trusted proxy appended, and
//! the first address that is not a trusted proxy is the client. Addresses a client wrote itself sit to the
//! left of that and are never reached, so spoofing one gains nothing. With no trusted proxies configured
//! (the default) the header is ignored entirely.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;
use tower::Service;

/// The client's address as resolved once per request; handlers read it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// In-process tests have no socket; they all share this address.
    pub const UNKNOWN: Self = Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

/// The networks whose connections may tell us, in `X-Forwarded-For`, whom they forward for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

/// A `trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("trusted proxy {0:?} is not an IP address or a CIDR network such as 10.0.0.0/8")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks; an empty list trusts nobody.
    pub fn parse(list: &str) -> Result<Self, InvalidProxy> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| InvalidProxy(entry.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(nets.into()))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request that arrived from `peer` with these headers.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For line, in order, as one list: proxies may append a header or extend it.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(address) = IpAddr::from_str(hop) else {
                // A trusted proxy wrote something that is not an address: stop at the last proxy we know.
                return client;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// Resolves the [`ClientAddress`] of every request once, from the connection's peer (when the server was
/// started with connect info) and the trusted proxies' headers. It wraps the whole router rather than being
/// an axum middleware: it only adds an extension, so the router's own future passes through unboxed.
#[derive(Clone, Debug)]
pub struct ResolveClientAddress<S> {
    inner: S,
    trusted: TrustedProxies,
}

impl<S> ResolveClientAddress<S> {
    pub fn new(inner: S, trusted: TrustedProxies) -> Self {
        Self { inner, trusted }
    }
}

impl<S: Service<Request>> Service<Request> for ResolveClientAddress<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> S::Future {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        let client =
            peer.map_or(ClientAddress::UNKNOWN, |peer| ClientAddress(self.trusted.client_of(peer, request.headers())));
        request.extensions_mut().insert(client);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", line.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let trusted = TrustedProxies::default();
        assert_eq!(trusted.client_of(ip("10.0.0.5"), &headers(&["203.0.113.9"])), ip("10.0.0.5"));
    }

    #[test]
    fn a_spoofed_hop_left_of_the_real_client_is_never_reached() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        let forwarded = headers(&["1.2.3.4, 203.0.113.9", "192.168.1.1"]);
        assert_eq!(trusted.client_of(ip("10.0.0.5"), &forwarded), ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_cannot_name_another_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(trusted.client_of(ip("198.51.100.7"), &headers(&["203.0.113.9"])), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_or_an_all_proxy_chain_stops_at_the_last_known_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(trusted.client_of(ip("10.0.0.5"), &headers(&["junk, 10.0.0.9"])), ip("10.0.0.9"));
        assert_eq!(trusted.client_of(ip("10.0.0.5"), &headers(&["10.0.0.7"])), ip("10.0.0.7"));
        assert_eq!(trusted.client_of(ip("10.0.0.5"), &HeaderMap::new()), ip("10.0.0.5"));
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_networks() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(trusted.client_of(ip("::ffff:10.0.0.5"), &headers(&["2001:db8::1"])), ip("2001:db8::1"));
    }

    #[test]
    fn entries_that_are_not_networks_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
        assert!(TrustedProxies::parse(" ").unwrap() == TrustedProxies::default());
    }
}
