//! JWT bearer tokens (jsonwebtoken): HS256 with a shared secret, RS256/ES256 with keys from a
//! JWKS file that is reloaded when it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::reload::Watched;

/// `[auth.jwt]`: how bearer tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// A file holding the HS256 secret (its bytes, trailing newline trimmed).
    pub hs256_secret_file: Option<PathBuf>,
    /// An environment variable holding the HS256 secret.
    pub hs256_secret_env: Option<String>,
    /// A JWKS file (`{"keys": [...]}`) with the RS256/ES256 public keys; reloaded when it
    /// changes. Keys are picked by the token's `kid` (or the only key when there is one).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences), if set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
    /// The claim holding the caller's scopes: a space-separated string or an array of strings
    /// (default `scope`).
    pub scopes_claim: String,
    /// Claims forwarded upstream as metadata: claim name → header name (default
    /// `sub` → `x-auth-sub`).
    pub forward_claims: BTreeMap<String, String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret_file: None,
            hs256_secret_env: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            scopes_claim: "scope".into(),
            forward_claims: BTreeMap::from([("sub".to_owned(), "x-auth-sub".to_owned())]),
        }
    }
}

/// The claims of a valid token that the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) subject: String,
    pub(crate) scopes: BTreeSet<String>,
    /// `(header, value)` for each forwarded claim present in the token.
    pub(crate) forward: Vec<(String, String)>,
}

/// Checks tokens against the configured keys.
pub(crate) struct JwtVerifier {
    config: JwtConfig,
    secret: Option<DecodingKey>,
    jwks: Option<Watched<JwkSet>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("JwtVerifier")
            .field("has_secret", &self.secret.is_some())
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Reads the secret and the JWKS file; `Err((key, message))` names the config key.
    pub(crate) fn new(config: &JwtConfig) -> Result<Self, (String, String)> {
        let secret = match (&config.hs256_secret_file, &config.hs256_secret_env) {
            (Some(_), Some(_)) => {
                return Err((
                    "auth.jwt.hs256_secret_env".into(),
                    "give the secret once: a file or an environment variable".into(),
                ));
            }
            (Some(file), None) => {
                let bytes = std::fs::read(file).map_err(|err| {
                    (
                        "auth.jwt.hs256_secret_file".to_owned(),
                        format!("cannot read {}: {err}", file.display()),
                    )
                })?;
                Some(trimmed_secret(bytes, "auth.jwt.hs256_secret_file")?)
            }
            (None, Some(var)) => {
                let value = std::env::var(var).map_err(|_| {
                    (
                        "auth.jwt.hs256_secret_env".to_owned(),
                        format!("the environment variable {var} is not set"),
                    )
                })?;
                Some(trimmed_secret(
                    value.into_bytes(),
                    "auth.jwt.hs256_secret_env",
                )?)
            }
            (None, None) => None,
        };
        let jwks = match &config.jwks_file {
            Some(file) => {
                let path = file.clone();
                let watched = Watched::new(vec![file.clone()], move || load_jwks(&path))
                    .map_err(|message| ("auth.jwt.jwks_file".to_owned(), message))?;
                Some(watched)
            }
            None => None,
        };
        if secret.is_none() && jwks.is_none() {
            return Err((
                "auth.jwt".into(),
                "give the keys: hs256_secret_file, hs256_secret_env or jwks_file".into(),
            ));
        }
        Ok(JwtVerifier {
            config: config.clone(),
            secret,
            jwks,
        })
    }

    /// Reloads the JWKS file if it changed.
    pub(crate) fn refresh(&self) {
        if let Some(jwks) = &self.jwks {
            match jwks.refresh() {
                Ok(true) => tracing::info!("reloaded JWKS keys from {}", jwks.describe()),
                Ok(false) => {}
                Err(err) => tracing::warn!("keeping the previous JWKS keys: {err}"),
            }
        }
    }

    /// The claims of `token` when it is valid; the reason otherwise (for the log only).
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|err| err.to_string())?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .secret
                .clone()
                .ok_or("an HS256 token, but no HS256 secret is configured")?,
            Algorithm::RS256 | Algorithm::ES256 => self.jwk_key(header.kid.as_deref())?,
            other => return Err(format!("algorithm {other:?} is not accepted")),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| err.to_string())?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let scopes = match claims.get(&self.config.scopes_claim) {
            Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => BTreeSet::new(),
        };
        let forward = self
            .config
            .forward_claims
            .iter()
            .filter_map(|(claim, header)| {
                let value = match claims.get(claim)? {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    _ => return None,
                };
                Some((header.clone(), value))
            })
            .collect();
        Ok(Verified {
            subject,
            scopes,
            forward,
        })
    }

    fn jwk_key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let jwks = self
            .jwks
            .as_ref()
            .ok_or("an RS256/ES256 token, but no jwks_file is configured")?
            .get();
        let jwk = match kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        }
        .ok_or("no JWKS key matches the token's kid")?;
        DecodingKey::from_jwk(jwk).map_err(|err| err.to_string())
    }
}

