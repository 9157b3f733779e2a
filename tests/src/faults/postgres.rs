//! A PostgreSQL cluster of one test's own (`initdb` into a scratch
//! directory, trust authentication, its own port and socket directory), so
//! a test can stop and restart it without touching the machine's cluster.
//!
//! PostgreSQL refuses to run as root; as root the tools run as the
//! `postgres` user through `runuser`, on a directory chowned to it.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use super::scratch;
use crate::binary::free_port;

/// One running cluster; stopped and removed on drop.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    tls: bool,
}

/// The newest server binaries installed the Debian way, else `PATH`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_default()
}

fn is_root() -> bool {
    StdCommand::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Creates and starts a cluster.
    pub async fn start() -> Self {
        Self::start_with_tls(None).await
    }

    /// A cluster with `ssl = on` serving this certificate and key (PEM).
    pub async fn start_with_tls(tls: Option<&crate::tls::ServerCert>) -> Self {
        let dir = scratch::new_dir("postgres");
        let cluster = Self {
            dir,
            port: free_port(),
            bin: bin_dir(),
            tls: tls.is_some(),
        };
        if is_root() {
            let status = StdCommand::new("chown")
                .args(["-R", "postgres:", &cluster.dir.to_string_lossy()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data = cluster.data();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .await;
        if let Some(tls) = tls {
            // The server reads them from its data directory, owned by it,
            // the key readable by nobody else.
            let data = cluster.dir.join("data");
            std::fs::write(data.join("server.crt"), &tls.cert_pem).expect("server.crt");
            std::fs::write(data.join("server.key"), &tls.key_pem).expect("server.key");
            if is_root() {
                let _ = StdCommand::new("chown")
                    .args(["postgres:", "server.crt", "server.key"])
                    .current_dir(&data)
                    .status();
            }
            let _ = StdCommand::new("chmod")
                .args(["600", "server.key"])
                .current_dir(&data)
                .status();
        }
        cluster.resume().await;
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Runs one of the server's tools, as `postgres` when we are root.
    fn command(&self, tool: &str, args: &[&str]) -> tokio::process::Command {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            tokio::process::Command::new(&program)
        };
        command.args(args);
        command
    }

    async fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool, args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {tool} (is PostgreSQL installed?): {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server (again) on the same port and waits until it accepts.
    pub async fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60{}",
            self.port,
            self.dir.to_string_lossy(),
            if self.tls {
                " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
            } else {
                ""
            }
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
        .await;
        if let Some(pid) = postmaster_pid(&self.dir.join("data")) {
            scratch::record_server_pid(&self.dir, pid);
        }
    }

    /// Stops the server (fast shutdown: sessions are cut, as in an outage).
    pub async fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .await;
    }

    /// `postgres://` URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// `postgres://` URL of database `name` over TLS, verifying the server
    /// by name against the CA in `root_cert`.
    pub fn tls_url(&self, name: &str, root_cert: &Path) -> String {
        format!(
            "postgres://postgres@localhost:{}/{name}?sslmode=verify-full&sslrootcert={}",
            self.port,
            root_cert.display()
        )
    }

    /// Creates database `name`.
    pub async fn create_database(&self, name: &str) {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .expect("create database");
    }
}

fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate: nothing in a test cluster is worth a checkpoint.
        let _ = self
            .command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .as_std_mut()
            .output();
        scratch::destroy(&self.dir);
    }
}
