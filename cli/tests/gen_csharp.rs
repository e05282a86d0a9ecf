//! `tonic-msgpack gen csharp`: golden files for the example app, `everything.proto` and the
//! vector-shaped contract, and the byte layout the generated classes declare checked against
//! MessagePack-CSharp's and MagicOnion's own vectors (`data/gen/csharp-vectors.json`).
//!
//! There is no .NET SDK here: the C# is not compiled. What is checked is the layout it
//! declares (`[Key(n)]` / `[Key("name")]`, member types, request types of each method),
//! encoded by MessagePack-CSharp's rules, against bytes those libraries produce.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"))
        .args(["gen", "csharp"])
        .arg(dir)
        .output()
        .expect("run tonic-msgpack");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Compares with the golden file; on a difference, rewrites it and fails (the diff shows in
/// review, as prost-build's fixtures do).
fn golden(name: &str, text: &str) {
    let path = manifest().join("tests/data/gen/csharp").join(name);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != text {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write golden");
        panic!(
            "{} was stale and has been rewritten; review the diff and rerun",
            path.display()
        );
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(from, to).expect("copy");
}

#[test]
fn example_app_golden() {
    let temp = tempfile::tempdir().expect("tempdir");
    let app = manifest().join("../example-app");
    copy(
        &app.join("proto/demo/v1/greeter.proto"),
        &temp.path().join("demo/v1/greeter.proto"),
    );
    copy(
        &app.join("src/calculator.rs"),
        &temp.path().join("calculator.rs"),
    );
    let text = generate(temp.path());
    golden("example-app.cs", &text);
    // What docs/csharp.md writes by hand, generated.
    assert!(text.contains("[global::MessagePack.Key(0)] public string Name { get; set; } = \"\";"));
    assert!(
        text.contains(
            "[global::MessagePack.Key(2)] public global::System.DateTime? At { get; set; }"
        )
    );
    assert!(text.contains("global::Grpc.Core.MethodType.DuplexStreaming, ServiceName, \"Chat\""));
    assert!(text.contains("public sealed class CalculatorAddArgs"));
}

#[test]
fn everything_golden() {
    let temp = tempfile::tempdir().expect("tempdir");
    let e2e = manifest().join("../tests/proto-e2e");
    copy(
        &e2e.join("proto/demo/everything.proto"),
        &temp.path().join("demo/everything.proto"),
    );
    copy(
        &e2e.join("proto-common/common/v1/common.proto"),
        &temp.path().join("common/v1/common.proto"),
    );
    golden("everything.cs", &generate(temp.path()));
}

#[test]
fn output_is_stable() {
    let dir = manifest().join("tests/data/gen/vectors");
    assert_eq!(generate(&dir), generate(&dir));
}

/// One member of a generated class: its key and C# type.
#[derive(Debug, Clone)]
enum Key {
    Index(usize),
    Name(String),
}

#[derive(Debug, Clone)]
struct Member {
    key: Key,
    ty: String,
    property: String,
}

/// The `[MessagePackObject]` classes of a generated file, by class name, and each method's
/// request and response types (`Method<Req, Resp> NameMethod`).
struct Declared {
    classes: BTreeMap<String, Vec<Member>>,
    enums: BTreeMap<String, BTreeMap<String, i64>>,
    methods: BTreeMap<String, (String, String)>,
}

fn parse_declared(text: &str) -> Declared {
    let mut classes = BTreeMap::new();
    let mut enums: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut methods = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut current_enum: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("public sealed class ") {
            current = Some(name.to_owned());
            classes.insert(name.to_owned(), Vec::new());
            current_enum = None;
        } else if let Some(name) = line.strip_prefix("public enum ") {
            current_enum = Some(name.to_owned());
            enums.insert(name.to_owned(), BTreeMap::new());
            current = None;
        } else if let Some(rest) = line.strip_prefix("[global::MessagePack.Key(") {
            let (key, rest) = rest.split_once(")] public ").expect("a key member");
            let key = match key.strip_prefix('"') {
                Some(name) => Key::Name(name.trim_end_matches('"').to_owned()),
                None => Key::Index(key.parse().expect("an index")),
            };
            let (declaration, _) = rest.split_once(" { get; set; }").expect("a property");
            let (ty, property) = declaration.rsplit_once(' ').expect("type and name");
            let class = current.clone().expect("inside a class");
            classes.get_mut(&class).expect("class").push(Member {
                key,
                ty: ty.to_owned(),
                property: property.to_owned(),
            });
        } else if let Some(enumeration) = &current_enum
            && let Some((name, value)) = line.trim_end_matches(',').split_once(" = ")
        {
            enums
                .get_mut(enumeration)
                .expect("enum")
                .insert(name.to_owned(), value.parse().expect("a number"));
        } else if let Some(rest) =
            line.strip_prefix("public static readonly global::Grpc.Core.Method<")
        {
            let (types, name) = rest.rsplit_once("> ").expect("method types");
            let name = name.trim_end_matches(" = new(").trim_end_matches("Method");
            let (request, response) = split_generic_pair(types);
            methods.insert(name.to_owned(), (request, response));
        }
    }
    Declared {
        classes,
        enums,
        methods,
    }
}

/// `A<B, C>, D` → (`A<B, C>`, `D`): the split at the top-level comma.
fn split_generic_pair(text: &str) -> (String, String) {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => return (text[..i].trim().into(), text[i + 1..].trim().into()),
            _ => {}
        }
    }
    panic!("no pair in {text}")
}

