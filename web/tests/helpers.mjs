// Shared helpers of the end-to-end tests: the browser (Debian's Chromium driven by
// playwright-core, no browser download), the local gateway's dev and internal routes,
// screenshots, and axe-core checks.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = require('axe-core').source;

export const GATEWAY_URL = (process.env.GATEWAY_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
export const INTERNAL_KEY = process.env.INTERNAL_KEY || '';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = resolve(here, '..', '..', 'tests', 'artifacts', 'web');
mkdirSync(ARTIFACTS, { recursive: true });

export const LOGIN_PASSWORD = 'Login-Pass-2026';
export const PAYMENT_PASSWORD = 'Vault-Key-2026!';

/** A fresh headless Chromium (playwright gives each launch its own temporary profile). */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in a new context (own sessionStorage), in `locale`, that records in `problems`:
 * - page errors, and console errors other than Chromium's note on an HTTP error status
 *   (the answers themselves are judged below; the note would only repeat them) and
 *   those the test names in `expectConsole` (e.g. the note on a connection it cut);
 * - any console.log/info/debug (the client never logs: what it would log could be a secret);
 * - every answer of the gateway with a 5xx status;
 * - every answer of the gateway with a 4xx status that the test did not name in `expectHttp`,
 *   as "METHOD /path STATUS" (the path without the query), e.g. 'POST /dev/login 401'.
 * A test ends with `assert.deepEqual(problems, [])`.
 * @param {import('playwright-core').Browser} browser
 * @param {{locale?: string, expectHttp?: string[], expectConsole?: string[]}} [options]
 */
export async function openPage(browser, { locale = 'en-US', expectHttp = [], expectConsole = [] } = {}) {
  for (const e of expectHttp) assert.match(e, /^[A-Z]+ \/\S* 4\d\d$/, `expectHttp entry ${e}`);
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (
      message.type() === 'error' &&
      !/^Failed to load resource: the server responded with a status of \d{3}\b/.test(message.text()) &&
      !expectConsole.includes(message.text())
    ) {
      problems.push(`console: ${message.text()}`);
    }
    // The client never logs; anything it would log could hold a secret.
    if (['log', 'info', 'debug'].includes(message.type())) problems.push(`console.${message.type()}: ${message.text()}`);
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin !== GATEWAY_URL) return;
    const status = response.status();
    const what = `${response.request().method()} ${url.pathname} ${status}`;
    if (status >= 500) problems.push(`http: ${what}`);
    else if (status >= 400 && !expectHttp.includes(what)) problems.push(`http (not expected): ${what}`);
  });
  return { context, page, problems };
}

/**
 * The requests the page sends as `method url` (url without the query), as they are sent:
 * `count()` answers how many so far.
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} url
 */
export function countRequests(page, method, url) {
  let n = 0;
  page.on('request', (request) => {
    const u = new URL(request.url());
    if (request.method() === method && `${u.origin}${u.pathname}` === url) n += 1;
  });
  return { count: () => n };
}

/** A unique suffix for member ids and phones. */
export function uid() {
  return randomBytes(5).toString('hex');
}

/** A random +86 mobile number. */
export function randomPhone() {
  const digits = Array.from(randomBytes(8), (b) => String(b % 10)).join('');
  return `+86138${digits}`;
}

/**
 * Calls the gateway; answers {status, body, headers}.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, headers?: Record<string, string>, token?: string, internal?: boolean}} [init]
 */
