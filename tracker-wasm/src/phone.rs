//! Finds a site's phone numbers in page text, in whatever form they are
//! written (`(555) 010-0000`, `+1-555-010-0000`, `020 7946 0000`,
//! `+44 (0)20 7946 0000`, `0044 20…`, …), and writes the tracking number in
//! the same form: same prefix, same separators, same grouping. Also rewrites
//! `tel:` link targets. Pure text in, text out; walking the DOM is the
//! caller's job. It does not validate numbering plans beyond the country code.

use ringpath_types::url::{split_byte, split_once_byte, trim};

/// An E.164 number: ASCII digits (country code + national significant
/// number) and the length of the country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number<'a> {
    digits: &'a str,
    cc_len: usize,
}

/// Two-digit country codes (ITU-T E.164); `1` and `7` are the one-digit ones,
/// every other code has three digits.
const TWO_DIGIT_CODES: &[u8] = &[
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62,
    63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];

fn country_code_len(digits: &str) -> usize {
    match digits.as_bytes() {
        [b'1' | b'7', ..] => 1,
        [a, b, ..] if TWO_DIGIT_CODES.iter().any(|&code| code == (a - b'0') * 10 + (b - b'0')) => 2,
        _ => 3,
    }
}

impl<'a> Number<'a> {
    /// Reads `+<digits>` (7–15 digits, no leading zero); `None` otherwise.
    pub fn parse(e164: &'a str) -> Option<Number<'a>> {
        let digits = trim(e164).strip_prefix('+')?;
        let valid = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        valid.then(|| Number { digits, cc_len: country_code_len(digits) })
    }

    fn cc(&self) -> &'a str {
        &self.digits[..self.cc_len]
    }

    fn nsn(&self) -> &'a str {
        &self.digits[self.cc_len..]
    }

    /// The national trunk prefix dialled before the NSN at home.
    fn trunk(&self) -> &'static str {
        match self.cc() {
            "1" => "1",
            "7" => "8",
            _ => "0",
        }
    }
}

/// The ways a number can be written, as digit sequences. Longest first, so
/// that at one position the fullest reading wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `0044 20 7946 0000`
    DoubleZero,
    /// `+44 (0)20 7946 0000` (only where the trunk prefix is 0)
    PlusTrunk,
    /// `+1 555 010 0000`, `+15550100000`, `1-555-010-0000`
    International,
    /// `020 7946 0000` (trunk prefix + NSN)
    Trunk,
    /// `555-010-0000`, `(555) 010-0000` (NSN alone)
    National,
}

const FORMS: [Form; 5] = [Form::DoubleZero, Form::PlusTrunk, Form::International, Form::Trunk, Form::National];

impl Form {
    fn is_national(self) -> bool {
        matches!(self, Form::Trunk | Form::National)
    }

    /// The digits of `n` written in this form; empty when the form does not apply.
    fn digits(self, n: &Number<'_>, out: &mut String) {
        out.clear();
        match self {
            Form::DoubleZero => out.push_str("00"),
            Form::PlusTrunk if n.trunk() != "0" => return,
            Form::Trunk => out.push_str(n.trunk()),
            _ => {}
        }
        if !self.is_national() {
            out.push_str(n.cc());
        }
        if self == Form::PlusTrunk {
            out.push('0');
        }
        out.push_str(n.nsn());
    }
}

/// Byte length of a separator that may sit between digits at the start of
/// `rest` (ASCII punctuation and spaces, no-break/thin spaces, Unicode
/// dashes and minus), or 0.
fn separator_len(rest: &[u8]) -> usize {
    match rest {
        [b' ' | b'-' | b'.' | b'(' | b')' | b'/', ..] => 1,
        [0xc2, 0xa0, ..] => 2,
        // U+2009–U+200B spaces, U+2010–U+2015 dashes, U+202F narrow no-break space
        [0xe2, 0x80, 0x89..=0x8b | 0x90..=0x95 | 0xaf, ..] => 3,
        // U+2212 minus sign
        [0xe2, 0x88, 0x92, ..] => 3,
        _ => 0,
    }
}

/// At most this many separators between two digits: `) ` or ` - `.
const MAX_GAP: u8 = 3;

