//! The snippet files (`rp.js`, `rp.wasm`) held in memory with their ETag,
//! Subresource-Integrity hash and content-addressed version, and the script
//! tag that pins them. Loaded at start and on SIGHUP: the current build in the
//! assets dir, and earlier builds archived in its `v/{version}/` folders
//! (tracker-wasm/build.sh keeps every build there), so a page pinned to an
//! older build keeps working after a tracker deploy.
//!
//! Two URLs per file: `/rp.js` is "latest" (cached for minutes, whatever is
//! built now); `/v/{version}/rp.js` is one build forever (`immutable`), the
//! URL a tag with `integrity` must use. The version is the start of rp.js's
//! sha256, and rp.js carries rp.wasm's sha384 (tracker-wasm/build.sh), so one
//! version names one pair of files.

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

/// `Cache-Control` of `/rp.js` and `/rp.wasm`: a new build reaches pages within minutes.
pub const LATEST_CACHE_CONTROL: &str = "public, max-age=300, stale-while-revalidate=86400";
/// `Cache-Control` of `/v/{version}/…`: the bytes behind a version never change.
pub const PINNED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Hex digits of sha256(rp.js) in a version: 40 bits, ample for one collector's builds.
pub const VERSION_LEN: usize = 10;

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
    /// [`version_of`] rp.js; `None` when rp.js is missing.
    pub version: Option<String>,
    /// Earlier builds by version: (rp.js, rp.wasm), served only under `/v/{version}/`.
    pub archive: std::collections::HashMap<String, (Asset, Asset)>,
}

/// Which of the two snippet files a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    Js,
    Wasm,
}

impl File {
    /// From a request path: `…/rp.wasm` is the module, anything else the script.
    pub fn of_path(path: &str) -> File {
        if path.ends_with(".wasm") {
            File::Wasm
        } else {
            File::Js
        }
    }
}

/// Why `/v/{version}/…` has nothing to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinnedError {
    /// No build in the assets dir.
    NotBuilt,
    /// Another build than the one loaded (an old tag, or a typo).
    UnknownVersion { asked: String, current: String },
}

/// The version of a build: the first [`VERSION_LEN`] hex digits of sha256(rp.js).
pub fn version_of(js: &[u8]) -> String {
    let mut hex = hex::encode(Sha256::digest(js));
    hex.truncate(VERSION_LEN);
    hex
}

