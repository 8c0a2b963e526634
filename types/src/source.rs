//! Traffic-source classification: from a landing URL and its referrer to
//! source / medium / campaign / click ids and one marketing channel.
//!
//! The same function runs in the tracker (to pick a DNI number) and in enrich
//! (to store the channel), so the number a visitor saw and the channel a call
//! is credited to cannot disagree. It does not decide sessions; a same-site
//! referrer without campaign parameters yields `None` ("not a new source").
//!
//! Rules, first match wins:
//! 1. `utm_medium` / click ids present → campaign traffic:
//!    paid search click ids (gclid, gbraid, wbraid, msclkid, dclid) or a paid
//!    medium (cpc, ppc, paidsearch, paid_search, sem) → `paid_search`, unless
//!    the source is a social network or a social click id (ttclid, li_fat_id)
//!    is present → `paid_social`; social media → `organic_social`;
//!    email media → `email`; display media → `display`; affiliate media →
//!    `affiliate`; `organic` → `organic_search`; `referral` → `referral`;
//!    any other medium → `other`. `fbclid` alone is organic social (Facebook
//!    appends it to every outbound link).
//! 2. No campaign data: no referrer → `direct`; a search engine → `organic_search`;
//!    a social network → `organic_social`; a webmail host → `email`; any
//!    other host → `referral`.

use crate::url;

/// The marketing channel a visit is credited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Direct,
    OrganicSearch,
    PaidSearch,
    OrganicSocial,
    PaidSocial,
    Email,
    Referral,
    Display,
    Affiliate,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Direct,
        Channel::OrganicSearch,
        Channel::PaidSearch,
        Channel::OrganicSocial,
        Channel::PaidSocial,
        Channel::Email,
        Channel::Referral,
        Channel::Display,
        Channel::Affiliate,
        Channel::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::OrganicSearch => "organic_search",
            Channel::PaidSearch => "paid_search",
            Channel::OrganicSocial => "organic_social",
            Channel::PaidSocial => "paid_social",
            Channel::Email => "email",
            Channel::Referral => "referral",
            Channel::Display => "display",
            Channel::Affiliate => "affiliate",
            Channel::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The channels a rule's `channel = "…"` names: one channel, or a group
    /// (`social` = organic and paid social, `search` = organic and paid
    /// search), case-insensitively. `None` for a name that is neither.
    pub fn named(name: &str) -> Option<&'static [Channel]> {
        const SOCIAL: [Channel; 2] = [Channel::OrganicSocial, Channel::PaidSocial];
        const SEARCH: [Channel; 2] = [Channel::OrganicSearch, Channel::PaidSearch];
        if name.eq_ignore_ascii_case("social") {
            return Some(&SOCIAL);
        }
        if name.eq_ignore_ascii_case("search") {
            return Some(&SEARCH);
        }
        let i = Channel::ALL.iter().position(|c| name.eq_ignore_ascii_case(c.as_str()))?;
        Some(std::slice::from_ref(&Channel::ALL[i]))
    }
}

/// Click-id query parameters ringpath recognises, in the order they are checked.
pub const CLICK_ID_PARAMS: [&str; 8] = ["gclid", "gbraid", "wbraid", "msclkid", "dclid", "fbclid", "ttclid", "li_fat_id"];

/// Where a visit came from. Strings are lower-cased (ASCII letters; other
/// letters keep their case) except campaign/term/content and click ids, which
/// keep the advertiser's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VisitSource {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
    pub channel: Option<Channel>,
    /// Normalised referrer host (no `www.`), empty for direct visits.
    pub referrer_host: String,
    /// `(param, value)` of every click id on the landing URL.
    pub click_ids: Vec<(&'static str, String)>,
}

impl VisitSource {
    pub fn channel(&self) -> Channel {
        self.channel.unwrap_or(Channel::Direct)
    }

    pub fn click_id(&self, param: &str) -> Option<&str> {
        self.click_ids.iter().find(|(p, _)| *p == param).map(|(_, v)| v.as_str())
    }
}

