//! The MessagePack [`Codec`] for tonic (wire format v1, rules 1, 2 and 6).

use std::fmt;
use std::io;
use std::marker::PhantomData;

use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_msgpack_core::Format;

/// How structs are laid out, as a type: [`Compact`] or [`Named`], the marker types of
/// [`FormatCodec`]. [`Layout::FORMAT`] names the same layout as a value.
pub trait Layout: Send + Sync + 'static + sealed::Sealed {
    /// The layout as a value of the shared vocabulary.
    const FORMAT: Format;

    /// Encodes `value` into `writer` in this layout.
    #[doc(hidden)]
    fn encode<W: io::Write, T: Serialize + ?Sized>(
        writer: W,
        value: &T,
    ) -> Result<(), rmp_serde::encode::Error>;

    /// Appends `value` as one MessagePack value in this layout to `buf`, as the codec does
    /// with tonic's frame buffer (no intermediate `Vec`).
    fn encode_buf<B: BufMut, T: Serialize + ?Sized>(buf: &mut B, value: &T) -> Result<(), Status> {
        Self::encode(BufWriter(buf), value).map_err(|err| {
            Status::internal(format!(
                "failed to encode {} as MessagePack: {err}",
                std::any::type_name::<T>()
            ))
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Compact {}
    impl Sealed for super::Named {}
}

/// Structs as arrays in field order (rmp-serde's default, MessagePack-CSharp's `[Key(n)]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Compact;

/// Structs as maps keyed by field name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Named;

impl Layout for Compact {
    const FORMAT: Format = Format::Compact;

    #[inline]
    fn encode<W: io::Write, T: Serialize + ?Sized>(
        writer: W,
        value: &T,
    ) -> Result<(), rmp_serde::encode::Error> {
        value.serialize(&mut rmp_serde::Serializer::new(writer))
    }
}

impl Layout for Named {
    const FORMAT: Format = Format::Named;

    #[inline]
    fn encode<W: io::Write, T: Serialize + ?Sized>(
        writer: W,
        value: &T,
    ) -> Result<(), rmp_serde::encode::Error> {
        value.serialize(&mut rmp_serde::Serializer::new(writer).with_struct_map())
    }
}

/// A tonic codec that encodes `T` and decodes `U` as one MessagePack value per gRPC message.
///
/// Use it through the aliases [`MsgPackCodec`] (compact) and [`NamedMsgPackCodec`]: tonic-build's
/// `codec_path` needs a type generic over exactly `<T, U>`.
#[allow(clippy::type_complexity)] // a plain marker: no data, `Send + Sync` whatever the types
pub struct FormatCodec<F, T, U>(PhantomData<fn() -> (F, T, U)>);

/// The compact MessagePack codec: structs as arrays. The default of every generated service.
pub type MsgPackCodec<T, U> = FormatCodec<Compact, T, U>;

/// The named MessagePack codec: structs as maps keyed by field name.
pub type NamedMsgPackCodec<T, U> = FormatCodec<Named, T, U>;

impl<F, T, U> Default for FormatCodec<F, T, U> {
    fn default() -> Self {
        FormatCodec(PhantomData)
    }
}

impl<F, T, U> fmt::Debug for FormatCodec<F, T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormatCodec")
            .field("format", &std::any::type_name::<F>())
            .field("encode", &std::any::type_name::<T>())
            .field("decode", &std::any::type_name::<U>())
            .finish()
    }
}

impl<F, T, U> Codec for FormatCodec<F, T, U>
where
    F: Layout,
    T: Serialize + Send + 'static,
    U: DeserializeOwned + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = MsgPackEncoder<F, T>;
    type Decoder = MsgPackDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        MsgPackEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        MsgPackDecoder(PhantomData)
    }
}

/// Encodes `T` straight into tonic's frame buffer.
pub struct MsgPackEncoder<F, T>(PhantomData<fn() -> (F, T)>);

impl<F, T> fmt::Debug for MsgPackEncoder<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsgPackEncoder")
    }
}

impl<F: Layout, T: Serialize> Encoder for MsgPackEncoder<F, T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        F::encode_buf(buf, &item)
    }
}

/// `io::Write` over a `BufMut` without the per-call bookkeeping of `BufMut::writer`.
pub(crate) struct BufWriter<'a, B>(pub(crate) &'a mut B);

impl<B: BufMut> io::Write for BufWriter<'_, B> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.put_slice(data);
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.put_slice(data);
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decodes one whole frame as exactly one MessagePack value of type `U`.
pub struct MsgPackDecoder<U>(PhantomData<fn() -> U>);

impl<U> fmt::Debug for MsgPackDecoder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsgPackDecoder")
    }
}

impl<U: DeserializeOwned> Decoder for MsgPackDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // Take the whole frame even on error, so the next frame starts where it should.
        let frame = buf.copy_to_bytes(buf.remaining());
        decode_frame(&frame).map(Some)
    }
}

/// The deepest nesting of arrays and maps a decoded message may have.
pub(crate) const MAX_DEPTH: usize = 256;

/// Decodes `frame` as exactly one MessagePack value of type `U` (wire format rule 2).
///
/// An empty frame, malformed MessagePack, a value of the wrong shape or trailing bytes give
/// `INVALID_ARGUMENT` naming the type and what was wrong.
pub fn decode_frame<U: DeserializeOwned>(frame: &[u8]) -> Result<U, Status> {
    let type_name = std::any::type_name::<U>;
    if frame.is_empty() {
        return Err(Status::invalid_argument(format!(
            "invalid MessagePack for {}: empty message (a MessagePack value is at least one byte)",
            type_name()
        )));
    }
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(frame);
    // rmp-serde's default (1024 nested arrays/maps) overflows a 2 MiB thread stack with
    // derived messages in debug builds; deeper input is an error, not a crash.
    deserializer.set_max_depth(MAX_DEPTH);
    let value = U::deserialize(&mut deserializer).map_err(|err| {
        Status::invalid_argument(format!("invalid MessagePack for {}: {err}", type_name()))
    })?;
    // rmp-serde's slice reader does not expose its position, so read one more marker: only a
    // clean end of input there means the frame held exactly one value.
    match NoMoreValues::deserialize(&mut deserializer) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(err))
            if err.kind() == io::ErrorKind::UnexpectedEof =>
        {
            Ok(value)
        }
        _ => Err(Status::invalid_argument(format!(
            "invalid MessagePack for {}: trailing bytes after the value (a message is exactly one MessagePack value)",
            type_name()
        ))),
    }
}

/// Reads one marker and refuses whatever it announces without reading further.
struct NoMoreValues;

impl<'de> Deserialize<'de> for NoMoreValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RejectEverything;
        impl serde::de::Visitor<'_> for RejectEverything {
            type Value = NoMoreValues;
            // Every `visit_*` keeps its default: an error, before any element is read.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the end of the message")
            }
        }
        deserializer.deserialize_any(RejectEverything)
    }
}

/// Encodes `value` as one MessagePack value in the compact layout (structs as arrays).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::new();
    Compact::encode(&mut out, value)?;
    Ok(out)
}

/// Encodes `value` as one MessagePack value in the named layout (structs as maps).
pub fn to_vec_named<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::new();
    Named::encode(&mut out, value)?;
    Ok(out)
}