fn trimmed_secret(mut bytes: Vec<u8>, key: &str) -> Result<DecodingKey, (String, String)> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    // RFC 7518 §3.2: an HS256 key shorter than the hash output is too weak.
    if bytes.len() < 32 {
        return Err((
            key.to_owned(),
            format!(
                "the HS256 secret has {} bytes; use at least 32",
                bytes.len()
            ),
        ));
    }
    Ok(DecodingKey::from_secret(&bytes))
}

fn load_jwks(path: &std::path::Path) -> Result<JwkSet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|err| format!("{} is not a JWKS document: {err}", path.display()))?;
    for jwk in &set.keys {
        DecodingKey::from_jwk(jwk)
            .map_err(|err| format!("{}: a key cannot be used: {err}", path.display()))?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier(config: JwtConfig) -> JwtVerifier {
        JwtVerifier::new(&config).expect("valid")
    }

    fn hs256(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token")
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn secret_config() -> JwtConfig {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let file = dir.join("secret");
        std::fs::write(&file, format!("{SECRET}\n")).expect("write");
        JwtConfig {
            hs256_secret_file: Some(file),
            issuer: Some("https://issuer.example".into()),
            audience: Some("gateway".into()),
            ..JwtConfig::default()
        }
    }

    #[test]
    fn checks_signature_time_issuer_and_audience() {
        let jwt = verifier(secret_config());
        let good = json!({"sub": "ann", "iss": "https://issuer.example", "aud": "gateway",
            "exp": now() + 60, "scope": "read write"});
        let verified = jwt.verify(&hs256(good.clone())).expect("valid");
        assert_eq!(verified.subject, "ann");
        assert_eq!(
            verified.scopes,
            BTreeSet::from(["read".to_owned(), "write".to_owned()])
        );
        assert_eq!(
            verified.forward,
            vec![("x-auth-sub".to_owned(), "ann".to_owned())]
        );

        let mut expired = good.clone();
        expired["exp"] = json!(now() - 120);
        assert!(jwt.verify(&hs256(expired)).is_err());
        let mut audience = good.clone();
        audience["aud"] = json!("someone-else");
        assert!(jwt.verify(&hs256(audience)).is_err());
        let mut issuer = good.clone();
        issuer["iss"] = json!("https://evil.example");
        assert!(jwt.verify(&hs256(issuer)).is_err());
        let mut early = good.clone();
        early["nbf"] = json!(now() + 3600);
        assert!(jwt.verify(&hs256(early)).is_err());

        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"another secret of thirty-two bytes!"),
        )
        .expect("token");
        assert!(jwt.verify(&forged).is_err());
        // `alg: none`: a header and claims with an empty signature.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(good.to_string())
        );
        assert!(jwt.verify(&none).is_err());
        assert!(jwt.verify("not a token").is_err());
    }

    #[test]
    fn the_secret_can_come_from_an_environment_variable() {
        // The tests may not set variables (`set_var` is unsafe and the workspace forbids
        // unsafe code), so this reads one cargo always sets: PATH.
        let path = std::env::var("PATH").expect("PATH is set");
        let config = JwtConfig {
            hs256_secret_env: Some("PATH".into()),
            ..JwtConfig::default()
        };
        if path.trim_end().len() >= 32 {
            let jwt = verifier(config);
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &json!({"sub": "env", "exp": now() + 60}),
                &EncodingKey::from_secret(path.trim_end().as_bytes()),
            )
            .expect("token");
            assert_eq!(jwt.verify(&token).expect("valid").subject, "env");
        } else {
            let err = JwtVerifier::new(&config).expect_err("short secret");
            assert_eq!(err.0, "auth.jwt.hs256_secret_env");
        }
        let err = JwtVerifier::new(&JwtConfig {
            hs256_secret_env: Some("TONIC_MSGPACK_TEST_UNSET_VARIABLE".into()),
            ..JwtConfig::default()
        })
        .expect_err("unset variable");
        assert_eq!(err.0, "auth.jwt.hs256_secret_env");
        assert!(
            err.1.contains("TONIC_MSGPACK_TEST_UNSET_VARIABLE"),
            "{}",
            err.1
        );
    }

    #[test]
    fn weak_or_missing_keys_are_config_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "short").expect("write");
        let err = JwtVerifier::new(&JwtConfig {
            hs256_secret_file: Some(file),
            ..JwtConfig::default()
        })
        .expect_err("weak");
        assert_eq!(err.0, "auth.jwt.hs256_secret_file");
        let err = JwtVerifier::new(&JwtConfig::default()).expect_err("no keys");
        assert_eq!(err.0, "auth.jwt");
        let err = JwtVerifier::new(&JwtConfig {
            jwks_file: Some(dir.path().join("missing.json")),
            ..JwtConfig::default()
        })
        .expect_err("missing file");
        assert!(err.1.contains("missing.json"), "{}", err.1);
    }
}