// The tables are space-separated strings rather than arrays of `&str`: in
// the browser tracker an array costs 8 bytes of pointer and length per
// entry, more than the names themselves. `pattern=name` entries map a host
// pattern (see `host_matches`) to a source name; a pattern also matches the
// subdomains of its host (`yahoo.` covers `search.yahoo.`, `facebook.com`
// covers `m.facebook.com`), so they have no entries of their own.

const SEARCH_ENGINES: &str = "google.=google bing.com=bing yahoo.=yahoo duckduckgo.com=duckduckgo \
    baidu.com=baidu yandex.=yandex ecosia.org=ecosia search.brave.com=brave qwant.com=qwant \
    startpage.com=startpage naver.com=naver seznam.cz=seznam ya.ru=yandex search.aol.com=aol ask.com=ask kagi.com=kagi";

const SOCIAL_NETWORKS: &str = "facebook.com=facebook fb.com=facebook \
    instagram.com=instagram t.co=twitter twitter.com=twitter \
    x.com=twitter linkedin.com=linkedin lnkd.in=linkedin pinterest.=pinterest reddit.com=reddit \
    tiktok.com=tiktok youtube.com=youtube threads.net=threads \
    bsky.app=bluesky snapchat.com=snapchat quora.com=quora nextdoor.com=nextdoor yelp.com=yelp pin.it=pinterest \
    youtu.be=youtube threads.com=threads vk.com=vk whatsapp.com=whatsapp discord.com=discord tumblr.com=tumblr \
    medium.com=medium mastodon.social=mastodon messenger.com=facebook";

const SOCIAL_SOURCES: &str = "facebook fb instagram ig twitter x linkedin pinterest reddit tiktok \
    youtube threads snapchat meta quora nextdoor bluesky vk whatsapp discord tumblr mastodon";

const WEBMAIL_HOSTS: &str = "mail.google.com outlook.live.com outlook.office.com mail.yahoo.com mail.proton.me \
    outlook.office365.com mail.aol.com com.google.android.gm";

/// First labels of a search engine's subdomains that are its other products,
/// not search (`docs.google.com`, `finance.yahoo.com`).
const NOT_SEARCH_LABELS: &str = "docs drive accounts play sites mail adservice support calendar photos meet classroom \
    groups myaccount chat keep business ads analytics finance sports login";

/// Whether `word` is an entry of the space-separated `table`.
fn listed(table: &str, word: &str) -> bool {
    url::split_byte(table, b' ').any(|entry| entry == word)
}

/// The name of the first `pattern=name` entry of `table` whose pattern `host` matches.
fn lookup(table: &'static str, host: &str) -> Option<&'static str> {
    url::split_byte(table, b' ').find_map(|entry| url::split_once_byte(entry, b'=').filter(|(pat, _)| host_matches(host, pat)).map(|(_, name)| name))
}

fn search_engine(host: &str) -> Option<&'static str> {
    lookup(SEARCH_ENGINES, host)
}

fn social_network(host: &str) -> Option<&'static str> {
    lookup(SOCIAL_NETWORKS, host)
}

/// `pat` ending in '.' matches any TLD (`google.` ↔ `google.co.uk`); otherwise
/// the host equals `pat` or is a subdomain of it.
fn host_matches(host: &str, pat: &str) -> bool {
    if pat.ends_with('.') {
        // `pat` at the start of the host or right after a dot (a byte scan, no substring searcher).
        let bytes = host.as_bytes();
        let at_start = bytes.starts_with(pat.as_bytes());
        let in_subdomain = (1..bytes.len()).any(|i| bytes[i - 1] == b'.' && bytes[i..].starts_with(pat.as_bytes()));
        let product = url::split_byte(host, b'.').next().is_some_and(|label| listed(NOT_SEARCH_LABELS, label));
        return (at_start || (in_subdomain && !product)) && !listed(WEBMAIL_HOSTS, host);
    }
    host == pat || (host.ends_with(pat) && host.as_bytes().get(host.len() - pat.len() - 1) == Some(&b'.'))
}

