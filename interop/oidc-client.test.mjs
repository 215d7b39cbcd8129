// Interoperability test: panva's certified OpenID relying-party library (openid-client) and an
// independent JOSE implementation (jose) against a freshly started `rsp serve`.
//
// Run: `bash interop/run.sh`, or `node --test interop/` once `npm ci` has run in interop/.
// The server binary is $RSP_BIN, else $CARGO_TARGET_DIR/debug/rsp, else
// /root/.cache/rsp-target/debug/rsp, else target/debug/rsp under the repository root.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import * as client from 'openid-client';
import * as jose from 'jose';

import { adminRequest, discover as discoverClient } from './lib/admin.mjs';
import { startServer } from './lib/server.mjs';

const TENANT = 'default';

/** Decodes a JWT's protected header without verifying it. */
const headerOf = (jwt) => jose.decodeProtectedHeader(jwt);

async function fetchJwks(jwksUri) {
  const response = await fetch(jwksUri);
  assert.equal(response.status, 200, 'JWKS endpoint status');
  const body = await response.json();
  assert.ok(Array.isArray(body.keys), 'JWKS has a keys array');
  return body;
}

describe('rsp interoperability with openid-client and jose', () => {
  let server; // see lib/server.mjs
  let baseUrl;
  let admin; // contents of admin-client.json
  let issuer;
  let adminConfig; // openid-client Configuration for the admin client
  let adminToken;
  let created; // the client created through the admin API
  let config; // openid-client Configuration for that client
  let metadata; // discovered server metadata

  const verify = (token, jwks) =>
    jose.jwtVerify(token, jwks, { issuer, typ: 'at+jwt', algorithms: ['ES256'] });

  const discover = (clientId, clientSecret) => discoverClient(issuer, clientId, clientSecret);

  const adminCall = (method, pathname, body) => adminRequest(admin.admin_api, adminToken, method, pathname, body);

  before(async () => {
    server = await startServer({ tenant: TENANT });
    ({ baseUrl, admin, issuer } = server);
  });

  after(async () => {
    await server?.stop();
  });

  test('admin-client.json describes this server', () => {
    assert.equal(admin.issuer, issuer);
    assert.equal(admin.token_endpoint, `${issuer}/oauth2/token`);
    assert.equal(admin.admin_api, `${baseUrl}/admin/v1`);
  });

  test('openid-client discovery accepts the issuer metadata', async () => {
    adminConfig = await discover(admin.client_id, admin.client_secret);
    metadata = adminConfig.serverMetadata();
    assert.equal(metadata.issuer, issuer);
    assert.equal(metadata.token_endpoint, admin.token_endpoint);
    assert.equal(typeof metadata.jwks_uri, 'string');
    assert.equal(typeof metadata.introspection_endpoint, 'string');
    assert.equal(typeof metadata.revocation_endpoint, 'string');
  });

  test('admin client obtains an rsp:admin token and creates a client', async () => {
    const tokens = await client.clientCredentialsGrant(adminConfig, { scope: 'rsp:admin' });
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(tokens.token_type, 'bearer'); // openid-client lower-cases token_type
    adminToken = tokens.access_token;

    const response = await adminCall('POST', `/tenants/${TENANT}/clients`, {
      name: 'interop',
      grant_types: ['client_credentials'],
      scope: 'api:read api:write',
    });
    assert.equal(response.status, 201, `create client: ${response.text}`);
    created = response.json;
    assert.equal(typeof created.client_id, 'string');
    assert.equal(typeof created.client_secret, 'string');
  });

  let tokenA;
  let kid1;

  test('new client: client_credentials token verifies with jose', async () => {
    config = await discover(created.client_id, created.client_secret);
    assert.equal(config.serverMetadata().issuer, issuer);

    const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
    tokenA = tokens.access_token;
    assert.equal(typeof tokenA, 'string');
    assert.equal(tokens.scope, 'api:read');
    assert.equal(typeof tokens.expires_in, 'number');

    // jose accepts plain-http JWKS URLs; a fresh set is created per verification phase.
    const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
    const { payload, protectedHeader } = await verify(tokenA, jwks);
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(typeof protectedHeader.kid, 'string');
    kid1 = protectedHeader.kid;

    assert.equal(payload.iss, issuer);
    assert.equal(payload.sub, created.client_id);
    assert.equal(payload.client_id, created.client_id);
    assert.equal(payload.scope, 'api:read');
    assert.equal(typeof payload.aud, 'string');
    assert.equal(typeof payload.jti, 'string');
    assert.ok(payload.jti.length > 0);
    assert.equal(typeof payload.iat, 'number');
    assert.equal(typeof payload.exp, 'number');
    assert.ok(payload.exp > payload.iat, 'exp > iat');

    const set = await fetchJwks(metadata.jwks_uri);
    assert.equal(set.keys.length, 1, 'one signing key before rotation');
    assert.equal(set.keys[0].kid, kid1);
  });

  test('introspection and revocation through openid-client', async () => {
    const active = await client.tokenIntrospection(config, tokenA);
    assert.equal(active.active, true);
    assert.equal(active.client_id, created.client_id);
    assert.equal(active.scope, 'api:read');
    assert.equal(active.iss, issuer);

    await client.tokenRevocation(config, tokenA);

    const inactive = await client.tokenIntrospection(config, tokenA);
    assert.equal(inactive.active, false);

    const basic = Buffer.from(
      `${encodeURIComponent(created.client_id)}:${encodeURIComponent(created.client_secret)}`,
    ).toString('base64');
    const raw = await fetch(metadata.introspection_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ token: tokenA }),
    });
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await raw.text(), '{"active":false}');
  });

  test('key rotation keeps earlier tokens verifiable', async () => {
    // A live token minted before the rotation.
    const tokenB = (await client.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
    assert.equal(headerOf(tokenB).kid, kid1);

    const rotated = await adminCall('POST', `/tenants/${TENANT}/keys/rotate`);
    assert.equal(rotated.status, 200, `rotate keys: ${rotated.text}`);

    const set = await fetchJwks(metadata.jwks_uri);
    assert.equal(set.keys.length, 2, `two keys after rotation: ${JSON.stringify(set)}`);
    const kids = set.keys.map((k) => k.kid);
    assert.ok(kids.includes(kid1), 'old key still published');
    assert.equal(new Set(kids).size, 2, 'distinct kids');

    // Verify against the JWKS as published after rotation, both fetched remotely and as a local set.
    const remote = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
    const local = jose.createLocalJWKSet(set);
    for (const jwks of [remote, local]) {
      const { payload } = await verify(tokenB, jwks);
      assert.equal(payload.client_id, created.client_id);
    }
    assert.equal((await client.tokenIntrospection(config, tokenB)).active, true, 'old token still active');

    const tokenC = (await client.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
    const kid2 = headerOf(tokenC).kid;
    assert.notEqual(kid2, kid1, 'new token signed with the new key');
    assert.ok(kids.includes(kid2), 'new key is published');
    for (const jwks of [remote, local]) {
      const { payload, protectedHeader } = await verify(tokenC, jwks);
      assert.equal(protectedHeader.kid, kid2);
      assert.equal(payload.sub, created.client_id);
    }
    assert.equal((await client.tokenIntrospection(config, tokenC)).active, true, 'new token active');
  });
});
