//! `tonic-msgpack new NAME`: scaffolds a service crate (proto, build.rs, server, gateway main,
//! gateway config, tests) from the templates in this package (`templates/service/`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use heck::{ToSnakeCase, ToUpperCamelCase};

/// One template: where it goes in the new crate (with `{{…}}` placeholders) and its text.
struct Template {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!("../templates/service/", $file)),
        }
    };
}

const TEMPLATES: &[Template] = &[
    template!("Cargo.toml", "Cargo.toml.tmpl"),
    template!("README.md", "README.md.tmpl"),
    template!("build.rs", "build.rs.tmpl"),
    template!("gateway.toml", "gateway.toml.tmpl"),
    template!(
        "proto/{{package_dir}}/{{proto_file}}",
        "proto/service.proto.tmpl"
    ),
    template!("src/lib.rs", "src/lib.rs.tmpl"),
    template!("src/main.rs", "src/main.rs.tmpl"),
    template!("tests/service.rs", "tests/service.rs.tmpl"),
    template!("ci/contract.sh", "ci/contract.sh.tmpl"),
    template!(
        ".github/workflows/contract.yml",
        "github/workflows/contract.yml.tmpl"
    ),
];

/// Where the generated crate takes tonic-msgpack from.
pub(crate) enum Dependencies {
    /// Path dependencies on a checkout of this repository.
    Local(PathBuf),
    /// Versions from crates.io.
    Registry,
}

impl Dependencies {
    /// The checkout this binary was built from, when it is still there; else crates.io.
    pub(crate) fn detect() -> Self {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if checkout.join("gateway/Cargo.toml").is_file() {
            match checkout.canonicalize() {
                Ok(path) => Dependencies::Local(path),
                Err(_) => Dependencies::Registry,
            }
        } else {
            Dependencies::Registry
        }
    }

    /// The command that installs the `tonic-msgpack` CLI this crate's CI runs.
    fn cli_install(&self) -> String {
        match self {
            Dependencies::Local(root) => format!(
                "cargo install --locked --path {:?}",
                root.join("cli").display().to_string()
            ),
            Dependencies::Registry => format!(
                "cargo install --locked tonic-msgpack-cli --version {}",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    fn lines(&self) -> (String, String) {
        match self {
            Dependencies::Local(root) => {
                let path = |dir: &str| format!("{:?}", root.join(dir).display().to_string());
                (
                    format!(
                        "tonic-msgpack = {{ path = {} }}\ntonic-msgpack-gateway = {{ path = {} }}",
                        path("runtime"),
                        path("gateway")
                    ),
                    format!("tonic-msgpack-build = {{ path = {} }}", path("build")),
                )
            }
            Dependencies::Registry => {
                let version = env!("CARGO_PKG_VERSION");
                (
                    format!("tonic-msgpack = \"{version}\"\ntonic-msgpack-gateway = \"{version}\""),
                    format!("tonic-msgpack-build = \"{version}\""),
                )
            }
        }
    }
}

/// Checks `name` and returns the placeholder values for it.
fn placeholders(
    name: &str,
    dependencies: &Dependencies,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "invalid name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `billing-service`)"
        );
    }
    let crate_name = name.to_snake_case();
    if syn::parse_str::<syn::Ident>(&crate_name).is_err() {
        bail!("invalid name `{name}`: `{crate_name}` is a Rust keyword");
    }
    let service = name.to_upper_camel_case();
    let (runtime_dep, build_dep) = dependencies.lines();
    Ok(vec![
        ("name", name.to_owned()),
        ("crate_name", crate_name.clone()),
        ("Service", service.clone()),
        (
            "service_snake",
            tonic_msgpack_build::model::tonic_snake_case(&service),
        ),
        ("package", format!("{crate_name}.v1")),
        ("package_dir", format!("{crate_name}/v1")),
        ("proto_file", format!("{crate_name}.proto")),
        ("service_addr", "127.0.0.1:50061".to_owned()),
        ("gateway_addr", "127.0.0.1:8080".to_owned()),
        ("tonic_msgpack_dep", runtime_dep),
        ("tonic_msgpack_build_dep", build_dep),
        ("cli_install", dependencies.cli_install()),
    ])
}

fn render(text: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(text.to_owned(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value)
    })
}

/// Writes the new crate `name` into `dir` (which must not exist or be empty) and returns the
/// files written.
pub(crate) fn scaffold(
    name: &str,
    dir: &Path,
    dependencies: &Dependencies,
) -> anyhow::Result<Vec<PathBuf>> {
    let values = placeholders(name, dependencies)?;
    if dir.exists()
        && dir
            .read_dir()
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty: choose another --path",
            dir.display()
        );
    }
    let mut written = Vec::new();
    for template in TEMPLATES {
        let path = dir.join(render(template.path, &values));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = render(template.text, &values);
        if let Some(start) = text.find("{{") {
            let end = text[start..]
                .find("}}")
                .map_or(text.len(), |end| start + end + 2);
            bail!(
                "template {} has an unknown placeholder {} (a bug in tonic-msgpack)",
                template.path,
                &text[start..end]
            );
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_service_and_package_names() {
        let values = placeholders("billing-service", &Dependencies::Registry).expect("valid");
        let get = |key: &str| {
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("crate_name"), Some("billing_service"));
        assert_eq!(get("Service"), Some("BillingService"));
        assert_eq!(get("service_snake"), Some("billing_service"));
        assert_eq!(get("package"), Some("billing_service.v1"));
        // The CI workflow installs the CLI of this version from crates.io.
        assert_eq!(
            get("cli_install"),
            Some(concat!(
                "cargo install --locked tonic-msgpack-cli --version ",
                env!("CARGO_PKG_VERSION")
            ))
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "Billing", "9lives", "a b", "fn"] {
            assert!(
                placeholders(name, &Dependencies::Registry).is_err(),
                "{name}"
            );
        }
    }
}
