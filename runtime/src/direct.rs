//! MessagePack written and read directly by `#[derive(Message)]` types, without serde's generic
//! path: [`MessageCodec`], the codec of services generated from `.proto` files.
//!
//! The bytes are exactly what the serde impls give through rmp-serde (wire format v1): the
//! encoder makes the same choices (smallest integer, `str`/`bin`/array/map headers, ext −1
//! timestamps). The decoder reads the forms encoders write (arrays by field number, `nil` for
//! defaults, any integer width) and declines anything else (maps, a `str` for `bytes`, deep
//! nesting, malformed input); a declined frame is decoded again by the serde impls, which
//! accept the rest of rule 3 or give the usual `INVALID_ARGUMENT`. `bytes::Bytes` fields are
//! slices of the received frame, not copies.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use bytes::Buf;
pub use bytes::{BufMut, Bytes};
use serde::{Serialize, de::DeserializeOwned};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::codec::{Compact, Layout, decode_frame};

/// Deeper messages than this are left to the serde decoder (and its depth limit): between
/// two messages sit at most two arrays or maps, so this stays under rmp-serde's limit.
const MAX_MESSAGE_DEPTH: u16 = 100;

/// An encode failure of a field that fell back to serde.
#[derive(Debug)]
pub struct EncodeError(Box<str>);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The direct decoder declined: the serde impls decode the frame instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declined;

/// A value that writes its own MessagePack (the bytes of its serde impl through rmp-serde).
pub trait MsgPackEncode {
    /// Appends the value to `buf`.
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
}

/// A value that reads its own MessagePack, or declines and leaves it to serde.
pub trait MsgPackDecode: Sized {
    /// Reads one value at the reader's position.
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined>;
}

