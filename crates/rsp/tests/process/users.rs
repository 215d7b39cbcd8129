//! `rsp user` against a running server, as an operator uses it: `reset-totp` for a lost device.

use serde_json::Value;

use crate::server::{BIN, Server, rsp};

#[test]
fn reset_totp_answers_with_the_user_and_an_unknown_user_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let created: Value =
        serde_json::from_str(&rsp(dir.path(), &["user", "create", "--tenant", "default", "--username", "ada"]))
            .unwrap();
    assert_eq!(created["totp_enabled"], false);
    let id = created["user_id"].as_str().unwrap();
    let reset: Value =
        serde_json::from_str(&rsp(dir.path(), &["user", "reset-totp", "--tenant", "default", id])).unwrap();
    assert_eq!((reset["user_id"].as_str(), reset["totp_enabled"].as_bool()), (Some(id), Some(false)));
    assert!(!reset.to_string().contains("secret"), "{reset}");

    let unknown = "0".repeat(32);
    let output = std::process::Command::new(BIN)
        .args(["user", "reset-totp", "--tenant", "default", &unknown])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "an unknown user is an error");
}
