//! The users admin API end to end: the lifecycle, pages, case-insensitive uniqueness, hostile input, and
//! that no response ever carries a password or its hash.

use reqwest::Method;
use rsp_testkit::{expect_status, spawn_app};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn no_password_material(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("horse") && !text.contains("argon2") && !text.contains("password_hash"), "{text}");
}

#[tokio::test]
async fn users_are_created_read_updated_paged_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .admin_call(Method::POST, "/tenants/default/users", Some(json!({"username": " Alice ", "password": PASSWORD})))
        .await;
    let alice = expect_status(created, 201).await;
    no_password_material(&alice);
    assert_eq!((alice["username"].as_str(), alice["has_password"].as_bool()), (Some("Alice"), Some(true)));
    let id = alice["user_id"].as_str().unwrap().to_owned();
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");

    let twin = app.admin_call(Method::POST, "/tenants/default/users", Some(json!({"username": "ALICE"}))).await;
    assert_eq!(expect_status(twin, 409).await["error"], "conflict");

    let path = format!("/tenants/default/users/{id}");
    let fetched = expect_status(app.admin_call(Method::GET, &path, None).await, 200).await;
    assert_eq!(fetched, alice);
    let disabled = app.admin_call(Method::PATCH, &path, Some(json!({"disabled": true, "username": "alice2"}))).await;
    let disabled = expect_status(disabled, 200).await;
    assert_eq!((disabled["disabled"].as_bool(), disabled["username"].as_str()), (Some(true), Some("alice2")));

    let password_path = format!("{path}/password");
    let reset = app.admin_call(Method::POST, &password_path, Some(json!({"password": "a new passphrase"}))).await;
    let reset = expect_status(reset, 200).await;
    no_password_material(&reset);
    assert!(reset["password_changed_at"].is_i64());

    for n in 0..4 {
        let body = json!({"username": format!("user{n}")});
        expect_status(app.admin_call(Method::POST, "/tenants/default/users", Some(body)).await, 201).await;
    }
    let first = expect_status(app.admin_call(Method::GET, "/tenants/default/users?limit=3", None).await, 200).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app.admin_call(Method::GET, &format!("/tenants/default/users?limit=3&cursor={cursor}"), None).await;
    let rest = expect_status(rest, 200).await;
    assert_eq!(first["users"].as_array().unwrap().len() + rest["users"].as_array().unwrap().len(), 5);
    assert!(rest["next_cursor"].is_null());

    expect_status(app.admin_call(Method::DELETE, &path, None).await, 204).await;
    expect_status(app.admin_call(Method::GET, &path, None).await, 404).await;
    expect_status(app.admin_call(Method::DELETE, &path, None).await, 404).await;
}

#[tokio::test]
async fn hostile_user_input_gets_typed_errors() {
    let app = spawn_app().await;
    let users = "/tenants/default/users";
    for bad in [
        json!({"username": ""}),
        json!({"username": "   "}),
        json!({"username": "a".repeat(129)}),
        json!({"username": "tab\tname"}),
        json!({"username": "bob", "password": "short"}),
        json!({"username": "bob", "password": "password1"}),
        json!({"username": "bob", "password": "x".repeat(1025)}),
        json!({"username": "bob", "password": 12345678}),
        json!({"username": "bob", "password_hash": "$argon2id$v=19$m=8,t=1,p=1$x$y"}),
        json!({"username": "bob", "disabled": true}),
    ] {
        let response = app.admin_call(Method::POST, users, Some(bad.clone())).await;
        assert_eq!(expect_status(response, 400).await["error"], "invalid_request", "{bad}");
    }
    // A body far beyond any valid username and password is refused while it is read.
    let token = app.admin_token().await;
    let huge = json!({"username": "bob", "password": "x".repeat(1024 * 1024)});
    let url = format!("{}/admin/v1{users}", app.url);
    let response = app.http.post(&url).bearer_auth(&token).json(&huge).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);

    for (method, path) in [
        (Method::GET, "/tenants/nope/users".to_owned()),
        (Method::POST, "/tenants/nope/users".to_owned()),
        (Method::GET, format!("/tenants/nope/users/{}", "a".repeat(32))),
        (Method::GET, "/tenants/default/users/not-an-id".to_owned()),
        (Method::GET, format!("/tenants/default/users/{}", "0".repeat(32))),
        (Method::POST, format!("/tenants/default/users/{}/password", "0".repeat(32))),
    ] {
        let body = (method == Method::POST).then(|| json!({"username": "bob", "password": PASSWORD}));
        let body = if path.ends_with("/password") { Some(json!({"password": PASSWORD})) } else { body };
        let response = app.admin_call(method.clone(), &path, body).await;
        assert_eq!(expect_status(response, 404).await["error"], "not_found", "{method} {path}");
    }
    for query in ["limit=0", "limit=201", "limit=x", "cursor=zz", "other=1"] {
        let response = app.admin_call(Method::GET, &format!("{users}?{query}"), None).await;
        assert_eq!(expect_status(response, 400).await["error"], "invalid_request", "{query}");
    }
}
