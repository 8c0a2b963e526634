//! A minimal URL splitter for classification: scheme, host, path, query pairs.
//! Not a general URL parser (no IDNA, no userinfo validation); it only has to
//! read what browsers put in `location.href` and `document.referrer`.

/// The parts of an absolute http(s) URL that classification looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlParts<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

/// Splits `url`; `None` when it is not an absolute URL with a host.
///
/// Byte scans instead of `str` patterns: every pattern searcher is inlined
/// into the browser tracker, where this function is most of rp.wasm's URL code.
pub fn split(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.as_bytes().windows(3).position(|w| w == b"://")?;
    let rest = &url[scheme_end + 3..];
    let end_of_authority = until(rest, b"/?#");
    let authority = &rest[..end_of_authority];
    let host_port = &authority[authority.bytes().rposition(|b| b == b'@').map_or(0, |at| at + 1)..];
    let host = if host_port.starts_with('[') {
        // `[::1]:8080` → `::1`; an unclosed bracket is kept as written.
        let close = until(host_port, b"]");
        if close < host_port.len() { &host_port[1..close] } else { host_port }
    } else {
        &host_port[..until(host_port, b":")]
    };
    if host.is_empty() {
        return None;
    }
    let after = &rest[end_of_authority..];
    let before_fragment = &after[..until(after, b"#")];
    let query_start = until(before_fragment, b"?");
    let path = &before_fragment[..query_start];
    let query = before_fragment.get(query_start + 1..).unwrap_or("");
    Some(UrlParts { host, path: if path.is_empty() { "/" } else { path }, query })
}

/// `split(url).is_some()`, reading only the scheme and the authority: ingest
/// checks every URL of every beacon, and their paths and queries are the long part.
pub fn has_host(url: &str) -> bool {
    let bytes = url.as_bytes();
    let Some(scheme_end) = bytes.windows(3).position(|w| w == b"://") else { return false };
    let rest = &bytes[scheme_end + 3..];
    let authority = &rest[..rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len())];
    let host_port = &authority[authority.iter().rposition(|&b| b == b'@').map_or(0, |at| at + 1)..];
    match host_port.first() {
        // `[::1]` has a host when something sits between the brackets; an unclosed one is the host as written.
        Some(b'[') => host_port.iter().position(|&b| b == b']').is_none_or(|close| close > 1),
        Some(&first) => first != b':',
        None => false,
    }
}

/// The index of the first byte of `s` that is one of `stops`, else `s.len()`.
fn until(s: &str, stops: &[u8]) -> usize {
    s.bytes().position(|b| stops.iter().any(|&stop| stop == b)).unwrap_or(s.len())
}

/// Lower-cased host without a leading `www.`.
pub fn normalized_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    lower.strip_prefix("www.").map(str::to_owned).unwrap_or(lower)
}

/// Iterates `key=value` pairs of a query string, percent-decoded ('+' is a space).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    split_byte(query, b'&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Percent-decodes, replacing invalid UTF-8 with U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` without leading and trailing whitespace: exactly `str::trim` (Unicode
/// White_Space), as a byte scan. `trim`'s char decoding and lookup table cost
/// the browser tracker ~0.15 KB gzip more.
pub fn trim(s: &str) -> &str {
    let bytes = s.as_bytes();
    let (mut start, mut end) = (0, bytes.len());
    while start < end {
        match whitespace_len(&bytes[start..end]) {
            0 => break,
            len => start += len,
        }
    }
    while end > start {
        // Back to the first byte of the last character.
        let mut last = end - 1;
        while last > start && bytes[last] & 0xc0 == 0x80 {
            last -= 1;
        }
        if whitespace_len(&bytes[last..end]) != end - last {
            break;
        }
        end = last;
    }
    &s[start..end]
}

/// The byte length of the White_Space character `bytes` starts with, or 0.
fn whitespace_len(bytes: &[u8]) -> usize {
    let code_point = match *bytes {
        [0x09..=0x0d | b' ', ..] => return 1,
        [0xc2, 0x85 | 0xa0, ..] => return 2,
        [lead @ 0xe1..=0xe3, b1, b2, ..] => u32::from(lead & 0x0f) << 12 | u32::from(b1 & 0x3f) << 6 | u32::from(b2 & 0x3f),
        _ => return 0,
    };
    if matches!(code_point, 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000) { 3 } else { 0 }
}

/// `str::split` at an ASCII byte, as a plain byte scan: `str`'s char
/// searcher (with memchr) costs the browser tracker ~0.3 KB gzip.
pub fn split_byte(s: &str, separator: u8) -> SplitByte<'_> {
    SplitByte { rest: Some(s), separator }
}

