//! The direct MessagePack impls of `#[derive(Message)]` (`tonic_msgpack::direct`): the same
//! bytes as the serde impls in the compact layout, without serde's generic path.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::{Container, EnumValue, Field, FieldKind, Variant};
use super::expand::var;

/// A struct: an array by field number (compact); named layouts go through serde.
pub(crate) fn expand_struct(container: &Container<'_>, fields: &[Field<'_>]) -> TokenStream {
    let ident = container.ident;
    if container.named.is_some() {
        return quote! {
            #[automatically_derived]
            impl _p::direct::MsgPackEncode for #ident {
                fn encode_msgpack<B: _p::direct::BufMut>(&self, buf: &mut B) -> ::core::result::Result<(), _p::direct::EncodeError> {
                    _p::direct::put_serde(buf, self)
                }
            }

            #[automatically_derived]
            impl _p::direct::MsgPackDecode for #ident {
                fn decode_msgpack(_: &mut _p::direct::Reader<'_>) -> ::core::result::Result<Self, _p::direct::Declined> {
                    ::core::result::Result::Err(_p::direct::Declined)
                }
            }
        };
    }

    let wire = container.fields_on_wire(fields);
    let max_tag = container.max_tag();
    let max = max_tag as usize;
    let vars: Vec<_> = fields.iter().map(var).collect();
    let members: Vec<_> = fields.iter().map(|f| f.member).collect();
    let types: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let declare = quote! {
        #( let mut #vars: #types = ::core::default::Default::default(); )*
    };
    let build = quote! { #ident { #( #members: #vars, )* } };

    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for tag in 1..=max_tag {
        let slot = wire.iter().find(|(t, _)| *t == tag);
        let Some((_, field)) = slot else {
            puts.push(quote!(_p::direct::put_nil(buf);));
            gets.push(quote! {
                if len < #tag as usize { break 'read; }
                reader.skip()?;
            });
            continue;
        };
        let member = field.member;
        let v = var(field);
        let ty = field.ty;
        let (put, get) = match &field.kind {
            FieldKind::Oneof { inner, .. } => (
                quote! {
                    match &self.#member {
                        ::core::option::Option::Some(value) if _p::Oneof::tag(value) == #tag => {
                            _p::direct::OneofDirect::put_value(value, buf)?;
                        }
                        _ => _p::direct::put_nil(buf),
                    }
                },
                quote! {
                    if let ::core::option::Option::Some(value) =
                        <#inner as _p::direct::OneofDirect>::get_value(#tag, reader)?
                    {
                        #v = ::core::option::Option::Some(value);
                    }
                },
            ),
            FieldKind::Bin { .. } => (
                quote!(_p::direct::BinDirect::put_bin(&self.#member, buf);),
                quote!(#v = <#ty as _p::direct::BinDirect>::get_bin(reader)?;),
            ),
            _ => (
                quote!((&_p::direct::Field(&self.#member)).put(buf)?;),
                quote!(#v = (&_p::direct::Slot::<#ty>::new()).get(reader)?;),
            ),
        };
        puts.push(put);
        gets.push(quote! {
            if len < #tag as usize { break 'read; }
            if !reader.nil() {
                #get
            }
        });
    }

    quote! {
        #[automatically_derived]
        impl _p::direct::MsgPackEncode for #ident {
            fn encode_msgpack<B: _p::direct::BufMut>(&self, buf: &mut B) -> ::core::result::Result<(), _p::direct::EncodeError> {
                #[allow(unused_imports)]
                use _p::direct::{EncodeDirect as _, EncodeSerde as _};
                _p::direct::put_array_len(buf, #max);
                #( #puts )*
                ::core::result::Result::Ok(())
            }
        }

        #[automatically_derived]
        impl _p::direct::MsgPackDecode for #ident {
            fn decode_msgpack(reader: &mut _p::direct::Reader<'_>) -> ::core::result::Result<Self, _p::direct::Declined> {
                #[allow(unused_imports)]
                use _p::direct::{DecodeDirect as _, DecodeSerde as _};
                #declare
                if reader.nil() {
                    return ::core::result::Result::Ok(#build);
                }
                let len = reader.array_len()?;
                reader.enter()?;
                'read: {
                    #( #gets )*
                    if len > #max {
                        reader.skip_n(len - #max)?;
                    }
                }
                reader.leave();
                ::core::result::Result::Ok(#build)
            }
        }
    }
}

/// A oneof enum: the value of the member that is set, in its own slot.
pub(crate) fn expand_oneof(container: &Container<'_>, variants: &[Variant<'_>]) -> TokenStream {
    let ident = container.ident;
    let put_arms = variants.iter().map(|v| {
        let variant = v.ident;
        if v.bin {
            quote!(#ident::#variant(value) => { _p::direct::BinDirect::put_bin(value, buf); ::core::result::Result::Ok(()) })
        } else {
            quote!(#ident::#variant(value) => (&_p::direct::Field(value)).put(buf),)
        }
    });
    let get_arms = variants.iter().map(|v| {
        let variant = v.ident;
        let tag = v.tag;
        let ty = v.ty;
        if v.bin {
            quote!(#tag => ::core::result::Result::Ok(::core::option::Option::Some(#ident::#variant(<#ty as _p::direct::BinDirect>::get_bin(reader)?))),)
        } else {
            quote!(#tag => ::core::result::Result::Ok(::core::option::Option::Some(#ident::#variant((&_p::direct::Slot::<#ty>::new()).get(reader)?))),)
        }
    });
    quote! {
        #[automatically_derived]
        impl _p::direct::OneofDirect for #ident {
            fn put_value<B: _p::direct::BufMut>(&self, buf: &mut B) -> ::core::result::Result<(), _p::direct::EncodeError> {
                #[allow(unused_imports)]
                use _p::direct::{EncodeDirect as _, EncodeSerde as _};
                match self {
                    #( #put_arms )*
                }
            }

            fn get_value(
                tag: u32,
                reader: &mut _p::direct::Reader<'_>,
            ) -> ::core::result::Result<::core::option::Option<Self>, _p::direct::Declined> {
                #[allow(unused_imports)]
                use _p::direct::{DecodeDirect as _, DecodeSerde as _};
                match tag {
                    #( #get_arms )*
                    _ => {
                        reader.skip()?;
                        ::core::result::Result::Ok(::core::option::Option::None)
                    }
                }
            }
        }
    }
}

/// A unit-only enum: its integer value.
pub(crate) fn expand_enum(container: &Container<'_>, values: &[EnumValue<'_>]) -> TokenStream {
    let ident = container.ident;
    let variants: Vec<_> = values.iter().map(|v| v.ident).collect();
    quote! {
        #[automatically_derived]
        impl _p::direct::MsgPackEncode for #ident {
            fn encode_msgpack<B: _p::direct::BufMut>(&self, buf: &mut B) -> ::core::result::Result<(), _p::direct::EncodeError> {
                let value = match self {
                    #( #ident::#variants => #ident::#variants as i64, )*
                };
                _p::direct::put_sint(buf, value);
                ::core::result::Result::Ok(())
            }
        }

        #[automatically_derived]
        impl _p::direct::MsgPackDecode for #ident {
            fn decode_msgpack(reader: &mut _p::direct::Reader<'_>) -> ::core::result::Result<Self, _p::direct::Declined> {
                let value = reader.int()?;
                #(
                    if value == #ident::#variants as i128 {
                        return ::core::result::Result::Ok(#ident::#variants);
                    }
                )*
                ::core::result::Result::Err(_p::direct::Declined)
            }
        }
    }
}