const PAID_SEARCH_MEDIA: &str = "cpc ppc paidsearch paid_search paid-search sem search_ads";
const PAID_SOCIAL_MEDIA: &str = "paid_social paidsocial paid-social social_paid social-paid";
const SOCIAL_MEDIA: &str = "social social-network social_network social-media social_media sm organic_social";
const EMAIL_MEDIA: &str = "email e-mail e_mail newsletter mail";
const DISPLAY_MEDIA: &str = "display banner cpm programmatic interstitial expandable";
const AFFILIATE_MEDIA: &str = "affiliate affiliates partner";

/// A landing's source as DNI decides it: like [`classify`], but a same-site
/// referrer (an internal link) counts as a direct visit instead of no source.
/// The tracker's number choice and ingest's `/v1/numbers` both use this.
pub fn classify_landing(url: &str, referrer: &str) -> Option<VisitSource> {
    classify(url, referrer).or_else(|| classify(url, ""))
}

/// Classifies a visit from its landing URL and referrer (either may be empty).
/// `site_host` is the page's own host; a referrer from the same site with no
/// campaign data is not a new source and yields `None`.
pub fn classify(landing_url: &str, referrer: &str) -> Option<VisitSource> {
    let landing = url::split(landing_url);
    let site_host = landing.as_ref().map(|p| url::normalized_host(p.host)).unwrap_or_default();
    let referrer_host = url::split(referrer).map(|p| url::normalized_host(p.host)).unwrap_or_default();

    let mut vs = VisitSource { referrer_host: referrer_host.clone(), ..VisitSource::default() };
    // Bit i set: `CLICK_ID_PARAMS[i]` is in `vs.click_ids` (a bit test is
    // cheaper in the browser tracker than looking the name up).
    let mut clicks = 0u8;
    if let Some(parts) = &landing {
        for (key, value) in url::query_pairs(parts.query) {
            let key = key.to_ascii_lowercase();
            let value = url::trim(&value).to_owned();
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                // ASCII lower-casing only: Unicode case tables would cost the
                // browser tracker ~3 KB gzip, and the rule tables are ASCII.
                "utm_source" => vs.source = value.to_ascii_lowercase(),
                "utm_medium" => vs.medium = value.to_ascii_lowercase(),
                "utm_campaign" => vs.campaign = value,
                "utm_term" => vs.term = value,
                "utm_content" => vs.content = value,
                _ => {
                    if let Some(i) = CLICK_ID_PARAMS.iter().position(|p| *p == key) {
                        if clicks & 1 << i == 0 {
                            clicks |= 1 << i;
                            vs.click_ids.push((CLICK_ID_PARAMS[i], value));
                        }
                    }
                }
            }
        }
    }

    let has_campaign = !vs.source.is_empty() || !vs.medium.is_empty() || clicks != 0;
    if has_campaign {
        fill_from_click_ids(&mut vs, clicks);
        if vs.source.is_empty() && !referrer_host.is_empty() {
            vs.source = search_engine(&referrer_host)
                .or_else(|| social_network(&referrer_host))
                .map(str::to_owned)
                .unwrap_or_else(|| referrer_host.clone());
        }
        vs.channel = Some(campaign_channel(&vs, clicks));
        return Some(vs);
    }

    if referrer_host.is_empty() {
        vs.source = "(direct)".into();
        vs.medium = "(none)".into();
        vs.channel = Some(Channel::Direct);
        return Some(vs);
    }
    if !site_host.is_empty() && same_site(&referrer_host, &site_host) {
        return None;
    }
    let (source, medium, channel) = if let Some(engine) = search_engine(&referrer_host) {
        (engine.to_owned(), "organic", Channel::OrganicSearch)
    } else if let Some(network) = social_network(&referrer_host) {
        (network.to_owned(), "social", Channel::OrganicSocial)
    } else if listed(WEBMAIL_HOSTS, &referrer_host) {
        (referrer_host.clone(), "email", Channel::Email)
    } else {
        (referrer_host.clone(), "referral", Channel::Referral)
    };
    vs.source = source;
    vs.medium = medium.into();
    vs.channel = Some(channel);
    Some(vs)
}

