//! `rsp audit list` and `rsp audit tail` against a running server, as an operator uses them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::server::{BIN, Server, rsp};

fn create_client(dir: &std::path::Path, name: &str) -> String {
    let args = ["client", "create", "--tenant", "default", "--name", name, "--grant-type", "client_credentials"];
    let created: Value = serde_json::from_str(&rsp(dir, &args)).unwrap();
    created["client_id"].as_str().unwrap().to_owned()
}

#[test]
fn audit_tail_follows_the_trail_live_and_list_pages_it() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let first = create_client(dir.path(), "first");

    // From the start of the trail: the admin client created at first start, then `first`.
    let args = ["audit", "tail", "--tenant", "default", "--kind", "client.created", "--after", "0", "--count", "2"];
    let lines: Vec<Value> = rsp(dir.path(), &args).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["subject"], first.as_str());
    assert!(lines[0]["seq"].as_u64() < lines[1]["seq"].as_u64(), "oldest first");

    // Live: a tail started now prints a change made after it started, and nothing older.
    let mut tail = Command::new(BIN)
        .args(["audit", "tail", "--tenant", "default", "--kind", "client.created", "--count", "1"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, received) = mpsc::channel();
    let stdout = BufReader::new(tail.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let second = create_client(dir.path(), "second");
    let line = received.recv_timeout(Duration::from_secs(20)).expect("tail printed nothing");
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["subject"], second.as_str(), "{record}");
    assert!(tail.wait().unwrap().success());

    let page: Value =
        serde_json::from_str(&rsp(dir.path(), &["audit", "list", "--tenant", "default", "--limit", "2"])).unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].as_u64().is_some(), "{page}");
}
