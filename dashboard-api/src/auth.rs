//! Who is asking, and which accounts they may read. Tokens are stored as
//! sha256 only and compared in constant time. Credentials that are valid but
//! do not cover the account get 404 — never a hint that it exists.

use ringpath_types::accounts::AccountsFile;
use ringpath_types::auth::{basic_credentials, token_matches, NO_TOKEN};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Account(String),
    Agency(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Missing, malformed or wrong credentials → 401.
    Unauthorized,
    /// Valid credentials that do not cover the resource → 404.
    NotCovered,
}

/// A new token: 128 random bits from the OS generator, as 32 hex digits.
/// Tokens are stored as unsalted sha256, which is safe only for random ones
/// like these (`ringpath-dashboard-api token`), never for chosen words.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Checks `Authorization: Basic base64(id:token)` against accounts and agencies.
pub fn authenticate(header: Option<&str>, accounts: &AccountsFile) -> Result<Principal, AuthError> {
    let (id, token) = header.and_then(basic_credentials).ok_or(AuthError::Unauthorized)?;
    if let Some(acc) = accounts.account(&id) {
        if token_matches(&token, &acc.token_sha256) {
            return Ok(Principal::Account(acc.id.clone()));
        }
        return Err(AuthError::Unauthorized);
    }
    match accounts.agency(&id) {
        Some(agency) if token_matches(&token, &agency.token_sha256) => Ok(Principal::Agency(agency.id.clone())),
        Some(_) => Err(AuthError::Unauthorized),
        None => {
            // The same hash-and-compare work for an unknown id.
            let _ = token_matches(&token, NO_TOKEN);
            Err(AuthError::Unauthorized)
        }
    }
}

/// May `who` read `account`?
pub fn covers(who: &Principal, account: &str, accounts: &AccountsFile) -> Result<(), AuthError> {
    let Some(acc) = accounts.account(account) else { return Err(AuthError::NotCovered) };
    let ok = match who {
        Principal::Account(id) => id == &acc.id,
        Principal::Agency(agency) => acc.agency.as_deref() == Some(agency.as_str()),
    };
    if ok { Ok(()) } else { Err(AuthError::NotCovered) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_128_random_bits_in_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    fn sha(t: &str) -> String {
        ringpath_types::auth::token_sha256(t)
    }

    fn file() -> AccountsFile {
        AccountsFile::parse(&format!(
            "[[account]]\nid = \"acc_a\"\nagency = \"agc_x\"\ntoken_sha256 = \"{}\"\n[[account]]\nid = \"acc_b\"\ntoken_sha256 = \"{}\"\n[[agency]]\nid = \"agc_x\"\ntoken_sha256 = \"{}\"\n",
            sha("ta"),
            sha("tb"),
            sha("tx")
        ))
        .unwrap()
    }

    fn basic(id: &str, token: &str) -> String {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{token}")))
    }

    #[test]
    fn account_token_reads_only_its_account() {
        let f = file();
        let who = authenticate(Some(&basic("acc_a", "ta")), &f).unwrap();
        assert_eq!(covers(&who, "acc_a", &f), Ok(()));
        assert_eq!(covers(&who, "acc_b", &f), Err(AuthError::NotCovered));
        assert_eq!(covers(&who, "acc_nope", &f), Err(AuthError::NotCovered));
    }

    #[test]
    fn agency_token_reads_its_accounts_only() {
        let f = file();
        let who = authenticate(Some(&basic("agc_x", "tx")), &f).unwrap();
        assert_eq!(covers(&who, "acc_a", &f), Ok(()));
        assert_eq!(covers(&who, "acc_b", &f), Err(AuthError::NotCovered));
    }

    #[test]
    fn bad_credentials_are_unauthorized() {
        let f = file();
        for h in [None, Some("Bearer x".to_string()), Some("Basic !!!".to_string()), Some(basic("acc_a", "tb")), Some(basic("acc_zz", "ta")), Some(basic("agc_x", "ta"))] {
            assert_eq!(authenticate(h.as_deref(), &f), Err(AuthError::Unauthorized), "{h:?}");
        }
    }
}
