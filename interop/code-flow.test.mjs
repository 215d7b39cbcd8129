// The authorization code flow end to end with a real browser and a certified relying-party library:
// Debian's chromium, driven headless by Playwright, signs a person in through the server-rendered pages
// (login, TOTP, consent) and lands on a loopback callback; panva's certified `openid-client` builds the
// request (PKCE S256, state, nonce), exchanges the code (checking state, RFC 9207 `iss` and the ID token),
// calls userinfo and refreshes; `jose` verifies the ID token's signature independently.
//
// Run: `bash interop/run.sh` (it skips this file when chromium is missing, except under CI=true). The browser
// is $CHROMIUM, else /usr/bin/chromium; the server binary is found as lib/server.mjs describes.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import * as client from 'openid-client';
import * as jose from 'jose';

import { adminClient, discover } from './lib/admin.mjs';
import { collectPageProblems, launchChromium } from './lib/browser.mjs';
import { startCallbackServer } from './lib/callback.mjs';
import { sleep, startServer } from './lib/server.mjs';
import { base32Decode, STEP_SECONDS, stepAt, totpForStep } from './lib/totp.mjs';

const USERNAME = 'ada';
const PASSWORD = 'correct horse battery staple';
const CLIENT_NAME = 'Interop <browser> app';
const SCOPE = 'openid profile offline_access';
/**
 * The server's default `refresh_grace_secs` (rsp_oauth::TokenSettings): a rotated-out refresh token presented
 * again within it gets the same answer (a retry after a lost response); after it, reuse revokes the grant.
 */
const REFRESH_GRACE_MS = 10_000;
/** How long one page transition may take in the browser before the test gives up. */
const NAVIGATION_TIMEOUT_MS = 15_000;

/** An `assert.rejects` check: openid-client refused, and its message or its cause's names `pattern`. */
const refusedFor = (pattern) => (error) => {
  assert.match(`${error.message}; ${error.cause?.message ?? ''}`, pattern);
  return true;
};

/** Whether an ID token's `amr` (RFC 8176) says a one-time password was used. */
const usedOtp = (claims) => Array.isArray(claims.amr) && claims.amr.includes('otp');

