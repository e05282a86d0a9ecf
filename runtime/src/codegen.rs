//! What generated code names: re-exports for the `#[msgpack_service]` and tonic-build output,
//! and the support code of `#[derive(tonic_msgpack::Message)]`. Not a public API: the names
//! here change without notice.

#![allow(missing_debug_implementations)] // seeds and wrappers used only by generated code

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

pub use serde;

pub use crate::direct;

pub use futures_core::Stream;
pub use tonic;
pub use tonic_msgpack_core::KeyCase;

/// Prefixes a decode error with the message and field it happened in.
#[cold]
pub fn in_field<E: de::Error>(message: &str, field: &str, err: E) -> E {
    E::custom(format_args!("{message}.{field}: {err}"))
}

/// The message name of `expecting`.
pub fn expecting(f: &mut fmt::Formatter<'_>, message: &str) -> fmt::Result {
    write!(
        f,
        "message {message} (a MessagePack array by field number, a map by field name, or nil)"
    )
}

/// Drains the elements of a longer array than the schema (rule 3: extra elements are ignored).
pub fn drain_seq<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    while seq.next_element::<de::IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A field that is plain serde: `nil` decodes as the default value.
pub struct Plain<T>(PhantomData<fn() -> T>);

impl<T> Plain<T> {
    /// The seed.
    #[inline]
    pub fn new() -> Self {
        Plain(PhantomData)
    }
}

impl<T> Default for Plain<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, T: Deserialize<'de> + Default> DeserializeSeed<'de> for Plain<T> {
    type Value = T;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_option(NilOr(PlainSeed::<T>(PhantomData)))
    }
}

struct PlainSeed<T>(PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for PlainSeed<T> {
    type Value = T;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
}

/// A `bytes` field (wire format rule 5: bin, never an array of ints); `nil` decodes as empty.
pub struct Binary<T>(PhantomData<fn() -> T>);

impl<T> Binary<T> {
    /// The seed.
    #[inline]
    pub fn new() -> Self {
        Binary(PhantomData)
    }
}

impl<T> Default for Binary<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, T: BinField + Default> DeserializeSeed<'de> for Binary<T> {
    type Value = T;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_option(NilOr(BinSeed::<T>(PhantomData)))
    }
}

struct BinSeed<T>(PhantomData<fn() -> T>);

impl<'de, T: BinField> DeserializeSeed<'de> for BinSeed<T> {
    type Value = T;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::de(deserializer)
    }
}

/// `nil` → `Default`, anything else → the inner seed.
struct NilOr<S>(S);

impl<'de, S> Visitor<'de> for NilOr<S>
where
    S: DeserializeSeed<'de>,
    S::Value: Default,
{
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or nil")
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<S::Value, E> {
        Ok(S::Value::default())
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<S::Value, E> {
        Ok(S::Value::default())
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(deserializer)
    }
}

/// A value whose MessagePack form is bin (`Vec<u8>`, `bytes::Bytes`) or a container of them.
pub trait BinField: Sized {
    /// Serializes as bin (or a container of bins).
    fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Deserializes from bin (also accepts str and arrays of ints).
    fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Serializes a [`BinField`] by reference.
pub struct Bin<'a, T>(pub &'a T);

impl<T: BinField> Serialize for Bin<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.ser(serializer)
    }
}

impl BinField for Vec<u8> {
    #[inline]
    fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // Proto JSON: standard base64 with padding.
            serializer.serialize_str(&base64_encode(self))
        } else {
            serializer.serialize_bytes(self)
        }
    }

    #[inline]
    fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BytesVisitor)
        } else {
            serde_bytes::ByteBuf::deserialize(deserializer).map(serde_bytes::ByteBuf::into_vec)
        }
    }
}

/// Bytes from base64 text (JSON), bin, or an array of ints.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes (base64 text, bin, or an array of integers)")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        base64_decode(text).ok_or_else(|| E::custom("invalid base64 for a bytes field"))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(out)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padding optional.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None;
    }
    Some(out)
}

