//! TLS with rustls (ring provider): termination on the public port, with the certificate
//! and the client CAs (mTLS) reloaded from their files without a restart, and the client side
//! for `https://` upstreams. PEM files are parsed by `rustls-pki-types`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderName;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{ClientAuth, TlsConfig, UpstreamConfig};
use crate::reload::Watched;

/// A TLS setting that cannot be used: `(key, message)`, the message naming the file.
pub(crate) type TlsError = (String, String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| format!("cannot read `{name}`: {err}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("`{name}` is not valid PEM: {err}"))?;
    if certs.is_empty() {
        return Err(format!("`{name}` holds no PEM CERTIFICATE"));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let name = path.display();
    PrivateKeyDer::from_pem_file(path).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => {
            format!("`{name}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")
        }
        rustls_pki_types::pem::Error::Io(err) => format!("cannot read `{name}`: {err}"),
        err => format!("`{name}` is not valid PEM: {err}"),
    })
}

/// A certificate chain and its key, checked to belong together; an error says which of the
/// two `[tls]` keys is at fault.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, (&'static str, String)> {
    let chain = certificates(cert).map_err(|message| ("tls.cert_file", message))?;
    let secret = private_key(key).map_err(|message| ("tls.key_file", message))?;
    CertifiedKey::from_der(chain, secret, &provider()).map_err(|err| {
        (
            "tls.key_file",
            format!(
                "`{}` and `{}` cannot be used together: {err}",
                cert.display(),
                key.display()
            ),
        )
    })
}

/// A root store from a PEM file of CA certificates.
fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .map_err(|err| format!("`{}`: not a usable CA certificate: {err}", path.display()))?;
    }
    Ok(roots)
}

/// The server certificate, from files reloaded when they change.
#[derive(Debug)]
struct ReloadedCert(Arc<Watched<CertifiedKey>>);

impl ResolvesServerCert for ReloadedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

/// The client certificate verifier of `client_ca_file`, rebuilt when the file changes:
/// handshakes after a reload verify against the new CAs.
#[derive(Debug)]
struct ReloadedClientCas {
    current: Arc<Watched<Arc<dyn ClientCertVerifier>>>,
    mandatory: bool,
}

/// A verifier for the CAs in `path`; `optional` lets clients without a certificate in.
fn client_verifier(path: &Path, optional: bool) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let roots = roots(path)?;
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    if optional {
        verifier = verifier.allow_unauthenticated();
    }
    verifier
        .build()
        .map_err(|err| format!("`{}`: {err}", path.display()))
}

impl ClientCertVerifier for ReloadedClientCas {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints would borrow from a verifier a reload may replace; with none, a client
        // sends the certificate it has (RFC 8446 §4.2.4 makes the list optional).
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current
            .get()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .get()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .get()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.get().supported_verify_schemes()
    }
}

/// The verified subject of a client certificate (`CN=…, O=…`), as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCert(pub(crate) String);

/// TLS on the public port.
pub(crate) struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    cert: Arc<Watched<CertifiedKey>>,
    client_cas: Option<Arc<Watched<Arc<dyn ClientCertVerifier>>>>,
    /// Where the client certificate's subject goes upstream.
    pub(crate) identity_header: HeaderName,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("client_cas", &self.client_cas)
            .field("identity_header", &self.identity_header)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the files of `[tls]`; an error names the key and the file.
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let (cert_file, key_file) = (config.cert_file.clone(), config.key_file.clone());
        // Once for an error naming the key (the reloads only log theirs).
        certified_key(&cert_file, &key_file).map_err(|(key, message)| (key.to_owned(), message))?;
        let cert = Watched::new(vec![cert_file.clone(), key_file.clone()], move || {
            certified_key(&cert_file, &key_file).map_err(|(_, message)| message)
        })
        .map_err(|message| ("tls.cert_file".to_owned(), message))?;
        let cert = Arc::new(cert);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| ("tls".to_owned(), err.to_string()))?;
        let (builder, client_cas) = match &config.client_ca_file {
            Some(path) => {
                let optional = config.client_auth == ClientAuth::Optional;
                let file = path.clone();
                let current =
                    Watched::new(vec![path.clone()], move || client_verifier(&file, optional))
                        .map_err(|message| ("tls.client_ca_file".to_owned(), message))?;
                let current = Arc::new(current);
                let verifier = ReloadedClientCas {
                    current: current.clone(),
                    mandatory: !optional,
                };
                (
                    builder.with_client_cert_verifier(Arc::new(verifier)),
                    Some(current),
                )
            }
            None => (builder.with_no_client_auth(), None),
        };
        let mut server = builder.with_cert_resolver(Arc::new(ReloadedCert(cert.clone())));
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let identity_header = HeaderName::from_bytes(config.identity_header.as_bytes())
            .map_err(|err| ("tls.identity_header".to_owned(), err.to_string()))?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            cert,
            client_cas,
            identity_header,
        })
    }

    /// The TLS handshake of a new connection; with it, the verified client certificate's
    /// subject, if the client presented one.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> io::Result<(ClientStream, Option<ClientCert>)> {
        let stream = self.acceptor.accept(stream).await?;
        let subject = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| subject(leaf));
        Ok((
            ClientStream::Tls(Box::new(tokio_rustls::TlsStream::Server(stream))),
            subject.map(ClientCert),
        ))
    }

    /// Reads the certificate and client CA files again if they changed; a broken file keeps
    /// the old value in use and is logged. Open connections are not touched.
    pub(crate) fn refresh(&self) {
        match self.cert.refresh() {
            Ok(true) => tracing::info!("TLS certificate reloaded from {}", self.cert.describe()),
            Ok(false) => {}
            Err(err) => tracing::warn!("TLS certificate not reloaded, the old one stays: {err}"),
        }
        if let Some(cas) = &self.client_cas {
            match cas.refresh() {
                Ok(true) => tracing::info!("client CAs reloaded from {}", cas.describe()),
                Ok(false) => {}
                Err(err) => tracing::warn!("client CAs not reloaded, the old ones stay: {err}"),
            }
        }
    }
}