describe('code flow: chromium through the sign-in pages, openid-client as the relying party', () => {
  let server;
  let callback;
  let browser;
  let page;
  let problems; // console and page errors of `page`
  let userId;
  let registered; // the confidential client created through the admin API
  let config; // openid-client Configuration for it
  let jwks;

  before(async () => {
    server = await startServer();
    callback = await startCallbackServer();
    const admin = await adminClient(server);
    const user = { username: USERNAME, password: PASSWORD };
    userId = (await admin.expect(201, 'POST', `/tenants/${server.tenant}/users`, user)).user_id;
    registered = await admin.expect(201, 'POST', `/tenants/${server.tenant}/clients`, {
      name: CLIENT_NAME,
      grant_types: ['authorization_code', 'refresh_token'],
      scope: SCOPE,
      redirect_uris: [callback.redirectUri],
    });
    config = await discover(server.issuer, registered.client_id, registered.client_secret);
    jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(NAVIGATION_TIMEOUT_MS);
    problems = collectPageProblems(page);
  });

  after(async () => {
    await browser?.close();
    await callback?.close();
    await server?.stop();
  });

  /** A fresh authorization request: its URL and the secrets the relying party keeps for the exchange. */
  const authorization = async (extra = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback.redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    return { url, verifier, state, nonce };
  };

  const onPage = (pathname) => (url) => url.pathname === `/t/${server.tenant}${pathname}`;
  const onCallback = (url) => url.href.startsWith(`${callback.redirectUri}?`);

  /** Waits for the browser to reach a URL `matches` accepts; on a timeout, says where it is instead. */
  const arrive = async (matches, what) => {
    try {
      await page.waitForURL(matches);
    } catch (error) {
      const text = await page.locator('body').innerText().catch(() => '(no body)');
      throw new Error(`expected ${what}, but the browser is at ${page.url()} showing:\n${text}`, { cause: error });
    }
  };

  /** Fills the login form by its labels, which also checks that the labels exist and name the inputs. */
  const signIn = async () => {
    await arrive(onPage('/oauth2/login'), 'the login page');
    await page.getByLabel('Username', { exact: true }).fill(USERNAME);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  /** Approves on the consent page, remembering the decision, when the server shows it; then the callback. */
  const consentIfAsked = async () => {
    await arrive((url) => onPage('/oauth2/consent')(url) || onCallback(url), 'the consent page or the callback');
    if (onPage('/oauth2/consent')(new URL(page.url()))) {
      await assert.doesNotReject(
        page.getByRole('heading', { name: `Allow ${CLIENT_NAME} to access your account?` }).waitFor(),
        'the consent page names the client (escaped, shown as text)',
      );
      await page.getByLabel('Remember this decision').check();
      await page.getByRole('button', { name: 'Allow' }).click();
    }
    await arrive(onCallback, 'the callback');
    const landed = new URL(page.url());
    assert.ok(callback.received.includes(landed.href), 'the callback server itself was called');
    return landed;
  };

  /** openid-client's code exchange, with its checks of state, `iss`, PKCE and the ID token. */
  const exchange = (landed, flow) =>
    client.authorizationCodeGrant(config, landed, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });

  /** Verifies the ID token's signature with jose against the published JWKS, independently of openid-client. */
  const verifyIdToken = async (idToken) => {
    const { payload, protectedHeader } = await jose.jwtVerify(idToken, jwks, {
      issuer: server.issuer,
      audience: registered.client_id,
      algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.alg, 'ES256');
    return payload;
  };

  test('the test computes TOTP codes as RFC 6238 Appendix B does (SHA-1)', () => {
    const secret = Buffer.from('12345678901234567890', 'ascii');
    // The 8-digit vectors, truncated to the 6 digits authenticator apps show (RFC 4226 §5.3).
    const vectors = { 59: '94287082', 1111111109: '07081804', 1234567890: '89005924', 20000000000: '65353130' };
    for (const [seconds, code] of Object.entries(vectors)) {
      assert.equal(totpForStep(secret, stepAt(Number(seconds) * 1000)), code.slice(-6), `T = ${seconds}`);
    }
    assert.deepEqual(base32Decode('GEZDGNBVGY3TQOJQ'), Buffer.from('1234567890', 'ascii'));
    assert.throws(() => base32Decode('GEZD1'), /not base32/);
  });

  test('discovery advertises PKCE S256, RFC 9207 iss and userinfo', () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.issuer, server.issuer);
    assert.ok(metadata.code_challenge_methods_supported?.includes('S256'));
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
    assert.equal(metadata.userinfo_endpoint, `${server.issuer}/oauth2/userinfo`);
  });

  let tokens; // from the first code exchange
  let idClaims;

  test('chromium signs in and consents; openid-client exchanges the code with PKCE', async (t) => {
    const flow = await authorization();
    await page.goto(flow.url.href);
    await arrive(onPage('/oauth2/login'), 'the login page');
    assert.ok(!page.url().includes(flow.state), 'the parked request is not in the login URL');
    const shots = await mkdtemp(path.join(os.tmpdir(), 'rsp-interop-screens-'));
    const shot = path.join(shots, 'login.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 0);
    t.diagnostic(`login page screenshot: ${shot}`);

    await signIn();
    const landed = await consentIfAsked();
    assert.equal(landed.searchParams.get('state'), flow.state);
    assert.equal(landed.searchParams.get('iss'), server.issuer, 'RFC 9207 iss in the authorization response');
    assert.deepEqual(problems, [], 'no console or page errors (CSP, missing stylesheet) on the sign-in pages');

    // openid-client refuses a response whose state or iss is not the expected one, before spending the code.
    const tampered = (name, value) => {
      const url = new URL(landed);
      if (value === undefined) url.searchParams.delete(name);
      else url.searchParams.set(name, value);
      return url;
    };
    await assert.rejects(exchange(tampered('state', 'forged'), flow), refusedFor(/state/i));
    await assert.rejects(exchange(tampered('iss', 'https://evil.example/'), flow), refusedFor(/iss/i));
    await assert.rejects(exchange(tampered('iss'), flow), refusedFor(/iss/i));

    tokens = await exchange(landed, flow);
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(typeof tokens.refresh_token, 'string');
    idClaims = tokens.claims();
    assert.equal(idClaims.sub, userId);
    assert.equal(idClaims.nonce, flow.nonce);
    assert.deepEqual(idClaims.amr, ['pwd']);

    const verified = await verifyIdToken(tokens.id_token);
    assert.equal(verified.sub, userId);
    assert.equal(verified.nonce, flow.nonce);
    assert.equal(typeof verified.auth_time, 'number');
  });

  test('userinfo answers for the same subject', async () => {
    const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    assert.equal(info.sub, userId);
    assert.equal(info.preferred_username, USERNAME);
    await assert.rejects(client.fetchUserInfo(config, tokens.access_token, 'someone-else'), refusedFor(/"sub"/));
  });

  let rotatedOut; // the first refresh token, after its rotation
  let rotatedAt;
  let current; // the refresh token that replaced it

  test('refresh rotates the refresh token; a retry within the grace window gets the same answer', async () => {
    rotatedOut = tokens.refresh_token;
    const refreshed = await client.refreshTokenGrant(config, rotatedOut);
    rotatedAt = Date.now();
    current = refreshed.refresh_token;
    assert.equal(typeof current, 'string');
    assert.notEqual(current, rotatedOut, 'a new refresh token');
    assert.notEqual(refreshed.access_token, tokens.access_token, 'a new access token');
    assert.equal((await verifyIdToken(refreshed.id_token)).sub, userId);

    const retried = await client.refreshTokenGrant(config, rotatedOut);
    assert.equal(retried.refresh_token, current, 'the retry is answered with the response already issued');
  });

  let secret; // the TOTP secret enrolled through the account page
  let enrolStep;

  test('the signed-in person enrols TOTP in the browser', async () => {
    await page.goto(`${server.issuer}/account/totp`);
    await arrive(onPage('/account/totp'), 'the TOTP enrolment page');
    const password = page.locator('input[name="password"]');
    await password.fill(PASSWORD);
    await password.press('Enter');

    const shown = await page.locator('#totp-secret').textContent();
    assert.match(shown ?? '', /^[A-Z2-7]+=*$/, 'the secret is plain base32 without spaces');
    secret = base32Decode(shown ?? '');
    assert.ok(secret.length >= 20, `a secret of at least 160 bits, got ${secret.length} bytes`);

    enrolStep = stepAt(Date.now());
    const code = page.locator('input[name="code"]');
    await code.fill(totpForStep(secret, enrolStep));
    await code.press('Enter');
    const recovery = page.locator('#recovery-codes li');
    await recovery.first().waitFor();
    const codes = (await recovery.allTextContents()).map((text) => text.trim());
    assert.equal(codes.length, 10, 'ten recovery codes');
    assert.equal(new Set(codes).size, codes.length, 'distinct recovery codes');
    assert.deepEqual(problems, [], 'no console or page errors on the account pages');
  });

  test('prompt=login asks for the password and the TOTP code; the ID token says otp', async () => {
    const flow = await authorization({ prompt: 'login' });
    await page.goto(flow.url.href);
    await signIn();
    await arrive(onPage('/oauth2/login/totp'), 'the TOTP page');
    const field = page.getByLabel('Authentication code');

    // The enrolment code was used once already (TOTP-5.2b): it is refused and the page asks again.
    await field.fill(totpForStep(secret, enrolStep));
    const isTotpPost = (response) =>
      response.request().method() === 'POST' && onPage('/oauth2/login/totp')(new URL(response.url()));
    const [replayed] = await Promise.all([page.waitForResponse(isTotpPost), field.press('Enter')]);
    assert.equal(replayed.status(), 401, 'a replayed code is refused');
    await arrive(onPage('/oauth2/login/totp'), 'the TOTP page again');

    // A later step than the enrolment's, within the server's window of one step either side of now.
    const step = Math.max(enrolStep + 1, stepAt(Date.now()));
    assert.ok(step - stepAt(Date.now()) <= 1, `step ${step} is within ${STEP_SECONDS} s of now`);
    await page.getByLabel('Authentication code').fill(totpForStep(secret, step));
    await page.getByLabel('Authentication code').press('Enter');
    const landed = await consentIfAsked();

    const withOtp = await exchange(landed, flow);
    const claims = withOtp.claims();
    assert.equal(claims.sub, userId);
    assert.ok(usedOtp(claims), `amr contains otp: ${JSON.stringify(claims.amr)}`);
    assert.ok(claims.amr.includes('pwd'), 'and the password');
    assert.ok(claims.auth_time >= idClaims.auth_time, 'a new authentication');
    assert.ok(usedOtp(await verifyIdToken(withOtp.id_token)));
    // Chromium reports every error status in the console; the 401 of the replay above was expected.
    const expected401 = (problem) => problem.includes('status of 401') && problem.includes('/oauth2/login/totp');
    assert.deepEqual(problems.filter((p) => !expected401(p)), [], 'no console or page errors on the TOTP page');
  });

  test('a rotated-out refresh token presented after the grace window is refused and ends the grant', async () => {
    await sleep(Math.max(0, rotatedAt + REFRESH_GRACE_MS + 1_000 - Date.now()));
    const refused = (token) =>
      assert.rejects(client.refreshTokenGrant(config, token), (error) => {
        assert.ok(error instanceof client.ResponseBodyError, `an OAuth error response: ${error}`);
        assert.equal(error.error, 'invalid_grant');
        return true;
      });
    await refused(rotatedOut);
    await refused(current);
  });
});
