//! Basic-auth credentials checked against a stored token hash: the dashboard
//! API (account or agency tokens) and the call webhook (calls tokens) both
//! use it. Tokens are stored as sha256 hex only and compared in constant
//! time; an unknown id is checked against a dummy hash so the answer's
//! timing does not tell it from a wrong token.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `(id, token)` from an `Authorization: Basic base64(id:token)` header value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, token) = text.split_once(':')?;
    Some((id.to_owned(), token.to_owned()))
}

/// The sha256 hex of a token, as the accounts file stores it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A hash no token has (checked when the id is unknown, for equal timing).
pub const NO_TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether `token` hashes to `want_hex` (case-insensitive hex), in constant time.
pub fn token_matches(token: &str, want_hex: &str) -> bool {
    bool::from(token_sha256(token).as_bytes().ct_eq(want_hex.to_ascii_lowercase().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, token: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{token}")))
    }

    #[test]
    fn credentials_are_read_from_a_basic_header_and_nothing_else() {
        assert_eq!(basic_credentials(&basic("acc_a", "t:with:colons")), Some(("acc_a".into(), "t:with:colons".into())));
        assert_eq!(basic_credentials(&basic("acc_a", "t").replace("Basic", "basic")), Some(("acc_a".into(), "t".into())));
        for bad in ["Bearer x", "Basic !!!", "Basic", "", &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe]))] {
            assert_eq!(basic_credentials(bad), None, "{bad}");
        }
        assert_eq!(basic_credentials(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("no-colon"))), None);
    }

    #[test]
    fn a_token_matches_its_hash_only() {
        let hash = token_sha256("demo-token");
        assert_eq!(hash, "7c43ef5ae21d43ce2743f770c68e24def1a43ee2f416d2438410c8af7af2ff2c");
        assert!(token_matches("demo-token", &hash.to_ascii_uppercase()));
        assert!(!token_matches("demo-tokeN", &hash));
        assert!(!token_matches("", NO_TOKEN));
    }
}
