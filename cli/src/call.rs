//! `tonic-msgpack call`: a grpcurl for MessagePack services. JSON in, JSON out.
//!
//! Every call kind goes through one bidirectional-streaming gRPC call (the wire is the same):
//! the request messages are `--json` (one) or NDJSON lines on stdin (a stream), and each reply
//! message is printed as one JSON line as it arrives. A non-OK status prints
//! `ERROR: <Code> <message>` on stderr and exits with 1.
//!
//! TLS (rustls): an `https://` address, or `--tls`/`--ca`/`--cert` with a bare `host:port`.
//! The server is verified against `--ca` (PEM), else the Mozilla roots built in
//! (webpki-roots, the same everywhere, as in the gateway); `--cert`/`--key` present a client
//! certificate (mTLS). An `http://` address never upgrades, and TLS options never downgrade.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BufMut};
use clap::Args;
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{
    AsciiMetadataKey, AsciiMetadataValue, BinaryMetadataKey, BinaryMetadataValue,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::convert::{self, Mp};

/// `tonic-msgpack call ADDR /pkg.Service/Method`.
#[derive(Debug, Args)]
#[command(after_help = CALL_EXAMPLES)]
pub(crate) struct CallArgs {
    /// The server: `127.0.0.1:50051` or `http://host:port` (h2c, cleartext), or
    /// `https://host:port` (TLS).
    #[arg(value_name = "ADDR")]
    addr: String,
    /// The method: `/demo.v1.Greeter/SayHello` (or without the leading slash).
    #[arg(value_name = "METHOD")]
    method: String,
    /// The request message as JSON. Without it, requests are read from stdin, one JSON value
    /// per line (NDJSON), which is how client-streaming calls send their messages.
    #[arg(long, value_name = "JSON")]
    json: Option<String>,
    /// A .proto file describing the method: JSON uses proto field names (or JSON names) and
    /// is encoded by field number. Without it the call is schema-less: JSON objects become
    /// MessagePack maps, arrays arrays (trait methods take `[a, b]` for several arguments,
    /// the bare value for one, `null` for none).
    #[arg(long, value_name = "FILE")]
    proto: Option<PathBuf>,
    /// An include directory for --proto (repeatable; default: the proto file's directory).
    #[arg(long, value_name = "DIR")]
    include: Vec<PathBuf>,
    /// With --proto: encode requests in the named layout (maps by field name) instead of the
    /// compact one (arrays by field number). Replies are decoded in either layout.
    #[arg(long)]
    named: bool,
    /// Request metadata, `key: value` (repeatable; `-bin` keys take base64 values).
    #[arg(short = 'H', long = "header", value_name = "KEY: VALUE")]
    headers: Vec<String>,
    /// Deadline of the call (sent as `grpc-timeout`): `500ms`, `5s`, `2m`, or seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    #[command(flatten)]
    tls: TlsArgs,
}

const CALL_EXAMPLES: &str = "\
Examples:
  tonic-msgpack call 127.0.0.1:50051 /demo.v1.Calculator/Add --json '[1, 2]'
  tonic-msgpack call https://api.example.com /demo.v1.Calculator/Add --json '[1, 2]' \\
      -H 'authorization: Bearer eyJhbGciOi...'
  tonic-msgpack call localhost:8443 /demo.v1.Calculator/Add --json '[1, 2]' --ca ca.pem
  tonic-msgpack call 10.0.0.7:8443 /demo.v1.Calculator/Add --json '[1, 2]' \\
      --ca ca.pem --cert client.pem --key client.key --server-name gateway.internal
  tonic-msgpack call localhost:8443 /demo.v1.Calculator/Add --json '[1, 2]' --tls \\
      -H 'x-api-key: KEY'";

/// How `call` connects over TLS.
#[derive(Debug, Default, Args)]
struct TlsArgs {
    /// Connect over TLS (what an `https://` address says; a bare `host:port` becomes
    /// `https://host:port`). Implied by --ca, --cert and --server-name.
    #[arg(long)]
    tls: bool,
    /// The CA certificates (PEM) that the server's certificate must chain to. Default: the
    /// Mozilla roots built into the tool (webpki-roots).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM, leaf first) for servers that require one (mTLS).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the address's host
    /// (e.g. `localhost` for a server called by IP address).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
}

impl TlsArgs {
    fn requested(&self) -> bool {
        self.tls || self.ca.is_some() || self.cert.is_some() || self.server_name.is_some()
    }

    /// The rustls client settings: which CAs, which client certificate, which name.
    fn client_config(&self) -> anyhow::Result<ClientTlsConfig> {
        let mut tls = match &self.ca {
            Some(path) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem_certificates(path, "--ca")?)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(
                pem_certificates(cert, "--cert")?,
                pem_private_key(key, "--key")?,
            ));
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(tls)
    }
}