/// The direct side of a derived oneof ([`crate::codegen::Oneof`]).
pub trait OneofDirect: Sized {
    /// Appends the value of the member that is set (without its tag).
    fn put_value<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
    /// Reads the member with field number `tag` (not `nil`); `None` for another oneof's tag.
    fn get_value(tag: u32, reader: &mut Reader<'_>) -> Result<Option<Self>, Declined>;
}

// ---- writing ---------------------------------------------------------------------------

/// `nil`.
#[inline]
pub fn put_nil<B: BufMut>(buf: &mut B) {
    buf.put_u8(0xc0);
}

/// An unsigned integer in its smallest form (rmp's `write_uint`).
#[inline]
pub fn put_uint<B: BufMut>(buf: &mut B, v: u64) {
    if v < 128 {
        buf.put_u8(v as u8);
    } else if v < 256 {
        buf.put_slice(&[0xcc, v as u8]);
    } else if v < 65536 {
        let b = (v as u16).to_be_bytes();
        buf.put_slice(&[0xcd, b[0], b[1]]);
    } else if v < 1 << 32 {
        let b = (v as u32).to_be_bytes();
        buf.put_slice(&[0xce, b[0], b[1], b[2], b[3]]);
    } else {
        let b = v.to_be_bytes();
        buf.put_slice(&[0xcf, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// A signed integer in its smallest form (rmp's `write_sint`: non-negative values as unsigned).
#[inline]
pub fn put_sint<B: BufMut>(buf: &mut B, v: i64) {
    if v >= 0 {
        put_uint(buf, v as u64);
    } else if v >= -32 {
        buf.put_u8(v as u8);
    } else if v >= -128 {
        buf.put_slice(&[0xd0, v as u8]);
    } else if v >= -32768 {
        let b = (v as i16).to_be_bytes();
        buf.put_slice(&[0xd1, b[0], b[1]]);
    } else if v >= -2_147_483_648 {
        let b = (v as i32).to_be_bytes();
        buf.put_slice(&[0xd2, b[0], b[1], b[2], b[3]]);
    } else {
        let b = v.to_be_bytes();
        buf.put_slice(&[0xd3, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
}

/// A length header: the fix form under `fix_max`, else the 8 (if any), 16 or 32-bit marker.
#[inline]
fn put_len<B: BufMut>(buf: &mut B, len: usize, fix: u8, fix_max: usize, m8: Option<u8>, m16: u8) {
    if len < fix_max {
        buf.put_u8(fix | len as u8);
    } else if let (Some(m8), true) = (m8, len < 256) {
        buf.put_slice(&[m8, len as u8]);
    } else if len < 65536 {
        let b = (len as u16).to_be_bytes();
        buf.put_slice(&[m16, b[0], b[1]]);
    } else {
        let b = (len as u32).to_be_bytes();
        buf.put_slice(&[m16 + 1, b[0], b[1], b[2], b[3]]);
    }
}

/// An array header.
#[inline]
pub fn put_array_len<B: BufMut>(buf: &mut B, len: usize) {
    put_len(buf, len, 0x90, 16, None, 0xdc);
}

/// A map header.
#[inline]
pub fn put_map_len<B: BufMut>(buf: &mut B, len: usize) {
    put_len(buf, len, 0x80, 16, None, 0xde);
}

/// A `str`.
#[inline]
pub fn put_str<B: BufMut>(buf: &mut B, s: &str) {
    put_len(buf, s.len(), 0xa0, 32, Some(0xd9), 0xda);
    buf.put_slice(s.as_bytes());
}

/// A `bin`.
#[inline]
pub fn put_bin<B: BufMut>(buf: &mut B, data: &[u8]) {
    if data.len() < 256 {
        buf.put_slice(&[0xc4, data.len() as u8]);
    } else {
        put_len(buf, data.len(), 0, 0, None, 0xc5);
    }
    buf.put_slice(data);
}

/// Appends `value` through its serde impl (rmp-serde, compact layout): the fallback for
/// values without a direct encoding.
pub fn put_serde<B: BufMut, T: Serialize + ?Sized>(
    buf: &mut B,
    value: &T,
) -> Result<(), EncodeError> {
    Compact::encode(crate::codec::BufWriter(buf), value).map_err(|err| {
        EncodeError(
            format!(
                "failed to encode {} as MessagePack: {err}",
                std::any::type_name::<T>()
            )
            .into(),
        )
    })
}

// ---- reading ---------------------------------------------------------------------------

/// A position in a received frame.
#[derive(Debug)]
pub struct Reader<'a> {
    frame: &'a Bytes,
    // The frame's bytes, without going through `Bytes` on every read.
    data: &'a [u8],
    pos: usize,
    depth: u16,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `frame`.
    pub fn new(frame: &'a Bytes) -> Self {
        Reader {
            frame,
            data: frame,
            pos: 0,
            depth: 0,
        }
    }

    /// Whether the whole frame was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    #[inline]
    fn peek(&self) -> Result<u8, Declined> {
        self.data.get(self.pos).copied().ok_or(Declined)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Declined> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Declined> {
        let end = self.pos.checked_add(n).ok_or(Declined)?;
        let out = self.data.get(self.pos..end).ok_or(Declined)?;
        self.pos = end;
        Ok(out)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], Declined> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Consumes a `nil` if one is next.
    #[inline]
    pub fn nil(&mut self) -> bool {
        if self.data.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Enters a message (bounded nesting).
    #[inline]
    pub fn enter(&mut self) -> Result<(), Declined> {
        if self.depth >= MAX_MESSAGE_DEPTH {
            return Err(Declined);
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves a message.
    #[inline]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// An array header: its length.
    #[inline]
    pub fn array_len(&mut self) -> Result<usize, Declined> {
        match self.byte()? {
            b @ 0x90..=0x9f => Ok(usize::from(b & 0x0f)),
            0xdc => Ok(usize::from(u16::from_be_bytes(self.be()?))),
            0xdd => Ok(u32::from_be_bytes(self.be()?) as usize),
            _ => Err(Declined),
        }
    }

    /// A map header: its number of entries.
    #[inline]
    pub fn map_len(&mut self) -> Result<usize, Declined> {
        match self.byte()? {
            b @ 0x80..=0x8f => Ok(usize::from(b & 0x0f)),
            0xde => Ok(usize::from(u16::from_be_bytes(self.be()?))),
            0xdf => Ok(u32::from_be_bytes(self.be()?) as usize),
            _ => Err(Declined),
        }
    }

    /// A capacity for `len` elements that a short frame cannot inflate (each takes a byte).
    #[inline]
    pub fn capacity(&self, len: usize) -> usize {
        len.min(self.data.len() - self.pos)
    }

    /// Any integer, widened.
    #[inline]
    pub fn int(&mut self) -> Result<i128, Declined> {
        Ok(match self.byte()? {
            b @ 0x00..=0x7f => i128::from(b),
            b @ 0xe0..=0xff => i128::from(b as i8),
            0xcc => i128::from(self.byte()?),
            0xcd => i128::from(u16::from_be_bytes(self.be()?)),
            0xce => i128::from(u32::from_be_bytes(self.be()?)),
            0xcf => i128::from(u64::from_be_bytes(self.be()?)),
            0xd0 => i128::from(self.byte()? as i8),
            0xd1 => i128::from(i16::from_be_bytes(self.be()?)),
            0xd2 => i128::from(i32::from_be_bytes(self.be()?)),
            0xd3 => i128::from(i64::from_be_bytes(self.be()?)),
            _ => return Err(Declined),
        })
    }

    /// A `str`, validated.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, Declined> {
        std::str::from_utf8(self.str_data()?).map_err(|_| Declined)
    }

    /// The bytes of a `str`, not validated.
    #[inline]
    fn str_data(&mut self) -> Result<&'a [u8], Declined> {
        let len = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => usize::from(u16::from_be_bytes(self.be()?)),
            0xdb => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(Declined),
        };
        self.take(len)
    }

    /// A `bin`: its position in the frame.
    #[inline]
    fn bin_range(&mut self) -> Result<std::ops::Range<usize>, Declined> {
        let len = match self.byte()? {
            0xc4 => usize::from(self.byte()?),
            0xc5 => usize::from(u16::from_be_bytes(self.be()?)),
            0xc6 => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(Declined),
        };
        let start = self.pos;
        self.take(len)?;
        Ok(start..self.pos)
    }

    /// An ext value: its type and data.
    fn ext(&mut self) -> Result<(i8, &'a [u8]), Declined> {
        let len = match self.byte()? {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7 => usize::from(self.byte()?),
            0xc8 => usize::from(u16::from_be_bytes(self.be()?)),
            0xc9 => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(Declined),
        };
        let kind = self.byte()? as i8;
        Ok((kind, self.take(len)?))
    }

    /// Skips one value of any type (extra array elements, gaps).
    pub fn skip(&mut self) -> Result<(), Declined> {
        self.skip_nested(0)
    }

    /// Skips one value `nesting` containers below the current message. Deep values are left
    /// to serde, whose depth limit counts skipped containers too.
    fn skip_nested(&mut self, nesting: u16) -> Result<(), Declined> {
        if 2 * self.depth + nesting > 2 * MAX_MESSAGE_DEPTH {
            return Err(Declined);
        }
        match self.peek()? {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => self.pos += 1,
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.map_len()?;
                for _ in 0..n {
                    self.skip_nested(nesting + 1)?;
                    self.skip_nested(nesting + 1)?;
                }
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = self.array_len()?;
                for _ in 0..n {
                    self.skip_nested(nesting + 1)?;
                }
            }
            0xa0..=0xbf | 0xd9..=0xdb => {
                self.str_data()?;
            }
            0xc4..=0xc6 => {
                self.bin_range()?;
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                self.ext()?;
            }
            0xca => {
                self.take(5)?;
            }
            0xcb => {
                self.take(9)?;
            }
            0xcc..=0xd3 => {
                self.int()?;
            }
            _ => return Err(Declined),
        }
        Ok(())
    }

    /// Skips `n` values.
    pub fn skip_n(&mut self, n: usize) -> Result<(), Declined> {
        for _ in 0..n {
            self.skip()?;
        }
        Ok(())
    }
}

/// Decodes `frame` as exactly one `U`: directly when the frame is in the forms encoders write,
/// else through serde ([`decode_frame`], the same value or the same error).
pub fn decode_bytes<U: MsgPackDecode + DeserializeOwned>(frame: &Bytes) -> Result<U, Status> {
    let mut reader = Reader::new(frame);
    if let Ok(value) = U::decode_msgpack(&mut reader)
        && reader.at_end()
    {
        return Ok(value);
    }
    decode_frame(frame)
}

/// Encodes `value` (as [`MessageCodec`] does) into a new `Vec`.
pub fn encode_to_vec<T: MsgPackEncode + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    value.encode_msgpack(&mut out)?;
    Ok(out)
}

// ---- the codec -------------------------------------------------------------------------

/// The compact MessagePack codec for `#[derive(Message)]` types (what `.proto` services
/// use): the same bytes as [`crate::MsgPackCodec`], written and read without serde's generic
/// path, and `bytes::Bytes` fields decoded as slices of the frame.
#[allow(clippy::type_complexity)] // a plain marker, like `FormatCodec`
pub struct MessageCodec<T, U>(PhantomData<fn() -> (T, U)>);

impl<T, U> Default for MessageCodec<T, U> {
    fn default() -> Self {
        MessageCodec(PhantomData)
    }
}

impl<T, U> fmt::Debug for MessageCodec<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCodec")
            .field("encode", &std::any::type_name::<T>())
            .field("decode", &std::any::type_name::<U>())
            .finish()
    }
}

impl<T, U> Codec for MessageCodec<T, U>
where
    T: MsgPackEncode + Send + 'static,
    U: MsgPackDecode + DeserializeOwned + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = MessageEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        MessageEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(PhantomData)
    }
}

/// The encoder of [`MessageCodec`].
pub struct MessageEncoder<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for MessageEncoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageEncoder")
    }
}

