//! The functions rp.js calls, as plain wasm exports (no wasm-bindgen: its
//! glue cost ~1.9 KB gzip of rp.js for what a dozen lines do here). Thin:
//! each decodes its arguments and delegates to a pure module.
//!
//! The calling convention (`call` and `str` in js/rp.js):
//! - before each call rp.js calls `reset` (the heap is an arena, see
//!   `alloc`), then copies every string argument into memory from `arg` as
//!   UTF-8 and passes it as (pointer, byte length);
//! - a bool is 0/1, an `Option<bool>` is 0 = false, 1 = true, 2 = none;
//! - a string result is a pointer to its (pointer, byte length) pair, valid
//!   until the next `reset`;
//! - each export's name is one letter (`#[export_name]`), as rp.js calls it:
//!   the names are in rp.wasm and rp.js both, and do not compress.
//!
//! No state lives in wasm, so a browser callback can never re-enter
//! half-updated Rust state.
#![allow(unsafe_code)]

use crate::consent::{self, Consent, Signals};
use crate::{dni, phone, pii};

/// A string argument rp.js wrote at `ptr`.
fn text<'a>(ptr: *const u8, len: usize) -> &'a str {
    // SAFETY: rp.js passes a block it obtained from `arg` and filled with the
    // `len` bytes `TextEncoder.encode` gave it, which are always UTF-8 (lone
    // surrogates become U+FFFD); the block lives until the next `reset`,
    // after this call has returned. Validating again would cost 0.7 KB.
    unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr, len)) }
}

/// Hands a string to rp.js: it stays in the arena until the next `reset`.
fn give(s: String) -> *const [usize; 2] {
    let s = s.leak();
    Box::leak(Box::new([s.as_ptr() as usize, s.len()]))
}

fn tri(v: u32) -> Option<bool> {
    (v < 2).then_some(v == 1)
}

fn untri(v: Option<bool>) -> u32 {
    v.map_or(2, u32::from)
}

/// Empties the heap; every pointer rp.js got earlier is void.
#[export_name = "r"]
pub extern "C" fn reset() {
    // SAFETY: called by rp.js between export calls only, when no Rust value
    // is alive and rp.js has read every result it needs.
    unsafe { crate::HEAP.reset() }
}

/// `len` bytes for a string argument.
#[export_name = "a"]
pub extern "C" fn arg(len: usize) -> *mut u8 {
    let mut block = Vec::<u8>::with_capacity(len);
    let ptr = block.as_mut_ptr();
    core::mem::forget(block);
    ptr
}

/// Query/fragment parameters that look like personal data removed.
#[export_name = "u"]
pub extern "C" fn strip_url(url: *const u8, url_len: usize) -> *const [usize; 2] {
    give(pii::strip_url(text(url, url_len)))
}

/// 0 = pending, 1 = granted, 2 = denied. `attribute` is `data-consent` ("" when absent).
#[export_name = "c"]
pub extern "C" fn consent_state(gpc: u32, explicit: u32, tcf: u32, gcm: u32, attribute: *const u8, attribute_len: usize) -> u32 {
    let signals = Signals {
        gpc: gpc != 0,
        explicit: tri(explicit),
        tcf: tri(tcf),
        gcm: tri(gcm),
        not_required: consent::attribute_waives_consent(Some(text(attribute, attribute_len))),
    };
    match signals.resolve() {
        Consent::Pending => 0,
        Consent::Granted => 1,
        Consent::Denied => 2,
    }
}

/// A TCF v2 `tcData` answer as an `Option<bool>` (see `consent::tcf_decision`).
#[export_name = "t"]
pub extern "C" fn tcf_decision(success: u32, gdpr_applies: u32, event_status: *const u8, event_status_len: usize, purpose1: u32) -> u32 {
    untri(consent::tcf_decision(success != 0, tri(gdpr_applies), text(event_status, event_status_len), tri(purpose1)))
}

/// A Consent Mode command as an `Option<bool>`; `analytics_storage` is ""
/// when the command does not set it.
#[export_name = "g"]
pub extern "C" fn gcm_decision(
    command: *const u8,
    command_len: usize,
    action: *const u8,
    action_len: usize,
    analytics_storage: *const u8,
    analytics_storage_len: usize,
) -> u32 {
    let storage = Some(text(analytics_storage, analytics_storage_len)).filter(|s| !s.is_empty());
    untri(consent::gcm_decision(text(command, command_len), text(action, action_len), storage))
}

/// 0 = new source, 1 = direct, 2 = same-site navigation.
#[export_name = "k"]
pub extern "C" fn visit_kind(url: *const u8, url_len: usize, referrer: *const u8, referrer_len: usize) -> u32 {
    dni::visit_kind(text(url, url_len), text(referrer, referrer_len)) as u32
}

/// Index of the first matching rule, or -1.
#[export_name = "m"]
pub extern "C" fn first_match(url: *const u8, url_len: usize, referrer: *const u8, referrer_len: usize, rules: *const u8, rules_len: usize) -> i32 {
    dni::first_match(text(url, url_len), text(referrer, referrer_len), text(rules, rules_len)).map_or(-1, |i| i as i32)
}

/// `text` with every written form of the `targets` (comma-separated E.164)
/// replaced by `replacement`, or "" when nothing changed. With `tel`, `text`
/// is an href and a `tel:` target is rewritten.
#[export_name = "s"]
pub extern "C" fn swap(
    page_text: *const u8,
    page_text_len: usize,
    targets: *const u8,
    targets_len: usize,
    replacement: *const u8,
    replacement_len: usize,
    tel: u32,
) -> *const [usize; 2] {
    let page_text = text(page_text, page_text_len);
    let targets = phone::parse_list(text(targets, targets_len));
    let Some(new) = phone::Number::parse(text(replacement, replacement_len)) else { return give(String::new()) };
    let swapped = if tel != 0 {
        phone::replace_in_tel_href(page_text, &targets, &new)
    } else {
        phone::replace_in_text(page_text, &targets, &new)
    };
    give(swapped.unwrap_or_default())
}
