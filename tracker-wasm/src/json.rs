//! A minimal JSON writer and reader for the tracker's own wire documents
//! (batches out; DNI config and number answers in). It exists because
//! serde_json would double rp.wasm. Numbers are integers only (no float
//! parsing or printing code is linked); fractions and exponents are read but
//! truncated. Not a general-purpose JSON library.

/// Appends JSON text to a `String`; the caller keeps the structure valid.
#[derive(Default)]
pub struct Writer {
    pub out: String,
    /// Whether the next member/element needs a leading comma.
    need_comma: bool,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    fn comma(&mut self) {
        if self.need_comma {
            self.out.push(',');
        }
    }

    pub fn begin_object(&mut self) {
        self.comma();
        self.out.push('{');
        self.need_comma = false;
    }

    pub fn end_object(&mut self) {
        self.out.push('}');
        self.need_comma = true;
    }

    pub fn begin_array(&mut self) {
        self.comma();
        self.out.push('[');
        self.need_comma = false;
    }

    pub fn end_array(&mut self) {
        self.out.push(']');
        self.need_comma = true;
    }

    /// Writes `"name":`; the value written next belongs to it.
    pub fn key(&mut self, name: &str) {
        self.comma();
        push_string(&mut self.out, name);
        self.out.push(':');
        self.need_comma = false;
    }

    pub fn string(&mut self, value: &str) {
        self.comma();
        push_string(&mut self.out, value);
        self.need_comma = true;
    }

    pub fn int(&mut self, value: i64) {
        self.comma();
        push_int(&mut self.out, value);
        self.need_comma = true;
    }

    /// Writes already-serialised JSON (e.g. `JSON.stringify` output) verbatim.
    pub fn raw(&mut self, json: &str) {
        self.comma();
        self.out.push_str(json);
        self.need_comma = true;
    }

    pub fn field_str(&mut self, name: &str, value: &str) {
        self.key(name);
        self.string(value);
    }

    pub fn field_opt_str(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.field_str(name, v);
        }
    }

    pub fn field_int(&mut self, name: &str, value: i64) {
        self.key(name);
        self.int(value);
    }
}

/// Appends `value` as a quoted JSON string.
pub fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Other control characters, plus U+2028/2029 for old JS parsers.
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str("\\u");
                let code = c as u32;
                for shift in [12, 8, 4, 0] {
                    out.push(hex_digit(((code >> shift) & 0xf) as u8));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the decimal form of `value` (no `format!`, no fmt machinery).
pub fn push_int(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    let mut magnitude = value.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (magnitude % 10) as u8;
        len += 1;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    for d in digits[..len].iter().rev() {
        out.push(*d as char);
    }
}

pub fn hex_digit(nibble: u8) -> char {
    (if nibble < 10 { b'0' + nibble } else { b'a' + nibble - 10 }) as char
}

/// A parsed JSON value. Objects keep member order; numbers are integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }
}

/// Parses a complete JSON document; `None` on any syntax error or when
/// nesting exceeds a small depth (answers from the collector are shallow).
pub fn parse(text: &str) -> Option<Value> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0 };
    let value = parser.value(0)?;
    parser.skip_ws();
    (parser.pos == parser.bytes.len()).then_some(value)
}

const MAX_DEPTH: u32 = 16;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Some(Value::Object(members));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    members.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Value::Object(members));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Value::Str),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Value> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut magnitude: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            magnitude = magnitude.saturating_mul(10).saturating_add(i64::from(d - b'0'));
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        // Fraction and exponent are syntax-checked, then dropped.
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Some(Value::Int(if negative { -magnitude } else { magnitude }))
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        (self.pos > start).then_some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = char::from(self.peek()?).to_digit(16)?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Some(code)
    }

    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escape = self.peek()?;
                    self.pos += 1;
                    let decoded = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&high) && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                self.pos += 2;
                                let low = self.hex4()?;
                                0x10000 + ((high - 0xd800) << 10) + (low.checked_sub(0xdc00)? & 0x3ff)
                            } else {
                                high
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(byte),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_produces_valid_nested_json() {
        let mut w = Writer::new();
        w.begin_object();
        w.field_int("v", 1);
        w.field_str("s", "a\"b\\c\n\u{1}\u{2028}é");
        w.key("events");
        w.begin_array();
        w.begin_object();
        w.field_int("ts", -42);
        w.key("props");
        w.raw("{}");
        w.end_object();
        w.begin_object();
        w.end_object();
        w.end_array();
        w.field_opt_str("none", None);
        w.end_object();
        assert_eq!(w.out, r#"{"v":1,"s":"a\"b\\c\n\u0001\u2028é","events":[{"ts":-42,"props":{}},{}]}"#);
        assert!(parse(&w.out).is_some());
    }

    #[test]
    fn integers_print_at_the_extremes() {
        let mut s = String::new();
        push_int(&mut s, i64::MIN);
        s.push(' ');
        push_int(&mut s, 0);
        s.push(' ');
        push_int(&mut s, 1_764_374_400_000);
        assert_eq!(s, "-9223372036854775808 0 1764374400000");
    }

    #[test]
    fn parses_the_config_document() {
        let text = r#"{"account":"acc_demo","site_numbers":["+15550100000"],"hold_minutes":30,
            "pools":[{"id":"paid_search","when":{"medium":"cpc"}}],
            "sources":[{"when":{"channel":"organic_social"},"number":"+15550108001"}], "x": [1.5e3, null, true, false, -0]}"#;
        let v = parse(text).unwrap();
        assert_eq!(v.get("account").and_then(Value::as_str), Some("acc_demo"));
        assert_eq!(v.get("hold_minutes").and_then(Value::as_int), Some(30));
        assert_eq!(v.get("pools").unwrap().as_array().len(), 1);
        assert_eq!(v.get("x").unwrap().as_array()[0], Value::Int(1));
    }

    #[test]
    fn string_escapes_decode_including_surrogate_pairs() {
        assert_eq!(parse(r#""a\u00e9\ud83d\ude00\/\t""#), Some(Value::Str("aé😀/\t".into())));
    }

    #[test]
    fn malformed_documents_are_rejected() {
        for bad in ["", "{", "{\"a\"}", "[1,]", "{\"a\":1,}", "tru", "\"\n\"", "1 2", "\"\\x\"", "-", "1.", "{1:2}"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(parse(&deep), None);
    }
}
