//! A failed ClickHouse operation, classed once for every caller: worth
//! retrying (the server is away, busy or slow) or never going to work for
//! these rows (a type, parse or schema error). The class goes by
//! ClickHouse's numeric error code (`Code: N` in its answer), never by the
//! wording of its message, which changes between releases.

/// What a caller should do about a failed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Connection refused or dropped, timeouts, too many parts, memory: retry with backoff.
    Retryable,
    /// The server refuses these rows or this statement and always will: do not retry.
    Permanent,
}

#[derive(Debug, thiserror::Error)]
#[error("clickhouse: {0}")]
pub struct StoreError(#[from] pub clickhouse::error::Error);

/// ClickHouse error codes that a retry cannot fix: the data or the statement
/// is wrong for the schema (names from ClickHouse's ErrorCodes.cpp).
const PERMANENT_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    16,  // NO_SUCH_COLUMN_IN_TABLE
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA (a row shorter than its columns)
    36,  // BAD_ARGUMENTS
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    43,  // ILLEGAL_TYPE_OF_ARGUMENT
    44,  // ILLEGAL_COLUMN
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a check in a view)
    469, // VIOLATED_CONSTRAINT
];

/// `TIMEOUT_EXCEEDED`: the server stopped a query at `max_execution_time`.
pub const TIMEOUT_EXCEEDED: u32 = 159;

impl StoreError {
    /// ClickHouse's error code, when the server answered with one.
    pub fn code(&self) -> Option<u32> {
        match &self.0 {
            clickhouse::error::Error::BadResponse(text) => code_in(text),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match &self.0 {
            clickhouse::error::Error::BadResponse(_) => match self.code() {
                Some(code) if PERMANENT_CODES.contains(&code) => ErrorClass::Permanent,
                // Unknown codes are retried: storing late beats dropping rows.
                _ => ErrorClass::Retryable,
            },
            // Our rows do not fit what the server sent or expects.
            clickhouse::error::Error::NotEnoughData
            | clickhouse::error::Error::SchemaMismatch(_)
            | clickhouse::error::Error::InvalidUtf8Encoding(_)
            | clickhouse::error::Error::SequenceMustHaveLength => ErrorClass::Permanent,
            _ => ErrorClass::Retryable,
        }
    }

    /// The server stopped the query at its time limit.
    pub fn is_timeout(&self) -> bool {
        self.code() == Some(TIMEOUT_EXCEEDED) || matches!(self.0, clickhouse::error::Error::TimedOut)
    }
}

/// The number after the first `Code: ` (18.16: `Code: 53, e.displayText() = …`;
/// current servers: `Code: 53. DB::Exception: …`).
fn code_in(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits: &str = &rest[..rest.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len())];
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> StoreError {
        StoreError(clickhouse::error::Error::BadResponse(text.to_owned()))
    }

    #[test]
    fn the_code_is_read_from_old_and_new_servers_answers() {
        assert_eq!(bad("Code: 53, e.displayText() = DB::Exception: Type mismatch in IN or VALUES section").code(), Some(53));
        assert_eq!(bad("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.8.1)").code(), Some(252));
        assert_eq!(bad("Code: 159").code(), Some(159));
        assert_eq!(bad("502 Bad Gateway").code(), None);
    }

    #[test]
    fn type_parse_and_schema_errors_are_permanent() {
        for text in [
            "Code: 53, e.displayText() = DB::Exception: Type mismatch",
            "Code: 6. DB::Exception: Cannot parse string 'abc' as UInt32",
            "Code: 16. DB::Exception: No such column version in table",
            "Code: 33, e.displayText() = DB::Exception: Cannot read all data",
            "Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero",
        ] {
            assert_eq!(bad(text).class(), ErrorClass::Permanent, "{text}");
        }
        assert_eq!(StoreError(clickhouse::error::Error::NotEnoughData).class(), ErrorClass::Permanent);
    }

    #[test]
    fn outages_timeouts_and_busy_servers_are_retried() {
        for text in [
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts",
            "Code: 159. DB::Exception: Timeout exceeded: elapsed 30.0 seconds",
            "Code: 241. DB::Exception: Memory limit (total) exceeded",
            "Code: 202. DB::Exception: Too many simultaneous queries",
            "Code: 999. Coordination::Exception: Connection loss",
            "503 Service Unavailable",
            "Code: 100000. something new",
        ] {
            assert_eq!(bad(text).class(), ErrorClass::Retryable, "{text}");
        }
        assert_eq!(StoreError(clickhouse::error::Error::TimedOut).class(), ErrorClass::Retryable);
        assert_eq!(StoreError(clickhouse::error::Error::Network("connection refused".into())).class(), ErrorClass::Retryable);
    }

    #[test]
    fn a_timeout_is_known_by_its_code() {
        assert!(bad("Code: 159, e.displayText() = DB::Exception: Timeout exceeded").is_timeout());
        assert!(!bad("Code: 241. Memory limit").is_timeout());
    }
}
