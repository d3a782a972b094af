//! The outbound guard: which addresses and URLs Patchbay may call on a tenant's
//! behalf, by classifying them. Pure functions, used twice: on a URL's literal form (at
//! validation, handed to the domain's destination rule as a [`UrlGuard`], and before
//! every request, because hyper never asks a resolver about an IP literal) and on every
//! address a name resolves to, at connect time (`client.rs`), so that names pointing at
//! loopback or a private network, and DNS rebinding, are caught where the connection is
//! made.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

use crate::domain::destinations::UrlGuard;

/// Whether private destinations are allowed (`--allow-private-outbound`): for tests,
/// local fakes and on-premise providers. Link-local stays refused either way: it holds
/// the cloud metadata service (169.254.169.254).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressPolicy {
    PublicOnly,
    AllowPrivate,
}

impl AddressPolicy {
    /// The literal check of a tenant's URL under this policy, as the domain's
    /// destination rule (`domain::destinations`) takes it.
    pub fn url_guard(self) -> UrlGuard {
        match self {
            AddressPolicy::PublicOnly => PUBLIC_ONLY,
            AddressPolicy::AllowPrivate => ALLOW_PRIVATE,
        }
    }
}

/// A tenant URL's literal check with public destinations only.
pub const PUBLIC_ONLY: UrlGuard = UrlGuard(|url| tenant_url(url, AddressPolicy::PublicOnly));
/// A tenant URL's literal check with private destinations allowed.
pub const ALLOW_PRIVATE: UrlGuard = UrlGuard(|url| tenant_url(url, AddressPolicy::AllowPrivate));

fn tenant_url(url: &str, policy: AddressPolicy) -> Result<(), String> {
    check_url(url, Origin::Tenant, policy)
        .map(drop)
        .map_err(|refusal| refusal.0)
}

/// Who chose a URL: a tenant (in a config) must use https; the operator (base URLs) may
/// use http.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Tenant,
    Operator,
}

/// What kind of address a refused one is, as named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    UniqueLocal,
    Multicast,
    Unspecified,
    Broadcast,
    Reserved,
    /// A cloud provider's instance metadata or host service outside link-local (AWS's
    /// IPv6 IMDS, Alibaba's, Azure's WireServer): refused even with private
    /// destinations allowed.
    CloudMetadata,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::SharedCgnat => "a carrier-grade NAT address",
            AddressClass::UniqueLocal => "a unique-local address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved address",
            AddressClass::CloudMetadata => "a cloud metadata address",
        })
    }
}

