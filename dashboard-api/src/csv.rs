//! Answer rows → CSV (RFC 4180) for `Accept: text/csv`. The columns are the
//! row type's documented fields, in their order (its OpenAPI schema), and the
//! cells its JSON values: a list of strings is one cell, its items joined by
//! `|` (`email|paid_search`); other nested values are written as their JSON
//! text. No IO.

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// The CSV columns of rows of type `R`: the properties its schema documents.
pub fn columns<R: ToSchema>() -> Vec<String> {
    match R::schema() {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `rows` as CSV with the columns of `R`.
pub fn table<R: Serialize + ToSchema>(rows: &[R]) -> String {
    let columns = columns::<R>();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let values: Vec<Value> = rows.iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect();
    to_csv(&names, &values)
}

fn cell(v: &Value) -> String {
    let raw = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    };
    // Defuse spreadsheet formulas in attacker-controlled strings (URLs, titles).
    // A leading TAB or CR also starts a formula in some spreadsheets.
    let raw = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) && raw.parse::<f64>().is_err() { format!("'{raw}") } else { raw };
    if raw.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw
    }
}

/// A header line of `columns`, then one line per row (missing fields empty).
/// The header is there even without rows, so an empty report is still a table.
pub fn to_csv(columns: &[&str], rows: &[Value]) -> String {
    let mut out = columns.iter().map(|c| cell(&Value::String((*c).to_owned()))).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for row in rows {
        let line = columns.iter().map(|c| cell(row.get(*c).unwrap_or(&Value::Null))).collect::<Vec<_>>().join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_escapes_and_defuses_formulas() {
        let rows = vec![json!({"key": "a,b", "n": 1}), json!({"key": "=cmd()", "n": -2}), json!({"key": "say \"hi\"", "n": null})];
        assert_eq!(to_csv(&["key", "n"], &rows), "key,n\r\n\"a,b\",1\r\n'=cmd(),-2\r\n\"say \"\"hi\"\"\",\r\n");
    }

    #[test]
    fn a_leading_tab_or_carriage_return_is_defused_too() {
        let rows = vec![json!({"k": "\t=1+1"}), json!({"k": "\r=HYPERLINK(\"x\")"})];
        assert_eq!(to_csv(&["k"], &rows), "k\r\n'\t=1+1\r\n\"'\r=HYPERLINK(\"\"x\"\")\"\r\n");
    }

    #[test]
    fn tables_have_the_row_types_columns_in_order_even_when_empty() {
        use crate::answers::{AttributionRow, Call, PageEvent, Point};
        use clickhouse::Row;
        use ringpath_store::rows::CallRow;
        assert_eq!(table::<AttributionRow>(&[]), "key,sessions,visitors,calls,conversion_rate\r\n");
        assert_eq!(table::<Point>(&[]), "t,t_ms,value\r\n");
        assert_eq!(table::<PageEvent>(&[]), "event_id,event_type,ts,ts_ms,session_id,url,title,number\r\n");
        let stored: Vec<&str> = CallRow::COLUMN_NAMES.iter().copied().filter(|c| !["version", "received_at"].contains(c)).collect();
        assert_eq!(columns::<Call>(), stored, "a call's columns in the stored order");
        let row = AttributionRow { key: "=1+1".into(), sessions: 2, visitors: 1, calls: 1.0, conversion_rate: 0.5 };
        assert_eq!(table(&[row]), "key,sessions,visitors,calls,conversion_rate\r\n'=1+1,2,1,1.0,0.5\r\n");
    }

    #[test]
    fn lists_of_strings_are_one_cell_joined_by_a_bar() {
        let rows = vec![json!({"touches": ["email", "paid_search"], "none": [], "mixed": [1, "a"]})];
        assert_eq!(to_csv(&["touches", "none", "mixed"], &rows), "touches,none,mixed\r\nemail|paid_search,,\"[1,\"\"a\"\"]\"\r\n");
    }
}
