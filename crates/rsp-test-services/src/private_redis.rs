//! [`PrivateRedis`]: a `redis-server` of the test's own, which it can stop and start as an outage.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::unavailable;

/// A `redis-server` on a free port, killed on drop. Durable ([`PrivateRedis::start`]: an append-only file
/// fsynced on every write, as a production Redis that must not lose the bus is configured, so a stop and a
/// start keep its data) or volatile ([`PrivateRedis::start_volatile`]: it comes back empty).
#[derive(Debug)]
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    durable: bool,
    dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// A durable one, or `None` (after [`unavailable`]) when `redis-server` cannot run here.
    pub fn start() -> Option<Self> {
        Self::start_with(true)
    }

    /// A volatile one, or `None` (after [`unavailable`]) when `redis-server` cannot run here.
    pub fn start_volatile() -> Option<Self> {
        Self::start_with(false)
    }

    fn start_with(durable: bool) -> Option<Self> {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => {
                unavailable("a temporary directory", error);
                return None;
            }
        };
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(address) => address.port(),
            Err(error) => {
                unavailable("a free port", error);
                return None;
            }
        };
        let mut redis = Self { child: None, port, durable, dir: dir.path().to_path_buf(), _dir: dir };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(error) => {
                unavailable("redis-server", error);
                None
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it as an operator does (SIGTERM: a durable one flushes its append-only file first), killing
    /// it if it has not exited within ten seconds.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port: with its data when durable, empty when volatile.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let persistence: &[&str] =
            if self.durable { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
