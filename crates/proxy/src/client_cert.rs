//! Client-certificate authentication (`auth-tls-*`), with nginx's semantics.
//!
//! Handshake: a TLS connection whose SNI selects a host with `auth-tls-secret`
//! ([`CompiledServer::client_auth`](gangplank_store::CompiledServer)) asks for a
//! client certificate, naming the CA bundle's subjects ([`RecordingVerifier`]). Like
//! nginx, the handshake never fails because of the certificate: a missing or invalid
//! one is answered per request. Once the handshake is over, the chain is verified
//! once against the CA ([`ClientCertificate::verify`]) and the result (nginx's
//! `$ssl_client_verify`, `$ssl_client_s_dn`, `$ssl_client_i_dn`,
//! `$ssl_client_escaped_cert`) rides with the connection.
//!
//! Request ([`check`], called by the request policies after the HTTPS redirect):
//! - the request's host is not the host the handshake was made for (HTTP/2
//!   connection coalescing, a `Host` that differs from the SNI): **421**, so the
//!   client opens a connection of its own for it (nginx does the same);
//! - `auth-tls-verify-client: on` without a certificate, or `on`/`optional` with one
//!   that does not verify: **400**, or **302** to `auth-tls-error-page`;
//! - `auth-tls-match-cn` not matching the subject DN: **403**;
//! - otherwise the upstream gets `ssl-client-verify` (`SUCCESS`, `NONE` or
//!   `FAILED:<reason>`), `ssl-client-subject-dn`, `ssl-client-issuer-dn` and, with
//!   `auth-tls-pass-certificate-to-upstream`, `ssl-client-cert` (the URL-escaped PEM).
//!   Values the client sent under these names are never forwarded.
//!
//! Deliberate differences: a plain-HTTP request to a location that requires a
//! certificate (`on`) is refused (400) where nginx would let it through unchecked;
//! `auth-tls-verify-depth` counts the chain the client sent; hosts with client
//! authentication resume no TLS sessions (a session of another host could otherwise
//! skip the certificate).

use std::sync::Arc;

use gangplank_model::policy::VerifyClient;
use gangplank_store::policy::ClientAuth;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::headers::ClientInfo;

static SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("ssl-client-verify");
static SSL_CLIENT_SUBJECT_DN: HeaderName = HeaderName::from_static("ssl-client-subject-dn");
static SSL_CLIENT_ISSUER_DN: HeaderName = HeaderName::from_static("ssl-client-issuer-dn");
static SSL_CLIENT_CERT: HeaderName = HeaderName::from_static("ssl-client-cert");

