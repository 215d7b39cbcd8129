//! `rsp user create|list|disable|enable|set-password|reset-totp`: end users through the admin API. Passwords come
//! from standard input only, so they never appear in the process list or the shell history.

use std::io::BufRead;

use anyhow::{Context, bail};
use reqwest::Method;
use rsp_core::Secret;
use serde_json::{Value, json};

use super::admin::AdminClient;
use super::args::UserCommand;

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The first line of `input` without its line ending: a password may hold any other character,
/// spaces at either end included.
fn read_password(input: impl BufRead) -> anyhow::Result<Secret> {
    let mut line = String::new();
    let mut input = input;
    input.read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Secret::new(password))
}

fn stdin_password() -> anyhow::Result<Secret> {
    read_password(std::io::stdin().lock())
}

pub async fn user(command: UserCommand) -> anyhow::Result<Value> {
    match command {
        UserCommand::Create { tenant, username, password_stdin, connection } => {
            let mut body = json!({"username": username});
            if password_stdin && let Some(object) = body.as_object_mut() {
                object.insert("password".into(), json!(stdin_password()?.expose()));
            }
            let path = format!("/tenants/{}/users", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::POST, &path, Some(body)).await
        }
        UserCommand::List { tenant, cursor, limit, connection } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if let Some(cursor) = cursor {
                query.append_pair("cursor", &cursor);
            }
            query.append_pair("limit", &limit.to_string());
            let path = format!("/tenants/{}/users?{}", segment(&tenant), query.finish());
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        UserCommand::Disable { tenant, user_id, connection } => {
            set_disabled(&tenant, &user_id, true, &connection).await
        }
        UserCommand::Enable { tenant, user_id, connection } => {
            set_disabled(&tenant, &user_id, false, &connection).await
        }
        UserCommand::ResetTotp { tenant, user_id, connection } => {
            let path = format!("/tenants/{}/users/{}/totp", segment(&tenant), segment(&user_id));
            AdminClient::connect(&connection).await?.call(Method::DELETE, &path, None).await
        }
        UserCommand::SetPassword { tenant, user_id, password_stdin: _, connection } => {
            let body = json!({"password": stdin_password()?.expose()});
            let path = format!("/tenants/{}/users/{}/password", segment(&tenant), segment(&user_id));
            AdminClient::connect(&connection).await?.call(Method::POST, &path, Some(body)).await
        }
    }
}

async fn set_disabled(
    tenant: &str,
    user_id: &str,
    disabled: bool,
    connection: &super::args::Connection,
) -> anyhow::Result<Value> {
    let path = format!("/tenants/{}/users/{}", segment(tenant), segment(user_id));
    AdminClient::connect(connection).await?.call(Method::PATCH, &path, Some(json!({"disabled": disabled}))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let read = |text: &str| read_password(text.as_bytes()).map(|s| s.expose().to_owned());
        assert_eq!(read(" spaced pass \nsecond line\n").unwrap(), " spaced pass ");
        assert_eq!(read("windows-line\r\n").unwrap(), "windows-line");
        assert_eq!(read("no-newline").unwrap(), "no-newline");
        assert!(read("").is_err());
        assert!(read("\n").is_err());
    }
}