/// The end of `digits` written from `start` with separators, or `None`.
fn match_at(text: &[u8], start: usize, digits: &str, allow_plus: bool) -> Option<usize> {
    let digits = digits.as_bytes();
    if digits.is_empty() {
        return None;
    }
    let mut i = start;
    if text[start] == b'+' {
        if !allow_plus {
            return None;
        }
        i += 1;
    }
    let mut matched = 0;
    let mut gap = 0;
    while matched < digits.len() {
        let byte = *text.get(i)?;
        if byte.is_ascii_digit() {
            if byte != digits[matched] {
                return None;
            }
            matched += 1;
            i += 1;
            gap = 0;
            continue;
        }
        let len = separator_len(&text[i..]);
        if len == 0 || gap == MAX_GAP {
            return None;
        }
        gap += 1;
        i += len;
    }
    (!continues_with_digits(&text[i..])).then_some(i)
}

/// A digit, or a joining `-`/`.`/`/` plus a digit, right after a candidate
/// means it is part of a longer number.
fn continues_with_digits(rest: &[u8]) -> bool {
    match rest {
        [d, ..] if d.is_ascii_digit() => true,
        [b'-' | b'.' | b'/', d, ..] => d.is_ascii_digit(),
        _ => false,
    }
}

/// Whether a number may begin at `start`: not in the middle of a longer
/// digit run or right after a `+` that belonged to another prefix.
fn can_start_at(text: &[u8], start: usize) -> bool {
    let first = text[start];
    if !(first.is_ascii_digit() || first == b'+' || first == b'(') {
        return false;
    }
    let after_joined_digit = match text[..start] {
        [.., p] if p.is_ascii_digit() || p == b'+' => true,
        [.., d, b'-' | b'.' | b'/'] => d.is_ascii_digit(),
        _ => false,
    };
    !after_joined_digit && !follows_foreign_prefix(&text[..start])
}

/// `+44 555 …`: digits after another international prefix are a different
/// country's number, not a national form of ours.
fn follows_foreign_prefix(before: &[u8]) -> bool {
    let run = before.iter().rev().take_while(|b| b.is_ascii_digit() || b" -.()/".iter().any(|s| s == *b)).count();
    run > 0 && before[..before.len() - run].last() == Some(&b'+')
}

/// Copies `template`, putting `digits` where the template has digits: same
/// length gives the same grouping; extra digits join the last group, and
/// missing ones shorten the tail.
fn fill(template: &str, digits: &str, out: &mut String) {
    let slots = template.bytes().filter(u8::is_ascii_digit).count();
    let mut rest = digits;
    let mut slot = 0;
    // Digits are ASCII, so the separator runs between them are whole chars.
    let mut run_start = 0;
    for (i, byte) in template.bytes().enumerate() {
        if byte.is_ascii_digit() {
            if !rest.is_empty() {
                out.push_str(&template[run_start..i]);
            }
            slot += 1;
            let take = if slot == slots { rest.len() } else { rest.len().min(1) };
            out.push_str(&rest[..take]);
            rest = &rest[take..];
            run_start = i + 1;
        }
    }
}

fn push_international(n: &Number<'_>, out: &mut String) {
    out.push('+');
    out.push_str(n.cc());
    out.push(' ');
    out.push_str(n.nsn());
}

/// Writes `new` as the matched text was written in `form`.
fn render(matched: &str, form: Form, target: &Number<'_>, new: &Number<'_>, out: &mut String) {
    if target.cc() != new.cc() && form != Form::DoubleZero {
        // Only `00<cc>` spells out the country; the other forms cannot express another country's number.
        push_international(new, out);
        return;
    }
    let mut digits = String::new();
    form.digits(new, &mut digits);
    fill(matched, &digits, out);
}

