// Shared helpers of the end-to-end tests: the browser (Debian's Chromium driven by
// playwright-core, no browser download), the local gateway's dev and internal routes,
// signing in and moving between pages, screenshots, and axe-core checks.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
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
 * One browser for the tests of a file (or of the describe this is called in): launched
 * before they run and closed after them. Answers a function that gives it, as it exists
 * only once the tests start.
 */
export function useBrowser() {
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });
  return () => /** @type {import('playwright-core').Browser} */ (browser);
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

/**
 * Checks a member's balances as the API has them now (GET /v1/account): `expected` names
 * each as currency and bucket, `{'USD.available': '1500.00'}`.
 * @param {{token: string}} member
 * @param {Record<string, string>} expected
 */
export async function assertBalances(member, expected) {
  const res = await call('GET', '/v1/account', { token: member.token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const actual = Object.fromEntries(
    Object.keys(expected).map((name) => {
      const [currency, bucket] = name.split('.');
      return [name, res.body.balances[currency][bucket]];
    }),
  );
  assert.deepEqual(actual, expected);
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

/** The sign-in page's texts and the account page's heading, in each language of the site. */
const SIGN_IN_TEXTS = {
  en: { title: 'Sign in', member: 'Member ID', password: 'Login password', button: 'Sign in', account: 'Fund account' },
  zh: { title: '登录', member: '会员 ID', password: '登录密码', button: '登录', account: '资金账户' },
};

/**
 * Signs in through the form from the start page.
 * @param {import('playwright-core').Page} page
 * @param {string} memberId
 * @param {{password?: string, lang?: 'en' | 'zh'}} [options] `lang`: the page's language
 */
export async function signIn(page, memberId, { password = LOGIN_PASSWORD, lang = 'en' } = {}) {
  await page.goto(`${GATEWAY_URL}/`);
  await heading(page, SIGN_IN_TEXTS[lang].title);
  await submitSignIn(page, memberId, { password, lang });
}

/**
 * Fills and sends the sign-in form already on screen, and waits for the account page.
 * @param {import('playwright-core').Page} page
 * @param {string} memberId
 * @param {{password?: string, lang?: 'en' | 'zh'}} [options]
 */
export async function submitSignIn(page, memberId, { password = LOGIN_PASSWORD, lang = 'en' } = {}) {
  const texts = SIGN_IN_TEXTS[lang];
  await page.getByLabel(texts.member).fill(memberId);
  await page.getByLabel(texts.password).fill(password);
  await page.getByRole('button', { name: texts.button }).click();
  await heading(page, texts.account);
}

/** The main navigation's name, and each of its links with the heading of the page it opens. */
const NAVIGATION = {
  en: {
    label: 'Main',
    pages: {
      account: ['Account', 'Fund account'],
      withdraw: ['Withdraw', 'Withdraw'],
      convert: ['Convert', 'Convert'],
      statements: ['Statements', 'Statements'],
    },
  },
  zh: {
    label: '主导航',
    pages: { account: ['账户', '资金账户'], withdraw: ['提现', '提现'], convert: ['换汇', '换汇'], statements: ['对账单', '对账单'] },
  },
};

/**
 * Opens a page from the main navigation, as a seller would, and waits for its heading.
 * @param {import('playwright-core').Page} page
 * @param {'account' | 'withdraw' | 'convert' | 'statements'} name
 * @param {'en' | 'zh'} [lang] the page's language
 */
export async function openFromNav(page, name, lang = 'en') {
  const nav = NAVIGATION[lang];
  const [link, title] = nav.pages[name];
  await page.getByRole('navigation', { name: nav.label }).getByRole('link', { name: link, exact: true }).click();
  await heading(page, title);
}

/**
 * From a withdrawal's result, the link to the list of withdrawals; waits for the list.
 * @param {import('playwright-core').Page} page
 */
export async function seeAllWithdrawals(page) {
  await page.getByRole('link', { name: 'See all withdrawals' }).click();
  await heading(page, 'Withdrawals');
}

/**
 * The start of most tests: a page (with openPage's options) signed in as `memberId`, in the
 * language its `locale` gives the site, and opened at `at` from the main navigation (else
 * left on the account page). With `clock`, the page's clock is installed first: page.clock
 * only governs the timers of a page loaded after it is installed.
 * @param {import('playwright-core').Browser} browser
 * @param {string} memberId
 * @param {{at?: 'account' | 'withdraw' | 'convert' | 'statements', clock?: boolean, locale?: string,
 *   expectHttp?: string[], expectConsole?: string[]}} [options]
 */
export async function openSignedIn(browser, memberId, { at, clock = false, ...options } = {}) {
  const opened = await openPage(browser, options);
  if (clock) await opened.page.clock.install();
  const lang = options.locale?.startsWith('zh') ? 'zh' : 'en';
  await signIn(opened.page, memberId, { lang });
  if (at) await openFromNav(opened.page, at, lang);
  return opened;
}

/**
 * The start of a test of money: the USD-CNY reference rate set when `rate` is given (quotes
 * refuse a rate older than a few minutes), a member with money (fundedMember, with `funds`),
 * and a page signed in as them (openSignedIn, with the other options).
 * @param {import('playwright-core').Browser} browser
 * @param {{rate?: string, funds?: Parameters<typeof fundedMember>[0]} & Parameters<typeof openSignedIn>[2]} [options]
 */
export async function openAsFundedMember(browser, { rate, funds, ...options } = {}) {
  if (rate) await setReferenceRate('USD-CNY', rate);
  const member = await fundedMember(funds);
  return { member, ...(await openSignedIn(browser, member.memberId, options)) };
}

/**
 * The end of a test's page: nothing went wrong on it (the problems openPage records), and
 * its context is closed.
 * @param {import('playwright-core').BrowserContext} context
 * @param {string[]} problems
 */
export async function closeCleanly(context, problems) {
  assert.deepEqual(problems, []);
  await context.close();
}

/**
 * Fills the withdraw form's bank account (Li Wei at ICBC) and the payment password.
 * @param {import('playwright-core').Page} page
 */
export async function fillBankAndPassword(page, password = PAYMENT_PASSWORD) {
  await page.getByLabel('Account holder name').fill('Li Wei');
  await page.getByLabel('Account number').fill('6222020200112233');
  await page.getByLabel('Bank name').fill('ICBC');
  await page.getByLabel('Payment password', { exact: true }).fill(password);
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
 * Where each page with a quote shows it (the Convert page's quote, the withdraw page's
 * preview to another currency), what it says when it fetched a new one for one that
 * expired, and the button that sends the quote with the route it goes to.
 * @typedef {'convert' | 'withdraw'} QuotePage
 */
const QUOTE_ON_PAGE = {
  convert: {
    shownIn: '#cv-quote',
    countdown: '#cv-countdown',
    notice: '#cv-notice',
    renewedText: 'The quote had expired, so a new one was fetched.',
    sendButton: 'Convert',
    sendPath: '/v1/conversions',
    quoteId: (/** @type {any} */ quote) => quote.id,
  },
  withdraw: {
    shownIn: '#wd-preview',
    countdown: '#wd-countdown',
    notice: '#wd-notice',
    renewedText: 'The rate had expired, so a new one was fetched.',
    sendButton: 'Confirm withdrawal',
    sendPath: '/v1/withdrawals',
    quoteId: (/** @type {any} */ preview) => preview.quote_id,
  },
};

/**
 * Waits until the page shows the quote of `answer`, by its reference ("Quote fxq_…").
 * @param {import('playwright-core').Page} page
 * @param {any} answer
 * @param {QuotePage} where
 */
function quoteShown(page, answer, where) {
  const onPage = QUOTE_ON_PAGE[where];
  return waitForText(page.locator(onPage.shownIn), `Quote ${onPage.quoteId(answer)}`);
}

/**
 * Presses the button named `button` and waits for the quote it asks for: the next of `calls`
 * (from recordCalls, for the route that quotes), shown on the page. Answers the body of the
 * server's answer.
 * @param {import('playwright-core').Page} page
 * @param {{body: any, answer: any}[]} calls
 * @param {string} button
 * @param {QuotePage} where
 */
export async function pressForQuote(page, calls, button, where) {
  const before = calls.length;
  await page.getByRole('button', { name: button, exact: true }).click();
  await waitForCalls(calls, before + 1);
  const answer = calls[before].answer;
  await quoteShown(page, answer, where);
  return answer;
}

/**
 * Moves the page's clock 31 minutes on, past the quote `old` on screen (a quote is locked for
 * 30), and checks that the page fetched a new one on its own: for the same request, another
 * quote, with the notice (spoken too), shown, its countdown from the start. Answers the new
 * quote. The page's clock must have been installed before it loaded (openSignedIn's `clock`).
 * @param {import('playwright-core').Page} page
 * @param {{body: any, answer: any}[]} calls
 * @param {any} old
 * @param {QuotePage} where
 */
export async function quoteRenewedByClock(page, calls, old, where) {
  const onPage = QUOTE_ON_PAGE[where];
  const before = calls.length;
  await page.clock.fastForward('31:00');
  await waitForCalls(calls, before + 1);
  const renewed = calls[before].answer;
  assert.notEqual(onPage.quoteId(renewed), onPage.quoteId(old));
  assert.deepEqual(calls[before].body, calls[before - 1].body);
  await waitForText(page.locator(onPage.notice), onPage.renewedText);
  await waitForText(page.locator('#live'), onPage.renewedText);
  await quoteShown(page, renewed, where);
  await waitForText(page.locator(onPage.countdown), /^Rate locked for (30:00|29:[0-5]\d)$/);
  return renewed;
}

/**
 * Sends the quote on screen with the server set to refuse it as expired (410, see
 * expireNextQuoteUse), and waits for the new quote the page then fetches on its own, shown
 * with its notice. Answers the request bodies refused, and the new quote.
 * @param {import('playwright-core').Page} page
 * @param {{body: any, answer: any}[]} calls
 * @param {QuotePage} where
 */
export async function quoteRenewedAfter410(page, calls, where) {
  const onPage = QUOTE_ON_PAGE[where];
  const refused = await expireNextQuoteUse(page, onPage.sendPath);
  const before = calls.length;
  await page.getByRole('button', { name: onPage.sendButton, exact: true }).click();
  await waitForCalls(calls, before + 1);
  const renewed = calls[before].answer;
  await waitForText(page.locator(onPage.notice), onPage.renewedText);
  await quoteShown(page, renewed, where);
  return { refused, renewed };
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