/// `clicks` bits of the click ids, in `CLICK_ID_PARAMS` order.
const GCLID: u8 = 1;
const GBRAID: u8 = 1 << 1;
const WBRAID: u8 = 1 << 2;
const MSCLKID: u8 = 1 << 3;
const DCLID: u8 = 1 << 4;
const FBCLID: u8 = 1 << 5;
const TTCLID: u8 = 1 << 6;
const LI_FAT_ID: u8 = 1 << 7;

/// Fills source/medium that ad platforms imply by their click id alone.
fn fill_from_click_ids(vs: &mut VisitSource, clicks: u8) {
    let implied: Option<(&str, &str)> = if clicks & (GCLID | GBRAID | WBRAID) != 0 {
        Some(("google", "cpc"))
    } else if clicks & DCLID != 0 {
        Some(("google", "display"))
    } else if clicks & MSCLKID != 0 {
        Some(("bing", "cpc"))
    } else if clicks & TTCLID != 0 {
        Some(("tiktok", "paid_social"))
    } else if clicks & LI_FAT_ID != 0 {
        Some(("linkedin", "paid_social"))
    } else if clicks & FBCLID != 0 {
        Some(("facebook", "social"))
    } else {
        None
    };
    if let Some((source, medium)) = implied {
        if vs.source.is_empty() {
            vs.source = source.into();
        }
        if vs.medium.is_empty() {
            vs.medium = medium.into();
        }
    }
}

fn campaign_channel(vs: &VisitSource, clicks: u8) -> Channel {
    let medium = vs.medium.as_str();
    let social_source = listed(SOCIAL_SOURCES, &vs.source) || social_network(&vs.source).is_some();
    let paid_click = clicks & (GCLID | GBRAID | WBRAID | MSCLKID) != 0;
    let paid_social_click = clicks & (TTCLID | LI_FAT_ID) != 0;

    if listed(PAID_SOCIAL_MEDIA, medium) || paid_social_click {
        return Channel::PaidSocial;
    }
    if listed(PAID_SEARCH_MEDIA, medium) || paid_click || medium == "paid" {
        return if social_source { Channel::PaidSocial } else { Channel::PaidSearch };
    }
    if listed(SOCIAL_MEDIA, medium) || (medium.is_empty() && social_source) {
        return Channel::OrganicSocial;
    }
    if listed(EMAIL_MEDIA, medium) {
        return Channel::Email;
    }
    if listed(DISPLAY_MEDIA, medium) {
        return Channel::Display;
    }
    if listed(AFFILIATE_MEDIA, medium) {
        return Channel::Affiliate;
    }
    if medium == "organic" {
        return Channel::OrganicSearch;
    }
    if medium == "referral" {
        return Channel::Referral;
    }
    let engine_name = |entry: &str| url::split_once_byte(entry, b'=').is_some_and(|(_, name)| name == vs.source);
    if medium.is_empty() && (search_engine(&vs.source).is_some() || url::split_byte(SEARCH_ENGINES, b' ').any(engine_name)) {
        return Channel::OrganicSearch;
    }
    Channel::Other
}

