//! Request path normalisation for routing: what nginx calls `$uri`.
//!
//! Locations are matched against the normalised path (percent-decoded where that is
//! safe, `.`/`..` segments resolved, duplicate slashes merged), so `/admin/../public`
//! or `//admin` cannot dodge a location's policies. The request is forwarded with its
//! original URI, as nginx does for `proxy_pass` without a URI part.

use std::borrow::Cow;

/// Normalises `path` (without the query). Returns `None` for paths that climb above
/// the root or hold an encoded NUL: nginx answers those 400.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    let needs_work =
        path.contains('%') || path.contains("//") || path.contains("/.") || !path.starts_with('/');
    if !needs_work {
        return Some(Cow::Borrowed(path));
    }
    let decoded = percent_decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

/// Decodes `%XX` escapes; keeps an encoded `/` (`%2F`) encoded, so it cannot create
/// segments, and refuses an encoded NUL.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let b = (h * 16 + l) as u8;
                match b {
                    0 => return None,
                    b'/' => out.extend_from_slice(&bytes[i..i + 3]),
                    _ => out.push(b),
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_nginx() {
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("//a///b", "/a/b"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/../c", "/a/c"),
            ("/admin/../public", "/public"),
            ("/%61dmin", "/admin"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input).as_deref(), Some(expected), "{input}");
        }
        assert_eq!(normalize("/.."), None);
        assert_eq!(normalize("/a/%2e%2e/%2e%2e"), None);
        assert_eq!(normalize("/a%00b"), None);
    }
}