impl<T: MsgPackEncode> Encoder for MessageEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode_msgpack(buf)
            .map_err(|err| Status::internal(err.to_string()))
    }
}

/// The decoder of [`MessageCodec`].
pub struct MessageDecoder<U>(PhantomData<fn() -> U>);

impl<U> fmt::Debug for MessageDecoder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageDecoder")
    }
}

impl<U: MsgPackDecode + DeserializeOwned> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // The whole frame, even on error; a `Bytes` that `Bytes` fields share.
        let frame = buf.copy_to_bytes(buf.remaining());
        decode_bytes(&frame).map(Some)
    }
}

// ---- field dispatch for generated code -------------------------------------------------

/// A field for the derive's encoder: direct when its type has [`MsgPackEncode`], through
/// serde otherwise (method resolution picks [`EncodeDirect`] before [`EncodeSerde`]).
#[allow(missing_debug_implementations)] // used only inside generated code
pub struct Field<'a, T: ?Sized>(pub &'a T);

/// The direct encoding of a [`Field`].
pub trait EncodeDirect {
    /// Appends the field.
    fn put<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
}

impl<T: MsgPackEncode + ?Sized> EncodeDirect for Field<'_, T> {
    #[inline]
    fn put<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.0.encode_msgpack(buf)
    }
}