/// The text of a PEM file of certificates, checked to hold at least one; errors name the
/// option and the file.
fn pem_certificates(path: &std::path::Path, option: &str) -> anyhow::Result<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{option}: cannot read `{name}`"))?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        cert.map_err(|err| anyhow!("{option}: `{name}` is not valid PEM: {err}"))?;
        count += 1;
    }
    if count == 0 {
        bail!("{option}: `{name}` holds no PEM CERTIFICATE");
    }
    Ok(bytes)
}

/// The text of a PEM private key file, checked to hold one.
fn pem_private_key(path: &std::path::Path, option: &str) -> anyhow::Result<Vec<u8>> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{option}: cannot read `{name}`"))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => {
            anyhow!("{option}: `{name}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")
        }
        err => anyhow!("{option}: `{name}` is not valid PEM: {err}"),
    })?;
    Ok(bytes)
}

/// The endpoint of `addr`: cleartext for `http://`, TLS for `https://` (or a bare address
/// with TLS options). Contradictions are errors, never a silent downgrade.
fn endpoint(addr: &str, tls: &TlsArgs) -> anyhow::Result<(String, Endpoint)> {
    let uri = match addr.split_once("://") {
        Some(("https", _)) => addr.to_owned(),
        Some(("http", _)) if tls.requested() => bail!(
            "`{addr}` is cleartext (http://) but --tls, --ca, --cert or --server-name asks \
             for TLS: use https://"
        ),
        Some(("http", _)) => addr.to_owned(),
        Some((scheme, _)) => {
            bail!(
                "invalid address `{addr}`: the scheme must be http:// or https://, not {scheme}://"
            )
        }
        None if tls.requested() => format!("https://{addr}"),
        None => format!("http://{addr}"),
    };
    let mut endpoint =
        Endpoint::from_shared(uri.clone()).with_context(|| format!("invalid address `{addr}`"))?;
    if uri.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tls.client_config()?)
            .context("cannot use the TLS settings (--ca, --cert, --key)")?;
    }
    Ok((uri, endpoint))
}

/// How JSON and MessagePack convert for this method.
enum Schema {
    /// Plain JSON ⇄ MessagePack.
    None,
    /// By the method's descriptor.
    Proto {
        method: MethodDescriptor,
        named: bool,
    },
}

impl Schema {
    fn input(&self) -> Option<MessageDescriptor> {
        match self {
            Schema::None => None,
            Schema::Proto { method, .. } => Some(method.input()),
        }
    }

    /// One request: JSON text → MessagePack. `source` names it in errors.
    fn encode(&self, text: &str, source: &str) -> anyhow::Result<Vec<u8>> {
        let json: serde_json::Value =
            serde_json::from_str(text).with_context(|| format!("{source}: invalid JSON"))?;
        let value = match (self, self.input()) {
            (Schema::Proto { .. }, Some(input)) => {
                convert::message_from_json(&input, &json).with_context(|| source.to_owned())?
            }
            _ => convert::json_to_mp(&json),
        };
        Ok(value.encode())
    }

    /// One reply: MessagePack → one line of JSON.
    fn decode(&self, bytes: &[u8], index: usize) -> anyhow::Result<String> {
        let value = Mp::decode(bytes).with_context(|| format!("reply message {index}"))?;
        let json = match self {
            Schema::None => convert::mp_to_json(&value),
            Schema::Proto { method, .. } => convert::message_to_json(&method.output(), &value)
                .with_context(|| format!("reply message {index}"))?,
        };
        Ok(json.to_string())
    }
}

/// Runs the call; the exit code is 1 on a non-OK status.
pub(crate) fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(call(args))
}

async fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let (service, method) = split_method(&args.method)?;
    let schema = match &args.proto {
        None => Schema::None,
        Some(proto) => Schema::Proto {
            method: find_method(proto, &args.include, &service, &method, args.named)?,
            named: args.named,
        },
    };
    let path = PathAndQuery::from_str(&format!("/{service}/{method}"))
        .with_context(|| format!("invalid method path `{}`", args.method))?;
    let metadata = parse_headers(&args.headers)?;

    // Requests: --json (checked before connecting) or NDJSON from stdin.
    let single_request = match (&schema, &args.json) {
        (Schema::Proto { method, .. }, None) if !method.is_client_streaming() => {
            // One message is expected: read all of stdin as one JSON document.
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the request from stdin")?;
            Some(schema.encode(&text, "stdin")?)
        }
        (_, Some(json)) => Some(schema.encode(json, "--json")?),
        (_, None) => None,
    };

    let (addr, mut endpoint) = endpoint(&args.addr, &args.tls)?;
    if let Some(timeout) = args.timeout {
        endpoint = endpoint.connect_timeout(timeout);
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;

    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let (input_error, mut input_failed) = tokio::sync::oneshot::channel::<anyhow::Error>();
    match single_request {
        Some(bytes) => {
            // Capacity 16: never blocks.
            let _ = sender.try_send(bytes);
            drop(sender);
            drop(input_error);
        }
        None => read_stdin(schema_for_thread(&schema), sender, input_error),
    }
    let mut request = Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    *request.metadata_mut() = metadata;
    if let Some(timeout) = args.timeout {
        request.set_timeout(timeout);
    }

    let exchange = async {
        let response = grpc.streaming(request, path, RawCodec).await?;
        let mut replies = response.into_inner();
        let mut index = 0;
        while let Some(bytes) = replies.message().await? {
            index += 1;
            match schema.decode(&bytes, index) {
                Ok(line) => println!("{line}"),
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok::<_, Status>(Ok(()))
    };
    let result = tokio::select! {
        result = exchange => result,
        Ok(error) = &mut input_failed => {
            // Dropping the call resets the stream: the server sees a cancelled call, never a
            // request stream that ended early.
            return Err(error);
        }
    };
    match result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(error)) => Err(error),
        Err(status) => {
            eprintln!("ERROR: {:?} {}", status.code(), status.message());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The schema again, for the stdin thread (descriptors are cheap handles).
fn schema_for_thread(schema: &Schema) -> Schema {
    match schema {
        Schema::None => Schema::None,
        Schema::Proto { method, named } => Schema::Proto {
            method: method.clone(),
            named: *named,
        },
    }
}

/// Reads NDJSON requests from stdin on a plain thread (stdin is blocking), sending each
/// encoded message as it is read. On bad input it reports the error and keeps the channel
/// open, so the call is cancelled rather than completed with part of its input.
fn read_stdin(
    schema: Schema,
    sender: tokio::sync::mpsc::Sender<Vec<u8>>,
    input_error: tokio::sync::oneshot::Sender<anyhow::Error>,
) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for (number, line) in std::io::BufRead::lines(stdin.lock()).enumerate() {
            let result = line
                .with_context(|| format!("cannot read stdin line {}", number + 1))
                .and_then(|line| {
                    if line.trim().is_empty() {
                        Ok(None)
                    } else {
                        schema
                            .encode(&line, &format!("stdin line {}", number + 1))
                            .map(Some)
                    }
                });
            match result {
                Ok(None) => {}
                Ok(Some(bytes)) => {
                    if sender.blocking_send(bytes).is_err() {
                        return; // the call is over
                    }
                }
                Err(error) => {
                    let _ = input_error.send(error);
                    // Keep `sender` alive: the process exits with the error.
                    loop {
                        std::thread::park();
                    }
                }
            }
        }
    });
}

/// `/demo.v1.Greeter/SayHello` → (`demo.v1.Greeter`, `SayHello`).
fn split_method(path: &str) -> anyhow::Result<(String, String)> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed.split_once('/') {
        Some((service, method))
            if !service.is_empty() && !method.is_empty() && !method.contains('/') =>
        {
            Ok((service.to_owned(), method.to_owned()))
        }
        _ => bail!("invalid method `{path}`: expected `/package.Service/Method`"),
    }
}