impl BinField for bytes::Bytes {
    #[inline]
    fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&base64_encode(self))
        } else {
            serializer.serialize_bytes(self)
        }
    }

    #[inline]
    fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Vec<u8> as BinField>::de(deserializer).map(bytes::Bytes::from)
    }
}

impl<T: BinField> BinField for Option<T> {
    fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.ser(serializer),
            None => serializer.serialize_none(),
        }
    }

    fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionVisitor<T>(PhantomData<fn() -> T>);
        impl<'de, T: BinField> Visitor<'de> for OptionVisitor<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bin or nil")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                T::de(d).map(Some)
            }
        }
        deserializer.deserialize_option(OptionVisitor(PhantomData))
    }
}

macro_rules! bin_containers {
    ($($bin:ty),*) => {$(
        impl BinField for Vec<$bin> {
            fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.len()))?;
                for item in self {
                    seq.serialize_element(&Bin(item))?;
                }
                seq.end()
            }

            fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct SeqVisitor;
                impl<'de> Visitor<'de> for SeqVisitor {
                    type Value = Vec<$bin>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an array of bin")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                        while let Some(item) = seq.next_element_seed(Binary::<$bin>::new())? {
                            out.push(item);
                        }
                        Ok(out)
                    }
                }
                deserializer.deserialize_seq(SeqVisitor)
            }
        }

        impl<K: Serialize + for<'a> Deserialize<'a> + Eq + Hash> BinField for HashMap<K, $bin> {
            fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.len()))?;
                for (key, value) in self {
                    map.serialize_entry(key, &Bin(value))?;
                }
                map.end()
            }

            fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(BinMapVisitor::<Self, K>(PhantomData))
            }
        }

        impl<K: Serialize + for<'a> Deserialize<'a> + Ord> BinField for BTreeMap<K, $bin> {
            fn ser<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.len()))?;
                for (key, value) in self {
                    map.serialize_entry(key, &Bin(value))?;
                }
                map.end()
            }

            fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(BinMapVisitor::<Self, K>(PhantomData))
            }
        }

        impl<K> BinMap<K> for HashMap<K, $bin> where K: Eq + Hash {
            type Value = $bin;
            fn with_capacity(n: usize) -> Self { HashMap::with_capacity(n) }
            fn put(&mut self, key: K, value: $bin) { self.insert(key, value); }
        }

        impl<K> BinMap<K> for BTreeMap<K, $bin> where K: Ord {
            type Value = $bin;
            fn with_capacity(_: usize) -> Self { BTreeMap::new() }
            fn put(&mut self, key: K, value: $bin) { self.insert(key, value); }
        }
    )*};
}

bin_containers!(Vec<u8>, bytes::Bytes);

/// A map whose values are bin.
pub trait BinMap<K> {
    /// The bin value type.
    type Value: BinField + Default;
    /// An empty map.
    fn with_capacity(n: usize) -> Self;
    /// Inserts an entry.
    fn put(&mut self, key: K, value: Self::Value);
}

struct BinMapVisitor<M, K>(PhantomData<fn() -> (M, K)>);

impl<'de, M: BinMap<K>, K: for<'a> Deserialize<'a>> Visitor<'de> for BinMapVisitor<M, K> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with bin values")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let mut out = M::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = map.next_key::<K>()? {
            let value = map.next_value_seed(Binary::<M::Value>::new())?;
            out.put(key, value);
        }
        Ok(out)
    }
}

/// The derived side of a proto `oneof`: each member has its own field number.
pub trait Oneof: Sized {
    /// The field number of the member that is set.
    fn tag(&self) -> u32;
    /// The member's key in a named layout or in JSON.
    fn key(&self, case: KeyCase) -> &'static str;
    /// The field number for a key in any spelling (name, JSON name, PascalCase).
    fn tag_of(key: &str) -> Option<u32>;
    /// Serializes the member's value (without the tag).
    fn serialize_value<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Deserializes the member with field number `tag`; `None` for a tag of another oneof.
    fn deserialize_value<'de, D: Deserializer<'de>>(
        tag: u32,
        deserializer: D,
    ) -> Result<Option<Self>, D::Error>;
}

