//! The shipped `pkg/rp.wasm` computes what the native, unit-tested code
//! computes: tens of thousands of generated calls of every export, run in
//! Node through the same calling convention rp.js uses, against the answers
//! of the pure modules here. It guards the size-driven build flags (MIR
//! inlining, cross-crate inlining, wasm-opt) and the hand-written ABI in
//! `src/exports.rs` against miscompiles. Skipped (with a notice) when
//! `pkg/rp.wasm` has not been built or `node` is missing.

// A failed unwrap here is a failed test.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use ringpath_tracker::consent::{self, Consent, Signals};
use ringpath_tracker::{dni, phone, pii};

/// xorshift64: deterministic cases without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// An argument or an answer, written as JSON.
enum Value {
    Str(String),
    Num(i64),
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => json_string(s, out),
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
    }
}

struct Cases(String, usize);

impl Cases {
    fn add(&mut self, export: &str, args: Vec<Value>, want: Value) {
        self.0.push_str(if self.1 == 0 { "[" } else { ",\n" });
        self.1 += 1;
        self.0.push_str("{\"f\":");
        json_string(export, &mut self.0);
        self.0.push_str(",\"args\":[");
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            json_value(a, &mut self.0);
        }
        self.0.push_str("],\"want\":");
        json_value(&want, &mut self.0);
        self.0.push('}');
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

/// `Option<bool>` as the exports take and give it: 0 = false, 1 = true, 2 = none.
fn tri(v: Option<bool>) -> i64 {
    v.map_or(2, i64::from)
}

const HOSTS: &[&str] = &[
    "www.google.com", "google.de", "docs.google.com", "mail.google.com", "www.bing.com", "search.yahoo.com",
    "duckduckgo.com", "yandex.ru", "l.facebook.com", "t.co", "x.com", "www.linkedin.com", "old.reddit.com",
    "youtu.be", "www.pinterest.co.uk", "outlook.live.com", "d.example", "www.d.example", "shop.d.example",
    "news.example.org", "[::1]:8080", "user@d.example", "D.EXAMPLE", "yelp.com", "m.yelp.com", "",
];
const KEYS: &[&str] = &[
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "UTM_MEDIUM", "gclid", "gbraid", "msclkid", "dclid",
    "fbclid", "ttclid", "li_fat_id", "email", "first_name", "contact%5Bemail%5D", "phone", "q", "page", "zip",
    "userName", "hotel", "utm%5Fterm", "",
];
const VALUES: &[&str] = &[
    "google", "Google", "cpc", "CPC", "paid_social", "social", "email", "display", "affiliate", "organic",
    "referral", "facebook", "ig", "Spring+Sale", "a%40b.com", "ann@example.org", "%2B1%20555%20010%200000",
    "(555)%20010-0000", "5550100000", "12345", "%C2%A0cpc%E3%80%80", "%FF", "%", "%zz", "x", "",
];

fn url(r: &mut Rng) -> String {
    let mut u = String::from(r.pick(&["https://", "http://", "HTTPS://", "", "android-app://"]));
    u.push_str(r.pick(HOSTS));
    u.push_str(r.pick(&["", "/", "/a/b", "/p?", "/#/r?utm_medium=cpc"]));
    for i in 0..r.below(5) {
        u.push_str(if i == 0 && !u.contains('?') { "?" } else { r.pick(&["&", "&", "#", "&&"]) });
        u.push_str(r.pick(KEYS));
        if r.below(6) > 0 {
            u.push('=');
            u.push_str(r.pick(VALUES));
        }
    }
    u
}

/// Rules in rp.js's encoding (see `dni`).
fn rules(r: &mut Rng) -> String {
    let mut out = String::new();
    for _ in 0..r.below(4) {
        out.push(dni::RULE_SEP);
        for _ in 0..r.below(3) {
            out.push(dni::COND_SEP);
            out.push_str(r.pick(&["source", "medium", "campaign", "channel", "referrer_host", "has", "device"]));
            out.push('=');
            out.push_str(r.pick(&[
                "google", "cpc", "CPC", "paid_search", "organic_social", "direct", "referral", "email", "yelp.com",
                "www.yelp.com", "gclid", "click_id", "fbclid", "Spring Sale", "",
            ]));
        }
    }
    out
}

const NUMBERS: &[&str] = &[
    "+15550100000", "+15550109001", "+442079460000", "+442079460123", "+493012345678", "+33123456789",
    "+74951234567", "+61298765432", "+353123456789",
];

/// Page text with site numbers written in many ways, and noise around them.
fn page_text(r: &mut Rng) -> String {
    let separators = [" ", "-", ".", " - ", "\u{a0}", "\u{2011}", "\u{2013}", "/", "(", ")", "", "\u{202f}"];
    let noise = ["Call ", "tel ", "+", "0", "00", "1", "8", "(0)", "x", "\n", "é", "+44 ", "ISBN ", ". ", "+1 "];
    let mut text = String::new();
    for _ in 0..1 + r.below(3) {
        text.push_str(r.pick(&noise));
        let digits = &r.pick(NUMBERS)[1..];
        let from = [0, 1, 2, digits.len() - 10][r.below(4)];
        text.push_str(r.pick(&["", "+", "0", "00", "8", "1", "(0)"]));
        for (i, c) in digits[from..].chars().enumerate() {
            if i > 0 && r.below(3) == 0 {
                text.push_str(r.pick(&separators));
            }
            text.push(c);
        }
        text.push_str(r.pick(&noise));
    }
    text
}

fn generate() -> Cases {
    let mut r = Rng(0x5eed_0f7a_c4e1_2b00);
    let mut cases = Cases(String::new(), 0);
    for _ in 0..6000 {
        let (landing, referrer) = (url(&mut r), if r.below(3) == 0 { String::new() } else { url(&mut r) });
        cases.add("visit_kind", vec![s(&landing), s(&referrer)], Value::Num(dni::visit_kind(&landing, &referrer) as i64));
        let encoded = rules(&mut r);
        let first = dni::first_match(&landing, &referrer, &encoded).map_or(-1, |i| i as i64);
        cases.add("first_match", vec![s(&landing), s(&referrer), s(&encoded)], Value::Num(first));
        cases.add("strip_url", vec![s(&landing)], s(&pii::strip_url(&landing)));
    }
    for _ in 0..6000 {
        let text = page_text(&mut r);
        let sites = [r.pick(NUMBERS), ",", r.pick(NUMBERS), r.pick(&["", ",junk"])].concat();
        let new = r.pick(&[NUMBERS[1], NUMBERS[3], NUMBERS[4], "+1555", ""]);
        let targets = phone::parse_list(&sites);
        let swapped = |href: bool, t: &str| -> String {
            let Some(n) = phone::Number::parse(new) else { return String::new() };
            let out = if href { phone::replace_in_tel_href(t, &targets, &n) } else { phone::replace_in_text(t, &targets, &n) };
            out.unwrap_or_default()
        };
        let want = swapped(false, &text);
        cases.add("swap", vec![s(&text), s(&sites), s(new), Value::Num(0)], s(&want));
        let href = [r.pick(&["tel:", "TEL:", "tel:%2B", "mailto:"]), &text, r.pick(&["", ";ext=1"])].concat();
        let want = swapped(true, &href);
        cases.add("swap", vec![s(&href), s(&sites), s(new), Value::Num(1)], s(&want));
    }
    let attributes = ["", "required", "not-required", " Not-Required\u{a0}", "x"];
    for gpc in [false, true] {
        for explicit in [None, Some(false), Some(true)] {
            for tcf in [None, Some(false), Some(true)] {
                for gcm in [None, Some(false), Some(true)] {
                    for attribute in attributes {
                        let signals = Signals {
                            gpc,
                            explicit,
                            tcf,
                            gcm,
                            not_required: consent::attribute_waives_consent(Some(attribute)),
                        };
                        let want = match signals.resolve() {
                            Consent::Pending => 0,
                            Consent::Granted => 1,
                            Consent::Denied => 2,
                        };
                        let args = vec![Value::Num(i64::from(gpc)), Value::Num(tri(explicit)), Value::Num(tri(tcf)), Value::Num(tri(gcm)), s(attribute)];
                        cases.add("consent_state", args, Value::Num(want));
                    }
                }
            }
        }
    }
    for success in [false, true] {
        for applies in [None, Some(false), Some(true)] {
            for status in ["tcloaded", "useractioncomplete", "cmpuishown", ""] {
                for purpose in [None, Some(false), Some(true)] {
                    let want = tri(consent::tcf_decision(success, applies, status, purpose));
                    let args = vec![Value::Num(i64::from(success)), Value::Num(tri(applies)), s(status), Value::Num(tri(purpose))];
                    cases.add("tcf_decision", args, Value::Num(want));
                }
            }
        }
    }
    for command in ["consent", "config", ""] {
        for action in ["default", "update", "other"] {
            for storage in ["granted", "denied", "", "x"] {
                let want = tri(consent::gcm_decision(command, action, Some(storage).filter(|v| !v.is_empty())));
                cases.add("gcm_decision", vec![s(command), s(action), s(storage)], Value::Num(want));
            }
        }
    }
    cases.0.push(']');
    cases
}

/// Runs each case through rp.wasm the way rp.js calls it (js/rp.js `call` and `str`).
const RUNNER: &str = r#"
const fs = require("fs");
const [wasmPath, casesPath] = process.argv.slice(2);
WebAssembly.instantiate(fs.readFileSync(wasmPath)).then(({ instance }) => {
  const X = instance.exports, utf8 = new TextEncoder(), unutf8 = new TextDecoder();
  const call = (f, args) => {
    X.r();
    return X[f](...args.flatMap((v) => {
      if (typeof v != "string") return [v];
      const b = utf8.encode(v), p = X.a(b.length);
      new Uint8Array(X.memory.buffer).set(b, p);
      return [p, b.length];
    }));
  };
  const str = (p) => {
    const m = X.memory.buffer, at = new Uint32Array(m, p, 2);
    return unutf8.decode(new Uint8Array(m, at[0], at[1]));
  };
  // Each export's one-letter name (src/exports.rs).
  const EXPORTS = { consent_state: "c", tcf_decision: "t", gcm_decision: "g", strip_url: "u", visit_kind: "k", first_match: "m", swap: "s" };
  const cases = JSON.parse(fs.readFileSync(casesPath, "utf8"));
  let bad = 0;
  for (const c of cases) {
    const r = call(EXPORTS[c.f], c.args), got = typeof c.want == "string" ? str(r) : r;
    if (got !== c.want && bad++ < 5) console.log("MISMATCH", JSON.stringify(c), "got", JSON.stringify(got));
  }
  console.log(`${cases.length} cases, ${bad} mismatches, memory ${X.memory.buffer.byteLength} bytes`);
  process.exit(bad ? 1 : 0);
});
"#;

#[test]
fn the_built_wasm_answers_every_export_like_the_native_code() {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/rp.wasm");
    // infra/test builds pkg/ first; a missing build or node is a failure, not a skip.
    assert!(wasm.exists(), "{} not built: run tracker-wasm/build.sh", wasm.display());
    assert!(Command::new("node").arg("--version").output().is_ok(), "node not found");
    let dir = std::env::temp_dir().join(format!("rp-wasm-agrees-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = generate();
    std::fs::write(dir.join("cases.json"), &cases.0).unwrap();
    std::fs::write(dir.join("run.js"), RUNNER).unwrap();
    let out = Command::new("node").arg(dir.join("run.js")).arg(&wasm).arg(dir.join("cases.json")).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rp.wasm disagrees with the native code:\n{stdout}");
}