fn find_method(
    proto: &std::path::Path,
    includes: &[PathBuf],
    service: &str,
    method: &str,
    named: bool,
) -> anyhow::Result<MethodDescriptor> {
    let mut includes = includes.to_vec();
    if includes.is_empty() {
        let dir = proto
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        includes.push(dir.to_owned());
    }
    // protox wants the file relative to an include directory.
    let relative = includes
        .iter()
        .find_map(|dir| proto.strip_prefix(dir).ok())
        .unwrap_or(proto)
        .to_owned();
    // The layout travels in the descriptors' options, as the gateway reads them.
    let format = if named {
        tonic_msgpack_build::Format::Named
    } else {
        tonic_msgpack_build::Format::Compact
    };
    let descriptors = tonic_msgpack_build::load::descriptor_set(
        &[relative],
        &includes,
        &[] as &[PathBuf],
        format,
        tonic_msgpack_build::KeyCase::AsWritten,
    )?;
    let pool = prost_reflect::DescriptorPool::decode(descriptors.as_slice())
        .with_context(|| format!("{}: cannot index the descriptors", proto.display()))?;
    let descriptor = pool.get_service_by_name(service).ok_or_else(|| {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
        anyhow!(
            "{}: no service `{service}` (services: {})",
            proto.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    })?;
    descriptor
        .methods()
        .find(|m| m.name() == method)
        .ok_or_else(|| {
            let known: Vec<String> = descriptor.methods().map(|m| m.name().to_owned()).collect();
            anyhow!(
                "{}: service `{service}` has no method `{method}` (methods: {})",
                proto.display(),
                known.join(", ")
            )
        })
}

fn parse_headers(headers: &[String]) -> anyhow::Result<tonic::metadata::MetadataMap> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for header in headers {
        let (key, value) = header
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid header `{header}`: expected `key: value`"))?;
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key.ends_with("-bin") {
            let key = BinaryMetadataKey::from_str(&key)
                .with_context(|| format!("invalid header name `{key}`"))?;
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value)
                .with_context(|| format!("header `{key}`: a -bin value must be base64"))?;
            metadata.append_bin(key, BinaryMetadataValue::from_bytes(&bytes));
        } else {
            let name = AsciiMetadataKey::from_str(&key)
                .with_context(|| format!("invalid header name `{key}`"))?;
            let value = AsciiMetadataValue::from_str(value)
                .with_context(|| format!("header `{key}`: invalid value"))?;
            metadata.append(name, value);
        }
    }
    Ok(metadata)
}

/// `500ms`, `5s`, `2m`, `1.5` (seconds).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value > 0.0)
        .map(|value| Duration::from_secs_f64(value * scale))
        .ok_or_else(|| format!("invalid duration `{text}`: expected e.g. 500ms, 5s, 2m"))
}

/// Passes message bytes through unchanged: the conversion happens before and after.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arguments() {
        assert_eq!(
            split_method("/demo.v1.Greeter/SayHello").expect("valid"),
            ("demo.v1.Greeter".to_owned(), "SayHello".to_owned())
        );
        assert!(split_method("/Greeter").is_err());
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert!(parse_timeout("soon").is_err());
        let metadata = parse_headers(&["X-Tenant: acme".into()]).expect("valid");
        assert_eq!(
            metadata.get("x-tenant").and_then(|v| v.to_str().ok()),
            Some("acme")
        );
        assert!(parse_headers(&["no colon".into()]).is_err());
    }

    #[test]
    fn tls_follows_the_address_and_never_downgrades() {
        let plain = TlsArgs::default();
        let tls = TlsArgs {
            tls: true,
            ..TlsArgs::default()
        };
        let uri = |addr: &str, args: &TlsArgs| endpoint(addr, args).map(|(uri, _)| uri);
        assert_eq!(
            uri("127.0.0.1:1", &plain).expect("bare"),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            uri("localhost:1", &tls).expect("--tls"),
            "https://localhost:1"
        );
        assert_eq!(
            uri("https://localhost:1", &plain).expect("https"),
            "https://localhost:1"
        );
        let err = uri("http://localhost:1", &tls).expect_err("contradiction");
        assert!(err.to_string().contains("cleartext"), "{err}");
        assert!(uri("ftp://localhost:1", &plain).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "junk").expect("write");
        let err = uri(
            "localhost:1",
            &TlsArgs {
                ca: Some(junk.clone()),
                ..TlsArgs::default()
            },
        )
        .expect_err("no certificate in the file");
        assert!(
            err.to_string().contains("--ca") && err.to_string().contains("junk.pem"),
            "{err}"
        );
        let err = uri(
            "localhost:1",
            &TlsArgs {
                ca: Some(dir.path().join("missing.pem")),
                ..TlsArgs::default()
            },
        )
        .expect_err("missing file");
        assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
    }
}