/// Encodes `value` as MessagePack-CSharp writes a value of the declared C# type `ty`:
/// `[MessagePackObject]` classes as arrays of max key + 1 with `nil` gaps (integer keys) or
/// maps in member order (string keys), ints in their smallest form, `byte[]` as bin,
/// enums as their number, `DateTime` as the timestamp extension, `Nil` as nil.
fn encode(declared: &Declared, ty: &str, value: &serde_json::Value, out: &mut Vec<u8>) {
    let ty = ty.trim_start_matches("global::");
    if value.is_null() {
        assert!(
            ty.ends_with('?') || ty == "MessagePack.Nil" || declared.classes.contains_key(ty),
            "null for the non-nullable {ty}"
        );
        rmp::encode::write_nil(out).expect("write");
        return;
    }
    let bare = ty.trim_end_matches('?');
    match bare {
        "int" | "long" | "sbyte" | "short" => {
            rmp::encode::write_sint(out, value.as_i64().expect("an int")).expect("write");
        }
        "uint" | "ulong" | "byte" | "ushort" => {
            rmp::encode::write_uint(out, value.as_u64().expect("a uint")).expect("write");
        }
        "string" => rmp::encode::write_str(out, value.as_str().expect("a string")).expect("write"),
        "byte[]" => {
            let bytes: Vec<u8> = value
                .as_array()
                .expect("bytes as an array")
                .iter()
                .map(|b| u8::try_from(b.as_u64().expect("a byte")).expect("a byte"))
                .collect();
            rmp::encode::write_bin(out, &bytes).expect("write");
        }
        "System.DateTime" => {
            // {"seconds": s, "nanos": n}: written by the runtime's Timestamp, which the
            // runtime's own vector tests pin to MessagePack-CSharp's DateTime bytes.
            let stamp = tonic_msgpack::wkt::Timestamp {
                seconds: value["seconds"].as_i64().expect("seconds"),
                nanos: i32::try_from(value["nanos"].as_i64().expect("nanos")).expect("nanos"),
            };
            out.extend(tonic_msgpack::to_vec(&stamp).expect("encode"));
        }
        _ if bare.starts_with("System.Collections.Generic.List<") => {
            let element = &bare["System.Collections.Generic.List<".len()..bare.len() - 1];
            let items = value.as_array().expect("a list");
            rmp::encode::write_array_len(out, u32::try_from(items.len()).expect("len"))
                .expect("write");
            for item in items {
                encode(declared, element, item, out);
            }
        }
        _ if declared.enums.contains_key(bare) => {
            let number = declared.enums[bare][value.as_str().expect("a value name")];
            rmp::encode::write_sint(out, number).expect("write");
        }
        _ if declared.classes.contains_key(bare) => {
            let members = &declared.classes[bare];
            let object = value.as_object().expect("an object of properties");
            let string_keys = members.iter().any(|m| matches!(m.key, Key::Name(_)));
            if string_keys {
                rmp::encode::write_map_len(out, u32::try_from(object.len()).expect("len"))
                    .expect("write");
                for member in members {
                    let Key::Name(key) = &member.key else {
                        panic!("mixed keys in {bare}")
                    };
                    if let Some(v) = object.get(&member.property) {
                        rmp::encode::write_str(out, key).expect("write");
                        encode(declared, &member.ty, v, out);
                    }
                }
            } else {
                let len = members
                    .iter()
                    .map(|m| match m.key {
                        Key::Index(i) => i + 1,
                        Key::Name(_) => 0,
                    })
                    .max()
                    .unwrap_or(0);
                rmp::encode::write_array_len(out, u32::try_from(len).expect("len")).expect("write");
                for index in 0..len {
                    match members
                        .iter()
                        .find(|m| matches!(m.key, Key::Index(i) if i == index))
                    {
                        Some(member) => {
                            let v = object
                                .get(&member.property)
                                .cloned()
                                .unwrap_or_else(|| default_of(&member.ty));
                            encode(declared, &member.ty, &v, out);
                        }
                        None => rmp::encode::write_nil(out).expect("write"),
                    }
                }
            }
        }
        other => panic!("no encoding for the C# type {other}"),
    }
}

/// The value a default-constructed member has (what MessagePack-CSharp writes for it).
fn default_of(ty: &str) -> serde_json::Value {
    match ty {
        "int" | "long" | "uint" | "ulong" | "short" | "ushort" | "byte" | "sbyte" => {
            serde_json::json!(0)
        }
        "string" => serde_json::json!(""),
        _ => serde_json::Value::Null,
    }
}

