//! `proxy-ssl-ciphers`: an OpenSSL cipher string mapped onto the cipher suites rustls
//! (ring provider) implements.
//!
//! rustls has six TLS 1.2 suites (ECDHE key exchange, ECDSA or RSA authentication,
//! AES-GCM or ChaCha20-Poly1305) and three TLS 1.3 suites. The string is read the way
//! OpenSSL reads it, restricted to those: exact names (OpenSSL's or IANA's), the
//! category keywords that describe them (`HIGH`, `ECDHE`, `AESGCM`, `aRSA`...),
//! `A+B` intersections, `-X` (remove) and `!X` (remove for good). Keywords for what
//! rustls never offers (`aNULL`, `MD5`, `RC4`, `3DES`, `DHE`...) select nothing and
//! are silent in exclusions; anything else that cannot be honoured is reported as a
//! warning, never an error: every suite rustls offers is a strong one.
//!
//! As with OpenSSL's cipher list, TLS 1.3 suites are not affected (nginx sets those
//! with `ssl_conf_command Ciphersuites`, which ingress-nginx does not expose).

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as cs;

/// What a TLS 1.2 suite is made of, for category keywords.
struct Suite {
    suite: SupportedCipherSuite,
    openssl: &'static str,
    ecdsa: bool,
    aes: Option<u16>,
    sha384: bool,
}

const SUITES: [Suite; 6] = [
    Suite {
        suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        ecdsa: true,
        aes: Some(256),
        sha384: true,
    },
    Suite {
        suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        ecdsa: true,
        aes: Some(128),
        sha384: false,
    },
    Suite {
        suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        ecdsa: true,
        aes: None,
        sha384: false,
    },
    Suite {
        suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        ecdsa: false,
        aes: Some(256),
        sha384: true,
    },
    Suite {
        suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        ecdsa: false,
        aes: Some(128),
        sha384: false,
    },
    Suite {
        suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        ecdsa: false,
        aes: None,
        sha384: false,
    },
];

/// The TLS 1.3 suites, always offered.
const TLS13: [SupportedCipherSuite; 3] = [
    cs::TLS13_AES_256_GCM_SHA384,
    cs::TLS13_AES_128_GCM_SHA256,
    cs::TLS13_CHACHA20_POLY1305_SHA256,
];

/// OpenSSL keywords for things rustls never offers: they select nothing.
const NOTHING: &[&str] = &[
    "aNULL",
    "eNULL",
    "NULL",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "MEDIUM",
    "LOW",
    "EXP",
    "EXPORT",
    "MD5",
    "RC4",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "PSK",
    "aPSK",
    "kPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "DSS",
    "aDSS",
    "kRSA",
    "DH",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "kDH",
    "ADH",
    "AECDH",
    "SHA1",
    "SHA",
    "CCM",
    "CCM8",
    "AESCCM",
    "AESCCM8",
    "GOST",
    "aGOST",
    "kGOST",
    "SSLv3",
    "TLSv1",
    "TLSv1.0",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
    "kECDH",
    "aECDH",
];

