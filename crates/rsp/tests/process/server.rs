//! Starting the real binary and reading its JSON logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rsp");

/// A running `rsp serve` child process and everything it has logged so far.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub ops_url: String,
    pub logs: Arc<Mutex<String>>,
}

impl Server {
    /// `rsp serve` in `dir` with only the listeners moved to free ports (and JSON logs at debug level,
    /// so the secret-leak check sees everything the server says).
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[], &[("RSP_LISTEN", "127.0.0.1:0".into()), ("RUST_LOG", "debug".into())])
    }

    /// `rsp serve ARGS` in `dir` with JSON logs, the ops listener on a free port and `env` on top (which
    /// may override both); waits for the "serving" log line and takes the addresses from it.
    pub fn start_with(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Server {
        let mut command = Command::new(BIN);
        command.arg("serve").args(args).current_dir(dir);
        command.env("RSP_OPS_LISTEN", "127.0.0.1:0").env("RSP_LOG_FORMAT", "json").env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let started = Instant::now();
        loop {
            let serving = logs
                .lock()
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "serving");
            if let Some(event) = serving {
                let url = event["public"].as_str().unwrap().to_owned();
                let ops_url = format!("http://{}", event["ops"].as_str().unwrap());
                return Server { child, url, ops_url, logs };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("rsp serve {args:?} exited ({status}): {}", logs.lock().unwrap());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "rsp serve {args:?} did not start: {}",
                logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(started.elapsed() < Duration::from_secs(20), "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `rsp` subcommand in `dir` and returns its stdout, asserting success.
pub fn rsp(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "rsp {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}
