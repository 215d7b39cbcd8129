//! A sweep of hostile inputs against the token, introspection and revocation endpoints (and the admin
//! API's body parsing): every answer is a 4xx in the RFC 6749 JSON shape, never a 5xx.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use rsp_testkit::{TestApp, spawn_app};
use serde_json::Value;

use crate::helpers::service_client;

fn bodies() -> Vec<Vec<u8>> {
    let mut many = String::from("grant_type=client_credentials");
    for i in 0..1500 {
        many.push_str(&format!("&p{i}=v"));
    }
    vec![
        Vec::new(),
        b"grant_type=client_credentials&token=%zz%".to_vec(),
        b"grant_type=client_credentials&token=\xff\xfe\x00".to_vec(),
        b"grant_type=\x00&token=\x00".to_vec(),
        b"&&&===&&".to_vec(),
        b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
        b"grant_type=client_credentials&scope=%22a%5Cb%22&resource=%00".to_vec(),
        b"grant_type=client_credentials&resource=http://[::1".to_vec(),
        format!("grant_type=client_credentials&token={}", "a.".repeat(5000)).into_bytes(),
        format!("grant_type=client_credentials&scope={}", "s ".repeat(3000)).into_bytes(),
        many.into_bytes(),
        vec![b'a'; 1024 * 1024],
        b"{\"grant_type\":\"client_credentials\"}".to_vec(),
    ]
}

fn authorizations(id: &str, secret: &str) -> Vec<Option<String>> {
    vec![
        None,
        Some("Basic".into()),
        Some("Basic !!!".into()),
        Some(format!("Basic {}", STANDARD.encode("no-colon"))),
        Some(format!("Basic {}", STANDARD.encode(":only-secret"))),
        Some(format!("Basic {}", STANDARD.encode(format!("{id}:{}", "x".repeat(10_000))))),
        Some(format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0xfd]))),
        Some(format!("Basic {}", STANDARD.encode(format!("{id}:%zz")))),
        Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))),
        Some("Bearer abc".into()),
        Some("Digest username=\"x\"".into()),
    ]
}

const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=ISO-8859-1"),
    Some("application/json"),
    Some("multipart/form-data; boundary=x"),
    None,
];

async fn assert_clean(app: &TestApp, response: reqwest::Response, context: &str) {
    let status = response.status();
    assert!(status.as_u16() < 500, "{context}: {status}");
    let text = response.text().await.unwrap();
    if status.is_success() {
        return;
    }
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{context}: non-JSON error {text}"));
    assert!(body["error"].is_string(), "{context}: {text}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.chars().all(|c| c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)),
        "{context}: description outside RFC 6749's character set: {description:?}"
    );
    let _ = app;
}

#[tokio::test]
async fn hostile_requests_to_the_oauth_endpoints_never_cause_a_server_error() {
    let app = spawn_app().await;
    let svc = service_client(&app, "default").await;
    let endpoints = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"];
    for endpoint in endpoints {
        let url = app.endpoint("default", endpoint);
        for (b, body) in bodies().into_iter().enumerate() {
            for (c, content_type) in CONTENT_TYPES.iter().enumerate() {
                for (a, authorization) in authorizations(&svc.id, &svc.secret).into_iter().enumerate() {
                    // The full cross product is large; sample it so every value meets every other.
                    if (b + c + a) % 3 != 0 && a != 8 {
                        continue;
                    }
                    let mut request = app.http.post(&url).body(body.clone());
                    if let Some(content_type) = content_type {
                        request = request.header("content-type", *content_type);
                    }
                    if let Some(authorization) = &authorization {
                        request = request.header("authorization", authorization);
                    }
                    let response = request.send().await.unwrap();
                    assert_clean(&app, response, &format!("{endpoint} body#{b} type#{c} auth#{a}")).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn hostile_paths_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let paths = [
        "/t/UPPER/oauth2/token",
        "/t/%00/oauth2/token",
        "/t/a%2Fb/oauth2/token",
        "/t/..%2F..%2Fetc/oauth2/token",
        &format!("/t/{}/oauth2/token", "a".repeat(5000)),
        "/t/nope/oauth2/token",
        "/t/default/oauth2/nothing",
        "/t/default/jwks.json/extra",
        "/.well-known/oauth-authorization-server/t/%ff",
    ];
    for path in paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let response = app
                .http
                .request(method.clone(), format!("{}{path}", app.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send()
                .await
                .unwrap();
            assert_clean(&app, response, &format!("{method} {path}")).await;
        }
    }
}

#[tokio::test]
async fn hostile_admin_bodies_get_json_errors() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"{\"id\":\"a\",\"name\":\"\\u0000\"}".to_vec(),
        b"{\"id\":\"a\",\"name\":\"x\x01y\"}".to_vec(),
        format!("{{\"id\":\"a\",\"name\":\"{}\"}}", "n".repeat(100_000)).into_bytes(),
        "[".repeat(10_000).into_bytes(),
        vec![0xff, 0xfe],
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        for path in ["/tenants", "/tenants/default/clients", "/tenants/default"] {
            let method = if path == "/tenants/default" { Method::PATCH } else { Method::POST };
            let response = app
                .http
                .request(method, format!("{}/admin/v1{path}", app.url))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "body#{i} {path}: {status}");
            assert_clean(&app, response, &format!("admin body#{i} {path}")).await;
        }
    }
}

#[tokio::test]
async fn hostile_decision_requests_get_json_errors() {
    let app = spawn_app().await;
    let pep =
        crate::helpers::client(&app, "default", serde_json::json!({"name": "pep", "scope": "rsp:authorize"})).await;
    let token = app.access_token("default", &pep.id, &pep.secret, &[("scope", "rsp:authorize")]).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"{\"principal\":\"User::\\\"a\",\"action\":\"Action::\\\"r\\\"\",\"resource\":\"D::\\\"x\\\"\"}".to_vec(),
        b"{\"principal\":{\"type\":\"\",\"id\":\"a\"},\"action\":{},\"resource\":null}".to_vec(),
        b"{\"principal\":\"User::\\\"a\\\"\",\"action\":\"Action::\\\"r\\\"\",\"resource\":\"D::\\\"x\\\"\",\"entities\":[{\"uid\":5}]}".to_vec(),
        b"{\"principal\":\"User::\\\"a\\\"\",\"action\":\"Action::\\\"r\\\"\",\"resource\":\"D::\\\"x\\\"\",\"context\":{\"a\":{\"__extn\":{\"fn\":\"ip\",\"arg\":\"x\"}}}}".to_vec(),
        b"{\"requests\":[1,2,3]}".to_vec(),
        b"{\"requests\":{}}".to_vec(),
        "[".repeat(10_000).into_bytes(),
        vec![0xff, 0xfe],
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        for path in ["/v1/authorize", "/v1/authorize/batch"] {
            let response = app
                .http
                .post(app.endpoint("default", path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_clean(&app, response, &format!("decision body#{i} {path}")).await;
        }
    }
}
