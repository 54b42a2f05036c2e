// A headless browser for the web console's test: Debian's chromium
// (/usr/bin/chromium, installed by test.sh), driven by the pinned
// playwright-core, in a fresh profile. Never a browser downloaded by
// playwright.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHARTER_CHROMIUM || '/usr/bin/chromium';
const LAUNCH_DEADLINE_MS = 30_000;

export function chromiumMissing() {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return '';
  } catch {
    return `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; test.sh does)`;
  }
}

// launch starts chromium with a fresh profile; close() removes it. Every
// console error and uncaught exception of every page is kept in errors.
export async function launch({ viewport = { width: 1280, height: 900 }, ignoreHTTPSErrors = false } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'charter-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false, // the flag below gives chromium's own headless mode
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    timeout: LAUNCH_DEADLINE_MS,
    acceptDownloads: true,
    ignoreHTTPSErrors, // a test network's nodes serve certificates of its own CAs
  });
  ctx.setDefaultTimeout(15_000);
  const errors = [];
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${page.url()}: console error: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`${page.url()}: uncaught: ${e.message}`));
  };
  ctx.pages().forEach(watch);
  ctx.on('page', watch);
  return {
    ctx,
    errors,
    async page() {
      const p = ctx.pages()[0] || (await ctx.newPage());
      return p;
    },
    async close() {
      await ctx.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