/// The serde encoding of a [`Field`] whose type has no direct one.
pub trait EncodeSerde {
    /// Appends the field.
    fn put<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;
}

impl<T: Serialize + ?Sized> EncodeSerde for &Field<'_, T> {
    fn put<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_serde(buf, self.0)
    }
}

/// A field for the derive's decoder: direct when its type has [`MsgPackDecode`]; otherwise
/// the direct decoder declines and serde decodes the whole frame.
#[allow(missing_debug_implementations)] // used only inside generated code
pub struct Slot<T>(PhantomData<fn() -> T>);

impl<T> Slot<T> {
    /// The slot of a field of type `T`.
    #[inline]
    pub fn new() -> Self {
        Slot(PhantomData)
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The direct decoding of a [`Slot`].
pub trait DecodeDirect {
    /// The field type.
    type Value;
    /// Reads the field.
    fn get(&self, reader: &mut Reader<'_>) -> Result<Self::Value, Declined>;
}

impl<T: MsgPackDecode> DecodeDirect for Slot<T> {
    type Value = T;
    #[inline]
    fn get(&self, reader: &mut Reader<'_>) -> Result<T, Declined> {
        T::decode_msgpack(reader)
    }
}

/// A [`Slot`] without a direct decoding: declines.
pub trait DecodeSerde {
    /// The field type.
    type Value;
    /// Declines.
    fn get(&self, reader: &mut Reader<'_>) -> Result<Self::Value, Declined>;
}

impl<T> DecodeSerde for &Slot<T> {
    type Value = T;
    fn get(&self, _: &mut Reader<'_>) -> Result<T, Declined> {
        Err(Declined)
    }
}

/// A field whose value may be `nil` for its default (every field of a message, rule 3).
#[inline]
pub fn or_default<T: Default>(
    reader: &mut Reader<'_>,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, Declined>,
) -> Result<T, Declined> {
    if reader.nil() {
        Ok(T::default())
    } else {
        read(reader)
    }
}

// ---- scalars and containers ------------------------------------------------------------

macro_rules! ints {
    ($($ty:ty => $put:ident as $wide:ty),*) => {$(
        impl MsgPackEncode for $ty {
            #[inline]
            fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
                $put(buf, <$wide>::from(*self));
                Ok(())
            }
        }

        impl MsgPackDecode for $ty {
            #[inline]
            fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
                <$ty>::try_from(reader.int()?).map_err(|_| Declined)
            }
        }
    )*};
}

ints!(i32 => put_sint as i64, i64 => put_sint as i64, u32 => put_uint as u64, u64 => put_uint as u64);

impl MsgPackEncode for bool {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(if *self { 0xc3 } else { 0xc2 });
        Ok(())
    }
}

impl MsgPackDecode for bool {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        match reader.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            _ => Err(Declined),
        }
    }
}