/// The subject of a DER certificate, as `CN=…, O=…`.
fn subject(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.subject().to_string())
}

/// The client side of `https://` upstream endpoints: the server name from the endpoint's host,
/// ALPN `h2`, never a cleartext fallback.
#[derive(Clone)]
pub(crate) struct UpstreamTls(tokio_rustls::TlsConnector);

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTls")
    }
}

impl UpstreamTls {
    /// The TLS client of an upstream: `None` when it has no `https://` endpoint. `prefix` is
    /// the upstream's key (`upstreams.NAME`) for errors.
    pub(crate) fn new(config: &UpstreamConfig, prefix: &str) -> Result<Option<Self>, TlsError> {
        if !config
            .endpoints
            .iter()
            .any(|uri| uri.scheme_str() == Some("https"))
        {
            return Ok(None);
        }
        let key = |field: &str| format!("{prefix}.{field}");
        let roots = match &config.ca_file {
            Some(path) => roots(path).map_err(|message| (key("ca_file"), message))?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| (prefix.to_owned(), err.to_string()))?
            .with_root_certificates(roots);
        let mut client = match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(secret)) => {
                let chain = certificates(cert).map_err(|m| (key("client_cert_file"), m))?;
                let secret = private_key(secret).map_err(|m| (key("client_key_file"), m))?;
                builder
                    .with_client_auth_cert(chain, secret)
                    .map_err(|err| (key("client_key_file"), err.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(UpstreamTls(tokio_rustls::TlsConnector::from(
            Arc::new(client),
        ))))
    }

    /// The TLS handshake with `host` over `stream`.
    pub(crate) async fn connect(&self, host: &str, stream: TcpStream) -> io::Result<ClientStream> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let stream = self.0.connect(name, stream).await?;
        Ok(ClientStream::Tls(Box::new(
            tokio_rustls::TlsStream::Client(stream),
        )))
    }
}

/// A TCP connection, in the clear or inside TLS.
#[derive(Debug)]
pub(crate) enum ClientStream {
    /// Cleartext.
    Plain(TcpStream),
    /// TLS (either side).
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            ClientStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            ClientStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            ClientStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(stream) => stream.is_write_vectored(),
            ClientStream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            ClientStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            ClientStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn bad_files_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let cert_file = write(dir.path(), "cert.pem", &cert.pem());
        let key_file = write(dir.path(), "key.pem", &key.serialize_pem());
        let junk = write(dir.path(), "junk.pem", "not pem at all\n");
        let missing = dir.path().join("missing.pem");
        let err = |config: TlsConfig| ServerTls::new(&config).expect_err("invalid");

        let (key_name, message) = err(TlsConfig::new(&missing, &key_file));
        assert_eq!(key_name, "tls.cert_file");
        assert!(message.contains("missing.pem"), "{message}");
        let (key_name, message) = err(TlsConfig::new(&cert_file, &junk));
        assert_eq!(key_name, "tls.key_file");
        assert!(
            message.contains("junk.pem") && message.contains("private key"),
            "{message}"
        );
        let other = rcgen::KeyPair::generate().expect("key");
        let other_file = write(dir.path(), "other.pem", &other.serialize_pem());
        let (_, message) = err(TlsConfig::new(&cert_file, &other_file));
        assert!(message.contains("cannot be used together"), "{message}");
        let mut mtls = TlsConfig::new(&cert_file, &key_file);
        mtls.client_ca_file = Some(junk);
        let (key_name, _) = err(mtls);
        assert_eq!(key_name, "tls.client_ca_file");
        ServerTls::new(&TlsConfig::new(&cert_file, &key_file)).expect("valid");
    }

    #[test]
    fn ecdsa_and_ed25519_keys_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P384_SHA384] {
            let key = rcgen::KeyPair::generate_for(alg).expect("key");
            let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
            let cert_file = write(dir.path(), "c.pem", &cert.pem());
            let key_file = write(dir.path(), "k.pem", &key.serialize_pem());
            ServerTls::new(&TlsConfig::new(&cert_file, &key_file)).expect("loads");
        }
    }
}
