//! The DNI rule matcher: does a visit's source satisfy a pool's or a
//! source-level number's `when` table? Shared so that the tracker (which
//! shows the number) and ingest (which assigns it) always agree.
//!
//! Every key present must match (AND); an empty rule matches every visit.
//! Values compare case-insensitively; `has` names a click id (`gclid`, …) or
//! `click_id` for any of them.

use crate::source::{VisitSource, CLICK_ID_PARAMS};

/// The channel names a rule may use besides the groups `social` and `search`.
pub const CHANNEL_NAMES: &str = "direct, organic_search, paid_search, organic_social, paid_social, email, referral, display, affiliate, other";

/// The keys of a rule, in the order of [`Rule`]'s fields.
const KEYS: [&str; 6] = ["source", "medium", "campaign", "channel", "referrer_host", "has"];

/// Whether the visit satisfies one `key: want` condition of a rule (what
/// [`Rule::matches`] checks for every key present); `None` for a key rules
/// do not have. The browser tracker checks its rules with this directly,
/// without building a [`Rule`].
pub fn condition_matches(key: &str, want: &str, vs: &VisitSource) -> Option<bool> {
    let got = match key {
        "source" => &vs.source,
        "medium" => &vs.medium,
        "campaign" => &vs.campaign,
        "channel" => return Some(crate::Channel::named(want).is_some_and(|named| named.contains(&vs.channel()))),
        "referrer_host" => {
            let want = want.to_ascii_lowercase();
            let want = want.strip_prefix("www.").unwrap_or(&want);
            // `want` itself or a subdomain of it (`.` + `want` at the end), without building a string.
            let host = vs.referrer_host.as_bytes();
            return Some(
                host == want.as_bytes()
                    || (host.len() > want.len() && host.ends_with(want.as_bytes()) && host[host.len() - want.len() - 1] == b'.'),
            );
        }
        "has" if want.eq_ignore_ascii_case("click_id") => return Some(!vs.click_ids.is_empty()),
        "has" => return Some(vs.click_ids.iter().any(|(p, _)| p.eq_ignore_ascii_case(want))),
        _ => return None,
    };
    Some(want.eq_ignore_ascii_case(got))
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Rule {
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub source: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub medium: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub campaign: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub channel: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub referrer_host: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub has: Option<String>,
}

impl Rule {
    pub fn matches(&self, vs: &VisitSource) -> bool {
        let conditions = [&self.source, &self.medium, &self.campaign, &self.channel, &self.referrer_host, &self.has];
        conditions.into_iter().zip(KEYS).all(|(want, key)| want.as_deref().is_none_or(|w| condition_matches(key, w, vs) == Some(true)))
    }

    /// A problem with the rule itself (unknown click id, unknown channel), for config validation.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(h) = &self.has {
            if !h.eq_ignore_ascii_case("click_id") && !CLICK_ID_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(h)) {
                return Err(["unknown click id in `has`: ", h].concat());
            }
        }
        if let Some(c) = &self.channel {
            if crate::Channel::named(c).is_none() {
                return Err(["unknown channel: ", c, " (use social, search or one of ", CHANNEL_NAMES, ")"].concat());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify;

    fn rule(f: impl FnOnce(&mut Rule)) -> Rule {
        let mut r = Rule::default();
        f(&mut r);
        r
    }

    #[test]
    fn empty_rule_matches_everything() {
        assert!(Rule::default().matches(&classify("https://d.example/", "").unwrap()));
    }

    #[test]
    fn medium_rule_matches_paid_search_case_insensitively() {
        let r = rule(|r| r.medium = Some("CPC".into()));
        assert!(r.matches(&classify("https://d.example/?utm_medium=cpc&utm_source=google", "").unwrap()));
        assert!(r.matches(&classify("https://d.example/?gclid=1", "").unwrap()));
        assert!(!r.matches(&classify("https://d.example/", "https://google.com/").unwrap()));
    }

    #[test]
    fn all_keys_must_match() {
        let r = rule(|r| {
            r.source = Some("google".into());
            r.has = Some("gclid".into());
        });
        assert!(r.matches(&classify("https://d.example/?gclid=1", "").unwrap()));
        assert!(!r.matches(&classify("https://d.example/?msclkid=1", "").unwrap()));
        assert!(!r.matches(&classify("https://d.example/?utm_source=google&utm_medium=cpc", "").unwrap()));
    }

    #[test]
    fn channel_and_referrer_host_rules() {
        let social = rule(|r| r.channel = Some("organic_social".into()));
        assert!(social.matches(&classify("https://d.example/", "https://t.co/x").unwrap()));
        let host = rule(|r| r.referrer_host = Some("www.yelp.com".into()));
        assert!(host.matches(&classify("https://d.example/", "https://m.yelp.com/biz").unwrap()));
        assert!(!host.matches(&classify("https://d.example/", "https://notyelp.com/").unwrap()));
        assert!(host.matches(&classify("https://d.example/", "https://yelp.com/").unwrap()));
        assert!(!host.matches(&classify("https://d.example/", "https://elp.com/").unwrap()));
        assert!(!host.matches(&classify("https://d.example/", "").unwrap()));
    }

    #[test]
    fn channel_groups_match_their_organic_and_paid_members() {
        let social = rule(|r| r.channel = Some("social".into()));
        assert!(social.matches(&classify("https://d.example/", "https://t.co/x").unwrap()), "organic social");
        assert!(social.matches(&classify("https://d.example/?utm_source=facebook&utm_medium=paid_social", "").unwrap()), "paid social");
        assert!(!social.matches(&classify("https://d.example/", "https://www.google.com/").unwrap()));
        let search = rule(|r| r.channel = Some("Search".into()));
        assert!(search.matches(&classify("https://d.example/", "https://www.google.com/").unwrap()), "organic search");
        assert!(search.matches(&classify("https://d.example/?gclid=1", "").unwrap()), "paid search");
        assert!(!search.matches(&classify("https://d.example/", "https://t.co/x").unwrap()));
        assert!(social.validate().is_ok() && search.validate().is_ok());
        for name in CHANNEL_NAMES.split(", ") {
            assert!(rule(|r| r.channel = Some(name.into())).validate().is_ok(), "{name}");
            assert_eq!(crate::Channel::parse(name).map(|c| c.as_str()), Some(name), "CHANNEL_NAMES lists every channel");
        }
        assert_eq!(CHANNEL_NAMES.split(", ").count(), crate::Channel::ALL.len());
    }

    #[test]
    fn any_click_id_rule() {
        let r = rule(|r| r.has = Some("click_id".into()));
        assert!(r.matches(&classify("https://d.example/?ttclid=1", "").unwrap()));
        assert!(!r.matches(&classify("https://d.example/", "").unwrap()));
    }

    #[test]
    fn validation_rejects_unknown_names() {
        assert!(rule(|r| r.has = Some("foo".into())).validate().is_err());
        assert!(rule(|r| r.channel = Some("tv".into())).validate().is_err());
        assert!(rule(|r| r.has = Some("GCLID".into())).validate().is_ok());
    }
}