/// Same registrable-ish site: equal, or one a subdomain of the other
/// (`shop.example.com` ↔ `example.com`).
fn same_site(a: &str, b: &str) -> bool {
    a == b || host_matches(a, b) || host_matches(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(url: &str, referrer: &str) -> Option<&'static str> {
        classify(url, referrer).map(|v| v.channel().as_str())
    }

    #[test]
    fn classification_table() {
        let site = "https://demo.example/landing";
        let cases: &[(&str, &str, Option<&str>)] = &[
            (site, "", Some("direct")),
            ("https://demo.example/?gclid=abc", "https://www.google.com/", Some("paid_search")),
            ("https://demo.example/?utm_source=google&utm_medium=cpc&utm_campaign=Spring", "https://www.google.com/", Some("paid_search")),
            ("https://demo.example/?gbraid=x", "", Some("paid_search")),
            ("https://demo.example/?wbraid=x", "", Some("paid_search")),
            ("https://demo.example/?msclkid=x", "https://www.bing.com/", Some("paid_search")),
            ("https://demo.example/?dclid=x", "", Some("display")),
            ("https://demo.example/?utm_source=facebook&utm_medium=cpc", "", Some("paid_social")),
            ("https://demo.example/?utm_source=facebook&utm_medium=paid_social", "", Some("paid_social")),
            ("https://demo.example/?ttclid=x", "https://www.tiktok.com/", Some("paid_social")),
            ("https://demo.example/?li_fat_id=x", "https://www.linkedin.com/", Some("paid_social")),
            ("https://demo.example/?fbclid=x", "https://l.facebook.com/", Some("organic_social")),
            ("https://demo.example/?utm_source=instagram&utm_medium=social", "", Some("organic_social")),
            ("https://demo.example/?utm_source=newsletter&utm_medium=email", "", Some("email")),
            ("https://demo.example/?utm_source=gdn&utm_medium=display", "", Some("display")),
            ("https://demo.example/?utm_source=partnerx&utm_medium=affiliate", "", Some("affiliate")),
            ("https://demo.example/?utm_source=google&utm_medium=organic", "", Some("organic_search")),
            ("https://demo.example/?utm_source=blog&utm_medium=referral", "", Some("referral")),
            ("https://demo.example/?utm_source=radio&utm_medium=podcast", "", Some("other")),
            ("https://demo.example/?utm_source=google", "", Some("organic_search")),
            ("https://demo.example/?utm_source=twitter", "", Some("organic_social")),
            (site, "https://www.google.com/", Some("organic_search")),
            (site, "https://www.google.co.uk/search?q=plumber", Some("organic_search")),
            (site, "https://duckduckgo.com/", Some("organic_search")),
            (site, "https://www.bing.com/search?q=x", Some("organic_search")),
            (site, "https://search.yahoo.com/", Some("organic_search")),
            (site, "https://yandex.ru/", Some("organic_search")),
            (site, "https://t.co/abc", Some("organic_social")),
            (site, "https://www.facebook.com/", Some("organic_social")),
            (site, "https://lm.facebook.com/l.php", Some("organic_social")),
            (site, "https://www.linkedin.com/feed", Some("organic_social")),
            (site, "https://out.reddit.com/", Some("organic_social")),
            (site, "https://mail.google.com/mail/u/0/", Some("email")),
            (site, "https://outlook.live.com/", Some("email")),
            (site, "https://news.ycombinator.com/item?id=1", Some("referral")),
            (site, "https://notgoogle.com/", Some("referral")),
            (site, "https://demo.example/other-page", None),
            (site, "https://www.demo.example/", None),
            ("https://shop.demo.example/x", "https://demo.example/", None),
            ("https://demo.example/?utm_source=google&utm_medium=cpc", "https://demo.example/", Some("paid_search")),
            ("https://demo.example/?UTM_MEDIUM=CPC&utm_source=Google", "", Some("paid_search")),
            ("https://demo.example/?utm_medium=&utm_source=", "", Some("direct")),
        ];
        for (url, referrer, want) in cases {
            assert_eq!(ch(url, referrer), *want, "url={url} referrer={referrer}");
        }
    }

    #[test]
    fn google_ads_click_fills_source_and_medium() {
        let vs = classify("https://demo.example/?gclid=Cj0KCQ", "").unwrap();
        assert_eq!((vs.source.as_str(), vs.medium.as_str()), ("google", "cpc"));
        assert_eq!(vs.click_id("gclid"), Some("Cj0KCQ"));
    }

    #[test]
    fn utm_values_win_over_implied_ones_and_keep_campaign_case() {
        let vs = classify("https://d.example/?utm_source=Google&utm_medium=CPC&utm_campaign=Spring%20Sale&gclid=1", "").unwrap();
        assert_eq!(vs.source, "google");
        assert_eq!(vs.medium, "cpc");
        assert_eq!(vs.campaign, "Spring Sale");
    }

    #[test]
    fn organic_referrals_name_the_engine_or_host() {
        let vs = classify("https://d.example/", "https://www.google.de/").unwrap();
        assert_eq!((vs.source.as_str(), vs.medium.as_str()), ("google", "organic"));
        let vs = classify("https://d.example/", "https://blog.partner.org/post").unwrap();
        assert_eq!((vs.source.as_str(), vs.medium.as_str(), vs.referrer_host.as_str()), ("blog.partner.org", "referral", "blog.partner.org"));
    }

    #[test]
    fn campaign_without_source_borrows_the_referrer() {
        let vs = classify("https://d.example/?utm_medium=cpc", "https://www.bing.com/").unwrap();
        assert_eq!(vs.source, "bing");
    }

    #[test]
    fn source_and_medium_lower_case_ascii_letters_only() {
        let vs = classify("https://d.example/?utm_source=%C3%9CBER%20Ads&utm_medium=Paid_Social", "").unwrap();
        assert_eq!(vs.source, "Über ads");
        assert_eq!(vs.medium, "paid_social");
        assert_eq!(vs.channel(), Channel::PaidSocial);
    }

    #[test]
    fn any_tld_engines_match_only_at_the_start_of_a_host_label() {
        assert_eq!(ch("https://d.example/", "https://news.google.com/"), Some("organic_search"));
        assert_eq!(ch("https://d.example/", "https://google.de/"), Some("organic_search"));
        assert_eq!(ch("https://d.example/", "https://mygoogle.de/"), Some("referral"));
        assert_eq!(ch("https://d.example/", "https://yahoo.co.jp/"), Some("organic_search"));
        assert_eq!(ch("https://d.example/", "https://mail.yahoo.com/"), Some("email"));
    }

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("tv"), None);
    }

    /// Real-world referrers and landing URLs as browsers and ad platforms
    /// send them: (landing, referrer, channel, source). Same-site referrers
    /// are not a new source (`None`).
    #[test]
    fn real_world_visits() {
        let site = "https://shop.example.com/products/boots";
        let cases: &[(&str, &str, Option<(&str, &str)>)] = &[
            // Organic search, across country domains, apps and smaller engines.
            (site, "https://www.google.com/", Some(("organic_search", "google"))),
            (site, "https://www.google.de/", Some(("organic_search", "google"))),
            (site, "https://www.google.com.au/search?q=boots", Some(("organic_search", "google"))),
            (site, "https://google.com/", Some(("organic_search", "google"))),
            (site, "https://WWW.GOOGLE.CO.UK/", Some(("organic_search", "google"))),
            (site, "android-app://com.google.android.googlequicksearchbox/", Some(("organic_search", "google"))),
            (site, "https://cn.bing.com/search?q=boots", Some(("organic_search", "bing"))),
            (site, "https://html.duckduckgo.com/", Some(("organic_search", "duckduckgo"))),
            (site, "https://r.search.yahoo.com/_ylt=abc/RU=https%3a%2f%2fshop.example.com%2f", Some(("organic_search", "yahoo"))),
            (site, "https://de.search.yahoo.com/", Some(("organic_search", "yahoo"))),
            (site, "https://yandex.com.tr/", Some(("organic_search", "yandex"))),
            (site, "https://ya.ru/", Some(("organic_search", "yandex"))),
            (site, "https://m.baidu.com/from=844b/s?word=x", Some(("organic_search", "baidu"))),
            (site, "https://www.ecosia.org/search?q=boots", Some(("organic_search", "ecosia"))),
            (site, "https://search.brave.com/search?q=boots", Some(("organic_search", "brave"))),
            (site, "https://www.startpage.com/", Some(("organic_search", "startpage"))),
            (site, "https://www.qwant.com/?q=boots", Some(("organic_search", "qwant"))),
            (site, "https://search.naver.com/search.naver?query=x", Some(("organic_search", "naver"))),
            (site, "https://search.seznam.cz/", Some(("organic_search", "seznam"))),
            (site, "https://search.aol.com/aol/search?q=boots", Some(("organic_search", "aol"))),
            (site, "https://www.ask.com/web?q=boots", Some(("organic_search", "ask"))),
            (site, "https://kagi.com/search?q=boots", Some(("organic_search", "kagi"))),
            // Google and Yahoo products that are not search.
            (site, "https://docs.google.com/document/d/1/edit", Some(("referral", "docs.google.com"))),
            (site, "https://accounts.google.com/", Some(("referral", "accounts.google.com"))),
            (site, "https://play.google.com/store/apps", Some(("referral", "play.google.com"))),
            (site, "https://sites.google.com/view/x", Some(("referral", "sites.google.com"))),
            (site, "https://finance.yahoo.com/quote/X", Some(("referral", "finance.yahoo.com"))),
            // Social networks, incl. link shims and short links.
            (site, "https://m.facebook.com/", Some(("organic_social", "facebook"))),
            (site, "https://web.facebook.com/", Some(("organic_social", "facebook"))),
            (site, "https://l.instagram.com/?u=x", Some(("organic_social", "instagram"))),
            (site, "https://x.com/someone/status/1", Some(("organic_social", "twitter"))),
            (site, "https://mobile.twitter.com/", Some(("organic_social", "twitter"))),
            (site, "https://lnkd.in/abc", Some(("organic_social", "linkedin"))),
            (site, "https://www.pinterest.co.uk/pin/1/", Some(("organic_social", "pinterest"))),
            (site, "https://pin.it/abc", Some(("organic_social", "pinterest"))),
            (site, "https://youtu.be/abc", Some(("organic_social", "youtube"))),
            (site, "https://www.threads.com/@x", Some(("organic_social", "threads"))),
            (site, "https://away.vk.com/away.php", Some(("organic_social", "vk"))),
            (site, "https://web.whatsapp.com/", Some(("organic_social", "whatsapp"))),
            (site, "https://discord.com/channels/1/2", Some(("organic_social", "discord"))),
            (site, "https://www.tumblr.com/x", Some(("organic_social", "tumblr"))),
            (site, "https://medium.com/@x/post", Some(("organic_social", "medium"))),
            (site, "https://mastodon.social/@x", Some(("organic_social", "mastodon"))),
            (site, "https://www.messenger.com/", Some(("organic_social", "facebook"))),
            // Webmail, on the web and in apps.
            (site, "https://outlook.office365.com/", Some(("email", "outlook.office365.com"))),
            (site, "https://mail.aol.com/", Some(("email", "mail.aol.com"))),
            (site, "https://mail.yahoo.com/d/folders/1", Some(("email", "mail.yahoo.com"))),
            (site, "android-app://com.google.android.gm/", Some(("email", "com.google.android.gm"))),
            // Plain referrals.
            (site, "https://chatgpt.com/", Some(("referral", "chatgpt.com"))),
            (site, "https://www.perplexity.ai/search/x", Some(("referral", "perplexity.ai"))),
            (site, "https://en.wikipedia.org/wiki/Boot", Some(("referral", "en.wikipedia.org"))),
            (site, "https://googleusercontent.com/x", Some(("referral", "googleusercontent.com"))),
            (site, "https://example.org/", Some(("referral", "example.org"))),
            // Campaigns: utm_* and click ids, whatever the referrer.
            ("https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=Boots&gclid=Cj0", "https://www.google.com/", Some(("paid_search", "google"))),
            ("https://shop.example.com/?gclid=Cj0&gad_source=1", "https://syndicatedsearch.goog/", Some(("paid_search", "google"))),
            ("https://shop.example.com/?utm_source=bing&utm_medium=cpc&msclkid=m1", "https://www.bing.com/", Some(("paid_search", "bing"))),
            ("https://shop.example.com/?utm_source=fb&utm_medium=paid", "https://m.facebook.com/", Some(("paid_social", "fb"))),
            ("https://shop.example.com/?utm_source=facebook&utm_medium=cpc&fbclid=f1", "https://l.facebook.com/", Some(("paid_social", "facebook"))),
            ("https://shop.example.com/?utm_source=ig&utm_medium=paid_social", "", Some(("paid_social", "ig"))),
            ("https://shop.example.com/?fbclid=IwAR0", "https://l.facebook.com/", Some(("organic_social", "facebook"))),
            ("https://shop.example.com/?ttclid=t1", "", Some(("paid_social", "tiktok"))),
            ("https://shop.example.com/?li_fat_id=l1", "", Some(("paid_social", "linkedin"))),
            ("https://shop.example.com/?utm_source=twitter&utm_medium=social", "https://t.co/x", Some(("organic_social", "twitter"))),
            ("https://shop.example.com/?utm_source=Newsletter&utm_medium=Email&utm_campaign=Nov", "", Some(("email", "newsletter"))),
            ("https://shop.example.com/?utm_source=mailchimp&utm_medium=e-mail", "https://mail.google.com/", Some(("email", "mailchimp"))),
            ("https://shop.example.com/?utm_source=criteo&utm_medium=display", "https://googleads.g.doubleclick.net/", Some(("display", "criteo"))),
            ("https://shop.example.com/?utm_source=gdn&utm_medium=cpm", "", Some(("display", "gdn"))),
            ("https://shop.example.com/?dclid=d1", "", Some(("display", "google"))),
            ("https://shop.example.com/?utm_source=awin&utm_medium=affiliate", "https://www.awin1.com/", Some(("affiliate", "awin"))),
            ("https://shop.example.com/?utm_source=partner-blog&utm_medium=referral", "", Some(("referral", "partner-blog"))),
            ("https://shop.example.com/?utm_source=bing&utm_medium=organic", "", Some(("organic_search", "bing"))),
            ("https://shop.example.com/?utm_source=radio&utm_medium=sms", "", Some(("other", "radio"))),
            ("https://shop.example.com/?utm_medium=cpc", "https://www.google.com/", Some(("paid_search", "google"))),
            ("https://shop.example.com/?utm_campaign=Spring%20Sale&utm_source=google&utm_medium=cpc", "", Some(("paid_search", "google"))),
            ("https://shop.example.com/?UTM_SOURCE=Google&UTM_MEDIUM=CPC", "", Some(("paid_search", "google"))),
            // A campaign link clicked on the site itself is still a campaign.
            ("https://shop.example.com/?utm_source=google&utm_medium=cpc", "https://shop.example.com/cart", Some(("paid_search", "google"))),
            // Direct.
            (site, "", Some(("direct", "(direct)"))),
            ("https://shop.example.com/?utm_source=&utm_medium=", "", Some(("direct", "(direct)"))),
            ("https://shop.example.com/#utm_source=google", "", Some(("direct", "(direct)"))),
            // Same site: not a new source (apex, www, sibling page, port, scheme, reload).
            (site, "https://shop.example.com/", None),
            (site, "https://www.shop.example.com/", None),
            (site, "http://shop.example.com/products", None),
            (site, "https://shop.example.com:8443/checkout", None),
            (site, "https://example.com/", None),
            (site, "https://eu.shop.example.com/", None),
            (site, site, None),
        ];
        let mut wrong = Vec::new();
        for (landing, referrer, want) in cases {
            let got = classify(landing, referrer).map(|v| (v.channel().as_str(), v.source));
            if got.as_ref().map(|(c, s)| (*c, s.as_str())) != *want {
                wrong.push(format!("{landing} ← {referrer}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    }
}
