//! The functions rp.js calls. Thin: each converts wasm-bindgen types and
//! delegates to a pure module. No state lives in wasm, so a browser callback
//! can never re-enter half-updated Rust state.

use wasm_bindgen::prelude::*;

use crate::consent::{self, Consent, Signals};
use crate::{dni, phone, pii};

/// Query/fragment parameters that look like personal data removed.
#[wasm_bindgen]
pub fn strip_url(url: &str) -> String {
    pii::strip_url(url)
}

/// 0 = pending, 1 = granted, 2 = denied. `attribute` is `data-consent` ("" when absent).
#[wasm_bindgen]
pub fn consent_state(gpc: bool, explicit: Option<bool>, tcf: Option<bool>, gcm: Option<bool>, attribute: &str) -> u32 {
    let signals = Signals { gpc, explicit, tcf, gcm, not_required: consent::attribute_waives_consent(Some(attribute)) };
    match signals.resolve() {
        Consent::Pending => 0,
        Consent::Granted => 1,
        Consent::Denied => 2,
    }
}

#[wasm_bindgen]
pub fn tcf_decision(success: bool, gdpr_applies: Option<bool>, event_status: &str, purpose1: Option<bool>) -> Option<bool> {
    consent::tcf_decision(success, gdpr_applies, event_status, purpose1)
}

/// `analytics_storage` is "" when the command does not set it.
#[wasm_bindgen]
pub fn gcm_decision(command: &str, action: &str, analytics_storage: &str) -> Option<bool> {
    consent::gcm_decision(command, action, Some(analytics_storage).filter(|s| !s.is_empty()))
}

/// 0 = new source, 1 = direct, 2 = same-site navigation.
#[wasm_bindgen]
pub fn visit_kind(url: &str, referrer: &str) -> u32 {
    dni::visit_kind(url, referrer) as u32
}

/// Index of the first matching rule, or -1.
#[wasm_bindgen]
pub fn first_match(url: &str, referrer: &str, rules: &str) -> i32 {
    dni::first_match(url, referrer, rules).map_or(-1, |i| i as i32)
}

/// `text` with every written form of the `targets` (comma-separated E.164)
/// replaced by `replacement`, or "" when nothing changed. With `tel`, `text`
/// is an href and a `tel:` target is rewritten.
#[wasm_bindgen]
pub fn swap(text: &str, targets: &str, replacement: &str, tel: bool) -> String {
    let targets = phone::parse_list(targets);
    let Some(new) = phone::Number::parse(replacement) else { return String::new() };
    let swapped = if tel { phone::replace_in_tel_href(text, &targets, &new) } else { phone::replace_in_text(text, &targets, &new) };
    swapped.unwrap_or_default()
}
