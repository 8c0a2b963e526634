//! The snippet files (`rp.js`, `rp.wasm`) held in memory with their ETag and
//! Subresource-Integrity hash. Loaded at start and on SIGHUP.

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

#[derive(Debug, Clone)]
pub struct Asset {
    pub body: actix_web::web::Bytes,
    pub content_type: &'static str,
    /// Strong ETag (quoted), from the content hash.
    pub etag: String,
    /// `sha384-…`, for `<script integrity>`.
    pub integrity: String,
}

#[derive(Debug, Clone, Default)]
pub struct Assets {
    pub js: Option<Asset>,
    pub wasm: Option<Asset>,
}

impl Asset {
    pub fn new(body: Vec<u8>, content_type: &'static str) -> Asset {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..12]));
        let integrity = format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body)));
        Asset { body: body.into(), content_type, etag, integrity }
    }
}

impl Assets {
    /// Reads `rp.js` and `rp.wasm` from `dir`; a missing file is logged and served as 404.
    pub fn load(dir: &Path) -> Assets {
        let read = |name: &str, ct: &'static str| match std::fs::read(dir.join(name)) {
            Ok(body) => Some(Asset::new(body, ct)),
            Err(e) => {
                tracing::warn!(file = %dir.join(name).display(), error = %e, "snippet asset missing; build it with tracker-wasm/build.sh");
                None
            }
        };
        Assets { js: read("rp.js", "text/javascript; charset=utf-8"), wasm: read("rp.wasm", "application/wasm") }
    }
}
