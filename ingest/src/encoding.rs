//! Request bodies sent compressed (`Content-Encoding: gzip` or `deflate`, as
//! server-side senders and telephony webhooks do): decoded before parsing,
//! with the body limit applied to the *decoded* size, so a small
//! decompression bomb stops at the limit instead of filling memory. No IO;
//! the handlers map [`DecodeError`] to 400/413/415.

use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Decoded, the body would exceed the limit.
    #[error("decoded body larger than {0} bytes")]
    TooLarge(usize),
    /// The bytes are not what the header says (413 is not this: see `TooLarge`).
    #[error("body is not valid {encoding}: {reason}")]
    Corrupt { encoding: &'static str, reason: String },
    /// An encoding the collector does not decode.
    #[error("unsupported content encoding {0:?}; send gzip, deflate or identity")]
    Unsupported(String),
}

/// The body as sent, decoded per the `Content-Encoding` header (`None`: not
/// encoded). At most `limit` decoded bytes are produced.
pub fn decode(content_encoding: Option<&str>, body: &[u8], limit: usize) -> Result<Option<Vec<u8>>, DecodeError> {
    let Some(header) = content_encoding else { return Ok(None) };
    // Several codings (`gzip, identity`) are applied in order; more than one
    // real compression layer is not something a beacon or webhook sends.
    let codings: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty() && c != "identity").collect();
    match codings.as_slice() {
        [] => Ok(None),
        [one] => match one.as_str() {
            "gzip" | "x-gzip" => read_limited("gzip", GzDecoder::new(body), limit).map(Some),
            // HTTP's `deflate` is the zlib format; some senders use raw deflate.
            "deflate" => match read_limited("deflate", ZlibDecoder::new(body), limit) {
                Err(DecodeError::Corrupt { .. }) => read_limited("deflate", DeflateDecoder::new(body), limit).map(Some),
                other => other.map(Some),
            },
            other => Err(DecodeError::Unsupported(other.chars().take(40).collect())),
        },
        _ => Err(DecodeError::Unsupported(header.chars().take(40).collect())),
    }
}

fn read_limited(encoding: &'static str, decoder: impl Read, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    // One byte past the limit tells "too large" from "exactly the limit".
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt { encoding, reason: e.to_string().chars().take(120).collect() })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_both_deflate_forms_decode_to_the_original() {
        let body = br#"{"v":1,"account":"acc_demo"}"#;
        assert_eq!(decode(Some("gzip"), &gzip(body), 1024).unwrap().unwrap(), body);
        assert_eq!(decode(Some("GZip, identity"), &gzip(body), 1024).unwrap().unwrap(), body);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(body).unwrap();
        assert_eq!(decode(Some("deflate"), &z.finish().unwrap(), 1024).unwrap().unwrap(), body);
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(body).unwrap();
        assert_eq!(decode(Some("deflate"), &raw.finish().unwrap(), 1024).unwrap().unwrap(), body);
    }

    #[test]
    fn no_header_or_identity_leaves_the_body_alone() {
        assert_eq!(decode(None, b"{}", 10), Ok(None));
        assert_eq!(decode(Some("identity"), b"{}", 10), Ok(None));
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "a small body: {}", bomb.len());
        assert_eq!(decode(Some("gzip"), &bomb, 64 * 1024), Err(DecodeError::TooLarge(64 * 1024)));
        let exact = gzip(&[b'x'; 100]);
        assert_eq!(decode(Some("gzip"), &exact, 100).unwrap().unwrap().len(), 100, "exactly the limit is fine");
    }

    #[test]
    fn a_body_that_is_not_what_its_header_says_is_corrupt() {
        assert!(matches!(decode(Some("gzip"), br#"{"plain":"json"}"#, 1024), Err(DecodeError::Corrupt { encoding: "gzip", .. })));
        assert!(matches!(decode(Some("deflate"), b"\xff\xfe not deflate", 1024), Err(DecodeError::Corrupt { .. })));
        let mut cut = gzip(b"some longer body that gets cut in the middle");
        cut.truncate(cut.len() / 2);
        assert!(matches!(decode(Some("gzip"), &cut, 1024), Err(DecodeError::Corrupt { .. })));
    }

    #[test]
    fn other_encodings_are_unsupported() {
        assert_eq!(decode(Some("br"), b"x", 10), Err(DecodeError::Unsupported("br".into())));
        assert!(matches!(decode(Some("gzip, gzip"), b"x", 10), Err(DecodeError::Unsupported(_))));
        assert!(matches!(decode(Some("compress"), b"x", 10), Err(DecodeError::Unsupported(_))));
    }
}
