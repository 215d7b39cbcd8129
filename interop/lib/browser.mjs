// A real browser for the interop tests: Debian's chromium driven headless by Playwright. Only
// `playwright-core` is installed, which never downloads a browser of its own.

import { chromium } from 'playwright-core';

/** Where the chromium binary is: $CHROMIUM, else Debian's `/usr/bin/chromium`. */
export const chromiumPath = () => process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Launches headless chromium. Playwright turns chromium's sandbox off by default (it cannot start as root
 * with it), which is fine for a browser that only visits the loopback servers the test starts.
 */
export const launchChromium = () => chromium.launch({ executablePath: chromiumPath(), headless: true });

/**
 * Records what a page reports as broken: console errors (a Content-Security-Policy violation is one) and
 * uncaught page errors. The sign-in pages run no script and must load their stylesheet under their CSP.
 */
export function collectPageProblems(page) {
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}