impl MsgPackEncode for f32 {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(0xca);
        buf.put_f32(*self);
        Ok(())
    }
}

impl MsgPackDecode for f32 {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        match reader.byte()? {
            0xca => Ok(f32::from_be_bytes(reader.be()?)),
            _ => Err(Declined),
        }
    }
}

impl MsgPackEncode for f64 {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(0xcb);
        buf.put_f64(*self);
        Ok(())
    }
}

impl MsgPackDecode for f64 {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        match reader.byte()? {
            0xcb => Ok(f64::from_be_bytes(reader.be()?)),
            0xca => Ok(f64::from(f32::from_be_bytes(reader.be()?))),
            _ => Err(Declined),
        }
    }
}

impl MsgPackEncode for str {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_str(buf, self);
        Ok(())
    }
}

impl MsgPackEncode for String {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_str(buf, self);
        Ok(())
    }
}

impl MsgPackDecode for String {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        // Copied first, then validated in place: the copy is aligned, which the validator's
        // word-at-a-time path prefers.
        String::from_utf8(reader.str_data()?.to_vec()).map_err(|_| Declined)
    }
}

/// `google.protobuf.Empty`: `nil`.
impl MsgPackEncode for () {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_nil(buf);
        Ok(())
    }
}

impl MsgPackDecode for () {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        if reader.nil() { Ok(()) } else { Err(Declined) }
    }
}

impl<T: MsgPackEncode + ?Sized> MsgPackEncode for Box<T> {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        (**self).encode_msgpack(buf)
    }
}