/// The suites one positive term selects (`None`: the term is not understood).
fn term(name: &str) -> Option<Vec<usize>> {
    if let Some(i) = SUITES
        .iter()
        .position(|s| s.openssl == name || format!("{:?}", s.suite.suite()) == name)
    {
        return Some(vec![i]);
    }
    let all = |f: &dyn Fn(&Suite) -> bool| {
        SUITES
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    Some(match name {
        "DEFAULT" | "ALL" | "HIGH" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" | "TLSv1.2"
        | "AEAD" | "FIPS" => all(&|_| true),
        "ECDSA" | "aECDSA" => all(&|s| s.ecdsa),
        "RSA" | "aRSA" => all(&|s| !s.ecdsa),
        "AES" | "AESGCM" => all(&|s| s.aes.is_some()),
        "AES128" => all(&|s| s.aes == Some(128)),
        "AES256" => all(&|s| s.aes == Some(256)),
        "CHACHA20" => all(&|s| s.aes.is_none()),
        "SHA256" => all(&|s| !s.sha384),
        "SHA384" => all(&|s| s.sha384),
        _ if NOTHING.contains(&name) => Vec::new(),
        _ => return None,
    })
}

/// The suites `item` (`A` or `A+B+...`) selects; `None` when a part is not understood.
fn item(text: &str) -> Option<Vec<usize>> {
    let mut selected: Option<Vec<usize>> = None;
    for part in text.split('+') {
        let these = term(part)?;
        selected = Some(match selected {
            None => these,
            Some(before) => before.into_iter().filter(|i| these.contains(i)).collect(),
        });
    }
    selected
}

/// The cipher suites for `ciphers` (an OpenSSL cipher string): TLS 1.2 ones in the
/// order the string selects them, then every TLS 1.3 one. What cannot be honoured goes
/// to `warnings`.
pub(super) fn select(ciphers: &str, warnings: &mut Vec<String>) -> Vec<SupportedCipherSuite> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut banned: Vec<usize> = Vec::new();
    let mut ignored: Vec<&str> = Vec::new();
    let mut unavailable: Vec<&str> = Vec::new();
    for token in ciphers
        .split([':', ',', ' ', ';'])
        .filter(|t| !t.is_empty())
    {
        // Ordering and security-level directives do not change which suites exist.
        if token.starts_with('@') || token.starts_with('+') {
            continue;
        }
        let (op, name) = match token.as_bytes()[0] {
            b'!' | b'-' => (token.as_bytes()[0], &token[1..]),
            _ => (b'+', token),
        };
        let Some(selected) = item(name) else {
            ignored.push(token);
            continue;
        };
        match op {
            b'!' => banned.extend(selected),
            b'-' => chosen.retain(|i| !selected.contains(i)),
            _ => {
                if selected.is_empty() {
                    unavailable.push(token);
                }
                for i in selected {
                    if !chosen.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    chosen.retain(|i| !banned.contains(i));
    if !ignored.is_empty() {
        warnings.push(format!(
            "proxy-ssl-ciphers: {} not understood, ignored (rustls offers ECDHE with AES-GCM or ChaCha20-Poly1305 only)",
            ignored.join(", ")
        ));
    }
    if !unavailable.is_empty() {
        warnings.push(format!(
            "proxy-ssl-ciphers: {} not available in rustls, ignored",
            unavailable.join(", ")
        ));
    }
    if chosen.is_empty() {
        warnings.push(format!(
            "proxy-ssl-ciphers {ciphers:?} leaves no TLS 1.2 cipher suite rustls offers; using all of rustls' suites"
        ));
        chosen = (0..SUITES.len()).collect();
    }
    chosen
        .into_iter()
        .map(|i| SUITES[i].suite)
        .chain(TLS13)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ciphers: &str) -> (Vec<String>, Vec<String>) {
        let mut warnings = Vec::new();
        let suites = select(ciphers, &mut warnings)
            .into_iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        (suites, warnings)
    }

    #[test]
    fn default_and_broad_keywords_select_every_suite_silently() {
        for text in ["DEFAULT", "HIGH:!aNULL:!MD5", "ALL:!EXPORT:!RC4:@STRENGTH"] {
            let (suites, warnings) = names(text);
            assert_eq!(suites.len(), 6, "{text}");
            assert!(warnings.is_empty(), "{text}: {warnings:?}");
        }
    }

    #[test]
    fn exact_names_restrict_and_order() {
        let (suites, warnings) =
            names("ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
        assert_eq!(
            suites,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        assert!(warnings.is_empty());
        // TLS 1.3 suites are always there.
        let mut w = Vec::new();
        assert_eq!(
            select("ECDHE-RSA-AES128-GCM-SHA256", &mut w)
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .count(),
            3
        );
    }

    #[test]
    fn intersections_and_exclusions() {
        let (suites, _) = names("ECDHE+AESGCM:!AES256");
        assert_eq!(
            suites,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        let (suites, _) = names("HIGH:-CHACHA20:ECDHE-RSA-CHACHA20-POLY1305");
        assert_eq!(suites.len(), 5);
        let (suites, _) = names("HIGH:!CHACHA20:ECDHE-RSA-CHACHA20-POLY1305");
        assert_eq!(suites.len(), 4);
    }

    #[test]
    fn what_rustls_lacks_is_warned_about_and_never_empties_the_list() {
        let (suites, warnings) = names("AES128-SHA:DHE-RSA-AES256-GCM-SHA384");
        assert_eq!(suites.len(), 6);
        assert!(warnings[0].contains("AES128-SHA"), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("leaves no")));
        let (suites, warnings) = names("ECDHE-RSA-AES128-GCM-SHA256:MEDIUM");
        assert_eq!(suites.len(), 1);
        assert!(warnings[0].contains("MEDIUM"), "{warnings:?}");
    }
}
