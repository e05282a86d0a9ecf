//! The benchmark messages: one struct per size, with both prost and serde derives, so prost and
//! MessagePack encode exactly the same data.

// Written as a user's message crate would be (`pub` types and fields), used only by this bench.
#![allow(unreachable_pub)]

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Small {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(bool, tag = "3")]
    pub active: bool,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Item {
    #[prost(string, tag = "1")]
    pub sku: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
    #[prost(int64, tag = "3")]
    pub price_cents: i64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Order {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub customer: String,
    #[prost(message, repeated, tag = "3")]
    pub items: Vec<Item>,
    #[prost(double, tag = "4")]
    pub total: f64,
    #[prost(string, tag = "5")]
    pub note: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Blob {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", tag = "2")]
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

pub fn small() -> Small {
    Small {
        id: 42,
        name: "Ada Lovelace".into(),
        active: true,
    }
}

pub fn order() -> Order {
    Order {
        id: 1_000_123,
        customer: "customer-00042".into(),
        items: (0..10)
            .map(|i| Item {
                sku: format!("SKU-{i:05}"),
                quantity: i + 1,
                price_cents: 1_999 + i64::from(i) * 250,
            })
            .collect(),
        total: 1234.5,
        note: "leave at the door".into(),
    }
}

pub fn blob() -> Blob {
    Blob {
        name: "payload.bin".into(),
        data: (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect(),
    }
}
