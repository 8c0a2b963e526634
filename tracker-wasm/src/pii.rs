//! Removes query (and fragment) parameters that look like personal data from
//! URLs before they leave the browser: by name (email, phone, name, address,
//! …) and by value (an e-mail address or a phone number in any parameter that
//! is not a campaign or click-id parameter). Kept parameters keep their exact
//! original spelling and order. It does not touch the path.

use ringpath_types::url::{percent_decode, split_byte, split_once_byte, trim};

/// Parameter names (lower-cased, non-alphanumerics removed) that are personal
/// data wherever they appear inside a name. (Space-separated strings, not
/// arrays of `&str`: in rp.wasm an array costs 8 bytes of pointer per entry.)
const NAME_PARTS: &str = "email phone mobile telephone address firstname lastname fullname surname username street \
    postcode postalcode zipcode password passwd birth ssn creditcard cardnumber iban";

/// Whole words (between `_`, `-`, `.`, `[`, … or camelCase humps) that mark a parameter.
const NAME_WORDS: &str = "name fname lname tel mail zip addr dob pwd pass cell first last contact";

/// Parameters that carry attribution and are never personal data (any case).
fn is_campaign_param(name: &str) -> bool {
    let utm = name.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("utm_"));
    utm || ringpath_types::source::CLICK_ID_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Whether a parameter name looks like it carries personal data.
pub fn is_personal_name(name: &str) -> bool {
    let decoded = percent_decode(name);
    let bytes = decoded.as_bytes();
    if is_campaign_param(&decoded) {
        return false;
    }
    let mut compact = Vec::new();
    for byte in bytes {
        if byte.is_ascii_alphanumeric() {
            compact.push(byte.to_ascii_lowercase());
        }
    }
    if split_byte(NAME_PARTS, b' ').any(|part| compact.windows(part.len()).any(|w| w == part.as_bytes())) {
        return true;
    }
    // Words of `first_name`, `user-tel`, `contact[email]`, `firstName`.
    let mut start = 0;
    for i in 0..=bytes.len() {
        let at_end = i == bytes.len();
        let separator = !at_end && !bytes[i].is_ascii_alphanumeric();
        let hump = !at_end && i > 0 && bytes[i].is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase();
        if at_end || separator || hump {
            let word = &bytes[start..i];
            if split_byte(NAME_WORDS, b' ').any(|w| word.eq_ignore_ascii_case(w.as_bytes())) {
                return true;
            }
            start = if separator { i + 1 } else { i };
        }
    }
    false
}

/// Whether a parameter value is itself an e-mail address or a phone number.
pub fn is_personal_value(value: &str) -> bool {
    let decoded = percent_decode(value);
    let text = trim(&decoded);
    if let Some((local, domain)) = split_once_byte(text, b'@') {
        if !local.is_empty() && domain.bytes().any(|b| b == b'.') && !domain.starts_with('.') && !domain.ends_with('.') {
            return true;
        }
    }
    let bytes = text.as_bytes();
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let separators = bytes.iter().filter(|b| matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/')).count();
    let only_phone_chars = digits + separators + usize::from(bytes.first() == Some(&b'+')) == bytes.len();
    only_phone_chars && (7..=15).contains(&digits) && (bytes.first() == Some(&b'+') || separators > 0 || digits >= 10)
}

/// Drops personal-data parameters from the query and fragment of `url`.
pub fn strip_url(url: &str) -> String {
    let (before_fragment, fragment) = match split_once_byte(url, b'#') {
        Some((head, frag)) => (head, Some(frag)),
        None => (url, None),
    };
    let (base, query) = match split_once_byte(before_fragment, b'?') {
        Some((head, q)) => (head, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(base);
    if let Some(q) = query {
        let kept = filter_params(q);
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept);
        }
    }
    if let Some(frag) = fragment {
        // Fragments are usually anchors or client routes (`#/form?step=2`);
        // only their parameter-style part is filtered.
        let (route, params) = match split_once_byte(frag, b'?') {
            Some((route, params)) => (route, filter_params(params)),
            None if frag.bytes().any(|b| b == b'=') => ("", filter_params(frag)),
            None => (frag, String::new()),
        };
        if !route.is_empty() || !params.is_empty() {
            out.push('#');
            out.push_str(route);
        }
        if !params.is_empty() {
            if frag.bytes().any(|b| b == b'?') {
                out.push('?');
            }
            out.push_str(&params);
        }
    }
    out
}

fn filter_params(params: &str) -> String {
    let mut kept = String::with_capacity(params.len());
    for pair in split_byte(params, b'&').filter(|p| !p.is_empty()) {
        let (name, value) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
        let personal = is_personal_name(name) || (!is_campaign_param(name) && is_personal_value(value));
        if !personal {
            if !kept.is_empty() {
                kept.push('&');
            }
            kept.push_str(pair);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_parameters_are_removed_and_others_kept_in_order() {
        assert_eq!(
            strip_url("https://d.example/thanks?utm_source=google&email=a%40b.com&gclid=abc&first_name=Ann&plan=pro&phone=555-010-0000"),
            "https://d.example/thanks?utm_source=google&gclid=abc&plan=pro"
        );
    }

    #[test]
    fn url_without_remaining_parameters_loses_its_question_mark() {
        assert_eq!(strip_url("https://d.example/?email=a@b.co"), "https://d.example/");
        assert_eq!(strip_url("https://d.example/p?name=x#top"), "https://d.example/p#top");
    }

    #[test]
    fn names_are_recognised_in_many_spellings() {
        for name in [
            "email", "Email", "e-mail", "user_email", "contact[email]", "emailAddress", "mail", "phone", "phone_number",
            "tel", "Mobile", "name", "firstName", "last_name", "lname", "fullname", "address", "street", "zip", "postcode",
            "zip_code", "dob", "password", "user-name", "customer.name", "billing_address1", "contact",
        ] {
            assert!(is_personal_name(name), "{name}");
        }
        for name in ["utm_campaign", "utm_content", "hotel_id", "gclid", "page", "q", "ref", "lang", "sort", "category", "telemetry"] {
            assert!(!is_personal_name(name), "{name}");
        }
    }

    #[test]
    fn values_that_are_emails_or_phone_numbers_are_removed_under_any_name() {
        assert_eq!(strip_url("https://d.example/?q=ann%40example.org&x=1"), "https://d.example/?x=1");
        assert_eq!(strip_url("https://d.example/?who=%2B1%20555%20010%200000"), "https://d.example/");
        assert_eq!(strip_url("https://d.example/?ref=(555)%20010-0000"), "https://d.example/");
        assert_eq!(strip_url("https://d.example/?page=2&id=12345"), "https://d.example/?page=2&id=12345");
        assert_eq!(strip_url("https://d.example/?at=@home"), "https://d.example/?at=@home");
    }

    #[test]
    fn campaign_values_are_never_judged_by_value() {
        let url = "https://d.example/?utm_term=5550100000&gclid=12345678901";
        assert_eq!(strip_url(url), url);
    }

    #[test]
    fn parameter_style_fragments_are_filtered_too() {
        assert_eq!(strip_url("https://d.example/#/form?email=a@b.com&step=2"), "https://d.example/#/form?step=2");
        assert_eq!(strip_url("https://d.example/#section-2"), "https://d.example/#section-2");
    }

    #[test]
    fn urls_without_parameters_are_unchanged() {
        for url in ["https://d.example/", "https://d.example/a/b", "", "https://d.example/?", "https://d.example/?&"] {
            let expected = url.trim_end_matches(['?', '&']);
            assert_eq!(strip_url(url), expected, "{url}");
        }
    }
}
