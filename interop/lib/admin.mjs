// The admin API as the bootstrap admin client sees it: openid-client discovery for a client, and JSON
// requests carrying a bearer token obtained with the client_credentials grant.

import * as client from 'openid-client';

/** openid-client configuration for a confidential client of `issuer` (plain http: loopback only). */
export const discover = (issuer, clientId, clientSecret) =>
  client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), {
    execute: [client.allowInsecureRequests],
  });

/**
 * Sends one admin API request; the answer is `{ status, text, json }`. `token` is an `rsp:admin` access
 * token; `adminApi` is the `admin_api` field of `admin-client.json`.
 */
export async function adminRequest(adminApi, token, method, pathname, body) {
  const response = await fetch(`${adminApi}${pathname}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
}

/** An admin API caller for a started server (see `startServer`), with a fresh `rsp:admin` token. */
export async function adminClient(server) {
  const config = await discover(server.issuer, server.admin.client_id, server.admin.client_secret);
  const { access_token: token } = await client.clientCredentialsGrant(config, { scope: 'rsp:admin' });
  const call = (method, pathname, body) => adminRequest(server.admin.admin_api, token, method, pathname, body);
  /** Like `call`, but an answer other than `expected` is an error carrying the body. */
  const expect = async (expected, method, pathname, body) => {
    const answer = await call(method, pathname, body);
    if (answer.status !== expected) {
      throw new Error(`${method} ${pathname}: expected ${expected}, got ${answer.status}: ${answer.text}`);
    }
    return answer.json;
  };
  return { call, expect };
}
