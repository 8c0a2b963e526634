//! The DNI decision's classification half: which pool or source-level rule
//! a visit matches, using `ringpath_types::classify` and the condition check of `Rule::matches` so
//! the browser and ingest (`/v1/numbers`) always agree. The rules arrive from
//! rp.js as one flat string (it parsed the config with `JSON.parse`, which
//! costs nothing in the browser); fetching and showing numbers is not here.

use ringpath_types::url::{split_byte, split_once_byte};
use ringpath_types::rules::condition_matches;
use ringpath_types::{classify, Channel, VisitSource};

/// Starts each rule in the flat encoding.
pub const RULE_SEP: char = '\u{1e}';
/// Starts each `key=value` condition inside a rule.
pub const COND_SEP: char = '\u{1f}';

/// How this page view relates to the visitor's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitKind {
    /// Campaign parameters or an outside referrer: a source of its own.
    NewSource = 0,
    /// No referrer and no campaign: keeps whatever source the session had.
    Direct = 1,
    /// Navigation inside the site: not a new source.
    SameSite = 2,
}

pub fn visit_kind(url: &str, referrer: &str) -> VisitKind {
    match classify(url, referrer) {
        None => VisitKind::SameSite,
        Some(vs) if vs.channel() == Channel::Direct => VisitKind::Direct,
        Some(_) => VisitKind::NewSource,
    }
}

/// Whether the visit matches one encoded rule: every `key=value` condition
/// holds. A key this tracker does not know makes the rule unmatchable rather
/// than broader than the operator wrote it. (rp.js writes each key once: the
/// rule is a JSON object.)
fn rule_matches(encoded: &str, visit: &VisitSource) -> bool {
    split_byte(encoded, COND_SEP as u8)
        .skip(1)
        .all(|condition| split_once_byte(condition, b'=').and_then(|(key, value)| condition_matches(key, value, visit)) == Some(true))
}

/// Index of the first rule the visit matches. Like ingest, a same-site
/// referrer is classified as a direct visit.
pub fn first_match(url: &str, referrer: &str, rules: &str) -> Option<usize> {
    let visit = classify(url, referrer).or_else(|| classify(url, ""))?;
    split_byte(rules, RULE_SEP as u8).skip(1).position(|encoded| rule_matches(encoded, &visit))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes rules the way rp.js does.
    fn encode(rules: &[&[(&str, &str)]]) -> String {
        let mut out = String::new();
        for rule in rules {
            out.push(RULE_SEP);
            for (k, v) in *rule {
                out.push(COND_SEP);
                out.push_str(k);
                out.push('=');
                out.push_str(v);
            }
        }
        out
    }

    #[test]
    fn paid_search_visit_matches_the_cpc_pool() {
        let pools = encode(&[&[("medium", "cpc")]]);
        assert_eq!(first_match("https://d.example/?gclid=abc", "https://www.google.com/", &pools), Some(0));
        assert_eq!(first_match("https://d.example/?utm_medium=cpc&utm_source=bing", "", &pools), Some(0));
        assert_eq!(first_match("https://d.example/", "https://www.google.com/", &pools), None);
    }

    #[test]
    fn first_matching_rule_wins_and_empty_rule_matches_all() {
        let sources = encode(&[&[("channel", "organic_social")], &[("referrer_host", "yelp.com")], &[]]);
        assert_eq!(first_match("https://d.example/", "https://t.co/x", &sources), Some(0));
        assert_eq!(first_match("https://d.example/", "https://www.yelp.com/biz/x", &sources), Some(0));
        assert_eq!(first_match("https://d.example/", "https://news.example.org/", &sources), Some(2));
    }

    #[test]
    fn unknown_keys_make_a_rule_unmatchable() {
        let rules = encode(&[&[("device", "mobile")], &[("channel", "direct")]]);
        assert_eq!(first_match("https://d.example/", "", &rules), Some(1));
    }

    #[test]
    fn no_rules_means_no_match() {
        assert_eq!(first_match("https://d.example/?gclid=1", "", ""), None);
    }

    #[test]
    fn same_site_navigation_counts_as_direct_like_ingest_does() {
        let rules = encode(&[&[("channel", "direct")]]);
        assert_eq!(first_match("https://d.example/b", "https://d.example/a", &rules), Some(0));
    }

    #[test]
    fn visit_kinds() {
        assert_eq!(visit_kind("https://d.example/?utm_source=x&utm_medium=email", ""), VisitKind::NewSource);
        assert_eq!(visit_kind("https://d.example/", "https://t.co/"), VisitKind::NewSource);
        assert_eq!(visit_kind("https://d.example/", ""), VisitKind::Direct);
        assert_eq!(visit_kind("https://d.example/b", "https://d.example/a"), VisitKind::SameSite);
    }
}
