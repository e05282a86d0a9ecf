//! gRPC on the wire, as every side of the gateway sees it: header names, the 5-byte frame
//! header (scanned in passing for size limits, or split off a buffer for transcoding),
//! `grpc-timeout` values, `grpc-status`/`grpc-message`, and the gRPC → HTTP status mapping.

use std::cell::RefCell;
use std::thread::LocalKey;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode};
use tonic_msgpack_core::wire::FRAME_HEADER_LEN;

pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Headers that belong to one connection and are never forwarded.
pub(crate) const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
];

/// The client's address, put in every request's extensions by the listener: the one source of
/// `x-forwarded-for` / `forwarded` (whatever the client sent is replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) std::net::SocketAddr);

/// A frame header: the compression flag and the payload length.
fn frame_header(header: [u8; FRAME_HEADER_LEN]) -> (bool, usize) {
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    (header[0] != 0, len as usize)
}

/// Tracks frame boundaries across chunks without buffering payloads (passthrough limits).
#[derive(Debug, Default)]
pub(crate) struct FrameScanner {
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    remaining: usize,
}

impl FrameScanner {
    /// Scans `data`; on a frame longer than `max`, the offset in `data` where its header starts.
    pub(crate) fn scan(&mut self, data: &[u8], max: usize) -> Result<(), usize> {
        self.scan_headers(data, |_, len| len <= max)
    }

    /// Scans `data`, asking `accept(flags, length)` about each frame header as it completes; on
    /// a header it refuses, the offset in `data` where that header starts (0 when it began in an
    /// earlier chunk).
    pub(crate) fn scan_headers(
        &mut self,
        data: &[u8],
        mut accept: impl FnMut(u8, usize) -> bool,
    ) -> Result<(), usize> {
        let mut pos = 0;
        while pos < data.len() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() - pos);
                self.remaining -= take;
                pos += take;
                continue;
            }
            let frame_start = pos.saturating_sub(self.header_len);
            let take = (FRAME_HEADER_LEN - self.header_len).min(data.len() - pos);
            self.header[self.header_len..self.header_len + take]
                .copy_from_slice(&data[pos..pos + take]);
            self.header_len += take;
            pos += take;
            if self.header_len == FRAME_HEADER_LEN {
                self.header_len = 0;
                let (_, len) = frame_header(self.header);
                if !accept(self.header[0], len) {
                    return Err(frame_start);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }

    /// Whether the bytes scanned so far end between two frames (no partial header or payload).
    pub(crate) fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }
}

/// Why [`FrameReader::next`] cannot return a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The declared length is over the limit.
    #[error("response message larger than the gateway's limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The compression flag is set (the gateway decodes only uncompressed messages).
    #[error("upstream sent a compressed message; REST needs uncompressed replies")]
    Compressed,
}

/// Splits whole messages off a buffer of frames (transcoding: REST and gRPC-Web).
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    pub(crate) buf: BytesMut,
}

impl FrameReader {
    /// The next complete message, `None` when more bytes are needed.
    pub(crate) fn next(&mut self, max: usize) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = self.buf.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let mut fixed = [0; FRAME_HEADER_LEN];
        fixed.copy_from_slice(header);
        let (compressed, len) = frame_header(fixed);
        if len > max {
            return Err(FrameError::TooLarge { max });
        }
        if compressed {
            return Err(FrameError::Compressed);
        }
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(FRAME_HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// A `grpc-timeout` value for `timeout`, in milliseconds (at most 8 digits).
pub(crate) fn grpc_timeout_value(timeout: Duration) -> HeaderValue {
    // Calls that get a timeout from the gateway mostly get the same one (a configured default
    // or maximum).
    thread_local! {
        static LAST: RefCell<Option<(u128, HeaderValue)>> = const { RefCell::new(None) };
    }
    let millis = timeout.as_millis().min(99_999_999);
    let value = kept_for_last(&LAST, millis, |millis| {
        HeaderValue::from_maybe_shared(Bytes::from(format!("{millis}m"))).ok()
    });
    value.unwrap_or(HeaderValue::from_static("99999999m"))
}

/// `make(key)`, kept in `last` for the next call with the same `key`: header values a call
/// would otherwise write anew (a clone of a `HeaderValue` shares its bytes). One value per
/// thread, for the last key asked.
pub(crate) fn kept_for_last<K: Copy + PartialEq + 'static, V: Clone + 'static>(
    last: &'static LocalKey<RefCell<Option<(K, V)>>>,
    key: K,
    make: impl FnOnce(K) -> Option<V>,
) -> Option<V> {
    last.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return make(key);
        };
        if let Some((kept, value)) = last.as_ref()
            && *kept == key
        {
            return Some(value.clone());
        }
        let value = make(key)?;
        *last = Some((key, value.clone()));
        Some(value)
    })
}

/// Parses a `grpc-timeout` header value (`<up to 8 digits><H|M|S|m|u|n>`).
pub(crate) fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let bytes = value.as_bytes();
    let (&unit, digits) = bytes.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Decodes `%XX` escapes (and `+` as a space in queries); `None` when not valid UTF-8.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let decoded = if plus_is_space && text.contains('+') {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .ok()?
            .into_owned()
    } else {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?
            .into_owned()
    };
    Some(decoded)
}

/// The gRPC status in `headers`: code and percent-decoded message.
pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<(i32, String)> {
    let code = headers
        .get(GRPC_STATUS)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .and_then(|value| value.parse::<i32>().ok())?;
    let message = headers
        .get(GRPC_MESSAGE)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .map(|value| percent_decode(value, false).unwrap_or_else(|| value.to_owned()))
        .unwrap_or_default();
    Some((code, message))
}