impl<T: MsgPackDecode> MsgPackDecode for Box<T> {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        T::decode_msgpack(reader).map(Box::new)
    }
}

impl<T: MsgPackEncode> MsgPackEncode for Option<T> {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            Some(value) => value.encode_msgpack(buf),
            None => {
                put_nil(buf);
                Ok(())
            }
        }
    }
}

impl<T: MsgPackDecode> MsgPackDecode for Option<T> {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        if reader.nil() {
            Ok(None)
        } else {
            T::decode_msgpack(reader).map(Some)
        }
    }
}

impl<T: MsgPackEncode> MsgPackEncode for Vec<T> {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_array_len(buf, self.len());
        for item in self {
            item.encode_msgpack(buf)?;
        }
        Ok(())
    }
}

impl<T: MsgPackDecode> MsgPackDecode for Vec<T> {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let len = reader.array_len()?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(reader.capacity(len));
        for _ in 0..len {
            out.push(T::decode_msgpack(reader)?);
        }
        Ok(out)
    }
}

impl<K: MsgPackEncode, V: MsgPackEncode, S> MsgPackEncode for HashMap<K, V, S> {
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_map_len(buf, self.len());
        for (key, value) in self {
            key.encode_msgpack(buf)?;
            value.encode_msgpack(buf)?;
        }
        Ok(())
    }
}

impl<K, V, S> MsgPackDecode for HashMap<K, V, S>
where
    K: MsgPackDecode + Eq + Hash,
    V: MsgPackDecode,
    S: std::hash::BuildHasher + Default,
{
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let len = reader.map_len()?;
        let mut out = HashMap::with_capacity_and_hasher(reader.capacity(len), S::default());
        for _ in 0..len {
            let key = K::decode_msgpack(reader)?;
            out.insert(key, V::decode_msgpack(reader)?);
        }
        Ok(out)
    }
}

impl<K: MsgPackEncode, V: MsgPackEncode> MsgPackEncode for BTreeMap<K, V> {
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        put_map_len(buf, self.len());
        for (key, value) in self {
            key.encode_msgpack(buf)?;
            value.encode_msgpack(buf)?;
        }
        Ok(())
    }
}

impl<K: MsgPackDecode + Ord, V: MsgPackDecode> MsgPackDecode for BTreeMap<K, V> {
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let len = reader.map_len()?;
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let key = K::decode_msgpack(reader)?;
            out.insert(key, V::decode_msgpack(reader)?);
        }
        Ok(out)
    }
}

// ---- bytes -----------------------------------------------------------------------------

/// A `bytes` field (`bin`) or a container of them: the direct side of [`crate::codegen::BinField`].
pub trait BinDirect: Sized {
    /// Appends the value as `bin` (or a container of `bin`).
    fn put_bin<B: BufMut>(&self, buf: &mut B);
    /// Reads the value; `nil` inside containers is the empty value.
    fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined>;
}

impl BinDirect for Vec<u8> {
    #[inline]
    fn put_bin<B: BufMut>(&self, buf: &mut B) {
        put_bin(buf, self);
    }

    #[inline]
    fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let range = reader.bin_range()?;
        Ok(reader.data[range].to_vec())
    }
}

impl BinDirect for Bytes {
    #[inline]
    fn put_bin<B: BufMut>(&self, buf: &mut B) {
        put_bin(buf, self);
    }

    /// A slice of the frame: no copy.
    #[inline]
    fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let range = reader.bin_range()?;
        Ok(reader.frame.slice(range))
    }
}

impl<T: BinDirect> BinDirect for Option<T> {
    #[inline]
    fn put_bin<B: BufMut>(&self, buf: &mut B) {
        match self {
            Some(value) => value.put_bin(buf),
            None => put_nil(buf),
        }
    }

    #[inline]
    fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        if reader.nil() {
            Ok(None)
        } else {
            T::get_bin(reader).map(Some)
        }
    }
}

