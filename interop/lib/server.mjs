// Starts the real `rsp serve` on free loopback ports with a fresh data directory, for the interop tests.
//
// The binary is $RSP_BIN, else $CARGO_TARGET_DIR/debug/rsp, else /root/.cache/rsp-target/debug/rsp,
// else target/debug/rsp under the repository root.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const STARTUP_TIMEOUT_MS = 20_000;
const ADMIN_CLIENT_FIELDS = ['issuer', 'token_endpoint', 'admin_api', 'client_id', 'client_secret'];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function findBinary() {
  if (process.env.RSP_BIN) return process.env.RSP_BIN;
  const candidates = [];
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
export async function freePorts(count) {
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

/**
 * A running `rsp serve`: its base URL, the tenant's issuer, the bootstrap admin client (the contents of
 * `admin-client.json`), the server's output so far, and `stop()`, which ends it and removes its data.
 */
export async function startServer({ tenant = 'default' } = {}) {
  const bin = findBinary();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rsp-interop-'));
  const [port, opsPort] = await freePorts(2);
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(
    bin,
    ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--ops-listen', `127.0.0.1:${opsPort}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  );
  let log = '';
  child.stdout.on('data', (chunk) => (log += chunk));
  child.stderr.on('data', (chunk) => (log += chunk));
  let exited = null;
  child.once('exit', (code, signal) => (exited = { code, signal }));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const discoveryUrl = `${baseUrl}/t/${tenant}/.well-known/openid-configuration`;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(`rsp exited early (${JSON.stringify(exited)}):\n${log}`);
      try {
        if ((await fetch(discoveryUrl)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`rsp did not answer ${discoveryUrl} within ${STARTUP_TIMEOUT_MS} ms:\n${log}`);
      }
      await sleep(100);
    }
    const admin = JSON.parse(await readFile(path.join(dataDir, 'admin-client.json'), 'utf8'));
    for (const field of ADMIN_CLIENT_FIELDS) {
      if (typeof admin[field] !== 'string') throw new Error(`admin-client.json lacks the string field ${field}`);
    }
    return { baseUrl, issuer: `${baseUrl}/t/${tenant}`, tenant, admin, dataDir, log: () => log, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
