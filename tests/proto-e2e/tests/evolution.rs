//! Schema evolution both directions: v1 and v2 of `Person` are compiled into different
//! modules; each decodes what the other wrote (wire format rule 3).

use proto_e2e::evo::{v1, v2};
use tonic_msgpack::{decode_frame, to_vec, to_vec_named};

fn old() -> v1::Person {
    v1::Person {
        name: "Ann".into(),
        age: 41,
        home: Some(v1::Address {
            city: "Oslo".into(),
        }),
    }
}

fn new() -> v2::Person {
    v2::Person {
        name: "Bob".into(),
        home: Some(v2::Address {
            city: "Rome".into(),
            zip: "00100".into(),
        }),
        email: "bob@example.com".into(),
        tags: vec!["a".into()],
        contact: Some(v2::person::Contact::Pager("555".into())),
    }
}

#[test]
fn new_reader_decodes_old_writer() {
    let bytes = to_vec(&old()).unwrap();
    // [name, age, [city]]: shorter than v2's 7 slots, and slot 2 is reserved in v2
    let person = decode_frame::<v2::Person>(&bytes).unwrap();
    assert_eq!(
        person,
        v2::Person {
            name: "Ann".into(),
            home: Some(v2::Address {
                city: "Oslo".into(),
                zip: String::new(),
            }),
            ..v2::Person::default()
        }
    );
}

#[test]
fn old_reader_decodes_new_writer() {
    let bytes = to_vec(&new()).unwrap();
    // v2 writes nil for the removed field 2 and more slots than v1 knows
    let person = decode_frame::<v1::Person>(&bytes).unwrap();
    assert_eq!(
        person,
        v1::Person {
            name: "Bob".into(),
            age: 0,
            home: Some(v1::Address {
                city: "Rome".into()
            }),
        }
    );
}

#[test]
fn both_directions_through_named_maps_too() {
    let person = decode_frame::<v1::Person>(&to_vec_named(&new()).unwrap()).unwrap();
    assert_eq!(person.name, "Bob");
    let person = decode_frame::<v2::Person>(&to_vec_named(&old()).unwrap()).unwrap();
    assert_eq!(person.home.map(|h| h.city).as_deref(), Some("Oslo"));
}

#[test]
fn json_ignores_unknown_fields_both_ways() {
    let json = serde_json::to_string(&new()).unwrap();
    let person: v1::Person = serde_json::from_str(&json).unwrap();
    assert_eq!(person.name, "Bob");
    let json = serde_json::to_string(&old()).unwrap();
    let person: v2::Person = serde_json::from_str(&json).unwrap();
    assert_eq!(person.name, "Ann");
}
