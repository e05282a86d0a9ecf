//! OpenAPI 3.1 for the REST bindings of the services in a descriptor set: paths from each
//! method's `google.api.http` option (or the default `POST /{package}.{Service}/{Method}`),
//! schemas from the messages as the REST transcoders write them (proto JSON names, enums by
//! name, `Timestamp` as an RFC 3339 string), the error body `{code, message, field}`, and
//! NDJSON for server streaming. Client-streaming methods have no REST form and no path.

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use serde_json::{Map, Value as Json, json};

use crate::bridge::layout::layout_number;

/// The OpenAPI 3.1 document of every service in `pool`, titled `title`.
pub fn openapi_document(pool: &DescriptorPool, title: &str) -> Json {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "A failed call: its gRPC status code and message, and the request field at fault when there is one.",
            "properties": {
                "code": {"type": "integer", "description": "The gRPC status code."},
                "message": {"type": "string"},
                "field": {"type": "string"}
            },
            "required": ["code", "message"]
        }),
    );
    for service in pool.services() {
        for method in service.methods() {
            if method.is_client_streaming() {
                continue;
            }
            let (verb, template, body) = binding(&method);
            let path = template
                .split('/')
                .map(|segment| match segment.strip_prefix('{') {
                    Some(var) => format!("{{{}}}", var.split(['=', '}']).next().unwrap_or(var)),
                    None => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let variables: Vec<String> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            let input = method.input();
            let mut parameters = Vec::new();
            for variable in &variables {
                let schema = field_of(&input, variable).map_or_else(
                    || json!({"type": "string"}),
                    |f| field_schema(&f, &mut schemas),
                );
                parameters.push(
                    json!({"name": variable, "in": "path", "required": true, "schema": schema}),
                );
            }
            let mut operation = Map::new();
            operation.insert(
                "operationId".into(),
                json!(format!("{}.{}", service.full_name(), method.name())),
            );
            operation.insert("tags".into(), json!([service.full_name()]));
            match body.as_deref() {
                Some("*") => {
                    let schema = body_schema(&input, &mut schemas);
                    operation.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/json": {"schema": schema}}}),
                    );
                }
                Some(field) => {
                    let schema = field_of(&input, field)
                        .map_or_else(|| json!({}), |f| field_schema(&f, &mut schemas));
                    operation.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/json": {"schema": schema}}}),
                    );
                }
                None => {
                    for field in input.fields() {
                        let name = json_key(&input, &field);
                        if variables.contains(&name) || variables.contains(&field.name().to_owned())
                        {
                            continue;
                        }
                        parameters.push(json!({"name": name, "in": "query", "required": false, "schema": field_schema(&field, &mut schemas)}));
                    }
                }
            }
            if !parameters.is_empty() {
                operation.insert("parameters".into(), Json::Array(parameters));
            }
            let reply = reply_schema(&method.output(), &mut schemas);
            let content = if method.is_server_streaming() {
                json!({"application/x-ndjson": {"schema": reply}})
            } else {
                json!({"application/json": {"schema": reply}})
            };
            operation.insert(
                "responses".into(),
                json!({
                    "200": {"description": if method.is_server_streaming() { "One JSON value per line, one per message." } else { "The reply." }, "content": content},
                    "default": {"description": "A failed call.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                }),
            );
            let entry = paths
                .entry(path)
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(entry) = entry {
                entry.insert(verb, Json::Object(operation));
            }
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

/// `(verb, path template, body)` of a method: its `google.api.http` option, else the default
/// binding `POST /{service}/{method}` with the whole message as the body.
fn binding(method: &MethodDescriptor) -> (String, String, Option<String>) {
    let default = || {
        (
            "post".to_owned(),
            format!("/{}/{}", method.parent_service().full_name(), method.name()),
            Some("*".to_owned()),
        )
    };
    let Some(extension) = method
        .parent_pool()
        .get_extension_by_name("google.api.http")
    else {
        return default();
    };
    let options = method.options();
    if !options.has_extension(&extension) {
        return default();
    }
    let rule = options.get_extension(&extension);
    let Some(rule) = rule.as_message() else {
        return default();
    };
    let text = |message: &DynamicMessage, name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .filter(|value| !value.is_empty())
    };
    let body = text(rule, "body");
    for verb in ["get", "put", "post", "delete", "patch"] {
        if let Some(path) = text(rule, verb) {
            return (verb.to_owned(), path, body);
        }
    }
    if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").map(|v| v.into_owned())
        && let (Some(kind), Some(path)) = (text(&custom, "kind"), text(&custom, "path"))
    {
        return (kind.to_ascii_lowercase(), path, body);
    }
    default()
}

/// Trait arguments and the structs of a trait (messages synthesized by `tonic-msgpack schema`,
/// plain serde types) are keyed by name as written, as the REST transcoders write them; proto
/// fields by JSON name.
fn json_key(message: &MessageDescriptor, field: &FieldDescriptor) -> String {
    if layout_number(message) == 2 || message.parent_file().name().ends_with(".msgpack.proto") {
        field.name().to_owned()
    } else {
        field.json_name().to_owned()
    }
}

fn field_of(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
}

/// The JSON body of a request message.
fn body_schema(message: &MessageDescriptor, schemas: &mut Map<String, Json>) -> Json {
    if message.full_name() == "google.protobuf.Empty" {
        return json!({"type": "object"});
    }
    message_schema(message, schemas)
}

/// The JSON of a reply: a trait result is its value itself, `()` is null.
fn reply_schema(message: &MessageDescriptor, schemas: &mut Map<String, Json>) -> Json {
    if message.full_name() == "google.protobuf.Empty" {
        return json!({"type": "null"});
    }
    if layout_number(message) == 3 {
        return message
            .get_field(1)
            .map_or_else(|| json!({"type": "null"}), |f| field_schema(&f, schemas));
    }
    message_schema(message, schemas)
}

fn message_schema(message: &MessageDescriptor, schemas: &mut Map<String, Json>) -> Json {
    if let Some(schema) = well_known(message) {
        return schema;
    }
    let name = message.full_name().to_owned();
    if !schemas.contains_key(&name) {
        // Placeholder first: recursive messages refer to themselves.
        schemas.insert(name.clone(), json!({}));
        let mut properties = Map::new();
        for field in message.fields() {
            properties.insert(json_key(message, &field), field_schema(&field, schemas));
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if layout_number(message) == 2 {
            // The typed transcoders need every argument.
            schema["required"] = json!(
                message
                    .fields()
                    .map(|f| f.name().to_owned())
                    .collect::<Vec<_>>()
            );
        }
        schemas.insert(name.clone(), schema);
    }
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "description": "Seconds with an `s` suffix, e.g. \"1.5s\"."})
        }
        "google.protobuf.Empty" => json!({"type": ["object", "null"]}),
        "google.protobuf.Any" => json!({"type": "object"}),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
            json!({"type": ["number", "null"]})
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": ["integer", "string", "null"]})
        }
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({"type": ["integer", "null"]})
        }
        "google.protobuf.BoolValue" => json!({"type": ["boolean", "null"]}),
        "google.protobuf.StringValue" => json!({"type": ["string", "null"]}),
        "google.protobuf.BytesValue" => {
            json!({"type": ["string", "null"], "contentEncoding": "base64"})
        }
        _ => return None,
    })
}

fn field_schema(field: &FieldDescriptor, schemas: &mut Map<String, Json>) -> Json {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let value = kind_schema(&entry.map_entry_value_field().kind(), schemas);
        return json!({"type": "object", "additionalProperties": value});
    }
    let single = kind_schema(&field.kind(), schemas);
    if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    }
}

fn kind_schema(kind: &Kind, schemas: &mut Map<String, Json>) -> Json {
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        // Proto JSON writes 64-bit integers as strings; numbers are accepted too.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": ["integer", "string"], "format": "int64"})
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": ["integer", "string"], "format": "uint64"})
        }
        Kind::Float => json!({"type": "number", "format": "float"}),
        Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Enum(values) => {
            let names: Vec<String> = values.values().map(|v| v.name().to_owned()).collect();
            json!({"type": "string", "enum": names})
        }
        Kind::Message(message) => message_schema(message, schemas),
    }
}
