/**
 * Headless Chromium for the browser tests, from the system package (`apt-get install chromium`, which
 * .ci/run does). In CI a missing browser is a failure, never a skip; elsewhere the tests skip loudly.
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    const message = `Chromium is not installed at ${CHROMIUM_PATH}`;
    if (process.env.CI) throw new Error(`${message}; CI requires it (see .ci/run)`);
    console.warn(
      `\n!!! SKIPPING browser tests: ${message}. Install it with \`apt-get install -y chromium\`. !!!\n`,
    );
    return false;
  }
}

/** `extraArgs`: more Chromium switches, e.g. `--host-resolver-rules` to reach the service under another name. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs],
  });
}

/**
 * Collects what a user never sees but a broken page shows: uncaught errors and console errors (CSP
 * violations among them). Chromium also logs every 4xx answer to fetch as an error; the pages expect
 * some (a 404 while checking for an earlier refund), so those are left out.
 */
export function watchPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) return;
    errors.push(`console: ${msg.text()}`);
  });
  return errors;
}