/// Serializes the value of a oneof member.
pub struct OneofValue<'a, T>(pub &'a T);

impl<T: Oneof> Serialize for OneofValue<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_value(serializer)
    }
}

/// Deserializes the oneof member with a given field number; `nil` → not set.
pub struct OneofSeed<T> {
    tag: u32,
    marker: PhantomData<fn() -> T>,
}

impl<T> OneofSeed<T> {
    /// The seed for field number `tag`.
    #[inline]
    pub fn new(tag: u32) -> Self {
        OneofSeed {
            tag,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Oneof> DeserializeSeed<'de> for OneofSeed<T> {
    type Value = Option<T>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, T: Oneof> Visitor<'de> for OneofSeed<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a oneof member or nil")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        T::deserialize_value(self.tag, deserializer)
    }
}

/// Deserializes a map key to a field number: by name (any spelling) or by number.
pub struct KeySeed(pub fn(&str) -> Option<u32>);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<u32>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u32>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name or number")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<u32>, E> {
        Ok((self.0)(key).or_else(|| key.parse().ok()))
    }

    fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Option<u32>, E> {
        Ok(std::str::from_utf8(key).ok().and_then(self.0))
    }

    fn visit_u64<E: de::Error>(self, key: u64) -> Result<Option<u32>, E> {
        Ok(u32::try_from(key).ok())
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<Option<u32>, E> {
        Ok(u32::try_from(key).ok())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<u32>, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<u32>, E> {
        Ok(None)
    }
}

/// A unit-only enum with proto value names (derived): JSON shows enum fields by name.
pub trait ProtoEnum {
    /// The proto name of a value (`COLOR_RED`), if known.
    fn name_of(value: i32) -> Option<&'static str>;
    /// The value of a name in any accepted spelling.
    fn value_of(name: &str) -> Option<i32>;
}

/// An `i32` enum field (prost's representation) or a container of them.
pub trait EnumRepr: Sized {
    /// Serializes with value names (JSON); unknown values stay integers.
    fn ser_names<E: ProtoEnum, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Deserializes from integers or names.
    fn de_names<'de, E: ProtoEnum, D: Deserializer<'de>>(deserializer: D)
    -> Result<Self, D::Error>;
}

struct EnumValueVisitor<E>(PhantomData<fn() -> E>);

impl<'de, E: ProtoEnum> Visitor<'de> for EnumValueVisitor<E> {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an enum value (integer or name)")
    }

    fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i32, Er> {
        i32::try_from(v).map_err(|_| Er::custom(format_args!("enum value {v} out of range")))
    }

    fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i32, Er> {
        i32::try_from(v).map_err(|_| Er::custom(format_args!("enum value {v} out of range")))
    }

    fn visit_str<Er: de::Error>(self, v: &str) -> Result<i32, Er> {
        E::value_of(v).ok_or_else(|| Er::custom(format_args!("unknown enum name {v:?}")))
    }
}

impl EnumRepr for i32 {
    fn ser_names<E: ProtoEnum, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match E::name_of(*self) {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_i32(*self),
        }
    }

    fn de_names<'de, E: ProtoEnum, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnumValueVisitor::<E>(PhantomData))
    }
}

impl EnumRepr for Option<i32> {
    fn ser_names<E: ProtoEnum, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.ser_names::<E, S>(serializer),
            None => serializer.serialize_none(),
        }
    }

    fn de_names<'de, E: ProtoEnum, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        struct OptionVisitor<E>(PhantomData<fn() -> E>);
        impl<'de, E: ProtoEnum> Visitor<'de> for OptionVisitor<E> {
            type Value = Option<i32>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an enum value or null")
            }
            fn visit_none<Er: de::Error>(self) -> Result<Self::Value, Er> {
                Ok(None)
            }
            fn visit_unit<Er: de::Error>(self) -> Result<Self::Value, Er> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                i32::de_names::<E, D>(d).map(Some)
            }
        }
        deserializer.deserialize_option(OptionVisitor::<E>(PhantomData))
    }
}

