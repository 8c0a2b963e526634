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
    "bytespider", "meta-external", "facebookcatalog", "google-inspectiontool", "feedfetcher", "postman", "datadog",
    "ia_archiver",
];

/// Device names that contain a bot marker but are phones (CUBOT).
const NOT_BOTS: &[&str] = &["cubot"];

pub fn parse(ua: &str) -> UserAgent {
    let lower = ua.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    let marked = |m: &&str| lower.match_indices(*m).any(|(at, _)| !NOT_BOTS.iter().any(|n| lower[..at + m.len()].ends_with(n)));
    let is_bot = lower.trim().is_empty() || BOT_MARKERS.iter().any(marked);
    // In-app browsers and the Chromium family members that name themselves, before "chrome/".
    let browser = if has("fban/") || has("fbav/") {
        "Facebook"
    } else if has("instagram") {
        "Instagram"
    } else if has("edg/") || has("edge/") || has("edga/") || has("edgios/") {
        "Edge"
    } else if has("opr/") || has("opera") {
        "Opera"
    } else if has("samsungbrowser") {
        "Samsung Internet"
    } else if has("yabrowser") {
        "Yandex"
    } else if has("ucbrowser") {
        "UC Browser"
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

    /// Real-world user agents: (UA, browser, OS, device, bot).
    #[test]
    fn real_world_user_agents() {
        let cases: &[(&str, &str, &str, &str, bool)] = &[
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari", "macOS", "desktop", false),
            ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "Safari", "iOS", "tablet", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome", "iOS", "mobile", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", "Firefox", "iOS", "mobile", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/126.0.2592.56 Mobile/15E148 Safari/605.1.15", "Edge", "iOS", "mobile", false),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.0.0", "Edge", "Android", "mobile", false),
            ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet", "Android", "mobile", false),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "Opera", "Windows", "desktop", false),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.6.0.0 Safari/537.36", "Yandex", "Windows", "desktop", false),
            ("Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2030 Build/QKQ1.200209.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36", "UC Browser", "Android", "mobile", false),
            ("Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", "Firefox", "Android", "mobile", false),
            ("Mozilla/5.0 (Android 14; Tablet; rv:127.0) Gecko/127.0 Firefox/127.0", "Firefox", "Android", "tablet", false),
            ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome", "ChromeOS", "desktop", false),
            ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox", "Linux", "desktop", false),
            ("Mozilla/5.0 (Linux; Android 13; SM-A515F Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36", "Chrome", "Android", "mobile", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.96;FBBV/621473358]", "Facebook", "iOS", "mobile", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 337.0.0.0.77 (iPhone14,2; iOS 17_5; en_US)", "Instagram", "iOS", "mobile", false),
            ("Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile", false),
            // Crawlers, previews, monitors and scripts: stored, flagged.
            ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Chrome", "Android", "bot", true),
            ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)", "Bot", "Other", "bot", true),
            ("FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)", "Bot", "Other", "bot", true),
            ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "Safari", "macOS", "bot", true),
            ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", "Safari", "Android", "bot", true),
            ("meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)", "Bot", "Other", "bot", true),
            ("facebookcatalog/1.0", "Bot", "Other", "bot", true),
            ("Twitterbot/1.0", "Bot", "Other", "bot", true),
            ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "Bot", "Other", "bot", true),
            ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Bot", "Other", "bot", true),
            ("WhatsApp/2.23.20.0 A", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "Bot", "Other", "bot", true),
            ("Screaming Frog SEO Spider/19.0", "Bot", "Other", "bot", true),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Chrome-Lighthouse", "Chrome", "Linux", "bot", true),
            ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "Bot", "Other", "bot", true),
            ("Datadog/Synthetics", "Bot", "Other", "bot", true),
            ("PostmanRuntime/7.39.0", "Bot", "Other", "bot", true),
            ("Wget/1.21.4", "Bot", "Other", "bot", true),
            ("Go-http-client/1.1", "Bot", "Other", "bot", true),
            ("axios/1.7.2", "Bot", "Other", "bot", true),
            ("okhttp/4.12.0", "Bot", "Other", "bot", true),
            ("ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)", "Bot", "Other", "bot", true),
        ];
        let mut wrong = Vec::new();
        for (ua, browser, os, device, bot) in cases {
            let got = parse(ua);
            if (got.browser, got.os, got.device, got.is_bot) != (*browser, *os, *device, *bot) {
                wrong.push(format!("{ua}: got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    }
}