export async function call(method, path, { body, headers = {}, token, internal } = {}) {
  const all = { ...headers };
  if (body !== undefined) all['content-type'] = 'application/json';
  if (token) all.authorization = `Bearer ${token}`;
  if (internal) all['x-internal-key'] = INTERNAL_KEY;
  const res = await fetch(GATEWAY_URL + path, {
    method,
    headers: all,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/**
 * Creates a member through POST /dev/members.
 * @param {{phone?: string | null, prefix?: string}} [options]
 */
export async function createMember({ phone = null, prefix = 'e2e' } = {}) {
  const memberId = `${prefix}-${uid()}`;
  const res = await call('POST', '/dev/members', {
    body: { member_id: memberId, login_password: LOGIN_PASSWORD, phone },
  });
  assert.equal(res.status, 201, `create member: ${JSON.stringify(res.body)}`);
  return { memberId, phone };
}

/** A token for API-side setup (the browser signs in through its own form). */
export async function apiToken(memberId) {
  const res = await call('POST', '/dev/login', { body: { member_id: memberId, login_password: LOGIN_PASSWORD } });
  assert.equal(res.status, 200);
  return res.body.access_token;
}

/** An active member without a phone, with money available. */
export async function fundedMember({ usd = '1500.00', cny = '800.00', extraCollections = 0 } = {}) {
  const member = await createMember({ prefix: 'wd' });
  const token = await apiToken(member.memberId);
  const activated = await call('POST', '/v1/activation', { token, body: { payment_password: PAYMENT_PASSWORD } });
  assert.equal(activated.status, 200, JSON.stringify(activated.body));
  await collect(member.memberId, 'USD', usd);
  await collect(member.memberId, 'CNY', cny);
  for (let i = 0; i < extraCollections; i += 1) await collect(member.memberId, 'USD', '1.00');
  const settled = await call('POST', '/dev/reconcile');
  assert.equal(settled.status, 200, JSON.stringify(settled.body));
  return { ...member, token };
}

/** Money collected for an order (POST /internal/collections), settled at the next run. */
export async function collect(memberId, currency, amount) {
  const res = await call('POST', '/internal/collections', {
    internal: true,
    body: { collection_id: `col-${uid()}`, member_id: memberId, currency, amount },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** The SMS messages sent to `phone`, newest first. */
export async function smsFor(phone) {
  const res = await call('GET', `/dev/sms?phone=${encodeURIComponent(phone)}`);
  assert.equal(res.status, 200);
  return res.body.items;
}

/**
 * Waits for an SMS beyond the first `before` ones and answers its 6-digit code.
 * @param {string} phone
 * @param {number} before how many messages there were before the send
 */
export async function waitForCode(phone, before) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const items = await smsFor(phone);
    if (items.length > before) {
      const match = /\b(\d{6})\b/.exec(items[0].message);
      assert.ok(match, `no code in ${items[0].message}`);
      return match[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no SMS to ${phone}`);
}

/**
 * Waits until the locator's text contains `expected` (a string or a RegExp).
 * @param {import('playwright-core').Locator} locator
 * @param {string | RegExp} expected
 */
export async function waitForText(locator, expected, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.first().textContent({ timeout: Math.max(1, deadline - Date.now()) }).catch(() => '')) || '';
    if (typeof expected === 'string' ? last.includes(expected) : expected.test(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`expected ${expected} in ${JSON.stringify(last)}`);
}

/** Waits for the heading of a page (an h1 with this name). */
export function heading(page, name) {
  return page.getByRole('heading', { level: 1, name }).waitFor();
}

/** Saves a full-page screenshot under tests/artifacts/web/. */
export async function shot(page, name) {
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Runs axe-core on the page (WCAG 2.x A and AA and best practices) and fails on any
 * violation, listing them.
 * @param {import('playwright-core').Page} page
 * @param {string} where
 */
export async function checkA11y(page, where) {
  const loaded = await page.evaluate(() => typeof (/** @type {any} */ (window).axe) === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = /** @type {any} */ (window).axe;
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  assert.deepEqual(violations, [], `axe violations on ${where}:\n${JSON.stringify(violations, null, 2)}`);
}

/** Signs in through the form (English labels). */
export async function signIn(page, memberId, password = LOGIN_PASSWORD) {
  await page.goto(`${GATEWAY_URL}/`);
  await heading(page, 'Sign in');
  await page.getByLabel('Member ID').fill(memberId);
  await page.getByLabel('Login password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await heading(page, 'Fund account');
}

/**
 * What the page keeps in web storage: for the test that nothing secret is stored.
 * @param {import('playwright-core').Page} page
 */
export function storageDump(page) {
  return page.evaluate(() => JSON.stringify({ session: { ...sessionStorage }, local: { ...localStorage } }));
}

/**
 * The treasury's reference rate, as of now (PUT /internal/fx-rates/{pair}): quotes refuse
 * a rate older than a few minutes, so a test sets it before it asks for one.
 * @param {string} [pair]
 * @param {string} [mid]
 */
export async function setReferenceRate(pair = 'USD-CNY', mid = '7.20') {
  const res = await call('PUT', `/internal/fx-rates/${pair}`, {
    internal: true,
    body: { mid, as_of: new Date().toISOString() },
  });
  assert.equal(res.status, 200, `set ${pair}: ${JSON.stringify(res.body)}`);
}

/**
 * Records the page's `method path` calls to the gateway as they complete: each request's
 * JSON body and headers, and the answer's status and JSON body.
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 */
export function recordCalls(page, method, path) {
  /** @type {{body: any, headers: Record<string, string>, status: number, answer: any}[]} */
  const calls = [];
  page.on('response', async (response) => {
    const request = response.request();
    const url = new URL(request.url());
    if (request.method() !== method || url.origin !== GATEWAY_URL || url.pathname !== path) return;
    const text = await response.text().catch(() => '');
    calls.push({
      body: request.postDataJSON(),
      headers: request.headers(),
      status: response.status(),
      answer: text ? JSON.parse(text) : null,
    });
  });
  return calls;
}

/**
 * Waits until `calls` (from recordCalls) holds `n` entries.
 * @param {unknown[]} calls
 * @param {number} n
 */
export async function waitForCalls(calls, n, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (calls.length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} calls, saw ${calls.length}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Answers the page's next `POST path` itself with `410 quote_expired` (the gateway cannot be
 * made to let 30 minutes pass), recording the body it would have sent; later calls go to
 * the gateway.
 * @param {import('playwright-core').Page} page
 * @param {string} path
 */
export async function expireNextQuoteUse(page, path) {
  /** @type {any[]} */
  const refused = [];
  await page.route(`${GATEWAY_URL}${path}`, async (route) => {
    if (route.request().method() !== 'POST' || refused.length > 0) return route.continue();
    refused.push(route.request().postDataJSON());
    return route.fulfill({
      status: 410,
      contentType: 'application/problem+json',
      headers: { 'x-request-id': 'E2EQUOTEEXPIRED0001' },
      body: JSON.stringify({
        type: 'urn:fund-account:problem:quote_expired',
        title: 'Gone',
        status: 410,
        detail: 'the quote has expired',
        code: 'quote_expired',
      }),
    });
  });
  return refused;
}