/// The HTTP status of a gRPC code, as grpc-gateway maps them.
pub(crate) fn http_status(code: i32) -> StatusCode {
    match code {
        0 => StatusCode::OK,
        1 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        4 => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        8 => StatusCode::TOO_MANY_REQUESTS,
        12 => StatusCode::NOT_IMPLEMENTED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut frame = vec![0];
        frame.extend(len.to_be_bytes());
        frame.extend(std::iter::repeat_n(7, len as usize));
        frame
    }

    #[test]
    fn scanner_follows_frames_across_chunks() {
        let mut data = frame(3);
        data.extend(frame(10));
        data.extend(frame(2));
        for split in 0..data.len() {
            let mut scanner = FrameScanner::default();
            assert_eq!(scanner.scan(&data[..split], 10), Ok(()));
            assert_eq!(scanner.scan(&data[split..], 10), Ok(()));
        }
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.scan(&data, 9), Err(8));
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.scan(&data[..10], 9), Ok(()));
        assert_eq!(scanner.scan(&data[10..], 9), Err(0));
    }

    #[test]
    fn reader_splits_whole_messages() {
        let mut reader = FrameReader::default();
        reader.buf.extend_from_slice(&frame(3)[..4]);
        assert_eq!(reader.next(10), Ok(None));
        reader.buf.extend_from_slice(&frame(3)[4..]);
        reader.buf.extend_from_slice(&frame(11));
        assert_eq!(reader.next(10).map(|m| m.map(|m| m.len())), Ok(Some(3)));
        assert_eq!(reader.next(10), Err(FrameError::TooLarge { max: 10 }));
        let mut compressed = FrameReader::default();
        compressed.buf.extend_from_slice(&[1, 0, 0, 0, 0]);
        assert_eq!(compressed.next(10), Err(FrameError::Compressed));
    }

    #[test]
    fn grpc_timeout_values() {
        let parse = |s: &'static str| parse_grpc_timeout(&HeaderValue::from_static(s));
        assert_eq!(parse("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("1500000u"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("m"), None);
        assert_eq!(parse("123456789m"), None);
        assert_eq!(parse("12x"), None);
        assert_eq!(grpc_timeout_value(Duration::from_secs(3)), "3000m");
        // The kept value answers only for its own timeout.
        assert_eq!(grpc_timeout_value(Duration::from_secs(3)), "3000m");
        assert_eq!(grpc_timeout_value(Duration::from_millis(2500)), "2500m");
        assert_eq!(grpc_timeout_value(Duration::from_secs(3)), "3000m");
        assert_eq!(
            grpc_timeout_value(Duration::from_secs(1 << 40)),
            "99999999m"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", false).as_deref(), Some("a b+c"));
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%2B", true).as_deref(), Some("+"));
        assert_eq!(percent_decode("%ff", false), None);
    }

    /// `data` cut at `cuts` (indexes into it, in any order).
    fn chunks(data: &[u8], cuts: &[proptest::sample::Index]) -> Vec<Vec<u8>> {
        let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
        at.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for end in at.into_iter().chain([data.len()]) {
            out.push(data[start..end].to_vec());
            start = end;
        }
        out
    }

    /// Random bytes, or frames with random flags and lengths (and a random tail), so the
    /// interesting cases are common.
    fn frame_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            (
                proptest::collection::vec((any::<u8>(), 0u32..64), 0..6),
                proptest::collection::vec(any::<u8>(), 0..8),
            )
                .prop_map(|(frames, tail)| {
                    let mut out = Vec::new();
                    for (flags, len) in frames {
                        out.push(flags);
                        out.extend(len.to_be_bytes());
                        out.extend(std::iter::repeat_n(7, len as usize));
                    }
                    out.extend(tail);
                    out
                }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The scanner never panics, and cutting the input anywhere changes nothing: the same
        /// frame is refused, or none, and it ends on a boundary exactly when the whole does.
        #[test]
        fn scanner_ignores_chunking(
            data in frame_bytes(),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
            max in 0usize..80,
        ) {
            let mut whole = FrameScanner::default();
            let whole_result = whole.scan(&data, max);
            let mut chunked = FrameScanner::default();
            let mut offset = 0;
            let mut chunked_result = Ok(());
            for chunk in chunks(&data, &cuts) {
                if let Err(at) = chunked.scan(&chunk, max) {
                    // The refused header starts at or before this chunk's offset `at`.
                    chunked_result = Err(offset + at);
                    break;
                }
                offset += chunk.len();
            }
            match (whole_result, chunked_result) {
                (Ok(()), Ok(())) => proptest::prop_assert_eq!(whole.at_boundary(), chunked.at_boundary()),
                (Err(at), Err(chunked_at)) => proptest::prop_assert!(chunked_at >= at && chunked_at <= at + FRAME_HEADER_LEN),
                (whole, chunked) => proptest::prop_assert!(false, "whole {whole:?}, chunked {chunked:?}"),
            }
        }

        /// The reader never panics and never returns more than it was given, nor a message over
        /// the limit; what it keeps is at most what it was given.
        #[test]
        fn reader_output_is_bounded(
            data in frame_bytes(),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
            max in 0usize..80,
        ) {
            let mut reader = FrameReader::default();
            let (mut given, mut returned) = (0, 0);
            'feed: for chunk in chunks(&data, &cuts) {
                given += chunk.len();
                reader.buf.extend_from_slice(&chunk);
                loop {
                    match reader.next(max) {
                        Ok(Some(message)) => {
                            proptest::prop_assert!(message.len() <= max);
                            returned += message.len() + FRAME_HEADER_LEN;
                        }
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                proptest::prop_assert!(returned + reader.buf.len() <= given);
            }
            proptest::prop_assert!(returned <= data.len());
        }
    }
}
