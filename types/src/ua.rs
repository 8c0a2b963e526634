//! User-agent reading: browser family, OS, device type and a bot flag. A
//! deliberately small rule list (no regex engine, so it also fits the tracker);
//! not a full UA database. Headless Chrome is NOT a bot here: real visitors'
//! automation and our own browser tests use it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub browser: &'static str,
    pub os: &'static str,
    pub device: &'static str,
    pub is_bot: bool,
}

const BOT_MARKERS: &[&str] = &[
    "bot", "crawl", "spider", "slurp", "facebookexternalhit", "mediapartners-google", "adsbot", "bingpreview",
    "curl/", "wget/", "python-requests", "python-urllib", "aiohttp", "go-http-client", "java/", "okhttp", "libwww",
    "httpclient", "axios/", "node-fetch", "lighthouse", "pingdom", "uptimerobot", "statuscake", "gtmetrix",
    "pagespeed", "phantomjs", "scrapy", "ahrefs", "semrush", "mj12", "petalbot",
    "baiduspider", "duckduckgo-favicons", "whatsapp", "telegrambot", "slackbot", "discordbot", "embedly",
];

pub fn parse(ua: &str) -> UserAgent {
    let lower = ua.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    let is_bot = lower.trim().is_empty() || BOT_MARKERS.iter().any(|m| has(m));
    let browser = if has("edg/") || has("edge/") {
        "Edge"
    } else if has("opr/") || has("opera") {
        "Opera"
    } else if has("samsungbrowser") {
        "Samsung Internet"
    } else if has("firefox/") || has("fxios") {
        "Firefox"
    } else if has("chrome/") || has("crios") || has("chromium") {
        "Chrome"
    } else if has("safari/") {
        "Safari"
    } else if is_bot {
        "Bot"
    } else {
        "Other"
    };
    let os = if has("windows") {
        "Windows"
    } else if has("iphone") || has("ipad") || has("ipod") {
        "iOS"
    } else if has("android") {
        "Android"
    } else if has("mac os x") || has("macintosh") {
        "macOS"
    } else if has("cros") {
        "ChromeOS"
    } else if has("linux") {
        "Linux"
    } else {
        "Other"
    };
    let device = if is_bot {
        "bot"
    } else if has("ipad") || has("tablet") || (has("android") && !has("mobile")) {
        "tablet"
    } else if has("mobi") || has("iphone") || has("ipod") {
        "mobile"
    } else {
        "desktop"
    };
    UserAgent { browser, os, device, is_bot }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ua_table() {
        let cases: &[(&str, &str, &str, &str, bool)] = &[
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile", false),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile", false),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "Chrome", "Android", "tablet", false),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0", "Firefox", "macOS", "desktop", false),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge", "Windows", "desktop", false),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Chrome", "Linux", "desktop", false),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "Chrome", "Other", "bot", true),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "Bot", "Other", "bot", true),
            ("curl/8.5.0", "Bot", "Other", "bot", true),
            ("python-requests/2.32.3", "Bot", "Other", "bot", true),
            ("", "Bot", "Other", "bot", true),
        ];
        for (ua, browser, os, device, bot) in cases {
            let got = parse(ua);
            assert_eq!((got.browser, got.os, got.device, got.is_bot), (*browser, *os, *device, *bot), "{ua}");
        }
    }
}
