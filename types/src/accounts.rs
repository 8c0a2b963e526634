//! The accounts file (README "Configuration"): accounts, their DNI pools and source numbers,
//! agencies. Parsed and validated here; ingest and dashboard-api own reloading.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::rules::Rule;
use crate::source::VisitSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpPolicy {
    /// Truncate visitors in the EU/EEA, UK, CH and every visitor without consent.
    #[default]
    EuAndOptedOut,
    /// Truncate every visitor.
    Always,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    #[serde(default)]
    pub account: Vec<Account>,
    #[serde(default)]
    pub agency: Vec<Agency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub agency: Option<String>,
    pub token_sha256: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub ip_policy: IpPolicy,
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// IANA zone for day/hour buckets in reports; UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Basic-auth token hash for the telephony webhook (`/v1/calls`). Its own
    /// credential: whoever configures the provider must not be able to read or
    /// erase data, so it may not be any API token of the file; without it the
    /// account receives no calls.
    #[serde(default)]
    pub calls_token_sha256: Option<String>,
    #[serde(default)]
    pub dni: Dni,
}

fn default_retention_days() -> u32 {
    395
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dni {
    #[serde(default)]
    pub site_numbers: Vec<String>,
    #[serde(default = "default_hold_minutes")]
    pub hold_minutes: u32,
    #[serde(default)]
    pub pool: Vec<Pool>,
    #[serde(default)]
    pub source: Vec<SourceNumber>,
}

impl Default for Dni {
    fn default() -> Self {
        Dni { site_numbers: Vec::new(), hold_minutes: default_hold_minutes(), pool: Vec::new(), source: Vec::new() }
    }
}

fn default_hold_minutes() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: String,
    #[serde(default)]
    pub when: Rule,
    pub numbers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceNumber {
    #[serde(default)]
    pub when: Rule,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub id: String,
    pub token_sha256: String,
}

impl Dni {
    /// First pool whose rule matches the visit.
    pub fn pool_for(&self, vs: &VisitSource) -> Option<&Pool> {
        self.pool.iter().find(|p| p.when.matches(vs))
    }

    /// First source-level number whose rule matches the visit.
    pub fn source_number_for(&self, vs: &VisitSource) -> Option<&str> {
        self.source.iter().find(|s| s.when.matches(vs)).map(|s| s.number.as_str())
    }
}

impl AccountsFile {
    pub fn parse(text: &str) -> Result<AccountsFile, String> {
        let file: AccountsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        Ok(file)
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.account.iter().find(|a| a.id == id)
    }

    pub fn agency(&self, id: &str) -> Option<&Agency> {
        self.agency.iter().find(|a| a.id == id)
    }

    /// Accounts an agency's credentials cover, sorted by id.
    pub fn accounts_of_agency(&self, agency: &str) -> Vec<&Account> {
        let mut v: Vec<_> = self.account.iter().filter(|a| a.agency.as_deref() == Some(agency)).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every problem that would make the file unsafe to run with.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        let agencies: HashSet<_> = self.agency.iter().map(|a| a.id.as_str()).collect();
        let api_tokens: HashSet<String> =
            self.account.iter().map(|a| &a.token_sha256).chain(self.agency.iter().map(|a| &a.token_sha256)).map(|t| t.to_ascii_lowercase()).collect();
        for agency in &self.agency {
            check_id("agency id", &agency.id)?;
            check_sha256(&agency.token_sha256).map_err(|e| format!("agency {}: {e}", agency.id))?;
        }
        for acc in &self.account {
            check_id("account id", &acc.id)?;
            if !ids.insert(acc.id.as_str()) {
                return Err(format!("account {} is defined twice", acc.id));
            }
            let ctx = |e: String| format!("account {}: {e}", acc.id);
            check_sha256(&acc.token_sha256).map_err(ctx)?;
            if let Some(t) = &acc.calls_token_sha256 {
                check_sha256(t).map_err(ctx)?;
                if api_tokens.contains(&t.to_ascii_lowercase()) {
                    return Err(ctx("calls_token_sha256 is an API token of this file: give the call webhook a token of its own".into()));
                }
            }
            if let Some(agency) = &acc.agency {
                if !agencies.contains(agency.as_str()) {
                    return Err(ctx(format!("unknown agency {agency}")));
                }
            }
            if acc.retention_days == 0 {
                return Err(ctx("retention_days must be at least 1".into()));
            }
            let mut numbers: BTreeMap<&str, &str> = BTreeMap::new();
            let claim = |n: &'static str, number: &str| -> Result<(), String> {
                if !is_e164(number) {
                    return Err(ctx(format!("{n} {number} is not E.164 (+ and 8-15 digits)")));
                }
                Ok(())
            };
            for n in &acc.dni.site_numbers {
                claim("site number", n)?;
            }
            for pool in &acc.dni.pool {
                check_id("pool id", &pool.id).map_err(ctx)?;
                pool.when.validate().map_err(|e| ctx(format!("pool {}: {e}", pool.id)))?;
                if pool.numbers.is_empty() {
                    return Err(ctx(format!("pool {} has no numbers", pool.id)));
                }
                for n in &pool.numbers {
                    claim("pool number", n)?;
                    if let Some(other) = numbers.insert(n.as_str(), pool.id.as_str()) {
                        return Err(ctx(format!("number {n} is in pools {other} and {}", pool.id)));
                    }
                }
            }
            for s in &acc.dni.source {
                claim("source number", &s.number)?;
                s.when.validate().map_err(|e| ctx(format!("source number {}: {e}", s.number)))?;
                if numbers.contains_key(s.number.as_str()) {
                    return Err(ctx(format!("source number {} is also in a pool", s.number)));
                }
            }
            for origin in &acc.allowed_origins {
                if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                    return Err(ctx(format!("allowed origin {origin:?} must look like https://host[:port]")));
                }
            }
        }
        Ok(())
    }
}

fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = (3..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(format!("{what} {id:?} must match [a-z0-9_]{{3,64}}")) }
}

fn check_sha256(hex: &str) -> Result<(), String> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("token_sha256 must be 64 hex digits (the sha256 of the token, never the token)".into())
    }
}

/// `+` then 8 to 15 digits, the first not zero.
pub fn is_e164(n: &str) -> bool {
    let Some(digits) = n.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn demo() -> String {
        format!(
            r#"
[[account]]
id = "acc_demo"
agency = "agc_demo"
token_sha256 = "{H}"
allowed_origins = ["https://demo.example"]
ip_policy = "eu_and_opted_out"

[account.dni]
site_numbers = ["+15550100000"]
hold_minutes = 30

[[account.dni.pool]]
id = "paid_search"
when = {{ medium = "cpc" }}
numbers = ["+15550109001", "+15550109002"]

[[account.dni.source]]
when = {{ channel = "organic_social" }}
number = "+15550108001"

[[agency]]
id = "agc_demo"
token_sha256 = "{H}"
"#
        )
    }

    #[test]
    fn spec_example_parses_with_defaults() {
        let f = AccountsFile::parse(&demo()).unwrap();
        let acc = f.account("acc_demo").unwrap();
        assert_eq!(acc.retention_days, 395);
        assert_eq!(acc.dni.pool[0].numbers.len(), 2);
        assert_eq!(f.accounts_of_agency("agc_demo").len(), 1);
    }

    #[test]
    fn pool_and_source_numbers_follow_the_rules() {
        let f = AccountsFile::parse(&demo()).unwrap();
        let dni = &f.account("acc_demo").unwrap().dni;
        let paid = crate::classify("https://demo.example/?gclid=1", "").unwrap();
        assert_eq!(dni.pool_for(&paid).unwrap().id, "paid_search");
        let social = crate::classify("https://demo.example/", "https://t.co/").unwrap();
        assert!(dni.pool_for(&social).is_none());
        assert_eq!(dni.source_number_for(&social), Some("+15550108001"));
    }

    #[test]
    fn bad_files_are_rejected_with_a_reason() {
        let cases = [
            (demo().replace("acc_demo\"\nagency", "Acc Demo\"\nagency"), "account id"),
            (demo().replace(&format!("token_sha256 = \"{H}\"\nallowed"), "token_sha256 = \"secret\"\nallowed"), "64 hex"),
            (demo().replace("+15550109002", "5550109002"), "E.164"),
            (demo().replace("+15550108001", "+15550109001"), "also in a pool"),
            (demo().replace("medium = \"cpc\"", "colour = \"red\""), "unknown field"),
            (demo().replace("agency = \"agc_demo\"", "agency = \"agc_nope\""), "unknown agency"),
            (demo().replace("https://demo.example\"]", "demo.example\"]"), "allowed origin"),
            (demo() + "\n[[account]]\nid = \"acc_demo\"\ntoken_sha256 = \"" + H + "\"\n", "defined twice"),
            // The call webhook's token may not be an API token (the account's, an agency's, another account's).
            (demo().replace("ip_policy", &format!("calls_token_sha256 = \"{H}\"\nip_policy")), "a token of its own"),
        ];
        for (text, want) in cases {
            let err = AccountsFile::parse(&text).unwrap_err();
            assert!(err.contains(want), "wanted {want:?} in {err:?}");
        }
    }

    #[test]
    fn e164_check() {
        assert!(is_e164("+15550100000"));
        assert!(is_e164("+442071838750"));
        assert!(!is_e164("15550100000"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1555"));
    }
}
