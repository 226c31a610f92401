use super::*;

fn proxies(nets: &[&str]) -> TrustedProxies {
    let nets: Vec<Cidr> = nets.iter().map(|n| n.parse().unwrap()).collect();
    TrustedProxies::new(&nets, ForwardedHeader::XForwardedFor)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn peer(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_says() {
    let p = proxies(&["10.0.0.0/8"]);
    let h = headers(&[
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=203.0.113.9;proto=https"),
    ]);
    let o = p.resolve(peer("198.51.100.7:4000"), &h);
    assert_eq!(o.client, ip("198.51.100.7"));
    assert!(!o.via_proxy && !o.https);
    assert_eq!(o.client_socket(), peer("198.51.100.7:4000"));
    // Nothing trusted at all (the default): the same.
    let o = TrustedProxies::default().resolve(peer("10.0.0.1:1"), &h);
    assert_eq!(
        (o.client, o.via_proxy, o.https),
        (ip("10.0.0.1"), false, false)
    );
}

#[test]
fn the_right_most_untrusted_address_is_the_client() {
    let p = proxies(&["10.0.0.0/8", "192.168.1.1"]);
    // The client forged two entries; the ALB appended the real address,
    // an inner proxy appended the ALB's.
    let h = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2, 203.0.113.9, 10.1.2.3")]);
    let o = p.resolve(peer("192.168.1.1:555"), &h);
    assert_eq!(o.client, ip("203.0.113.9"));
    assert!(o.via_proxy);
    assert_eq!(o.client_socket(), peer("203.0.113.9:0"));
    // Several header lines read as one list, in order.
    let h = headers(&[
        ("x-forwarded-for", "1.1.1.1"),
        ("x-forwarded-for", "203.0.113.9"),
    ]);
    assert_eq!(p.resolve(peer("10.0.0.2:1"), &h).client, ip("203.0.113.9"));
}

#[test]
fn a_trusted_peer_without_a_header_is_the_client() {
    let p = proxies(&["10.0.0.0/8"]);
    let o = p.resolve(peer("10.0.0.5:80"), &HeaderMap::new());
    assert_eq!(o.client, ip("10.0.0.5"));
    assert!(o.via_proxy);
    // Every hop trusted: the left-most one.
    let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.7")]);
    assert_eq!(p.resolve(peer("10.0.0.5:80"), &h).client, ip("10.9.9.9"));
}

#[test]
fn garbage_stops_the_walk_at_the_last_trusted_hop() {
    let p = proxies(&["10.0.0.0/8"]);
    let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.9")]);
    assert_eq!(p.resolve(peer("10.0.0.5:1"), &h).client, ip("10.0.0.9"));
    // A client's stray quote does not swallow what the proxy appended.
    let h = headers(&[("x-forwarded-for", "\"x, 203.0.113.9")]);
    assert_eq!(p.resolve(peer("10.0.0.5:1"), &h).client, ip("203.0.113.9"));
}

#[test]
fn addresses_with_ports_brackets_and_mapped_forms() {
    let p = proxies(&["10.0.0.0/8"]);
    for (entry, want) in [
        ("203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        (" 2001:db8::2 ", "2001:db8::2"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ] {
        let h = headers(&[("x-forwarded-for", entry)]);
        assert_eq!(
            p.resolve(peer("10.0.0.5:1"), &h).client,
            ip(want),
            "{entry}"
        );
    }
    // A dual-stack listener sees IPv4 proxies as mapped IPv6.
    let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
    let o = p.resolve(peer("[::ffff:10.0.0.5]:1"), &h);
    assert_eq!(o.client, ip("203.0.113.9"));
}

#[test]
fn the_scheme_is_what_the_nearest_proxy_set() {
    let p = proxies(&["10.0.0.0/8"]);
    let o = p.resolve(
        peer("10.0.0.5:1"),
        &headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]),
    );
    assert!(o.https);
    let o = p.resolve(
        peer("10.0.0.5:1"),
        &headers(&[("x-forwarded-proto", "https, http")]),
    );
    assert!(!o.https, "the right-most value, set by the nearest proxy");
    let o = p.resolve(
        peer("10.0.0.5:1"),
        &headers(&[("x-forwarded-proto", "HTTPS")]),
    );
    assert!(o.https);
}

#[test]
fn the_forwarded_header_when_configured() {
    let nets = ["10.0.0.0/8".parse().unwrap()];
    let p = TrustedProxies::new(&nets, ForwardedHeader::Forwarded);
    let h = headers(&[
        // Believed only with `forwarded_header = "x-forwarded-for"`.
        ("x-forwarded-for", "198.51.100.1"),
        (
            "forwarded",
            "for=1.1.1.1;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1, \
             For=10.0.0.8;proto=http",
        ),
    ]);
    let o = p.resolve(peer("10.0.0.5:1"), &h);
    assert_eq!(o.client, ip("2001:db8:cafe::17"));
    assert!(o.https, "the proto= of the client's element");
    let h = headers(&[("forwarded", "for=unknown, for=10.0.0.8")]);
    assert_eq!(p.resolve(peer("10.0.0.5:1"), &h).client, ip("10.0.0.8"));
    let h = headers(&[("forwarded", "for=_hidden;proto=https")]);
    let o = p.resolve(peer("10.0.0.5:1"), &h);
    assert_eq!((o.client, o.https), (ip("10.0.0.5"), false));
}

#[test]
fn apply_leaves_only_what_was_believed() {
    let p = proxies(&["10.0.0.0/8"]);
    let forged = || {
        headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=1.2.3.4;proto=https"),
        ])
    };
    let mut h = forged();
    let o = p.apply(peer("198.51.100.7:4000"), &mut h);
    assert_eq!(o.client, ip("198.51.100.7"));
    assert!(
        h.is_empty(),
        "an untrusted peer's forwarding headers go: {h:?}"
    );
    assert!(!original_https(&h));
    let mut h = forged();
    let o = p.apply(peer("10.0.0.5:1"), &mut h);
    assert_eq!(o.client, ip("203.0.113.9"));
    assert!(original_https(&h));
    assert_eq!(h.len(), 1, "{h:?}");
}

#[test]
fn cidrs_parse_with_or_without_a_prefix() {
    assert_eq!(
        "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "10.1.2.3".parse::<Cidr>().unwrap().to_string(),
        "10.1.2.3/32"
    );
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
    assert!(e.contains("10.0.0.0/33"), "{e}");
    assert!("ten".parse::<Cidr>().is_err());
}

#[test]
fn http2_requests_get_their_authority_as_host() {
    let mut req = axum::http::Request::get("http://reg.example:5000/v2/")
        .body(())
        .unwrap();
    ensure_host(&mut req);
    assert_eq!(req.headers()["host"], "reg.example:5000");
    // A Host of its own stays.
    let mut req = axum::http::Request::get("http://other/v2/")
        .header("host", "reg.example")
        .body(())
        .unwrap();
    ensure_host(&mut req);
    assert_eq!(req.headers()["host"], "reg.example");
    let mut req = axum::http::Request::get("/v2/").body(()).unwrap();
    ensure_host(&mut req);
    assert!(req.headers().get("host").is_none());
}