/// A `bin` element of a container: `nil` is empty.
#[inline]
fn get_bin_or_empty<T: BinDirect + Default>(reader: &mut Reader<'_>) -> Result<T, Declined> {
    if reader.nil() {
        Ok(T::default())
    } else {
        T::get_bin(reader)
    }
}

macro_rules! bin_containers {
    ($($bin:ty),*) => {$(
        impl BinDirect for Vec<$bin> {
            fn put_bin<B: BufMut>(&self, buf: &mut B) {
                put_array_len(buf, self.len());
                for item in self {
                    item.put_bin(buf);
                }
            }

            fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
                let len = reader.array_len()?;
                let mut out = Vec::with_capacity(reader.capacity(len));
                for _ in 0..len {
                    out.push(get_bin_or_empty(reader)?);
                }
                Ok(out)
            }
        }

        impl<K: MsgPackEncode + MsgPackDecode + Eq + Hash> BinDirect for HashMap<K, $bin> {
            fn put_bin<B: BufMut>(&self, buf: &mut B) {
                put_map_len(buf, self.len());
                for (key, value) in self {
                    // Keys are scalars or strings: infallible.
                    let _ = key.encode_msgpack(buf);
                    value.put_bin(buf);
                }
            }

            fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
                let len = reader.map_len()?;
                let mut out = HashMap::with_capacity(reader.capacity(len));
                for _ in 0..len {
                    let key = K::decode_msgpack(reader)?;
                    out.insert(key, get_bin_or_empty(reader)?);
                }
                Ok(out)
            }
        }

        impl<K: MsgPackEncode + MsgPackDecode + Ord> BinDirect for BTreeMap<K, $bin> {
            fn put_bin<B: BufMut>(&self, buf: &mut B) {
                put_map_len(buf, self.len());
                for (key, value) in self {
                    let _ = key.encode_msgpack(buf);
                    value.put_bin(buf);
                }
            }

            fn get_bin(reader: &mut Reader<'_>) -> Result<Self, Declined> {
                let len = reader.map_len()?;
                let mut out = BTreeMap::new();
                for _ in 0..len {
                    let key = K::decode_msgpack(reader)?;
                    out.insert(key, get_bin_or_empty(reader)?);
                }
                Ok(out)
            }
        }
    )*};
}

bin_containers!(Vec<u8>, Bytes);

// ---- well-known types ------------------------------------------------------------------

impl MsgPackEncode for crate::wkt::Timestamp {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let (data, len) = self.to_ext();
        let kind = crate::wkt::TIMESTAMP_EXT as u8;
        match len {
            4 => buf.put_slice(&[0xd6, kind]),
            8 => buf.put_slice(&[0xd7, kind]),
            _ => buf.put_slice(&[0xc7, len as u8, kind]),
        }
        buf.put_slice(&data[..len]);
        Ok(())
    }
}

impl MsgPackDecode for crate::wkt::Timestamp {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        match reader.ext()? {
            (crate::wkt::TIMESTAMP_EXT, data) => Self::from_ext(data).map_err(|_| Declined),
            _ => Err(Declined),
        }
    }
}

impl MsgPackEncode for crate::wkt::Duration {
    #[inline]
    fn encode_msgpack<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(0x92);
        put_sint(buf, self.seconds);
        put_sint(buf, i64::from(self.nanos));
        Ok(())
    }
}

impl MsgPackDecode for crate::wkt::Duration {
    #[inline]
    fn decode_msgpack(reader: &mut Reader<'_>) -> Result<Self, Declined> {
        let len = reader.array_len()?;
        let mut out = crate::wkt::Duration::default();
        if len > 0 {
            out.seconds = or_default(reader, i64::decode_msgpack)?;
        }
        if len > 1 {
            out.nanos = or_default(reader, i32::decode_msgpack)?;
        }
        reader.skip_n(len.saturating_sub(2))?;
        Ok(out)
    }
}
