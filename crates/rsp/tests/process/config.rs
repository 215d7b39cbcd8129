//! `rsp check-config`: layering (file < environment < flags) and redaction.

use std::process::Command;

use crate::server::BIN;

#[test]
fn check_config_layers_file_env_and_flags_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rsp.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7000\"\nops_listen = \"127.0.0.1:7001\"\naccess_token_ttl_secs = 300\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--config", file.to_str().unwrap(), "--ops-listen", "127.0.0.1:7003"])
        .env("RSP_LISTEN", "127.0.0.1:7002")
        .env("RSP_MASTER_KEY", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:7002\""), "environment beats the file: {text}");
    assert!(text.contains("ops_listen = \"127.0.0.1:7003\""), "flags beat the file: {text}");
    assert!(text.contains("access_token_ttl_secs = 300"), "the file beats the defaults: {text}");
    assert!(!text.contains("c2VjcmV0"), "the master key is printed: {text}");
    assert!(text.contains("[redacted]"));
}

#[test]
fn invalid_configuration_is_refused_with_a_reason() {
    for (key, value, reason) in [
        ("RSP_PUBLIC_URL", "http://id.example.com", "https"),
        ("RSP_ACCESS_TOKEN_TTL_SECS", "5", "access_token_ttl_secs"),
        ("RSP_LISTEN", "not-an-address", "LISTEN"),
    ] {
        let output = Command::new(BIN).arg("check-config").env(key, value).output().unwrap();
        assert!(!output.status.success(), "{key}={value} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{key}={value}: {stderr}");
    }
}