/// Asks for a client certificate and checks the handshake signatures (so the client
/// holds the key), but accepts any chain: whether it verifies is decided after the
/// handshake, against the same CA, so the request can get nginx's 400.
#[derive(Debug)]
pub struct RecordingVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl RecordingVerifier {
    /// A verifier naming the subjects of `auth`'s CA bundle.
    pub fn new(auth: &ClientAuth) -> RecordingVerifier {
        RecordingVerifier {
            hints: auth
                .verifier
                .as_ref()
                .map(|v| v.root_hint_subjects().to_vec())
                .unwrap_or_default(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The outcome of verifying a connection's client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Verified against the CA.
    Success,
    /// No certificate was sent.
    None,
    /// A certificate was sent and did not verify: OpenSSL's reason text.
    Failed(&'static str),
}

/// What a TLS connection established about its client certificate.
#[derive(Debug)]
pub struct ClientCertificate {
    /// The host (server name, lowercase) the handshake selected by SNI.
    pub server: String,
    /// The verification result.
    pub verification: Verification,
    /// `ssl-client-verify`.
    verify_header: HeaderValue,
    /// The subject DN (RFC 2253), empty without a certificate.
    pub subject_dn: String,
    /// The issuer DN (RFC 2253).
    pub issuer_dn: String,
    /// The URL-escaped PEM of the client certificate.
    escaped_pem: Option<HeaderValue>,
}

impl ClientCertificate {
    /// Verifies `chain` (the client's certificates, leaf first, possibly empty)
    /// against `auth`, for a handshake that selected `server`.
    pub fn verify(
        server: &str,
        auth: &ClientAuth,
        chain: &[CertificateDer<'_>],
    ) -> ClientCertificate {
        let mut out = ClientCertificate {
            server: server.to_ascii_lowercase(),
            verification: Verification::None,
            verify_header: HeaderValue::from_static("NONE"),
            subject_dn: String::new(),
            issuer_dn: String::new(),
            escaped_pem: None,
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return out;
        };
        let verification = match &auth.verifier {
            None => Verification::Failed("unable to get local issuer certificate"),
            Some(verifier) => {
                match verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
                    Ok(_) if chain.len() > auth.verify_depth as usize => {
                        Verification::Failed("certificate chain too long")
                    }
                    Ok(_) => Verification::Success,
                    Err(e) => Verification::Failed(reason(&e)),
                }
            }
        };
        match x509_parser::parse_x509_certificate(leaf) {
            Ok((_, cert)) => {
                out.subject_dn = rfc2253(cert.subject());
                out.issuer_dn = rfc2253(cert.issuer());
                out.verification = verification;
            }
            Err(_) => out.verification = Verification::Failed("unable to decode the certificate"),
        }
        out.verify_header = match &out.verification {
            Verification::Success => HeaderValue::from_static("SUCCESS"),
            Verification::None => HeaderValue::from_static("NONE"),
            Verification::Failed(why) => HeaderValue::from_str(&format!("FAILED:{why}"))
                .unwrap_or(HeaderValue::from_static("FAILED")),
        };
        out.escaped_pem = HeaderValue::from_str(&escape_uri_component(&pem(leaf))).ok();
        out
    }
}

/// OpenSSL's words for the common failures (what nginx puts after `FAILED:`).
fn reason(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => "unable to get local issuer certificate",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate has expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not yet valid"
            }
            CertificateError::BadSignature => "certificate signature failure",
            CertificateError::Revoked => "certificate revoked",
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "unsupported certificate purpose"
            }
            _ => "certificate verify failed",
        },
        _ => "certificate verify failed",
    }
}

/// A DN in RFC 2253 form, as nginx's `$ssl_client_s_dn`: last RDN first, `,`
/// between RDNs, special characters escaped, anything unprintable as `\XX`.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let mut out = String::new();
    for rdn in name.iter().collect::<Vec<_>>().into_iter().rev() {
        if !out.is_empty() {
            out.push(',');
        }
        for (i, attr) in rdn.iter().enumerate() {
            if i > 0 {
                out.push('+');
            }
            let oid = attr.attr_type();
            let key = [
                (&oids::OID_X509_COMMON_NAME, "CN"),
                (&oids::OID_X509_ORGANIZATION_NAME, "O"),
                (&oids::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
                (&oids::OID_X509_COUNTRY_NAME, "C"),
                (&oids::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
                (&oids::OID_X509_LOCALITY_NAME, "L"),
                (&oids::OID_X509_STREET_ADDRESS, "street"),
                (&oids::OID_DOMAIN_COMPONENT, "DC"),
                (&oids::OID_PKCS9_EMAIL_ADDRESS, "emailAddress"),
                (&oids::OID_X509_SERIALNUMBER, "serialNumber"),
            ]
            .iter()
            .find(|(known, _)| *known == oid)
            .map_or_else(|| oid.to_id_string(), |(_, short)| (*short).to_owned());
            out.push_str(&key);
            out.push('=');
            match attr.as_str() {
                Ok(value) => escape_dn_value(value, &mut out),
                Err(_) => {
                    out.push('#');
                    out.push_str(&hex::encode(attr.attr_value().data));
                }
            }
        }
    }
    out
}

fn escape_dn_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{byte:02X}"));
                }
            }
        }
    }
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters (nginx's
/// `$ssl_client_escaped_cert`).
fn escape_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 421: the connection was not made for this host.
    Misdirected,
    /// 400, or a 302 to the error page.
    Invalid(Option<HeaderValue>),
    /// 403: `auth-tls-match-cn`.
    Forbidden,
}

