//! `GET /openapi.json`, generated from the route table and the parameter
//! enums the handlers validate with — not a hand-maintained document.

use serde_json::{json, Value};

use crate::params::{DIMENSIONS, INTERVALS, MAX_LIMIT, METRICS, MODELS};

pub struct Param {
    pub name: &'static str,
    pub location: &'static str,
    pub required: bool,
    pub schema: fn() -> Value,
    pub description: &'static str,
}

pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    pub success: u16,
    pub csv: bool,
    /// Name of the response schema in `components.schemas`.
    pub body: &'static str,
}

fn time_schema() -> Value {
    json!({"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "epoch milliseconds"}]})
}
fn string_schema() -> Value {
    json!({"type": "string"})
}
fn bool_schema() -> Value {
    json!({"type": "boolean", "default": false})
}
fn limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100})
}
fn dimension_schema() -> Value {
    json!({"type": "string", "enum": DIMENSIONS, "default": "channel"})
}
fn model_schema() -> Value {
    json!({"type": "string", "enum": MODELS, "default": "last_touch"})
}
fn interval_schema() -> Value {
    json!({"type": "string", "enum": INTERVALS, "default": "day"})
}
fn metric_schema() -> Value {
    json!({"type": "string", "enum": METRICS, "default": "pageviews"})
}

const ACCOUNT: Param = Param { name: "account", location: "path", required: true, schema: string_schema, description: "account id" };
const VISITOR: Param = Param { name: "visitor_id", location: "path", required: true, schema: string_schema, description: "the _rp_vid visitor id" };
const FROM: Param = Param { name: "from", location: "query", required: false, schema: time_schema, description: "start (inclusive); default to − 30 days (− 24 hours for interval=hour)" };
const TO: Param = Param { name: "to", location: "query", required: false, schema: time_schema, description: "end (exclusive); default now" };
const BOTS: Param = Param { name: "include_bots", location: "query", required: false, schema: bool_schema, description: "count bot traffic too" };

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/calls",
        summary: "Calls with their attribution, newest first, cursor-paginated",
        params: &[
            ACCOUNT,
            FROM,
            TO,
            Param { name: "limit", location: "query", required: false, schema: limit_schema, description: "page size" },
            Param { name: "cursor", location: "query", required: false, schema: string_schema, description: "next_cursor of the previous page" },
        ],
        success: 200,
        csv: true,
        body: "CallsPage",
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/attribution",
        summary: "Sessions and visitors that landed from each key, calls credited to it by the model, and conversion rate (calls per session)",
        params: &[
            ACCOUNT,
            FROM,
            TO,
            Param { name: "dimension", location: "query", required: false, schema: dimension_schema, description: "what to group by" },
            Param { name: "model", location: "query", required: false, schema: model_schema, description: "attribution model" },
            BOTS,
        ],
        success: 200,
        csv: true,
        body: "Attribution",
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/timeseries",
        summary: "A metric per hour or day in the account's time zone (UTC if none), zero-filled; sessions count where they landed",
        params: &[
            ACCOUNT,
            FROM,
            TO,
            Param { name: "interval", location: "query", required: false, schema: interval_schema, description: "bucket size" },
            Param { name: "metric", location: "query", required: false, schema: metric_schema, description: "what to count" },
            BOTS,
        ],
        success: 200,
        csv: true,
        body: "Timeseries",
    },
    Endpoint { method: "get", path: "/v1/accounts/{account}/visitors/{visitor_id}", summary: "A visitor's journey: sessions, pages, calls (as CSV: one line per page event)", params: &[ACCOUNT, VISITOR], success: 200, csv: true,
        body: "Journey" },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/visitors/{visitor_id}/export",
        summary: "Every stored row about the visitor (data subject access request)",
        params: &[ACCOUNT, VISITOR],
        success: 200,
        csv: false,
        body: "Export",
    },
    Endpoint {
        method: "delete",
        path: "/v1/accounts/{account}/visitors/{visitor_id}",
        summary: "Erase a visitor: afterwards no row holds their id, IPs or URLs; aggregate counts stay",
        params: &[ACCOUNT, VISITOR],
        success: 202,
        csv: false,
        body: "ErasureAccepted",
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/visitors/{visitor_id}/erasure",
        summary: "Erasure status: done when no row names the visitor",
        params: &[ACCOUNT, VISITOR],
        success: 200,
        csv: false,
        body: "ErasureStatus",
    },
    Endpoint {
        method: "get",
        path: "/v1/agencies/{agency}/accounts",
        summary: "Accounts an agency's credentials cover",
        params: &[Param { name: "agency", location: "path", required: true, schema: string_schema, description: "agency id" }],
        success: 200,
        csv: false,
        body: "AgencyAccounts",
    },
];

