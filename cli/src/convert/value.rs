//! The MessagePack value tree both conversions work on, with its encoder and a strict
//! decoder (exactly one value per frame, as wire rule 2 says).

use anyhow::{Context, anyhow, bail};

/// One MessagePack value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mp {
    Nil,
    Bool(bool),
    /// A negative integer (non-negative ones are `UInt`).
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

impl Mp {
    /// An integer in the form the decoder gives back: `UInt` when non-negative.
    pub(crate) fn int(value: i64) -> Mp {
        u64::try_from(value).map_or(Mp::Int(value), Mp::UInt)
    }

    /// The MessagePack encoding (smallest int and length forms).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        use rmp::encode;
        // Writing to a Vec cannot fail: the results are ignored on purpose.
        match self {
            Mp::Nil => {
                let _ = encode::write_nil(out);
            }
            Mp::Bool(value) => {
                let _ = encode::write_bool(out, *value);
            }
            Mp::Int(value) => {
                let _ = encode::write_sint(out, *value);
            }
            Mp::UInt(value) => {
                let _ = encode::write_uint(out, *value);
            }
            Mp::F32(value) => {
                let _ = encode::write_f32(out, *value);
            }
            Mp::F64(value) => {
                let _ = encode::write_f64(out, *value);
            }
            Mp::Str(value) => {
                let _ = encode::write_str(out, value);
            }
            Mp::Bin(value) => {
                let _ = encode::write_bin(out, value);
            }
            Mp::Array(items) => {
                let _ = encode::write_array_len(out, len32(items.len()));
                for item in items {
                    item.write(out);
                }
            }
            Mp::Map(entries) => {
                let _ = encode::write_map_len(out, len32(entries.len()));
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
            }
            Mp::Ext(kind, data) => {
                let _ = encode::write_ext_meta(out, len32(data.len()), *kind);
                out.extend_from_slice(data);
            }
        }
    }

    /// Decodes exactly one value from `bytes` (trailing bytes are an error, as in rule 2).
    pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Mp> {
        let mut reader = Reader { bytes, pos: 0 };
        let value = reader.value(0)?;
        if reader.pos != bytes.len() {
            bail!(
                "{} trailing bytes after the MessagePack value",
                bytes.len() - reader.pos
            );
        }
        Ok(value)
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A MessagePack reader over one frame.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> anyhow::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| anyhow!("truncated MessagePack value at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, len: usize) -> anyhow::Result<u64> {
        Ok(self
            .take(len)?
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
    }

    fn sint(&mut self, len: usize) -> anyhow::Result<i64> {
        let raw = self.uint(len)?;
        let shift = 64 - 8 * len as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn len(&mut self, bytes: usize) -> anyhow::Result<usize> {
        usize::try_from(self.uint(bytes)?).context("MessagePack length too large")
    }

    fn value(&mut self, depth: usize) -> anyhow::Result<Mp> {
        if depth > 128 {
            bail!("MessagePack value nested over 128 levels");
        }
        let at = self.pos;
        let marker = self.take(1)?[0];
        let value = match marker {
            0x00..=0x7f => Mp::UInt(u64::from(marker)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xc0 => Mp::Nil,
            0xc2 => Mp::Bool(false),
            0xc3 => Mp::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                Mp::Bin(self.take(len)?.to_vec())
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (marker - 0xc7))?;
                let kind = self.sint(1)? as i8;
                Mp::Ext(kind, self.take(len)?.to_vec())
            }
            0xca => Mp::F32(f32::from_bits(self.uint(4)? as u32)),
            0xcb => Mp::F64(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Mp::UInt(self.uint(1 << (marker - 0xcc))?),
            0xd0..=0xd3 => Mp::int(self.sint(1 << (marker - 0xd0))?),
            0xd4..=0xd8 => {
                let kind = self.sint(1)? as i8;
                Mp::Ext(kind, self.take(1 << (marker - 0xd4))?.to_vec())
            }
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                self.str(len)?
            }
            0xdc | 0xdd => {
                let len = self.len(if marker == 0xdc { 2 } else { 4 })?;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(if marker == 0xde { 2 } else { 4 })?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Mp::Int(i64::from(marker as i8)),
            0xc1 => bail!("invalid MessagePack marker 0xc1 at byte {at}"),
        };
        Ok(value)
    }

    fn str(&mut self, len: usize) -> anyhow::Result<Mp> {
        let at = self.pos;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .with_context(|| format!("MessagePack string at byte {at} is not UTF-8"))?;
        Ok(Mp::Str(text.to_owned()))
    }

    fn array(&mut self, len: usize, depth: usize) -> anyhow::Result<Mp> {
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Mp::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> anyhow::Result<Mp> {
        let mut entries = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Mp::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values() {
        let value = Mp::Array(vec![
            Mp::UInt(1),
            Mp::Int(-300),
            Mp::Str("héllo".into()),
            Mp::Bin(vec![1, 2, 3]),
            Mp::Map(vec![(Mp::Str("k".into()), Mp::F64(1.5))]),
            Mp::Ext(-1, vec![0, 0, 0, 1]),
            Mp::Nil,
            Mp::Bool(true),
        ]);
        assert_eq!(Mp::decode(&value.encode()).expect("decode"), value);
        assert_eq!(
            Mp::Array(vec![Mp::UInt(1), Mp::UInt(2)]).encode(),
            [0x92, 1, 2]
        );
        assert!(Mp::decode(&[0x01, 0x02]).is_err());
        assert!(Mp::decode(&[0x92, 0x01]).is_err());
    }
}
