//! Who is asking: the client address the login limits count against.
//!
//! By default (`TRUSTED_PROXY_HOPS=0`) it is the connection's peer, and every forwarding header
//! is ignored: anyone who reaches the port directly could write one. Behind proxies the
//! operator trusts, it is what the outermost trusted proxy saw, read from the header they write
//! (`CLIENT_ADDRESS_HEADER`). Addresses are grouped the way they are handed out: an IPv6 client
//! controls at least a /64, so all of it is one client; an IPv4 address reached through the
//! dual-stack listener (`::ffff:a.b.c.d`) is that IPv4 address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::AppState;
use crate::config::{ClientAddressHeader, ClientAddressRule};

/// The client of a request, as the login limits key it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(client_address(
            &state.config.client_address,
            &parts.headers,
            peer,
        ))
    }
}

/// The client of a request from `peer` with `headers`, under `rule`. Without a usable
/// forwarded address (too few entries, or not an address) the peer is the client: a request
/// that did not come through every trusted proxy cannot be trusted to say who sent it.
pub fn client_address(
    rule: &ClientAddressRule,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> ClientAddress {
    let forwarded = match (rule.trusted_proxy_hops, rule.header) {
        (0, _) => None,
        (hops, ClientAddressHeader::XForwardedFor) => {
            nth_from_right(headers, "x-forwarded-for", hops as usize)
        }
        (_, ClientAddressHeader::XRealIp) => headers
            .get_all("x-real-ip")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(parse_address),
    };
    let address = forwarded
        .or(peer)
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    ClientAddress(group(address))
}

/// The `n`th entry from the right (1 = the last) of the comma-separated lists in every `name`
/// header, in order, parsed as an address.
fn nth_from_right(headers: &HeaderMap, name: &str, n: usize) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for value in headers.get_all(name) {
        // A value that is not visible ASCII was not written by a proxy we trust.
        entries.extend(value.to_str().ok()?.split(','));
    }
    let index = entries.len().checked_sub(n)?;
    parse_address(entries[index])
}

/// An address as proxies write it: bare, with a port, or bracketed IPv6 with or without one.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })
}

/// IPv4-mapped IPv6 as IPv4; other IPv6 addresses as their /64.
fn group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PEER: &str = "203.0.113.9";

    fn rule(hops: u32, header: ClientAddressHeader) -> ClientAddressRule {
        ClientAddressRule {
            trusted_proxy_hops: hops,
            header,
        }
    }

    fn from(rule: &ClientAddressRule, headers: &[(&'static str, &'static str)]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        client_address(rule, &map, Some(PEER.parse().unwrap()))
            .0
            .to_string()
    }

    #[test]
    fn with_no_trusted_proxy_the_peer_is_the_client_whatever_the_headers_say() {
        let direct = rule(0, ClientAddressHeader::XForwardedFor);
        assert_eq!(from(&direct, &[]), PEER);
        assert_eq!(
            from(
                &direct,
                &[
                    ("x-forwarded-for", "198.51.100.1"),
                    ("x-real-ip", "198.51.100.2")
                ]
            ),
            PEER
        );
    }

    #[test]
    fn forwarded_for_is_read_as_many_entries_from_the_right_as_there_are_trusted_proxies() {
        let one = rule(1, ClientAddressHeader::XForwardedFor);
        let two = rule(2, ClientAddressHeader::XForwardedFor);
        // A forged first entry, then what the two proxies appended.
        let headers = [
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
        ];
        assert_eq!(from(&one, &headers), "10.0.0.2");
        assert_eq!(from(&two, &headers), "198.51.100.7");
        // Fewer entries than trusted proxies: the request bypassed them.
        assert_eq!(from(&two, &[("x-forwarded-for", "198.51.100.7")]), PEER);
        assert_eq!(from(&one, &[]), PEER);
        // Not an address: the peer.
        assert_eq!(from(&one, &[("x-forwarded-for", "unknown")]), PEER);
    }

    #[test]
    fn forwarded_addresses_may_carry_ports_and_brackets() {
        let one = rule(1, ClientAddressHeader::XForwardedFor);
        assert_eq!(
            from(&one, &[("x-forwarded-for", "198.51.100.7:4711")]),
            "198.51.100.7"
        );
        assert_eq!(
            from(&one, &[("x-forwarded-for", "[2001:db8::1]:443")]),
            "2001:db8::"
        );
        assert_eq!(
            from(&one, &[("x-forwarded-for", "[2001:db8::1]")]),
            "2001:db8::"
        );
    }

    #[test]
    fn real_ip_is_read_from_the_one_trusted_proxy() {
        let real_ip = rule(1, ClientAddressHeader::XRealIp);
        assert_eq!(
            from(
                &real_ip,
                &[
                    ("x-real-ip", "198.51.100.2"),
                    ("x-forwarded-for", "6.6.6.6")
                ]
            ),
            "198.51.100.2"
        );
        assert_eq!(from(&real_ip, &[("x-forwarded-for", "6.6.6.6")]), PEER);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_mapped_ipv4_is_ipv4() {
        let one = rule(1, ClientAddressHeader::XForwardedFor);
        assert_eq!(
            from(
                &one,
                &[("x-forwarded-for", "2001:db8:1:2:aaaa:bbbb:cccc:dddd")]
            ),
            "2001:db8:1:2::"
        );
        assert_eq!(
            from(&one, &[("x-forwarded-for", "2001:db8:1:2::ffff")]),
            from(&one, &[("x-forwarded-for", "2001:db8:1:2:1::")])
        );
        assert_ne!(
            from(&one, &[("x-forwarded-for", "2001:db8:1:2::1")]),
            from(&one, &[("x-forwarded-for", "2001:db8:1:3::1")])
        );
        assert_eq!(
            client_address(
                &rule(0, ClientAddressHeader::XForwardedFor),
                &HeaderMap::new(),
                Some("::ffff:192.0.2.1".parse().unwrap())
            )
            .0
            .to_string(),
            "192.0.2.1"
        );
    }
}
