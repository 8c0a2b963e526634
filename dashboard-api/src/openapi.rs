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
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/attribution",
        summary: "Sessions, visitors, calls and conversion rate by dimension and attribution model",
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
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/timeseries",
        summary: "A metric per hour or day (UTC), zero-filled",
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
    },
    Endpoint { method: "get", path: "/v1/accounts/{account}/visitors/{visitor_id}", summary: "A visitor's journey: sessions, pages, calls", params: &[ACCOUNT, VISITOR], success: 200, csv: false },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/visitors/{visitor_id}/export",
        summary: "Every stored row about the visitor (data subject access request)",
        params: &[ACCOUNT, VISITOR],
        success: 200,
        csv: false,
    },
    Endpoint {
        method: "delete",
        path: "/v1/accounts/{account}/visitors/{visitor_id}",
        summary: "Erase a visitor: afterwards no row holds their id, IPs or URLs; aggregate counts stay",
        params: &[ACCOUNT, VISITOR],
        success: 202,
        csv: false,
    },
    Endpoint {
        method: "get",
        path: "/v1/accounts/{account}/visitors/{visitor_id}/erasure",
        summary: "Erasure status: done when no row names the visitor",
        params: &[ACCOUNT, VISITOR],
        success: 200,
        csv: false,
    },
    Endpoint {
        method: "get",
        path: "/v1/agencies/{agency}/accounts",
        summary: "Accounts an agency's credentials cover",
        params: &[Param { name: "agency", location: "path", required: true, schema: string_schema, description: "agency id" }],
        success: 200,
        csv: false,
    },
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let params: Vec<Value> = e
            .params
            .iter()
            .map(|p| json!({"name": p.name, "in": p.location, "required": p.required, "schema": (p.schema)(), "description": p.description}))
            .collect();
        let mut content = json!({"application/json": {"schema": {"type": "object"}}});
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
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}
        }
    })
}