/// Why a destination is refused; the message names the address or host, never a path
/// or query (which may carry a credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The class of a non-public address, seeing through the IPv6 forms that carry an IPv4
/// address (mapped, compatible, translated, NAT64, 6to4); `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// Metadata services that do not sit in link-local ranges.
const CLOUD_METADATA_V4: &[Ipv4Addr] = &[
    // Alibaba Cloud
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure WireServer
    Ipv4Addr::new(168, 63, 129, 16),
];
const CLOUD_METADATA_V6: &[Ipv6Addr] = &[
    // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    // Google Cloud metadata over IPv6
    Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254),
];

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    Some(if CLOUD_METADATA_V4.contains(&ip) {
        AddressClass::CloudMetadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (b & 0b1100_0000) == 64 {
        AddressClass::SharedCgnat
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if a == 0 {
        // 0.0.0.0/8, "this network": 0.0.0.0 reaches the local host.
        AddressClass::Unspecified
    } else if a >= 240
        // 192.0.0.0/24 (IETF protocol assignments), 198.18.0.0/15 (benchmarking)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
    {
        AddressClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let segments = ip.segments();
    let first = segments[0];
    Some(if CLOUD_METADATA_V6.contains(&ip) {
        AddressClass::CloudMetadata
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if (first & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if (first & 0xffc0) == 0xfec0 {
        // Site-local (deprecated), private in practice.
        AddressClass::Private
    } else if (first & 0xfe00) == 0xfc00 {
        AddressClass::UniqueLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if segments[..3] == [0x64, 0xff9b, 1] {
        // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): a local network's translator.
        AddressClass::Private
    } else if segments[..2] == [0x2001, 0] || segments[..4] == [0x100, 0, 0, 0] {
        // Teredo (2001::/32, an obfuscated IPv4 inside) and discard-only (100::/64).
        AddressClass::Reserved
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 address stands for, in the forms that route to one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last32),
        // ::ffff:0:a.b.c.d (translated, RFC 2765)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(last32),
        // ::a.b.c.d (compatible, deprecated); :: and ::1 are themselves
        [0, 0, 0, 0, 0, 0, _, _] if !(ip.is_unspecified() || ip.is_loopback()) => Some(last32),
        // 64:ff9b::/96 (NAT64 well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last32),
        // 2002:aabb:ccdd::/48 (6to4)
        [0x2002, hi, lo, _, _, _, _, _] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// Whether `ip` may be called under `policy`; the refusal names the address.
pub fn check_address(ip: IpAddr, policy: AddressPolicy) -> Result<(), Refusal> {
    match classify(ip) {
        None => Ok(()),
        Some(class @ (AddressClass::LinkLocal | AddressClass::CloudMetadata)) => {
            Err(refused_address(ip, class))
        }
        Some(_) if policy == AddressPolicy::AllowPrivate => Ok(()),
        Some(class) => Err(refused_address(ip, class)),
    }
}

fn refused_address(ip: IpAddr, class: AddressClass) -> Refusal {
    Refusal(format!(
        "{ip} is {class}; Patchbay calls providers on public addresses only"
    ))
}

/// Checks a URL by its literal form only (no DNS lookup): the scheme, an IP literal
/// after normalisation (`2130706433`, `0x7f000001`, `0177.0.0.1` and `127.1` are all
/// 127.0.0.1 to the URL parser, as to the connector), `localhost`, and credentials in
/// the URL. Returns the parsed URL.
pub fn check_url(text: &str, origin: Origin, policy: AddressPolicy) -> Result<Url, Refusal> {
    let url = Url::parse(text.trim()).map_err(|_| Refusal("is not a valid URL".to_owned()))?;
    match (url.scheme(), origin, policy) {
        ("https", _, _) => {}
        ("http", Origin::Operator, _) | ("http", Origin::Tenant, AddressPolicy::AllowPrivate) => {}
        ("http", Origin::Tenant, AddressPolicy::PublicOnly) => {
            return Err(Refusal(
                "must be an https URL (plain http only with --allow-private-outbound)".to_owned(),
            ));
        }
        _ => return Err(Refusal("must be an http or https URL".to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal("must not carry credentials".to_owned()));
    }
    match url.host() {
        None => return Err(Refusal("has no host".to_owned())),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), policy)?,
        Some(url::Host::Domain(name)) => check_name(name, policy)?,
    }
    Ok(url)
}

/// `localhost` and its subdomains always mean this machine (RFC 6761).
fn check_name(name: &str, policy: AddressPolicy) -> Result<(), Refusal> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local = name == "localhost" || name.ends_with(".localhost");
    if local && policy == AddressPolicy::PublicOnly {
        return Err(Refusal(format!(
            "{name} is this machine; Patchbay calls providers on public addresses only"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn every_non_public_range_is_classified() {
        for (address, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.127.255.255", AddressClass::SharedCgnat),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("240.0.0.1", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("febf::1", AddressClass::LinkLocal),
            ("fc00::1", AddressClass::UniqueLocal),
            ("fd12:3456::1", AddressClass::UniqueLocal),
            ("ff02::1", AddressClass::Multicast),
            ("fec0::1", AddressClass::Private),
            // IPv4 inside IPv6
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:0:10.0.0.1", AddressClass::Private),
            ("::192.168.0.1", AddressClass::Private),
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("64:ff9b:1::a9fe:a9fe", AddressClass::Private),
            ("192.0.0.8", AddressClass::Reserved),
            ("198.19.1.1", AddressClass::Reserved),
            ("2001:0:4136:e378::1", AddressClass::Reserved),
            ("100::1", AddressClass::Reserved),
            ("100.100.100.200", AddressClass::CloudMetadata),
            ("168.63.129.16", AddressClass::CloudMetadata),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            ("fd20:ce::254", AddressClass::CloudMetadata),
            ("::ffff:100.100.100.200", AddressClass::CloudMetadata),
            ("2002:7f00:1::", AddressClass::Loopback),
            ("2002:a9fe:a9fe::1", AddressClass::LinkLocal),
        ] {
            assert_eq!(classify(ip(address)), Some(class), "{address}");
        }
        for public in [
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "157.240.1.35",
            "2a03:2880:f10c:83:face:b00c:0:25de",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn private_addresses_are_allowed_with_the_flag_but_link_local_never() {
        assert!(check_address(ip("127.0.0.1"), AddressPolicy::PublicOnly).is_err());
        assert!(check_address(ip("127.0.0.1"), AddressPolicy::AllowPrivate).is_ok());
        assert!(check_address(ip("10.0.0.1"), AddressPolicy::AllowPrivate).is_ok());
        for metadata in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            let refusal = check_address(ip(metadata), AddressPolicy::AllowPrivate)
                .expect_err("link-local stays refused");
            assert!(refusal.0.contains("link-local"), "{refusal}");
        }
        for metadata in ["fd00:ec2::254", "100.100.100.200", "168.63.129.16"] {
            let refusal = check_address(ip(metadata), AddressPolicy::AllowPrivate)
                .expect_err("metadata stays refused");
            assert!(refusal.0.contains("metadata"), "{refusal}");
        }
        assert!(check_address(ip("8.8.8.8"), AddressPolicy::PublicOnly).is_ok());
    }

    #[test]
    fn numeric_host_forms_are_normalised_before_the_check() {
        for (url, why) in [
            ("https://127.0.0.1/", "127.0.0.1 is a loopback"),
            ("https://2130706433/", "127.0.0.1 is a loopback"),
            ("https://0x7f000001/", "127.0.0.1 is a loopback"),
            ("https://0177.0.0.1/", "127.0.0.1 is a loopback"),
            ("https://127.1/", "127.0.0.1 is a loopback"),
            ("https://[::1]/", "::1 is a loopback"),
            ("https://[::ffff:7f00:1]/", "loopback"),
            ("https://localhost:3000/", "localhost is this machine"),
            ("https://LocalHost./", "localhost is this machine"),
            ("https://api.localhost/", "api.localhost is this machine"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://10.0.0.5/", "private"),
        ] {
            let refusal = check_url(url, Origin::Tenant, AddressPolicy::PublicOnly).expect_err(url);
            assert!(refusal.0.contains(why), "{url}: {why:?} in {refusal}");
            assert!(!refusal.0.contains("meta-data"), "no path in {refusal}");
        }
        assert!(
            check_url(
                "https://chat.example.com/app",
                Origin::Tenant,
                AddressPolicy::PublicOnly
            )
            .is_ok()
        );
    }

    #[test]
    fn tenants_must_use_https_unless_private_destinations_are_allowed() {
        let plain = "http://chat.example.com";
        assert!(check_url(plain, Origin::Tenant, AddressPolicy::PublicOnly).is_err());
        assert!(check_url(plain, Origin::Tenant, AddressPolicy::AllowPrivate).is_ok());
        assert!(check_url(plain, Origin::Operator, AddressPolicy::PublicOnly).is_ok());
        for bad in ["ftp://chat.example.com", "file:///etc/passwd", "not a url"] {
            assert!(check_url(bad, Origin::Tenant, AddressPolicy::AllowPrivate).is_err());
        }
        assert!(
            check_url(
                "https://user:pw@chat.example.com",
                Origin::Tenant,
                AddressPolicy::PublicOnly
            )
            .is_err()
        );
        assert!(
            check_url(
                "http://127.0.0.1:9000",
                Origin::Tenant,
                AddressPolicy::AllowPrivate
            )
            .is_ok()
        );
    }
}
