//! nginx "complex values" such as `$request_uri` or `${host}-$cookie_user`, used by
//! `upstream-hash-by`.
//!
//! ingress-nginx hands the expression to Lua, which looks each variable up in
//! `ngx.var` per request; an unknown variable silently contributes nothing, which
//! turns a typo into "every request goes to one pod". Gangplank parses the expression
//! once, at apply time, into typed parts, and rejects variables it does not know.

use std::fmt;

/// A parsed nginx complex value: literal text and variables, concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplexValue {
    /// The parts, in order.
    pub parts: Vec<Part>,
}

/// One piece of a [`ComplexValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Literal(String),
    /// A request variable.
    Var(Variable),
    /// A regex capture (`$1`..`$9`) of the location's path regex.
    Capture(u8),
}

/// The nginx variables the data plane can evaluate per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// `$request_uri`: the original path and query.
    RequestUri,
    /// `$escaped_request_uri`: `$request_uri` percent-encoded for use as a query
    /// value (ingress-nginx's idiom for `auth-signin` redirects).
    EscapedRequestUri,
    /// `$uri`: the normalised path, without the query.
    Uri,
    /// `$args` / `$query_string`.
    Args,
    /// `$remote_addr`: the client address as text.
    RemoteAddr,
    /// `$binary_remote_addr`: the client address as 4 or 16 bytes.
    BinaryRemoteAddr,
    /// `$remote_port`.
    RemotePort,
    /// `$host`: the request host, lowercased, without port.
    Host,
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$request_method`.
    RequestMethod,
    /// `$server_name`: the matched server's host name.
    ServerName,
    /// `$server_port`: the listener port.
    ServerPort,
    /// `$http_<name>`: a request header; the name is stored lowercase with `_` as `-`.
    Header(String),
    /// `$cookie_<name>`: a request cookie.
    Cookie(String),
    /// `$arg_<name>`: a query-string argument.
    Arg(String),
}

impl Variable {
    fn from_name(name: &str) -> Option<Variable> {
        Some(match name {
            "request_uri" => Variable::RequestUri,
            "escaped_request_uri" => Variable::EscapedRequestUri,
            "uri" | "document_uri" => Variable::Uri,
            "args" | "query_string" => Variable::Args,
            "remote_addr" => Variable::RemoteAddr,
            "binary_remote_addr" => Variable::BinaryRemoteAddr,
            "remote_port" => Variable::RemotePort,
            "host" => Variable::Host,
            "scheme" => Variable::Scheme,
            "request_method" => Variable::RequestMethod,
            "server_name" => Variable::ServerName,
            "server_port" => Variable::ServerPort,
            _ => {
                if let Some(h) = name.strip_prefix("http_").filter(|s| !s.is_empty()) {
                    Variable::Header(h.to_ascii_lowercase().replace('_', "-"))
                } else if let Some(c) = name.strip_prefix("cookie_").filter(|s| !s.is_empty()) {
                    Variable::Cookie(c.to_owned())
                } else if let Some(a) = name.strip_prefix("arg_").filter(|s| !s.is_empty()) {
                    Variable::Arg(a.to_owned())
                } else {
                    return None;
                }
            }
        })
    }
}

/// Why an expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// `${` without a closing `}`.
    #[error("unterminated \"${{\" in {0:?}")]
    Unterminated(String),
    /// A variable the data plane cannot evaluate.
    #[error(
        "unknown variable ${0}; supported: $request_uri, $escaped_request_uri, $uri, $args, $remote_addr, $binary_remote_addr, $remote_port, $host, $scheme, $request_method, $server_name, $server_port, $http_<name>, $cookie_<name>, $arg_<name>, $1..$9"
    )]
    UnknownVariable(String),
    /// Control characters or an over-long value.
    #[error("{0}")]
    Text(String),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl ComplexValue {
    /// Parses an expression: `\$` is a literal dollar, `${name}` and `$name` are
    /// variables, `$1`..`$9` are captures, everything else is literal.
    pub fn parse(text: &str) -> Result<ComplexValue, ExprError> {
        crate::validate::check_text(text).map_err(ExprError::Text)?;
        let bytes = text.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if bytes.get(i + 1) == Some(&b'$') => {
                    literal.push('$');
                    i += 2;
                }
                b'$' => {
                    let (name, next) = if bytes.get(i + 1) == Some(&b'{') {
                        let close = text[i + 2..]
                            .find('}')
                            .ok_or_else(|| ExprError::Unterminated(text.to_owned()))?;
                        (&text[i + 2..i + 2 + close], i + 3 + close)
                    } else if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        // nginx: a capture is `$` and one digit; what follows is text
                        // (`/$1abc` is capture 1, then `abc`).
                        (&text[i + 1..i + 2], i + 2)
                    } else {
                        let len = bytes[i + 1..]
                            .iter()
                            .take_while(|b| is_name_byte(**b))
                            .count();
                        (&text[i + 1..i + 1 + len], i + 1 + len)
                    };
                    if name.is_empty() {
                        // A lone `$` is literal text.
                        literal.push('$');
                        i += 1;
                        continue;
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    let part = match name.parse::<u8>() {
                        Ok(n) if (1..=9).contains(&n) => Part::Capture(n),
                        _ => Part::Var(
                            Variable::from_name(name)
                                .ok_or_else(|| ExprError::UnknownVariable(name.to_owned()))?,
                        ),
                    };
                    parts.push(part);
                    i = next;
                }
                _ => {
                    // Copy the run of literal text up to the next `$` or `\`.
                    let len = bytes[i..]
                        .iter()
                        .skip(1)
                        .position(|b| *b == b'$' || *b == b'\\')
                        .map_or(bytes.len() - i, |p| p + 1);
                    literal.push_str(&text[i..i + len]);
                    i += len;
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(ComplexValue { parts })
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::RequestUri => f.write_str("$request_uri"),
            Variable::EscapedRequestUri => f.write_str("$escaped_request_uri"),
            Variable::Uri => f.write_str("$uri"),
            Variable::Args => f.write_str("$args"),
            Variable::RemoteAddr => f.write_str("$remote_addr"),
            Variable::BinaryRemoteAddr => f.write_str("$binary_remote_addr"),
            Variable::RemotePort => f.write_str("$remote_port"),
            Variable::Host => f.write_str("$host"),
            Variable::Scheme => f.write_str("$scheme"),
            Variable::RequestMethod => f.write_str("$request_method"),
            Variable::ServerName => f.write_str("$server_name"),
            Variable::ServerPort => f.write_str("$server_port"),
            Variable::Header(h) => write!(f, "$http_{}", h.replace('-', "_")),
            Variable::Cookie(c) => write!(f, "$cookie_{c}"),
            Variable::Arg(a) => write!(f, "$arg_{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.into())
    }

    #[test]
    fn spec_vectors() {
        // Part B §4.7.
        assert_eq!(
            ComplexValue::parse("$remote_addr").unwrap().parts,
            vec![Part::Var(Variable::RemoteAddr)]
        );
        assert_eq!(
            ComplexValue::parse("$1").unwrap().parts,
            vec![Part::Capture(1)]
        );
        assert_eq!(
            ComplexValue::parse("$remote_addr$1").unwrap().parts,
            vec![Part::Var(Variable::RemoteAddr), Part::Capture(1)]
        );
        // A capture is one digit; the text after it is literal (nginx).
        assert_eq!(
            ComplexValue::parse("/$1abc/$23").unwrap().parts,
            vec![
                lit("/"),
                Part::Capture(1),
                lit("abc/"),
                Part::Capture(2),
                lit("3")
            ]
        );
        assert_eq!(
            ComplexValue::parse("${remote_addr}-text-value")
                .unwrap()
                .parts,
            vec![Part::Var(Variable::RemoteAddr), lit("-text-value")]
        );
        // `$foo_bar` is undefined: upstream hashes "", Gangplank rejects it.
        assert_eq!(
            ComplexValue::parse("$foo_bar"),
            Err(ExprError::UnknownVariable("foo_bar".into()))
        );
    }

    #[test]
    fn headers_cookies_args_and_literals() {
        assert_eq!(
            ComplexValue::parse("$http_x_user_ID:\\$$cookie_sid $")
                .unwrap()
                .parts,
            vec![
                Part::Var(Variable::Header("x-user-id".into())),
                lit(":$"),
                Part::Var(Variable::Cookie("sid".into())),
                lit(" $"),
            ]
        );
        assert_eq!(
            ComplexValue::parse("$arg_tenant").unwrap().parts,
            vec![Part::Var(Variable::Arg("tenant".into()))]
        );
        assert!(matches!(
            ComplexValue::parse("${host"),
            Err(ExprError::Unterminated(_))
        ));
        assert!(matches!(
            ComplexValue::parse("$host\n"),
            Err(ExprError::Text(_))
        ));
    }
}
