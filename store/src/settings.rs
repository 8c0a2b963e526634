//! Where ClickHouse is and who we are there. The password never shows in
//! `Debug`; the database name is checked once so it may be formatted into SQL.

/// The server, user and database one client talks to.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl std::fmt::Debug for ClickHouseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("database", &self.database)
            .finish()
    }
}

/// The one-machine defaults (`infra/up`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:18123";
pub const DEFAULT_DATABASE: &str = "ringpath";

impl ClickHouseSettings {
    /// Settings for `database` on `url` as `user`, the database name checked.
    pub fn new(url: &str, user: &str, password: &str, database: &str) -> Result<ClickHouseSettings, String> {
        check_database(database)?;
        Ok(ClickHouseSettings { url: url.to_owned(), user: user.to_owned(), password: password.to_owned(), database: database.to_owned() })
    }

    /// A client for this server. Validation is off: the schema check it does
    /// needs ClickHouse ≥ 24, and CI runs 18.16.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_database(&self.database)
            .with_validation(false)
    }

    /// The same server and user in another database (`default`, to create ours).
    pub fn in_database(&self, database: &str) -> ClickHouseSettings {
        ClickHouseSettings { database: database.to_owned(), ..self.clone() }
    }
}

impl ClickHouseSettings {
    /// From `RINGPATH_CLICKHOUSE_URL` / `_DATABASE` and the user and password
    /// variables the caller names (dashboard-api reads with its own user).
    pub fn from_env(env: &std::collections::HashMap<String, String>, user_key: &str, password_key: &str, default_user: &str) -> Result<ClickHouseSettings, String> {
        let get = |k: &str, d: &str| env.get(k).cloned().unwrap_or_else(|| d.to_owned());
        ClickHouseSettings::new(&get("RINGPATH_CLICKHOUSE_URL", DEFAULT_URL), &get(user_key, default_user), &get(password_key, ""), &get("RINGPATH_CLICKHOUSE_DATABASE", DEFAULT_DATABASE))
    }
}

/// A database name is formatted into SQL, so it must be an identifier.
pub fn check_database(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("database name {name:?} must be [A-Za-z0-9_]+"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked_and_the_database_checked() {
        let s = ClickHouseSettings::new(DEFAULT_URL, "writer", "hunter2", "ringpath").expect("valid");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(ClickHouseSettings::new(DEFAULT_URL, "w", "", "x; DROP").is_err());
        assert!(ClickHouseSettings::new(DEFAULT_URL, "w", "", "").is_err());
    }
}