fn vectors() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(manifest().join("tests/data/gen/csharp-vectors.json"))
        .expect("vectors");
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
    list.into_iter()
        .map(|v| {
            (
                v["name"].as_str().expect("name").to_owned(),
                v["hex"].as_str().expect("hex").to_owned(),
            )
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn generated_layout_matches_the_csharp_vectors() {
    let text = generate(&manifest().join("tests/data/gen/vectors"));
    golden("vectors.cs", &text);
    let declared = parse_declared(&text);
    let vectors = vectors();
    let json = |s: &str| -> serde_json::Value { serde_json::from_str(s).expect("JSON") };
    // (vector, declared C# type or `request:Method` / `response:Method`, value)
    let cases: &[(&str, &str, &str)] = &[
        (
            "intkey_two_members_readme",
            "TwoMembers",
            r#"{"Foo": 10, "Bar": 20}"#,
        ),
        ("intkey_gap_readme", "Gap", r#"{}"#),
        ("intkey_gap_key0_key2", "GapC", r#"{"A": 1, "C": "x"}"#),
        ("intkey_empty_class", "Empty1", r#"{}"#),
        ("intkey_one_default_int", "MyObject", r#"{}"#),
        (
            "intkey_record_single_member",
            "MyObject",
            r#"{"MyProperty": 12345}"#,
        ),
        (
            "intkey_list_of_objects",
            "response:BuiltInGeneric",
            r#"[{"Value": 1}, {"Value": 100}, {"Value": 1000}]"#,
        ),
        ("enum_int_backed_value_2", "MyEnumValue", r#""C""#),
        ("bytes_1_2_3", "byte[]", "[1, 2, 3]"),
        ("bytes_empty", "byte[]", "[]"),
        ("nullable_int_value", "int?", "100"),
        ("nullable_int_null", "int?", "null"),
        (
            "dt_epoch",
            "System.DateTime",
            r#"{"seconds": 0, "nanos": 0}"#,
        ),
        (
            "dt_2010_12_01_030457_123",
            "System.DateTime",
            r#"{"seconds": 1291172697, "nanos": 123000000}"#,
        ),
        (
            "dt_pre_epoch_1969_12_31_235959_999",
            "System.DateTime",
            r#"{"seconds": -1, "nanos": 999000000}"#,
        ),
        (
            "dt_max_value",
            "System.DateTime",
            r#"{"seconds": 253402300799, "nanos": 999999900}"#,
        ),
        ("strkey_readme", "request:Keys", r#"{"Foo": 10, "Bar": 20}"#),
        (
            "keyAsPropertyName_readme",
            "response:Keys",
            r#"{"Foo": 10}"#,
        ),
        (
            "magiconion_two_args_request",
            "request:TwoParameters",
            r#"{"Arg1": 12345, "Arg2": "Hello"}"#,
        ),
        ("magiconion_void_response", "response:TwoParameters", "null"),
        (
            "magiconion_zero_args_request",
            "request:NoParameters",
            "null",
        ),
        (
            "magiconion_single_arg_list",
            "request:BuiltInGeneric",
            r#"[{"Value": 1}, {"Value": 2}, {"Value": 3}, {"Value": 4}, {"Value": 5}]"#,
        ),
    ];
    // The members the vector-shaped classes must declare, as the vectors' C# shapes say.
    let kinds = &declared.classes["Kinds"];
    let types: Vec<&str> = kinds.iter().map(|m| m.ty.as_str()).collect();
    assert_eq!(
        types,
        ["MyEnumValue", "byte[]", "int?", "global::System.DateTime?"]
    );
    for (vector, ty, value) in cases {
        let ty = if let Some(method) = ty.strip_prefix("request:") {
            declared.methods[method].0.clone()
        } else if let Some(method) = ty.strip_prefix("response:") {
            declared.methods[method].1.clone()
        } else {
            (*ty).to_owned()
        };
        let mut bytes = Vec::new();
        encode(&declared, &ty, &json(value), &mut bytes);
        assert_eq!(
            hex(&bytes),
            vectors[*vector],
            "vector {vector}: the generated C# type {ty} declares another layout"
        );
    }
    assert_eq!(cases.len(), vectors.len(), "every copied vector is checked");
}

#[test]
fn check_mode_fails_on_a_stale_file() {
    let temp = tempfile::tempdir().expect("tempdir");
    let out = temp.path().join("Clients.g.cs");
    let dir = manifest().join("tests/data/gen/vectors");
    let run = |check: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tonic-msgpack"));
        command
            .args(["gen", "csharp"])
            .arg(&dir)
            .arg("--out")
            .arg(&out);
        if check {
            command.arg("--check");
        }
        command.output().expect("run")
    };
    assert_eq!(run(true).status.code(), Some(1), "missing file is stale");
    assert!(run(false).status.success());
    assert_eq!(
        std::fs::read_to_string(&out).expect("written"),
        generate(&dir)
    );
    assert!(run(true).status.success(), "fresh file passes --check");
    std::fs::write(&out, "// edited\n").expect("write");
    let stale = run(true);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("is stale"));
}