/// The first target matching at `start`: (end, form, target index).
fn match_any(text: &[u8], start: usize, targets: &[Number<'_>], scratch: &mut String) -> Option<(usize, Form, usize)> {
    for form in FORMS {
        for (index, target) in targets.iter().enumerate() {
            form.digits(target, scratch);
            let allow_plus = matches!(form, Form::International | Form::PlusTrunk);
            if let Some(end) = match_at(text, start, scratch, allow_plus) {
                return Some((end, form, index));
            }
        }
    }
    None
}

/// Replaces every written form of every `targets` number in `text` by `new`,
/// in the form found. `None` when nothing changed.
pub fn replace_in_text(text: &str, targets: &[Number<'_>], new: &Number<'_>) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let mut scratch = String::new();
    while i < bytes.len() {
        if can_start_at(bytes, i) {
            if let Some((end, form, index)) = match_any(bytes, i, targets, &mut scratch) {
                // Both ends sit on ASCII bytes, so they are char boundaries.
                out.push_str(&text[copied..i]);
                render(&text[i..end], form, &targets[index], new, &mut out);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    (out != text).then_some(out)
}

/// Rewrites a `tel:` URL that dials one of `targets` to dial `new` (E.164,
/// which every dialer understands); parameters after `;` are kept.
pub fn replace_in_tel_href(href: &str, targets: &[Number<'_>], new: &Number<'_>) -> Option<String> {
    let scheme = href.get(..4)?;
    if !scheme.eq_ignore_ascii_case("tel:") {
        return None;
    }
    let decoded = percent_decode_ascii(&href[4..]);
    let (number, params) = split_once_byte(&decoded, b';').map_or((decoded.as_str(), None), |(n, p)| (n, Some(p)));
    let number = trim(number);
    let bytes = number.as_bytes();
    if bytes.is_empty() || !can_start_at(bytes, 0) {
        return None;
    }
    let (end, _, _) = match_any(bytes, 0, targets, &mut String::new())?;
    if end != bytes.len() {
        return None;
    }
    let mut out = String::from("tel:+");
    out.push_str(new.digits);
    if let Some(p) = params {
        out.push(';');
        out.push_str(p);
    }
    (out != href).then_some(out)
}

/// Decodes `%XX` escapes of ASCII characters (what `tel:` hrefs use for `+`
/// and spaces); anything else is kept as written.
fn percent_decode_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // After each '%': two hex digits of an ASCII byte, or kept as written.
    for (i, piece) in split_byte(s, b'%').enumerate() {
        let hex = |byte: &u8| char::from(*byte).to_digit(16);
        let escape = match piece.as_bytes() {
            [high, low, ..] => hex(high).zip(hex(low)).map(|(h, l)| h * 16 + l).filter(|byte| *byte < 0x80),
            _ => None,
        };
        match escape {
            _ if i == 0 => out.push_str(piece),
            Some(byte) => {
                out.push(char::from(byte as u8));
                out.push_str(&piece[2..]);
            }
            None => {
                out.push_str("%");
                out.push_str(piece);
            }
        }
    }
    out
}

/// Parses a comma-separated list of E.164 numbers, skipping invalid entries.
pub fn parse_list(list: &str) -> Vec<Number<'_>> {
    split_byte(list, b',').filter_map(Number::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(text: &str, site: &str, new: &str) -> String {
        let targets = parse_list(site);
        let new = Number::parse(new).unwrap();
        replace_in_text(text, &targets, &new).unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn every_nanp_form_in_the_spec_is_swapped_in_the_same_form() {
        let cases = [
            ("(555) 010-0000", "(555) 010-9001"),
            ("555-010-0000", "555-010-9001"),
            ("555.010.0000", "555.010.9001"),
            ("555 010 0000", "555 010 9001"),
            ("5550100000", "5550109001"),
            ("+1 555 010 0000", "+1 555 010 9001"),
            ("+1-555-010-0000", "+1-555-010-9001"),
            ("1-555-010-0000", "1-555-010-9001"),
            ("+15550100000", "+15550109001"),
            ("+1 (555) 010-0000", "+1 (555) 010-9001"),
            ("1 (555) 010-0000", "1 (555) 010-9001"),
            ("555\u{a0}010\u{a0}0000", "555\u{a0}010\u{a0}9001"),
            ("555\u{2011}010\u{2011}0000", "555\u{2011}010\u{2011}9001"),
            ("555 – 010 – 0000", "555 – 010 – 9001"),
        ];
        for (written, want) in cases {
            assert_eq!(swap(written, "+15550100000", "+15550109001"), want, "{written}");
            let sentence = ["Call us at ", written, " today."].concat();
            assert_eq!(swap(&sentence, "+15550100000", "+15550109001"), ["Call us at ", want, " today."].concat());
        }
    }

    #[test]
    fn non_nanp_national_and_international_forms_are_swapped() {
        let uk = "+442079460000";
        let new = "+442079460123";
        let cases = [
            ("020 7946 0000", "020 7946 0123"),
            ("+44 20 7946 0000", "+44 20 7946 0123"),
            ("+44 (0)20 7946 0000", "+44 (0)20 7946 0123"),
            ("0044 20 7946 0000", "0044 20 7946 0123"),
            ("+442079460000", "+442079460123"),
            ("(020) 7946-0000", "(020) 7946-0123"),
        ];
        for (written, want) in cases {
            assert_eq!(swap(written, uk, new), want, "{written}");
        }
        assert_eq!(swap("030 12345678", "+493012345678", "+493087654321"), "030 87654321");
        assert_eq!(swap("+49 30 12345678", "+493012345678", "+493087654321"), "+49 30 87654321");
        assert_eq!(swap("01 23 45 67 89", "+33123456789", "+33198765432"), "01 98 76 54 32");
        assert_eq!(swap("+33 1 23 45 67 89", "+33123456789", "+33198765432"), "+33 1 98 76 54 32");
        assert_eq!(swap("06 1234 5678", "+390612345678", "+390687654321"), "06 8765 4321");
        assert_eq!(swap("8 (495) 123-45-67", "+74951234567", "+74957654321"), "8 (495) 765-43-21");
        assert_eq!(swap("(02) 9876 5432", "+61298765432", "+61212345678"), "(02) 1234 5678");
    }

    #[test]
    fn longer_digit_runs_and_other_numbers_are_left_alone() {
        for text in [
            "15550100000123",
            "order 95550100000",
            "555-010-00001",
            "555-010-0001",
            "2-555-010-0000",
            "555-010-0000-12",
            "ISBN 978-5550100000",
            "+44 555 010 0000",
            "55501000",
        ] {
            assert_eq!(swap(text, "+15550100000", "+15550109001"), text, "{text}");
        }
    }

    #[test]
    fn several_occurrences_and_several_site_numbers_are_all_swapped() {
        assert_eq!(
            swap("555-010-0000 or (555) 010-0000, fax 555-010-0001", "+15550100000", "+15550109001"),
            "555-010-9001 or (555) 010-9001, fax 555-010-0001"
        );
        assert_eq!(
            swap("Sales 555-010-0000 / Support 555.010.0002", "+15550100000,+15550100002", "+15550109001"),
            "Sales 555-010-9001 / Support 555.010.9001"
        );
        assert_eq!(swap("555-010-0000 555-010-0000", "+15550100000", "+15550109001"), "555-010-9001 555-010-9001");
    }

    #[test]
    fn a_number_of_another_length_or_country_is_written_sensibly() {
        assert_eq!(swap("030 1234567", "+49301234567", "+493012345678"), "030 12345678");
        assert_eq!(swap("030 12345678", "+493012345678", "+49301234567"), "030 1234567");
        assert_eq!(swap("(555) 010-0000", "+15550100000", "+442079460000"), "+44 2079460000");
    }

    #[test]
    fn tel_links_are_rewritten_to_e164_keeping_parameters() {
        let targets = parse_list("+15550100000");
        let new = Number::parse("+15550109001").unwrap();
        for href in ["tel:+15550100000", "tel:555-010-0000", "TEL:+1 (555) 010-0000", "tel:%2B1%20555%20010%200000", "tel:1-555-010-0000"] {
            assert_eq!(replace_in_tel_href(href, &targets, &new).as_deref(), Some("tel:+15550109001"), "{href}");
        }
        assert_eq!(replace_in_tel_href("tel:+15550100000;ext=12", &targets, &new).as_deref(), Some("tel:+15550109001;ext=12"));
        for href in ["tel:+15550100001", "mailto:x@y.z", "tel:", "tel:+155501000001", "https://x/tel:5550100000"] {
            assert_eq!(replace_in_tel_href(href, &targets, &new), None, "{href}");
        }
    }

    #[test]
    fn tel_escapes_of_ascii_characters_are_decoded_and_others_kept() {
        for (escaped, decoded) in [
            ("%2B1%20555", "+1 555"),
            ("%2b1", "+1"),
            ("%%41", "%A"),
            ("%4%41", "%4A"),
            ("%C3%A9", "%C3%A9"),
            ("%3B%3b", ";;"),
            ("%", "%"),
            ("%+1", "%+1"),
            ("a%7", "a%7"),
            ("%é1", "%é1"),
            ("", ""),
        ] {
            assert_eq!(percent_decode_ascii(escaped), decoded, "{escaped}");
        }
    }

    #[test]
    fn invalid_e164_input_is_rejected() {
        for bad in ["5550100000", "+0550100000", "+1555", "+1555010000012345", "+1 555 010 0000", ""] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
        assert_eq!(parse_list("+15550100000, junk,+442079460000").len(), 2);
    }

    #[test]
    fn country_codes_have_the_right_length() {
        for (number, cc) in [("+15550100000", "1"), ("+74951234567", "7"), ("+442079460000", "44"), ("+353123456789", "353"), ("+861012345678", "86")] {
            let n = Number::parse(number).unwrap();
            assert_eq!(n.cc(), cc, "{number}");
        }
    }

    /// A tiny deterministic generator, so the property tests need no crate.
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
        /// `n` digits, the first one 2–9 (as national numbers begin).
        fn digits(&mut self, n: usize) -> String {
            (0..n).map(|i| char::from(if i == 0 { b'2' + (self.next() % 8) as u8 } else { b'0' + (self.next() % 10) as u8 })).collect()
        }
    }

    /// Writes `digits` grouped by `groups` (sizes, last one takes the rest) with `sep`.
    fn grouped(digits: &str, groups: &[usize], sep: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (i, g) in groups.iter().enumerate() {
            if at >= digits.len() {
                break;
            }
            let end = if i + 1 == groups.len() { digits.len() } else { (at + g).min(digits.len()) };
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&digits[at..end]);
            at = end;
        }
        out
    }

    #[test]
    fn property_any_written_form_round_trips_to_the_same_form_of_the_new_number() {
        let countries = [("1", 10), ("44", 10), ("49", 10), ("33", 9), ("61", 9), ("34", 9), ("353", 9), ("7", 10), ("81", 10)];
        let separators = [" ", "-", ".", "\u{a0}", "/", " - ", "\u{2013}", ""];
        let groupings: [&[usize]; 4] = [&[3, 3, 4], &[2, 4, 4], &[3, 4], &[1, 2, 2, 2, 2]];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let (cc, nsn_len) = countries[rng.below(countries.len())];
            let nsn_site = rng.digits(nsn_len);
            let mut nsn_new = rng.digits(nsn_len);
            if nsn_new == nsn_site {
                nsn_new.replace_range(0..1, if &nsn_site[..1] == "9" { "8" } else { "9" });
            }
            let site = ["+", cc, &nsn_site].concat();
            let new = ["+", cc, &nsn_new].concat();
            let sep = separators[rng.below(separators.len())];
            let groups = groupings[rng.below(groupings.len())];
            let trunk = match cc {
                "1" => "1",
                "7" => "8",
                _ => "0",
            };
            // (written form of site, written form of new) for one prefix style.
            let style = rng.below(5);
            let write = |nsn: &str| -> String {
                let body = grouped(nsn, groups, sep);
                match style {
                    0 => body,
                    1 => [trunk, sep, &body].concat(),
                    2 => ["+", cc, if sep.is_empty() { "" } else { " " }, &body].concat(),
                    3 => ["00", cc, " ", &body].concat(),
                    _ => ["(", &nsn[..3], ") ", &grouped(&nsn[3..], groups, sep)].concat(),
                }
            };
            let (site_written, new_written) = (write(&nsn_site), write(&nsn_new));
            let prefix = ["Tel: ", "", "Call ", "(", "ring "][rng.below(5)];
            let suffix = [" now", "", ".", ")", ", thanks"][rng.below(5)];
            let text = [prefix, &site_written, suffix].concat();
            let got = swap(&text, &site, &new);
            assert_eq!(got, [prefix, &new_written, suffix].concat(), "site={site} new={new} text={text:?}");
            // And swapping back restores the page exactly.
            assert_eq!(swap(&got, &new, &site), text);
        }
    }

    #[test]
    fn property_text_without_the_number_is_never_changed() {
        let mut rng = Rng(42);
        let alphabet: Vec<char> = "0123456789 -.()+/\u{a0}abc:\n".chars().collect();
        let targets = parse_list("+15550100000");
        let new = Number::parse("+15550109001").unwrap();
        for _ in 0..20000 {
            let len = rng.below(30);
            let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            if digits.contains("5550100000") {
                continue;
            }
            assert_eq!(replace_in_text(&text, &targets, &new), None, "{text:?}");
        }
    }
}