/// Earlier builds from `v/{version}/rp.js` + `rp.wasm` under `dir`. A folder
/// whose name is not its rp.js's version is skipped (logged): a version must
/// always mean the same bytes, or the pages pinned to it fail their integrity.
fn load_archive(dir: &Path) -> std::collections::HashMap<String, (Asset, Asset)> {
    let mut archive = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return archive };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (Ok(js), Ok(wasm)) = (std::fs::read(entry.path().join("rp.js")), std::fs::read(entry.path().join("rp.wasm"))) else {
            tracing::warn!(folder = %entry.path().display(), "archived snippet build without rp.js and rp.wasm; skipped");
            continue;
        };
        let version = version_of(&js);
        if name != version {
            tracing::warn!(folder = %entry.path().display(), version, "archived snippet build is not in the folder of its version; skipped");
            continue;
        }
        archive.insert(version, (Asset::new(js, "text/javascript; charset=utf-8"), Asset::new(wasm, "application/wasm")));
    }
    archive
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
        let mut assets = Assets::new(read("rp.js", "text/javascript; charset=utf-8"), read("rp.wasm", "application/wasm"));
        assets.archive = load_archive(&dir.join("v"));
        assets
    }

    pub fn new(js: Option<Asset>, wasm: Option<Asset>) -> Assets {
        let version = js.as_ref().map(|a| version_of(&a.body));
        Assets { js, wasm, version, archive: Default::default() }
    }

    /// The current build's file, for `/rp.js` and `/rp.wasm`.
    pub fn latest(&self, file: File) -> Option<&Asset> {
        match file {
            File::Js => self.js.as_ref(),
            File::Wasm => self.wasm.as_ref(),
        }
    }

    /// The file of build `version`, for `/v/{version}/…`: the current build or an archived one.
    pub fn pinned(&self, version: &str, file: File) -> Result<&Asset, PinnedError> {
        let current = self.version.as_deref().ok_or(PinnedError::NotBuilt)?;
        if version == current {
            return self.latest(file).ok_or(PinnedError::NotBuilt);
        }
        match (self.archive.get(version), file) {
            (Some((js, _)), File::Js) => Ok(js),
            (Some((_, wasm)), File::Wasm) => Ok(wasm),
            // The path segment is the client's: bounded before it is echoed.
            (None, _) => Err(PinnedError::UnknownVersion { asked: version.chars().take(32).collect(), current: current.to_owned() }),
        }
    }

    /// The script tag that pins the current build: immutable URL plus SRI.
    /// `origin` is where pages load it from — the collector, or the site
    /// itself when it proxies `/v/*` and `/v1/*` to ingest. Refuses what
    /// would not make a working tag: no build, an account id that is not
    /// `[a-z0-9_]{3,64}`, an origin that is not `http(s)://host[:port]`.
    pub fn script_tag(&self, origin: &str, account: &str) -> Result<String, String> {
        let (Some(version), Some(js)) = (self.version.as_deref(), self.js.as_ref()) else {
            return Err("no rp.js to pin: build it with tracker-wasm/build.sh (or set RINGPATH_ASSETS_DIR)".into());
        };
        let id_ok = (3..=64).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            return Err(format!("account {account:?} must match [a-z0-9_]{{3,64}}"));
        }
        let origin = origin.strip_suffix('/').unwrap_or(origin);
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).unwrap_or("");
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !host_ok {
            return Err(format!("origin {origin:?} must look like https://host[:port]"));
        }
        Ok(format!(
            r#"<script async src="{origin}/v/{version}/rp.js" integrity="{integrity}" crossorigin="anonymous" data-account="{account}"></script>"#,
            integrity = js.integrity,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(js: &[u8], wasm: &[u8]) -> Assets {
        Assets::new(Some(Asset::new(js.to_vec(), "text/javascript")), Some(Asset::new(wasm.to_vec(), "application/wasm")))
    }

    #[test]
    fn earlier_builds_in_v_folders_are_served_by_their_version_and_misfiled_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("rp-archive-{}-{}", std::process::id(), version_of(b"unique")));
        let write = |sub: &str, js: &[u8], wasm: &[u8]| {
            let at = dir.join(sub);
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join("rp.js"), js).unwrap();
            std::fs::write(at.join("rp.wasm"), wasm).unwrap();
        };
        write("", b"/*! current */", b"\0asm current");
        write(&format!("v/{}", version_of(b"/*! old */")), b"/*! old */", b"\0asm old");
        // A folder named after one build holding another: never served under either name.
        write(&format!("v/{}", version_of(b"/*! named */")), b"/*! other bytes */", b"\0asm");
        std::fs::create_dir_all(dir.join("v/0000000000")).unwrap(); // empty: skipped
        let assets = Assets::load(&dir);
        let old = version_of(b"/*! old */");
        assert_eq!(&assets.pinned(&old, File::Js).unwrap().body[..], b"/*! old */");
        assert_eq!(&assets.pinned(&old, File::Wasm).unwrap().body[..], b"\0asm old");
        let current = version_of(b"/*! current */");
        assert_eq!(&assets.pinned(&current, File::Js).unwrap().body[..], b"/*! current */");
        for missing in [version_of(b"/*! named */"), version_of(b"/*! other bytes */"), "0000000000".to_owned()] {
            assert!(matches!(assets.pinned(&missing, File::Js), Err(PinnedError::UnknownVersion { .. })), "{missing}");
        }
        assert_eq!(assets.archive.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_version_is_the_start_of_the_scripts_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(version_of(b"abc"), "ba7816bf8f");
        assert_eq!(built(b"abc", b"\0asm").version.as_deref(), Some("ba7816bf8f"));
        assert_eq!(Assets::default().version, None);
    }

    #[test]
    fn the_integrity_is_the_sri_form_of_sha384() {
        // printf abc | openssl dgst -sha384 -binary | base64
        assert_eq!(Asset::new(b"abc".to_vec(), "text/javascript").integrity, "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn");
    }

    #[test]
    fn only_the_current_version_is_served_under_v() {
        let assets = built(b"abc", b"\0asm");
        assert_eq!(assets.pinned("ba7816bf8f", File::Js).map(|a| &a.body[..]), Ok(&b"abc"[..]));
        assert_eq!(assets.pinned("ba7816bf8f", File::Wasm).map(|a| &a.body[..]), Ok(&b"\0asm"[..]));
        let old = assets.pinned("0123456789", File::Js).unwrap_err();
        assert_eq!(old, PinnedError::UnknownVersion { asked: "0123456789".into(), current: "ba7816bf8f".into() });
        let PinnedError::UnknownVersion { asked, .. } = assets.pinned(&"x".repeat(5000), File::Js).unwrap_err() else { panic!("unknown version") };
        assert_eq!(asked.len(), 32, "a hostile path segment is not echoed whole");
        assert_eq!(Assets::default().pinned("ba7816bf8f", File::Js).unwrap_err(), PinnedError::NotBuilt);
    }

    #[test]
    fn the_tag_pins_the_versioned_url_with_its_integrity() {
        let assets = built(b"abc", b"\0asm");
        let tag = assets.script_tag("https://collect.example.com/", "acc_demo").unwrap();
        assert_eq!(
            tag,
            r#"<script async src="https://collect.example.com/v/ba7816bf8f/rp.js" integrity="sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn" crossorigin="anonymous" data-account="acc_demo"></script>"#
        );
        assert!(Assets::default().script_tag("https://c.example", "acc_demo").unwrap_err().contains("build.sh"));
    }

    #[test]
    fn the_tag_refuses_what_would_not_work_or_would_break_the_html() {
        let assets = built(b"abc", b"\0asm");
        assert!(assets.script_tag("http://127.0.0.1:8080", "acc_demo").is_ok());
        assert!(assets.script_tag("https://[::1]:8443", "acc_demo").is_ok());
        for origin in ["collect.example.com", "https://", "https://c.example/path", "https://c.example?x", "javascript:alert(1)", "https://c.example\"><script>"] {
            assert!(assets.script_tag(origin, "acc_demo").unwrap_err().contains("origin"), "{origin}");
        }
        for account in ["", "ab", "Acc_Demo", "acc-demo", "acc\"><x"] {
            assert!(assets.script_tag("https://c.example", account).unwrap_err().contains("account"), "{account}");
        }
    }

    #[test]
    fn a_request_path_names_its_file() {
        assert_eq!(File::of_path("/rp.wasm"), File::Wasm);
        assert_eq!(File::of_path("/v/ba7816bf8f/rp.wasm"), File::Wasm);
        assert_eq!(File::of_path("/v/ba7816bf8f/rp.js"), File::Js);
    }
}
