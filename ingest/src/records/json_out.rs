//! The JSON of one event on `ringpath.events`, written by hand on the hot
//! path — kept hand-written because it is: serde_json escapes strings a byte
//! at a time; events are mostly long URLs with nothing to escape, so this
//! checks a whole string at once and copies it, and otherwise scans eight
//! bytes at a time and copies clean runs (infra/bench/ingest.sh measured the
//! difference). The output is byte-for-byte serde_json's (a unit test in
//! `records` compares it with `EventMessage`'s own serialisation).

use ringpath_types::wire::Event;

/// Appends `e` as `EventMessage.event`'s JSON, with `ts` in place of `e.ts`.
pub fn write_event(out: &mut Vec<u8>, e: &Event, ts: i64) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, &e.id);
    out.extend_from_slice(b",\"type\":");
    write_str(out, &e.kind);
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    out.extend_from_slice(b",\"url\":");
    write_str(out, &e.url);
    for (name, value) in [(&b",\"referrer\":"[..], &e.referrer), (b",\"title\":", &e.title), (b",\"number\":", &e.number)] {
        if let Some(v) = value {
            out.extend_from_slice(name);
            write_str(out, v);
        }
    }
    out.extend_from_slice(b",\"props\":");
    if e.props.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        serde_json::to_writer(&mut *out, &e.props)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends `s` as a JSON string, escaped exactly as serde_json does: `"`, `\`
/// and control characters; everything else (non-ASCII included) as it is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings need nothing: no control byte (a branch-free pass the
    // compiler vectorises) and no quote or backslash (memchr's SIMD search).
    let controls = bytes.iter().fold(0u8, |seen, &b| seen | u8::from(b < 0x20));
    if controls == 0 && memchr::memchr2(b'"', b'\\', bytes).is_none() {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        let b = bytes[at];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Index of the first byte at or after `from` that needs escaping.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    // Eight bytes at a time: a lane is flagged when it is < 0x20, '"' or '\'
    // (the classic "has a zero / has a byte less than n" bit tricks).
    while i + 8 <= bytes.len() {
        let mut lane = [0u8; 8];
        lane.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(lane);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x;
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let hits = (below_space | (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash)) & HIGHS;
        if hits != 0 {
            // The lowest flagged lane is exact; a borrow can only flag lanes above a real hit.
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| needs_escape(b)).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in ["", "plain", "https://x.example/?a=1&b=\"2\"", "tab\there", "\u{0}\u{1f}\u{7f}", "back\\slash", "é 漢字 🎉", "12345678\"", "1234567\n"] {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_escapes_like_serde_json(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
            prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn any_event_writes_like_serde_json(id in "[a-z0-9]{1,8}", url in ".{0,60}", title in proptest::option::of(".{0,20}"), ts in any::<i64>()) {
            let event = Event { id, kind: "pageview".into(), ts: 0, url, referrer: None, title, number: Some("+15550100000".into()), props: Default::default() };
            let mut out = Vec::new();
            write_event(&mut out, &event, ts).unwrap();
            let mut want = event.clone();
            want.ts = ts;
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&want).unwrap());
        }
    }
}
