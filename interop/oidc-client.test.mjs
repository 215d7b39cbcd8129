// Interoperability test: panva's certified OpenID relying-party library (openid-client) and an
// independent JOSE implementation (jose) against a freshly started `rsp serve`.
//
// Run: `bash interop/run.sh`, or `node --test interop/` once `npm ci` has run in interop/.
// The server binary is $RSP_BIN, else $CARGO_TARGET_DIR/debug/rsp, else
// /root/.cache/rsp-target/debug/rsp, else target/debug/rsp under the repository root.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as client from 'openid-client';
import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const TENANT = 'default';
const STARTUP_TIMEOUT_MS = 20_000;

function findBinary() {
  const candidates = [];
  if (process.env.RSP_BIN) return process.env.RSP_BIN;
  if (process.env.CARGO_TARGET_DIR) {
    candidates.push(path.resolve(repoRoot, process.env.CARGO_TARGET_DIR, 'debug', 'rsp'));
  }
  candidates.push('/root/.cache/rsp-target/debug/rsp', path.join(repoRoot, 'target', 'debug', 'rsp'));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`rsp binary not found (tried ${candidates.join(', ')}); run \`cargo build -p rsp\` or set RSP_BIN`);
  }
  return found;
}

/** Reserves `count` distinct free loopback ports by binding to port 0, then releases them. */
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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
  let server;
  let serverLog = '';
  let dataDir;
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

  const discover = (clientId, clientSecret) =>
    client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), {
      execute: [client.allowInsecureRequests],
    });

  const adminRequest = async (method, pathname, body) => {
    const response = await fetch(`${admin.admin_api}${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    const bin = findBinary();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'rsp-interop-'));
    const [port, opsPort] = await freePorts(2);
    baseUrl = `http://127.0.0.1:${port}`;
    server = spawn(
      bin,
      ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--ops-listen', `127.0.0.1:${opsPort}`],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    server.stdout.on('data', (chunk) => (serverLog += chunk));
    server.stderr.on('data', (chunk) => (serverLog += chunk));
    let exited = null;
    server.once('exit', (code, signal) => (exited = { code, signal }));

    const discoveryUrl = `${baseUrl}/t/${TENANT}/.well-known/openid-configuration`;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        throw new Error(`rsp exited early (${JSON.stringify(exited)}):\n${serverLog}`);
      }
      try {
        const response = await fetch(discoveryUrl);
        if (response.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`rsp did not answer ${discoveryUrl} within ${STARTUP_TIMEOUT_MS} ms:\n${serverLog}`);
      }
      await sleep(100);
    }

    admin = JSON.parse(await readFile(path.join(dataDir, 'admin-client.json'), 'utf8'));
    for (const field of ['issuer', 'token_endpoint', 'admin_api', 'client_id', 'client_secret']) {
      assert.equal(typeof admin[field], 'string', `admin-client.json field ${field}`);
    }
    issuer = `${baseUrl}/t/${TENANT}`;
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
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

    const response = await adminRequest('POST', `/tenants/${TENANT}/clients`, {
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

    const rotated = await adminRequest('POST', `/tenants/${TENANT}/keys/rotate`);
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
