//! Writing the few values the access log and span export put in text, without `core::fmt`
//! (and error chains for the gateway's own log).
//!
//! Measured with callgrind: formatting a `SocketAddr`, a `Uri` and an RFC 3339 time through
//! `fmt` was most of an access log line's cost (about 13,000 instructions a line) and half of a
//! span's export. These write bytes straight into a buffer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use http::Uri;

/// An upstream endpoint as the access log and spans name it, rendered once per connection.
#[derive(Debug)]
pub(crate) struct EndpointName {
    /// The endpoint's URI as configured or resolved (`http://10.0.0.5:50051/`): a span
    /// attribute (the access log writes `json`).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    text: Box<str>,
    /// `text` as a JSON string, for the access log.
    json: Box<str>,
    // The host and port are span attributes only.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    host: Option<Box<str>>,
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    port: Option<u16>,
}

impl EndpointName {
    /// The name of `endpoint`.
    pub(crate) fn new(endpoint: &Uri) -> Arc<EndpointName> {
        let text = endpoint.to_string();
        Arc::new(EndpointName {
            json: json_string(&text),
            text: text.into(),
            host: endpoint.host().map(Box::from),
            port: endpoint.port_u16(),
        })
    }

    /// The endpoint's URI.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The endpoint's URI as a JSON string (quoted and escaped).
    pub(crate) fn as_json(&self) -> &str {
        &self.json
    }

    /// The URI's host.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The URI's port, when it names one.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }
}

/// `error` and its sources, `: `-separated (hyper's `http2 error` alone does not say which).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// Appends `ip` as `Display` writes it (dotted quad; IPv6 through `fmt`, which is rarer).
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            // Gathered first, to be appended in one copy (an append per octet and dot was
            // three times the instructions).
            let mut text = [0u8; 15];
            let mut len = 0;
            for (index, octet) in ip.octets().into_iter().enumerate() {
                if index > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(ip) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{ip}");
        }
    }
}

/// Appends `addr` as `Display` writes it (`1.2.3.4:5`, `[::1]:5`).
pub(crate) fn push_socket_addr(out: &mut Vec<u8>, addr: SocketAddr, ips: &mut Memo<IpAddr>) {
    let v6 = addr.is_ipv6();
    if v6 {
        out.push(b'[');
    }
    out.extend_from_slice(ips.text(addr.ip(), push_ip));
    if v6 {
        out.push(b']');
    }
    out.push(b':');
    push_u64(out, u64::from(addr.port()));
}

/// `value` as a JSON string, quoted and escaped: made once for names the access log writes on
/// every line (escaping them per line was a quarter of a line's instructions).
pub(crate) fn json_string(value: &str) -> Box<str> {
    // A string always serializes.
    serde_json::to_string(value).unwrap_or_default().into()
}

/// Appends `value` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// The text of the last key written, made again only when the key changes: the lines of a log
/// and the spans of a batch mostly repeat the second of their time and their client's address
/// (callgrind: an access log line's time and address were about 350 of its 1,100 instructions).
#[derive(Debug)]
pub(crate) struct Memo<K> {
    key: Option<K>,
    text: Vec<u8>,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Memo {
            key: None,
            text: Vec::new(),
        }
    }
}

impl<K: PartialEq + Copy> Memo<K> {
    /// The text of `key`, written by `write` unless it was the last key asked for.
    pub(crate) fn text(&mut self, key: K, write: impl FnOnce(&mut Vec<u8>, K)) -> &[u8] {
        if self.key != Some(key) {
            self.text.clear();
            write(&mut self.text, key);
            self.key = Some(key);
        }
        &self.text
    }
}

/// Appends `time` in RFC 3339, UTC, with microseconds: `2023-11-14T22:13:20.123456Z`; the date
/// and time of day come from `seconds` while they stay the same.
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, time: SystemTime, seconds: &mut Memo<u64>) {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    out.extend_from_slice(seconds.text(since.as_secs(), push_date_time));
    let mut fraction = *b".000000Z";
    digits(&mut fraction[1..7], u64::from(since.subsec_micros()));
    out.extend_from_slice(&fraction);
}

/// Appends the UTC date and time of day `secs` after the epoch: `2023-11-14T22:13:20`.
fn push_date_time(out: &mut Vec<u8>, secs: u64) {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm; the gateway has no
    // date crate otherwise).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00";
    digits(&mut text[0..4], year.clamp(0, 9_999) as u64);
    digits(&mut text[5..7], month as u64);
    digits(&mut text[8..10], day as u64);
    digits(&mut text[11..13], rem / 3_600);
    digits(&mut text[14..16], rem / 60 % 60);
    digits(&mut text[17..19], rem % 60);
    out.extend_from_slice(&text);
}

/// Writes the low `slot.len()` decimal digits of `value` into `slot`, zero-padded.
fn digits(slot: &mut [u8], mut value: u64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        for addr in [
            "1.2.3.4:5",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "127.0.0.2:50051",
            "10.99.100.109:1",
            "9.10.200.250:80",
            "[::1]:443",
            "[2001:db8::8a2e:370:7334]:8080",
        ] {
            let addr: SocketAddr = addr.parse().expect("address");
            let mut ips = Memo::default();
            for _ in 0..2 {
                let written = text(|out| push_socket_addr(out, addr, &mut ips));
                assert_eq!(written, addr.to_string());
            }
            assert_eq!(text(|out| push_ip(out, addr.ip())), addr.ip().to_string());
        }
    }

    #[test]
    fn times_are_rfc3339_with_microseconds() {
        let cases = [
            (1_700_000_000_123_456, "2023-11-14T22:13:20.123456Z"),
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400_000_001, "2000-02-29T00:00:00.000001Z"),
            (4_102_444_799_999_999, "2099-12-31T23:59:59.999999Z"),
        ];
        let mut seconds = Memo::default();
        for (micros, expected) in cases {
            let time = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            assert_eq!(text(|out| push_rfc3339(out, time, &mut seconds)), expected);
            // Later in the same second: the date and time of day from the memo.
            let later = SystemTime::UNIX_EPOCH
                + Duration::from_micros(micros / 1_000_000 * 1_000_000 + 999_999);
            let same_second = format!("{}999999Z", &expected[..20]);
            assert_eq!(
                text(|out| push_rfc3339(out, later, &mut seconds)),
                same_second
            );
        }
    }

    #[test]
    fn a_memo_writes_again_only_for_a_new_key() {
        let mut memo = Memo::default();
        let mut writes = 0;
        let mut ask = |memo: &mut Memo<u64>, key| {
            memo.text(key, |out, key| {
                writes += 1;
                push_u64(out, key);
            })
            .to_vec()
        };
        assert_eq!(ask(&mut memo, 7), b"7");
        assert_eq!(ask(&mut memo, 7), b"7");
        assert_eq!(ask(&mut memo, 12), b"12");
        assert_eq!(ask(&mut memo, 7), b"7");
        assert_eq!(writes, 3);
    }

    #[test]
    fn endpoint_names_keep_the_uri_and_its_parts() {
        let uri: Uri = "http://10.0.0.5:50051".parse().expect("uri");
        let name = EndpointName::new(&uri);
        assert_eq!(name.as_str(), "http://10.0.0.5:50051/");
        assert_eq!(name.host(), Some("10.0.0.5"));
        assert_eq!(name.port(), Some(50051));
    }
}
