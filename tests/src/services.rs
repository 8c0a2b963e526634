//! Private Kafka and ClickHouse servers for tests that stop and restart a
//! service (durability, outages) without disturbing the shared ones other
//! tests use. Same binaries and config templates as infra/services.sh.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{free_port, repo_root};

fn cache_dir() -> PathBuf {
    std::env::var("RINGPATH_CACHE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/ringpath"))
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&crate::loopback(port), Duration::from_millis(200)).is_ok()
}

/// A single-node Apache Kafka (KRaft) with its own ports and data dir.
pub struct PrivateKafka {
    pub port: u16,
    controller_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateKafka {
    pub fn start() -> anyhow::Result<PrivateKafka> {
        let dir = std::env::temp_dir().join(format!("rp-kafka-{}", crate::unique_suffix()));
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::create_dir_all(dir.join("logs"))?;
        let mut k = PrivateKafka { port: free_port(), controller_port: free_port(), dir, child: None };
        let template = std::fs::read_to_string(repo_root().join("infra/kafka/server.properties.in"))?;
        let props = template
            .replace("@PORT@", &k.port.to_string())
            .replace("@CONTROLLER_PORT@", &k.controller_port.to_string())
            .replace("@DATA@", &k.dir.join("data").display().to_string());
        std::fs::write(k.dir.join("server.properties"), props)?;
        let cp = format!("{}/*", cache_dir().join("kafka-libs").display());
        let out = Command::new("java")
            .args(["-cp", &cp, "kafka.tools.StorageTool", "format", "-t", "rp-test-cluster-0000001", "-c"])
            .arg(k.dir.join("server.properties"))
            .output()
            .context("java (install: infra/install.sh)")?;
        if !out.status.success() {
            bail!("kafka storage format failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        k.resume()?;
        Ok(k)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same ports and data, waiting until it serves.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        let cp = format!("{}/*", cache_dir().join("kafka-libs").display());
        let log = std::fs::File::create(self.dir.join("logs/stdout.log"))?;
        let child = Command::new("java")
            .args(["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!("-Dkafka.logs.dir={}", self.dir.join("logs").display()))
            .arg(format!("-Dlog4j2.configurationFile={}", repo_root().join("infra/kafka/log4j2.properties").display()))
            .args(["-cp", &cp, "kafka.Kafka"])
            .arg(self.dir.join("server.properties"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        while !port_open(self.port) {
            if started.elapsed() > Duration::from_secs(90) {
                bail!("private kafka did not start; see {}", self.dir.join("logs").display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Kills the broker (SIGKILL: an outage, not a clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A ClickHouse server with its own ports and data dir.
pub struct PrivateClickHouse {
    pub http_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateClickHouse {
    pub fn start() -> anyhow::Result<PrivateClickHouse> {
        let dir = std::env::temp_dir().join(format!("rp-ch-{}", crate::unique_suffix()));
        for sub in ["data/log", "data/tmp", "conf"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let http_port = free_port();
        let tcp_port = free_port();
        let template = std::fs::read_to_string(repo_root().join("infra/clickhouse/config.xml.in"))?;
        let conf = template
            .replace("@DATA@", &dir.join("data").display().to_string())
            .replace("@CONF@", &dir.join("conf").display().to_string())
            .replace("@HTTP_PORT@", &http_port.to_string())
            .replace("@TCP_PORT@", &tcp_port.to_string());
        std::fs::write(dir.join("conf/config.xml"), conf)?;
        std::fs::copy(repo_root().join("infra/clickhouse/users.xml"), dir.join("conf/users.xml"))?;
        let mut ch = PrivateClickHouse { http_port, dir, child: None };
        ch.resume()?;
        Ok(ch)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.dir.join("stdout.log"))?;
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", self.dir.join("conf/config.xml").display()))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("clickhouse-server (install: infra/install.sh)")?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ok = std::net::TcpStream::connect_timeout(&crate::loopback(self.http_port), Duration::from_millis(200)).is_ok();
            if ok {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("private clickhouse did not start; see {}", self.dir.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server with its own port and data dir (append-only file on), for
/// tests that stop it, restart it, or bring it back empty.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> anyhow::Result<PrivateRedis> {
        let dir = std::env::temp_dir().join(format!("rp-redis-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        let mut r = PrivateRedis { port: free_port(), dir, child: None };
        r.resume()?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it again on the same port and data (what it wrote survives).
    pub fn resume(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server (install: infra/install.sh)")?;
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect_timeout(&crate::loopback(self.port), Duration::from_millis(200)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("private redis did not start on {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills it (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it and loses everything it held (a new, empty instance on the same port next).
    pub fn wipe(&mut self) -> anyhow::Result<()> {
        self.kill();
        std::fs::remove_dir_all(&self.dir)?;
        std::fs::create_dir_all(&self.dir)?;
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