/// A JSON schema of a stored row, from the column list of its type.
fn row_schema(columns: &[&str], hidden: &[&str]) -> Value {
    let mut props = serde_json::Map::new();
    for c in columns.iter().filter(|c| !hidden.contains(c)) {
        let schema = if c.starts_with("linear_") {
            json!({"type": "array", "items": {"type": "string"}})
        } else if ["ts", "started_at", "ended_at", "assigned_at", "expires_at", "received_at"].contains(c) {
            json!({"type": "string", "format": "date-time", "description": "RFC 3339 (UTC, ms); the `_ms` field beside it is the same time in epoch ms"})
        } else if c.ends_with("_ms") || c.ends_with("_s") || *c == "shared" || *c == "is_bot" || *c == "ip_truncated" {
            json!({"type": "integer"})
        } else if *c == "latitude" || *c == "longitude" {
            json!({"type": "number"})
        } else {
            json!({"type": "string"})
        };
        props.insert((*c).to_owned(), schema);
    }
    json!({"type": "object", "properties": props})
}

fn schemas() -> Value {
    use clickhouse::Row;
    use ringpath_store::rows::{AssignmentRow, CallRow, EventRow, SessionRow};
    let r = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let list = |name: &str| json!({"type": "array", "items": r(name)});
    json!({
        "Error": {"type": "object", "properties": {"error": {"type": "string"}, "parameter": {"type": "string", "description": "the rejected parameter (400 only)"}}, "required": ["error"]},
        "Call": row_schema(CallRow::COLUMN_NAMES, &["version", "received_at"]),
        "Event": row_schema(EventRow::COLUMN_NAMES, &["version"]),
        "Assignment": row_schema(AssignmentRow::COLUMN_NAMES, &["version"]),
        "Session": row_schema(SessionRow::COLUMN_NAMES, &["rank"]),
        "CallsPage": {"type": "object", "properties": {"calls": list("Call"), "next_cursor": {"type": "string", "nullable": true}}},
        "AttributionRow": {"type": "object", "properties": {
            "key": {"type": "string", "description": "the dimension's value; \"(not set)\" when empty, \"(unattributed)\" for calls credited to nothing"},
            "sessions": {"type": "integer"}, "visitors": {"type": "integer"}, "calls": {"type": "number"}, "conversion_rate": {"type": "number"}}},
        "Attribution": {"type": "object", "properties": {"rows": list("AttributionRow"), "dimension": {"type": "string"}, "model": {"type": "string"},
                   "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}, "from_ms": {"type": "integer"}, "to_ms": {"type": "integer"}}},
        "Point": {"type": "object", "properties": {"t": {"type": "string", "format": "date-time", "description": "bucket start with the zone's offset"}, "t_ms": {"type": "integer"}, "value": {"type": "integer"}}},
        "Timeseries": {"type": "object", "properties": {"points": list("Point"), "metric": {"type": "string"}, "interval": {"type": "string"}, "timezone": {"type": "string"}, "total": {"type": "integer"},
                   "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}, "from_ms": {"type": "integer"}, "to_ms": {"type": "integer"}}},
        "Journey": {"type": "object", "properties": {"visitor_id": {"type": "string"}, "sessions": {"type": "array", "items": {"type": "object"}}, "pages": {"type": "array", "items": {"type": "object"}}, "calls": list("Call")}},
        "Export": {"type": "object", "properties": {"account": {"type": "string"}, "visitor_id": {"type": "string"}, "exported_at": {"type": "string", "format": "date-time"},
                   "events": list("Event"), "calls": list("Call"), "assignments": list("Assignment"), "sessions": list("Session")}},
        "ErasureAccepted": {"type": "object", "properties": {"status": {"type": "string", "enum": ["pending"]}, "status_url": {"type": "string"}}},
        "ErasureStatus": {"type": "object", "properties": {"status": {"type": "string", "enum": ["pending", "done"]}, "remaining_rows": {"type": "integer"}, "pending_mutations": {"type": "integer"}}},
        "AgencyAccounts": {"type": "object", "properties": {"agency": {"type": "string"}, "accounts": {"type": "array", "items": {"type": "object"}}}},
    })
}

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let params: Vec<Value> = e
            .params
            .iter()
            .map(|p| json!({"name": p.name, "in": p.location, "required": p.required, "schema": (p.schema)(), "description": p.description}))
            .collect();
        let mut content = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", e.body)}}});
        if e.csv {
            content["text/csv"] = json!({"schema": {"type": "string"}});
        }
        let op = json!({
            "summary": e.summary,
            "parameters": params,
            "security": [{"basic": []}],
            "responses": {
                e.success.to_string(): {"description": "success", "content": content},
                "400": {"description": "a parameter is invalid", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "missing or invalid credentials", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "404": {"description": "not covered by these credentials", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            }
        });
        let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        entry[e.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "ringpath dashboard API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Call attribution for analysts. Basic auth: account id or agency id, and its token."},
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": schemas()
        }
    })
}
