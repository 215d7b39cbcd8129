// RFC 6238 time-based one-time passwords as authenticator apps compute them (HMAC-SHA-1, 6 digits, 30 s
// steps), written against node:crypto alone so the server's implementation is checked by an independent one.

import { createHmac } from 'node:crypto';

export const STEP_SECONDS = 30;
const DIGITS = 6;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored); anything else is an error. */
export function base32Decode(text) {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const char of clean) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The time step (RFC 6238 §4.2 `T`) that `unixMillis` falls in. */
export const stepAt = (unixMillis) => Math.floor(unixMillis / 1000 / STEP_SECONDS);

/** The code for time step `step` (RFC 4226 §5.3 dynamic truncation of HMAC-SHA-1 over the step). */
export function totpForStep(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac.readUInt8(mac.length - 1) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** DIGITS).padStart(DIGITS, '0');
}
