//! Proto services → [`ServiceModel`]s, with docs from comments and HTTP bindings from
//! `google.api.http`.

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::FileDescriptorProto;

use super::ProtoSet;
use crate::Error;
use crate::model::{CallKind, Format, HttpBinding, MethodModel, ServiceModel, sanitize};

impl ProtoSet {
    /// One model per proto `service` of the user's files (imports included, built-ins not).
    ///
    /// # Errors
    ///
    /// None today; kept fallible for checks that need the whole set.
    pub fn services(&self) -> Result<Vec<ServiceModel>, Error> {
        let http = self.pool.get_extension_by_name("google.api.http");
        let mut out = Vec::new();
        for file in self.user_files() {
            let package = file.package().to_owned();
            for (s, service) in file.service.iter().enumerate() {
                let mut model = ServiceModel {
                    package: package.clone(),
                    name: service.name().to_owned(),
                    docs: comments(file, &[6, s as i32]),
                    format: Format::Compact,
                    methods: Vec::new(),
                    rust_trait: None,
                };
                let reflected = self.pool.get_service_by_name(&model.full_name());
                for (m, method) in service.method.iter().enumerate() {
                    let mut method_model = MethodModel::new(
                        method.name(),
                        rust_path(&package, method.input_type()),
                        rust_path(&package, method.output_type()),
                        CallKind::from_flags(method.client_streaming(), method.server_streaming()),
                    );
                    method_model.input_proto = Some(method.input_type().to_owned());
                    method_model.output_proto = Some(method.output_type().to_owned());
                    method_model.docs = comments(file, &[6, s as i32, 2, m as i32]);
                    if let (Some(ext), Some(svc)) = (&http, &reflected)
                        && let Some(desc) = svc.methods().find(|d| d.name() == method.name())
                    {
                        method_model.http = http_binding(&desc.options(), ext);
                    }
                    model.methods.push(method_model);
                }
                out.push(model);
            }
        }
        Ok(out)
    }
}

/// The Rust path of message `proto_type` (`.demo.v1.HelloRequest`) as seen from the server or
/// client module inside the module of `package` (tonic-prost's convention: `super::HelloRequest`).
fn rust_path(package: &str, proto_type: &str) -> String {
    if let Some(path) = crate::model::well_known_rust_path(proto_type) {
        return path.to_owned();
    }
    let name = proto_type.trim_start_matches('.');
    let from: Vec<&str> = package.split('.').filter(|s| !s.is_empty()).collect();
    // Package segments are lowercase by convention, message names start upper-case.
    let parts: Vec<&str> = name.split('.').collect();
    let split = parts
        .iter()
        .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(parts.len().saturating_sub(1));
    let (target_pkg, types) = parts.split_at(split);
    let common = from
        .iter()
        .zip(target_pkg)
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = vec!["super".to_owned(); 1 + from.len() - common];
    path.extend(
        target_pkg[common..]
            .iter()
            .map(|p| sanitize(&p.to_snake_case())),
    );
    if let Some((last, parents)) = types.split_last() {
        path.extend(parents.iter().map(|p| sanitize(&p.to_snake_case())));
        path.push(sanitize(&last.to_upper_camel_case()));
    }
    path.join("::")
}

/// The leading comment of the element at `path` in the file's source info.
fn comments(file: &FileDescriptorProto, path: &[i32]) -> Vec<String> {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|loc| loc.path == path))
        .and_then(|loc| loc.leading_comments.as_deref())
        .map(|text| {
            text.trim_end()
                .lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `google.api.http` option of a method, if any.
fn http_binding(
    options: &prost_reflect::DynamicMessage,
    ext: &prost_reflect::ExtensionDescriptor,
) -> Option<HttpBinding> {
    if !options.has_extension(ext) {
        return None;
    }
    let value = options.get_extension(ext);
    let rule = value.as_message()?;
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
    };
    let (method, path) = ["get", "put", "post", "delete", "patch"]
        .iter()
        .find_map(|verb| text(verb).map(|path| (verb.to_uppercase(), path)))
        .or_else(|| {
            let custom = rule.get_field_by_name("custom")?;
            let custom = custom.as_message()?;
            let kind = custom.get_field_by_name("kind")?.as_str()?.to_uppercase();
            let path = custom.get_field_by_name("path")?.as_str()?.to_owned();
            Some((kind, path))
        })?;
    Some(HttpBinding {
        method,
        path,
        body: text("body"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_paths_are_relative_to_the_generated_modules() {
        assert_eq!(
            rust_path("demo.v1", ".demo.v1.HelloRequest"),
            "super::HelloRequest"
        );
        assert_eq!(
            rust_path("demo.v1", ".other.v1.Msg"),
            "super::super::super::other::v1::Msg"
        );
        assert_eq!(
            rust_path("demo.v1", ".demo.v1.Outer.Inner"),
            "super::outer::Inner"
        );
        assert_eq!(rust_path("demo", ".demo.v1.Msg"), "super::v1::Msg");
        assert_eq!(rust_path("", ".Msg"), "super::Msg");
        assert_eq!(rust_path("demo.v1", ".google.protobuf.Empty"), "()");
    }
}