impl Refusal {
    /// The status of the refusal (the error page's 302 included).
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Refusal::Invalid(None) => StatusCode::BAD_REQUEST,
            Refusal::Invalid(Some(_)) => StatusCode::FOUND,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
        }
    }
}

/// The client-certificate headers for the upstream, in order of insertion; a name
/// without a value is removed from the request.
pub type UpstreamHeaders = Vec<(HeaderName, Option<HeaderValue>)>;

/// Checks `client`'s certificate against `auth` for a location of host `hostname`
/// (lowercase). `Ok` carries the headers to send upstream.
pub fn check(
    auth: &ClientAuth,
    client: &ClientInfo,
    hostname: &str,
) -> Result<UpstreamHeaders, Refusal> {
    let invalid = || Refusal::Invalid(auth.error_page.clone());
    let certificate = if client.https {
        match &client.client_cert {
            Some(c) if c.server == hostname => Some(c),
            _ => return Err(Refusal::Misdirected),
        }
    } else if auth.verify == VerifyClient::On {
        return Err(invalid());
    } else {
        None
    };
    let verification = certificate.map_or(&Verification::None, |c| &c.verification);
    match (auth.verify, verification) {
        (VerifyClient::On, Verification::None) => return Err(invalid()),
        (VerifyClient::On | VerifyClient::Optional, Verification::Failed(_)) => {
            return Err(invalid());
        }
        _ => {}
    }
    let subject = certificate.map_or("", |c| c.subject_dn.as_str());
    if let Some(re) = &auth.match_cn
        && !re.is_match(subject)
    {
        return Err(Refusal::Forbidden);
    }
    let value = |text: &str| {
        (!text.is_empty())
            .then(|| HeaderValue::from_str(text).ok())
            .flatten()
    };
    Ok(vec![
        (
            SSL_CLIENT_VERIFY.clone(),
            certificate.map(|c| c.verify_header.clone()),
        ),
        (SSL_CLIENT_SUBJECT_DN.clone(), value(subject)),
        (
            SSL_CLIENT_ISSUER_DN.clone(),
            certificate.and_then(|c| value(&c.issuer_dn)),
        ),
        (
            SSL_CLIENT_CERT.clone(),
            certificate
                .filter(|_| auth.pass_certificate)
                .and_then(|c| c.escaped_pem.clone()),
        ),
    ])
}

/// Sets (or removes) the client-certificate headers of an upstream request.
pub fn set_upstream(values: &UpstreamHeaders, headers: &mut HeaderMap) {
    for (name, value) in values {
        match value {
            Some(v) => {
                headers.insert(name.clone(), v.clone());
            }
            None => {
                headers.remove(name);
            }
        }
    }
}

/// The client certificate of a finished handshake, when its host asked for one.
pub fn of_connection<IO>(
    server: &str,
    auth: Option<&Arc<ClientAuth>>,
    conn: &tokio_rustls::server::TlsStream<IO>,
) -> Option<Arc<ClientCertificate>> {
    let auth = auth?;
    let chain = conn.get_ref().1.peer_certificates().unwrap_or_default();
    Some(Arc::new(ClientCertificate::verify(server, auth, chain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape_uri_component("a b+/=\n-._~"),
            "a%20b%2B%2F%3D%0A-._~"
        );
        let mut out = String::new();
        escape_dn_value(" a,b+c\u{e9}\r#", &mut out);
        assert_eq!(out, "\\ a\\,b\\+c\\C3\\A9\\0D#");
    }

    #[test]
    fn dn_strings_are_rfc2253() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme, Inc");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        assert_eq!(rfc2253(parsed.subject()), "CN=alice,O=Acme\\, Inc,C=DE");
    }
}
