//! Who the client is behind load balancers: `trusted_proxies` (CIDRs) whose
//! forwarding headers are believed, and nobody else's.
//!
//! The peer of a connection is the client, unless the peer is a trusted
//! proxy. Then the client is the right-most address of the forwarding
//! header (`X-Forwarded-For`, or `Forwarded` if so configured) that is not
//! a trusted proxy: each proxy appends the address it received the request
//! from, so everything right of that entry was written by proxies we trust,
//! and everything left of it by the client, who may have written anything.
//! An entry that is no address (`unknown`, garbage) ends the walk at the
//! last trusted hop. The original scheme is the `X-Forwarded-Proto` the
//! nearest proxy set (or the `proto=` of the `Forwarded` element of the
//! client). `X-Forwarded-Host` is not believed: the shipped load balancers
//! (ALB, ingress-nginx) pass `Host` through unchanged and pass a client's
//! `X-Forwarded-Host` through too; `external_url` fixes the realm where
//! `Host` is not the public name.
//!
//! Every request passes [`TrustedProxies::apply`] (in `conn.rs`), which
//! removes the forwarding headers and, for a request that came through
//! trusted proxies over HTTPS, sets `X-Forwarded-Proto: https` alone: code
//! downstream reads [`original_https`] and the client address from
//! `ConnectInfo`, never a header a client could have written.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Hops looked at, from the right: more trusted proxies in a row than this
/// is a misconfiguration, and a long header costs nothing beyond it.
const MAX_HOPS: usize = 32;

/// A network in CIDR notation (`10.0.0.0/16`); a bare address is its /32
/// or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip)))
            .map_err(|_| format!("{s:?} is not a CIDR (10.0.0.0/16) or an IP address"))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which header the trusted proxies append the client's address to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (ALB, nginx, ingress-nginx, Envoy, HAProxy's
    /// `forwardfor`), with `X-Forwarded-Proto`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=...;proto=...`.
    Forwarded,
}

/// Where a request came from, as far as the trusted proxies vouch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client: the peer, or the address trusted proxies forwarded.
    pub client: IpAddr,
    /// The peer is a trusted proxy.
    pub via_proxy: bool,
    /// The client spoke HTTPS to the first trusted proxy.
    pub https: bool,
}

impl Origin {
    /// The client as a socket address (port 0 when forwarded: proxies do
    /// not say), for `ConnectInfo`.
    pub fn client_socket(&self) -> SocketAddr {
        if self.via_proxy {
            SocketAddr::new(self.client, 0)
        } else {
            self.peer
        }
    }
}

/// The configured proxies and header.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// One hop of the forwarding header: its address (None: not an address)
/// and, for `Forwarded`, its `proto=`.
struct Hop<'a> {
    addr: Option<IpAddr>,
    proto: Option<&'a str>,
}

impl TrustedProxies {
    pub fn new(nets: &[Cidr], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            nets: nets.iter().map(|c| c.0).collect(),
            header,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The origin of a request from `peer` with `headers`.
    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> Origin {
        let peer_ip = peer.ip().to_canonical();
        let mut origin = Origin {
            peer,
            client: peer_ip,
            via_proxy: false,
            https: false,
        };
        if !self.trusts(peer_ip) {
            return origin;
        }
        origin.via_proxy = true;
        let values: Vec<&str> = match self.header {
            ForwardedHeader::XForwardedFor => header_values(headers, &X_FORWARDED_FOR),
            ForwardedHeader::Forwarded => header_values(headers, &FORWARDED),
        };
        let mut last_proto = None;
        let hops = values.iter().rev().flat_map(|v| match self.header {
            // Plain commas, quotes or not: a client's unbalanced quote must
            // not swallow the entries the proxies appended after it (no
            // `for=` address holds a comma).
            ForwardedHeader::XForwardedFor => v
                .split(',')
                .rev()
                .map(|e| Hop {
                    addr: parse_addr(e),
                    proto: None,
                })
                .collect::<Vec<_>>(),
            ForwardedHeader::Forwarded => v.split(',').rev().map(forwarded_element).collect(),
        });
        for hop in hops.take(MAX_HOPS) {
            let Some(addr) = hop.addr else { break };
            origin.client = addr.to_canonical();
            last_proto = hop.proto;
            if !self.trusts(addr) {
                break;
            }
        }
        let proto = match self.header {
            ForwardedHeader::XForwardedFor => header_values(headers, &X_FORWARDED_PROTO)
                .into_iter()
                .flat_map(|v| v.split(','))
                .next_back(),
            ForwardedHeader::Forwarded => last_proto,
        };
        origin.https = proto.is_some_and(|p| unquote(p.trim()).eq_ignore_ascii_case("https"));
        origin
    }

    /// [`TrustedProxies::resolve`], then the forwarding headers are
    /// replaced by what was believed of them (see the module doc).
    pub fn apply(&self, peer: SocketAddr, headers: &mut HeaderMap) -> Origin {
        let origin = self.resolve(peer, headers);
        for h in [
            &X_FORWARDED_FOR,
            &X_FORWARDED_PROTO,
            &X_FORWARDED_HOST,
            &FORWARDED,
        ] {
            headers.remove(h);
        }
        if origin.via_proxy && origin.https {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        }
        origin
    }
}

/// HTTP/2 carries the host in `:authority`, which hyper keeps in the URI
/// and not in `Host`: copy it there, so that absolute URLs (the token
/// realm) name the host the client used over HTTP/2 as over HTTP/1.1.
pub fn ensure_host<B>(req: &mut axum::http::Request<B>) {
    if req.headers().contains_key(axum::http::header::HOST) {
        return;
    }
    let host = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = host {
        req.headers_mut().insert(axum::http::header::HOST, host);
    }
}

/// Whether the request reached the first trusted proxy over HTTPS (only
/// true after [`TrustedProxies::apply`] for a request it vouched for).
pub fn original_https(headers: &HeaderMap) -> bool {
    headers
        .get(X_FORWARDED_PROTO)
        .is_some_and(|v| v.as_bytes() == b"https")
}

fn header_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, with a port
/// (`1.2.3.4:80`, `[2001:db8::1]:80`) or in brackets.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = unquote(s.trim());
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse().ok())
}

/// One element of `Forwarded` (`for=...;proto=...;by=...`).
fn forwarded_element(e: &str) -> Hop<'_> {
    let mut hop = Hop {
        addr: None,
        proto: None,
    };
    for pair in e.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            // `unknown` and obfuscated `_names` are no address.
            "for" => hop.addr = parse_addr(v),
            "proto" => hop.proto = Some(v.trim()),
            _ => {}
        }
    }
    hop
}

#[cfg(test)]
mod tests;