/// `str::split_once` at an ASCII byte, as a plain byte scan.
pub fn split_once_byte(s: &str, separator: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == separator)?;
    Some((&s[..at], &s[at + 1..]))
}

/// The pieces of [`split_byte`].
pub struct SplitByte<'a> {
    rest: Option<&'a str>,
    separator: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, self.separator) {
            Some((piece, tail)) => {
                self.rest = Some(tail);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn has_host_is_split_finding_a_host() {
        for url in ["https://a.example/x", "https://", "https:///path", "http://user@/x", "http://user@host:1/", "http://[::1]:8080/", "http://[]/",
                    "http://[::1", "http://:80/", "x://h", "://h", "no scheme", "https://h?q=://", "a?b://c/d", "https://h#f", "android-app://com.google/"] {
            assert_eq!(has_host(url), split(url).is_some(), "{url}");
        }
    }

    proptest! {
        #[test]
        fn has_host_agrees_with_split(url in "[a-z:/@\\[\\]?#.0-9]{0,24}") {
            prop_assert_eq!(has_host(&url), split(&url).is_some());
        }
    }

    #[test]
    fn splits_host_path_and_query() {
        let p = split("https://WWW.Example.com:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(p.host, "WWW.Example.com");
        assert_eq!(p.path, "/a/b");
        assert_eq!(p.query, "x=1&y=2");
        assert_eq!(normalized_host(p.host), "example.com");
    }

    #[test]
    fn bare_origin_has_root_path() {
        let p = split("https://example.com").unwrap();
        assert_eq!((p.host, p.path, p.query), ("example.com", "/", ""));
        let p = split("https://example.com?q=1").unwrap();
        assert_eq!((p.path, p.query), ("/", "q=1"));
    }

    #[test]
    fn relative_or_empty_urls_are_rejected() {
        assert_eq!(split(""), None);
        assert_eq!(split("/path?x"), None);
        assert_eq!(split("https:///nohost"), None);
    }

    #[test]
    fn the_first_scheme_separator_starts_the_authority() {
        let p = split("view-source:https://example.com/a?b=1").unwrap();
        assert_eq!((p.host, p.path, p.query), ("example.com", "/a", "b=1"));
        let p = split("https://example.com/r?u=https://other.example/").unwrap();
        assert_eq!((p.host, p.query), ("example.com", "u=https://other.example/"));
        assert_eq!(split("https:/example.com"), None);
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        assert_eq!(split("http://[::1]:8080/x").unwrap().host, "::1");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let pairs: Vec<_> = query_pairs("utm_campaign=spring%20sale&a=b+c&bad=%zz&t=%E2%82%AC").collect();
        assert_eq!(pairs[0], ("utm_campaign".into(), "spring sale".into()));
        assert_eq!(pairs[1].1, "b c");
        assert_eq!(pairs[2].1, "%zz");
        assert_eq!(pairs[3].1, "€");
    }

    #[test]
    fn trim_removes_exactly_what_str_trim_removes() {
        let white: Vec<char> = (0..=0x3000u32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert_eq!(white.len(), 25);
        let mut alphabet = white.clone();
        alphabet.extend(['a', 'é', '\u{2000}', '\u{200b}', '\u{85}', '\u{1680}', '\u{3001}', '\u{feff}', '\u{2060}', '\u{0}', '\u{8}', '\u{e}']);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for i in 0..(state % 7) {
                text.push(alphabet[((state >> (8 * i + 3)) % alphabet.len() as u64) as usize]);
            }
            assert_eq!(trim(&text), text.trim(), "{text:?}");
        }
        assert_eq!(trim(" \u{a0}a b\u{3000}\t"), "a b");
        assert_eq!(trim("\u{2028}\u{2029}"), "");
    }

    #[test]
    fn byte_splits_cut_exactly_where_str_splits_do() {
        let alphabet = ['a', '&', '=', ' ', '.', 'é', '\u{1e}', '€'];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let text: String = (0..(state % 9)).map(|i| alphabet[((state >> (5 * i + 4)) % 8) as usize]).collect();
            for separator in ['&', '=', ' ', '.', '\u{1e}'] {
                let byte = separator as u8;
                assert_eq!(split_byte(&text, byte).collect::<Vec<_>>(), text.split(separator).collect::<Vec<_>>(), "{text:?}");
                assert_eq!(split_once_byte(&text, byte), text.split_once(separator), "{text:?}");
            }
        }
    }

    #[test]
    fn truncated_escape_at_end_is_kept_literally() {
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("a%"), "a%");
    }
}