impl EnumRepr for Vec<i32> {
    fn ser_names<E: ProtoEnum, S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(|v| EnumField::<i32, E>::new(v)))
    }

    fn de_names<'de, E: ProtoEnum, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        struct SeqVisitor<E>(PhantomData<fn() -> E>);
        impl<'de, E: ProtoEnum> Visitor<'de> for SeqVisitor<E> {
            type Value = Vec<i32>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of enum values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i32>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(v) = seq.next_element_seed(EnumValueSeed::<E>(PhantomData))? {
                    out.push(v);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(SeqVisitor::<E>(PhantomData))
    }
}

struct EnumValueSeed<E>(PhantomData<fn() -> E>);

impl<'de, E: ProtoEnum> DeserializeSeed<'de> for EnumValueSeed<E> {
    type Value = i32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i32, D::Error> {
        i32::de_names::<E, D>(deserializer)
    }
}

/// Serializes an enum field with value names in human-readable formats, as ints otherwise.
pub struct EnumField<'a, T, E>(&'a T, PhantomData<fn() -> E>);

impl<'a, T, E> EnumField<'a, T, E> {
    /// Wraps a field.
    #[inline]
    pub fn new(value: &'a T) -> Self {
        EnumField(value, PhantomData)
    }
}

impl<T: EnumRepr + Serialize, E: ProtoEnum> Serialize for EnumField<'_, T, E> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.ser_names::<E, S>(serializer)
        } else {
            self.0.serialize(serializer)
        }
    }
}

/// Deserializes an enum field (`nil` → default) from ints, or names in human-readable formats.
pub struct EnumSeed<T, E>(PhantomData<fn() -> (T, E)>);

impl<T, E> EnumSeed<T, E> {
    /// The seed.
    #[inline]
    pub fn new() -> Self {
        EnumSeed(PhantomData)
    }
}

impl<T, E> Default for EnumSeed<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, T, E> DeserializeSeed<'de> for EnumSeed<T, E>
where
    T: EnumRepr + Deserialize<'de> + Default,
    E: ProtoEnum,
{
    type Value = T;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_option(NilOr(EnumNamesSeed::<T, E>(PhantomData)))
        } else {
            deserializer.deserialize_option(NilOr(PlainSeed::<T>(PhantomData)))
        }
    }
}

struct EnumNamesSeed<T, E>(PhantomData<fn() -> (T, E)>);

impl<'de, T: EnumRepr, E: ProtoEnum> DeserializeSeed<'de> for EnumNamesSeed<T, E> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::de_names::<E, D>(deserializer)
    }
}

/// Deserializes a unit-only enum from an integer or, in JSON, from its name.
pub struct EnumVisitor<T: 'static> {
    /// The enum's name, for errors.
    pub name: &'static str,
    /// Value → variant.
    pub from_i64: fn(i64) -> Option<T>,
    /// Name → variant.
    pub from_name: fn(&str) -> Option<T>,
}

impl<'de, T> Visitor<'de> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of enum {} (an integer)", self.name)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.from_i64)(v)
            .ok_or_else(|| E::custom(format_args!("{}: unknown enum value {v}", self.name)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom(format_args!(
                "{}: unknown enum value {v}",
                self.name
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.from_name)(v)
            .ok_or_else(|| E::custom(format_args!("{}: unknown enum name {v:?}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip() {
        for (data, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (&[0xfb, 0xff][..], "+/8="),
        ] {
            assert_eq!(base64_encode(data), text);
            assert_eq!(base64_decode(text).as_deref(), Some(data));
        }
        assert_eq!(base64_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a*bc"), None);
    }
}
