//! What the schema-less conversion writes: the JSON form of floats and bytes, and timestamps
//! (ext −1) through `tonic_msgpack::wkt`, so this tool reads them exactly as services do.

use anyhow::Context;
use base64::Engine as _;
use tonic_msgpack::wkt::{TIMESTAMP_EXT, Timestamp};

use super::value::Mp;

pub(super) use tonic_msgpack_gateway::dynamic::float_json;

/// Bytes as JSON text: standard base64 with padding.
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The timestamp in an ext −1 payload (4, 8 or 12 bytes).
pub(super) fn timestamp_from_ext(data: &[u8]) -> anyhow::Result<Timestamp> {
    let bytes = Mp::Ext(TIMESTAMP_EXT, data.to_vec()).encode();
    rmp_serde::from_slice(&bytes).context("invalid timestamp ext")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_come_from_the_ext_forms() {
        let epoch = timestamp_from_ext(&[0, 0, 0, 0]).expect("32-bit form");
        assert_eq!(epoch, Timestamp::new(0, 0));
        let before = Timestamp::new(-5, 7);
        let bytes = rmp_serde::to_vec(&before).expect("encode");
        let Mp::Ext(TIMESTAMP_EXT, data) = Mp::decode(&bytes).expect("decode") else {
            panic!("a timestamp is ext -1");
        };
        assert_eq!(data.len(), 12);
        assert_eq!(timestamp_from_ext(&data).expect("decode"), before);
        assert!(timestamp_from_ext(&[1, 2, 3]).is_err());
        // Nanoseconds of 10⁹ or more in the 64-bit form.
        let packed = (1_000_000_000u64 << 34).to_be_bytes();
        assert!(timestamp_from_ext(&packed).is_err());
    }
}
