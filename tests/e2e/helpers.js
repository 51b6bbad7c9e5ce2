// Shared by the browser tests: one headless Chromium per test file, a fresh context (cookies,
// localStorage) per test, and small waits on the widget inside its shadow root.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const SERVER = process.env.FRONTDESK_URL || 'http://127.0.0.1:8080';
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1'
  ? join(dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots') : null;

// Flags that work on a closed network: without the background-networking ones Chromium's own
// connections are refused and slow everything down.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A new page with its own storage, recording every frame the server sends it.
 * @returns {Promise<{context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, frames: any[], errors: string[]}>}
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    try { frames.push(JSON.parse(String(payload))); } catch { /* not JSON */ }
  }));
  const errors = []; // uncaught exceptions in the page: each test checks there were none
  page.on('pageerror', (e) => errors.push(e.message));
  return { context, page, frames, errors };
}

/** The widget's parts (Playwright's CSS locators pierce open shadow roots). */
export function widget(page) {
  const w = (sel) => page.locator('frontdesk-chat ' + sel);
  return {
    launcher: w('.launcher'),
    panel: w('.panel'),
    input: w('.composer textarea'),
    log: w('.log'),
    banner: w('.banner'),
    human: w('.foot .human'),
    conn: w('.sub'),
    customer: w('.msg.customer'),
    bot: w('.msg.bot[data-seq]'), // not the greeting, which is local
    w,
  };
}

/** Opens the demo page (or `url`) and the chat; waits until the widget is connected. */
export async function openChat(page, url = SERVER + '/') {
  await page.goto(url);
  const w = widget(page);
  await w.launcher.click();
  await w.input.waitFor({ state: 'visible' });
  await waitFor(page, () => isOnline(page), 'the widget connects');
  return w;
}

/** Whether the widget shows it is connected (the green dot), in any language. */
export function isOnline(page) {
  return page.evaluate(() => !!document.querySelector('frontdesk-chat')?.shadowRoot.querySelector('.dot.ok'));
}

export function connText(page) {
  return page.evaluate(() => document.querySelector('frontdesk-chat').shadowRoot.querySelector('.sub').textContent);
}

/** Types `text` and presses Enter. */
export async function send(page, text) {
  const w = widget(page);
  await w.input.fill(text);
  await w.input.press('Enter');
}

/** Polls `check` (a Node-side async function) until it returns a truthy value. */
export async function waitFor(page, check, what, timeout = 20000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > end) assert.fail(`timed out waiting until ${what} (last: ${last})`);
    await page.waitForTimeout(100);
  }
}

/** The customer bubbles as [{text, state, seq}], in the order they are shown. */
export function customerMessages(page) {
  return page.evaluate(() => [...document.querySelector('frontdesk-chat').shadowRoot.querySelectorAll('.msg.customer')]
    .map((m) => ({ text: m.querySelector('.bubble').textContent, state: m.dataset.state, seq: Number(m.dataset.seq) || null })));
}

/** Sequence numbers of everything in the conversation, in the order shown. */
export function shownSeqs(page) {
  return page.evaluate(() => [...document.querySelector('frontdesk-chat').shadowRoot.querySelectorAll('.log > [data-seq]')]
    .map((n) => Number(n.dataset.seq)));
}

export async function screenshot(page, name) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name) });
}

// ---- the agent console ------------------------------------------------------------------------

/**
 * The demo shop served from another local origin (as a company's site would be), with a widget that
 * knows the customer (data-name, data-email). Returns the page's URL.
 */
export async function shopAs(page, { name, email }) {
  const demo = await (await fetch(SERVER + '/')).text();
  const attr = (v) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  const html = demo
    .replace('<head>', `<head><base href="${SERVER}/">`)
    .replace('<script src="/widget.js"', `<script src="${SERVER}/widget.js" data-name="${attr(name)}" data-email="${attr(email)}"`);
  const shop = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html));
  await new Promise((ok) => shop.listen(0, '127.0.0.1', ok));
  shop.unref();
  page.context().on('close', () => shop.close());
  return `http://127.0.0.1:${shop.address().port}/shop/checkout`;
}

/** The widget's conversation id, from the welcome frame it received. */
export function conversationId(frames) {
  return frames.find((f) => f.type === 'welcome')?.conversation_id;
}

/** Everything the widget shows, as text. */
export function widgetText(page) {
  return page.evaluate(() => document.querySelector('frontdesk-chat').shadowRoot.querySelector('.panel').textContent);
}

/** Signs in to /console as the demo agent (scripts/e2e.sh starts the server with it). */
export async function consoleLogin(page, email = 'demo@example.com', password = 'demo', ready = '#conn.ok') {
  await page.goto(SERVER + '/console');
  await page.locator('#login-email').fill(email);
  await page.locator('#login-password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Fails with the console's own words when the sign-in is refused (e.g. throttled).
  const refused = page.locator('#login-error:not([hidden])');
  await page.locator(ready).or(refused).first().waitFor();
  if (await refused.isVisible()) throw new Error(`signing in as ${email}: ${await refused.textContent()}`);
  await page.locator(ready).waitFor();
}

/** The console signed in as the demo editor, who has the knowledge-base view only (no queue, no socket). */
export function editorLogin(page) {
  return consoleLogin(page, 'editor@example.com', 'demo', '#editors');
}

/** The console's token (to call the REST API as the agent). */
export function consoleToken(page) {
  return page.evaluate(() => localStorage.getItem('frontdesk.console.token'));
}

/** Messages in the console's transcript as [{who, text}], in the order shown. */
export function consoleMessages(page) {
  return page.evaluate(() => [...document.querySelectorAll('#transcript .msg')].map((m) => ({
    who: m.classList.contains('note') ? 'note' : [...m.classList].find((c) => ['customer', 'bot', 'agent'].includes(c)),
    text: m.querySelector('.bubble').textContent,
    pending: m.classList.contains('pending'),
  })));
}
