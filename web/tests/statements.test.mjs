// Statements in the browser: a month of one currency with movements of every kind the
// ledger has for a seller without conversions (collections, a refund, a settlement, a
// withdrawal paid with its fee line, one still in transit); opening + lines = closing on
// screen, paged with "Load more" through next_cursor; both languages; the CSV downloaded
// (Playwright's download event), read, parsed as RFC 4180, and checked to add up against
// what the page showed. And the empty month, a refused range, and an export that fails.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import {
  apiToken,
  call,
  checkA11y,
  closeCleanly,
  createMember,
  heading,
  openSignedIn,
  PAYMENT_PASSWORD,
  shot,
  uid,
  useBrowser,
  waitForText,
} from './helpers.mjs';

const browser = useBrowser();

const HEADER = [
  'id',
  'time',
  'type',
  'reference',
  'description',
  'available_change',
  'pending_change',
  'in_transit_change',
  'available_after',
  'pending_after',
  'in_transit_after',
];
const BUCKETS = ['available', 'pending', 'in_transit'];

/**
 * Parses RFC 4180 CSV: records end with CRLF (the last one too), fields may be quoted
 * ("" is a quote inside), and a quoted field may hold commas, quotes and line breaks.
 * Anything else (a bare LF, a quote inside an unquoted field, text after a closing quote)
 * is an error.
 * @param {string} text
 * @returns {string[][]}
 */
export function parseCsv(text) {
  /** @type {string[][]} */
  const records = [];
  /** @type {string[]} */
  let record = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let value = '';
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
          } else {
            i += 1;
            break;
          }
        } else {
          value += text[i];
          i += 1;
        }
      }
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`a quote inside an unquoted field at ${i}`);
        value += text[i];
        i += 1;
      }
    }
    record.push(value);
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      records.push(record);
      record = [];
      i += 2;
      continue;
    }
    throw new Error(`expected a comma or CRLF at ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`);
  }
  if (record.length) throw new Error('the last record does not end with CRLF');
  return records;
}

/** "1,500.00" or "-3.50" → minor units. */
function cents(text) {
  const s = text.trim().replace(/,/g, '');
  const m = /^(-?)(\d+)\.(\d{2})$/.exec(s);
  assert.ok(m, `not money: ${JSON.stringify(text)}`);
  const v = BigInt(m[2]) * 100n + BigInt(m[3]);
  return m[1] ? -v : v;
}

/** What the page shows for the opening or the closing balances, in minor units. */
async function shownBalances(page, which) {
  const out = {};
  for (const b of BUCKETS) out[b] = cents(await page.locator(`#st-${which}-${b}`).innerText());
  return out;
}

/** The lines on screen: id, type, reference, changes and afters (minor units). */
async function shownLines(page) {
  return page.locator('#st-lines tbody tr').evaluateAll((rows) =>
    rows.map((r) => {
      const cells = [...r.querySelectorAll('td')].map((c) => c.textContent || '');
      return { id: r.getAttribute('data-id'), type: r.getAttribute('data-type'), label: cells[1], reference: cells[2], money: cells.slice(4) };
    }),
  );
}

/** Checks opening + each line's changes = its balances after, and the last = closing. */
function assertAddsUp(opening, lines, closing, where) {
  let running = { ...opening };
  lines.forEach((line, index) => {
    for (const b of BUCKETS) {
      const expected = running[b] + line.change[b];
      assert.equal(line.after[b], expected, `${where}: line ${index + 1} (${line.id}) ${b}_after`);
    }
    running = { ...line.after };
  });
  assert.deepEqual(running, closing, `${where}: the last line's balances are the closing balances`);
}

/** A month's range as the page asks for it (UTC). */
function thisMonth(now = new Date()) {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  return {
    month: `${y}-${String(m + 1).padStart(2, '0')}`,
    from: new Date(Date.UTC(y, m, 1)).toISOString(),
    to: new Date(Date.UTC(y, m + 1, 1)).toISOString(),
  };
}

/**
 * An active member with a month of USD movements: a collection whose id starts with "-"
 * (so the CSV's reference cell is guarded with a "'"), a refund of part of it, both
 * settled, a second collection still pending, a withdrawal paid (its fee on its own line),
 * and another one still in transit. 8 lines.
 */
async function memberWithMovements() {
  const member = await createMember({ prefix: 'st' });
  const token = await apiToken(member.memberId);
  const activated = await call('POST', '/v1/activation', { token, body: { payment_password: PAYMENT_PASSWORD } });
  assert.equal(activated.status, 200, JSON.stringify(activated.body));
  const dashed = `-col-${uid()}`;
  const collect = async (collectionId, amount) => {
    const res = await call('POST', '/internal/collections', {
      internal: true,
      body: { collection_id: collectionId, member_id: member.memberId, currency: 'USD', amount },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  };
  await collect(dashed, '1000.00');
  const refund = await call('POST', '/internal/refunds', {
    internal: true,
    body: { refund_id: `ref-${uid()}`, collection_id: dashed, amount: '50.00' },
  });
  assert.equal(refund.status, 201, JSON.stringify(refund.body));
  const settled = await call('POST', '/dev/reconcile');
  assert.equal(settled.status, 200, JSON.stringify(settled.body));
  await collect(`col-${uid()}`, '200.00');
  const withdraw = async (amount) => {
    const res = await call('POST', '/v1/withdrawals', {
      token,
      headers: { 'idempotency-key': `web-${randomUUID()}` },
      body: {
        currency: 'USD',
        amount,
        payment_password: PAYMENT_PASSWORD,
        bank_account: { holder_name: 'Li Wei', account_number: '6222020200112233', bank_name: 'ICBC' },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id;
  };
  const paidId = await withdraw('300.00');
  const paid = await call('POST', `/internal/withdrawals/${paidId}/paid`, { internal: true, body: {} });
  assert.equal(paid.status, 200, JSON.stringify(paid.body));
  await withdraw('100.00');
  return { ...member, token, dashed, paidId };
}

describe('statements', () => {
  test('a month: opening + lines = closing on screen, in both languages, and the CSV downloaded adds up', async () => {
    const member = await memberWithMovements();
    const { month } = thisMonth();
    const { context, page, problems } = await openSignedIn(browser(), member.memberId);
    // Three lines a page, so that "Load more" follows next_cursor through the server's pages.
    /** @type {string[]} */
    const cursors = [];
    await page.route(
      (url) => url.pathname === '/v1/statements',
      (route) => {
        const url = new URL(route.request().url());
        url.searchParams.set('limit', '3');
        cursors.push(url.searchParams.get('cursor') || '');
        return route.continue({ url: url.toString() });
      },
    );
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Statements', exact: true }).click();
    await heading(page, 'Statements');
    assert.equal(await page.getByLabel('Currency', { exact: true }).inputValue(), 'USD');
    assert.equal(await page.getByLabel('Month', { exact: true }).inputValue(), month);
    await waitForText(page.locator('#st-month-hint'), 'first day at 00:00 UTC');
    await waitForText(page.locator('#st-range'), 'UTC');
    await waitForText(page.locator('#st-count'), 'Showing 3 lines. More lines follow.');
    await checkA11y(page, 'statements, first page');
    await page.getByRole('button', { name: 'Load more lines' }).click();
    await waitForText(page.locator('#st-count'), 'Showing 6 lines. More lines follow.');
    await page.getByRole('button', { name: 'Load more lines' }).click();
    await waitForText(page.locator('#st-count'), 'Showing 8 lines.');
    assert.equal(await page.locator('#st-more').count(), 0);
    assert.equal(cursors.length, 3);
    assert.equal(cursors[0], '');
    assert.ok(cursors[1] && cursors[2] && cursors[1] !== cursors[2]);

    const lines = await shownLines(page);
    // A payout and its fee are booked at the same instant: either may come first.
    const types = lines.map((l) => l.type);
    assert.deepEqual(types.slice(0, 5), ['collection', 'refund', 'collection_settled', 'collection', 'withdrawal']);
    assert.deepEqual(types.slice(5, 7).sort(), ['withdrawal_fee', 'withdrawal_paid']);
    assert.equal(types[7], 'withdrawal');
    const fee = lines.find((l) => l.type === 'withdrawal_fee');
    assert.equal(fee?.label, 'Withdrawal fee');
    assert.equal(fee?.reference, member.paidId);
    assert.equal(lines[0].reference, member.dashed);
    const onScreen = lines.map((l) => ({
      id: l.id,
      change: Object.fromEntries(BUCKETS.map((b, i) => [b, cents(l.money[i])])),
      after: Object.fromEntries(BUCKETS.map((b, i) => [b, cents(l.money[3 + i])])),
    }));
    const opening = await shownBalances(page, 'opening');
    const closing = await shownBalances(page, 'closing');
    assert.deepEqual(opening, { available: 0n, pending: 0n, in_transit: 0n });
    // 1000 - 50 settled, - 300 - 100 withdrawn; 200 pending; 100 in transit (the 300 paid).
    assert.deepEqual(closing, { available: 55000n, pending: 20000n, in_transit: 10000n });
    assertAddsUp(opening, onScreen, closing, 'on screen');
    await waitForText(page.locator('#st-total-collected'), '1,200.00 USD');
    await waitForText(page.locator('#st-total-refunded'), '50.00 USD');
    // Withdrawn counts the withdrawals paid (fee included), not the one still in transit.
    await waitForText(page.locator('#st-total-withdrawn'), '300.00 USD');
    await waitForText(page.locator('#st-total-fees'), '15.00 USD');
    await checkA11y(page, 'statements, all lines');
    await shot(page, 'statements-01-month');

    // 中文: the same statement, translated; the lines stay.
    await page.locator('#lang-toggle').click();
    await heading(page, '对账单');
    await waitForText(page.locator('#st-lines tr[data-type="withdrawal_fee"] td:nth-child(2)'), '提现手续费');
    await waitForText(page.locator('#st-count'), '已显示 8 条记录。');
    assert.equal(await page.locator('#st-lines tbody tr').count(), 8);
    await waitForText(page.locator('#st-opening th'), '期初余额');
    await waitForText(page.locator('#st-closing th'), '期末余额');
    await checkA11y(page, 'statements in Chinese');

    // Download CSV: the export is asked for, polled, and downloaded from its signed URL.
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 20000 }),
      page.getByRole('button', { name: '下载 CSV' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^statement-USD-.*\.csv$/);
    await waitForText(page.locator('#st-download-status'), 'CSV 文件（8 条记录）正在下载。');
    await checkA11y(page, 'statements, downloaded');
    await shot(page, 'statements-02-downloaded-zh');
    const bytes = await readFile(/** @type {string} */ (await download.path()));
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the file starts with the UTF-8 BOM');
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(3));
    assert.ok(!/(^|[^\r])\n/.test(text), 'every line break is CRLF');
    const [header, ...rows] = parseCsv(text);
    assert.deepEqual(header, HEADER);
    assert.equal(rows.length, lines.length, 'one row per line shown');
    for (const row of rows) assert.equal(row.length, HEADER.length);
    const csv = rows.map((row) => Object.fromEntries(HEADER.map((name, i) => [name, row[i]])));
    assert.deepEqual(csv.map((r) => r.id), lines.map((l) => l.id));
    assert.deepEqual(csv.map((r) => r.type), lines.map((l) => l.type));
    // Chinese survives; a text cell starting with "-" is guarded against spreadsheet formulas.
    const feeRow = csv.find((r) => r.type === 'withdrawal_fee');
    assert.equal(feeRow?.description, 'Withdrawal fee / 提现手续费');
    assert.equal(feeRow?.reference, member.paidId);
    assert.equal(csv[0].description, 'Order collected / 订单收款');
    assert.equal(csv[0].reference, `'${member.dashed}`);
    assert.equal(csv[0].time, new Date(csv[0].time).toISOString());
    const inFile = csv.map((r) => ({
      id: r.id,
      change: Object.fromEntries(BUCKETS.map((b) => [b, cents(r[`${b}_change`])])),
      after: Object.fromEntries(BUCKETS.map((b) => [b, cents(r[`${b}_after`])])),
    }));
    assertAddsUp(opening, inFile, closing, 'the CSV');
    assert.deepEqual(inFile, onScreen);
    await closeCleanly(context, problems);
  });

  test('an empty month, another currency and month, a refused range, and an export that fails', async () => {
    const member = await createMember({ prefix: 'st' });
    const { context, page, problems } = await openSignedIn(browser(), member.memberId, {
      at: 'statements',
      expectHttp: ['GET /v1/statements 422'],
    });
    await waitForText(page.locator('#st-empty'), 'No movements in this month.');
    for (const which of ['opening', 'closing']) {
      for (const b of BUCKETS) assert.equal(await page.locator(`#st-${which}-${b}`).innerText(), '0.00');
    }
    await checkA11y(page, 'statements, empty');
    await shot(page, 'statements-03-empty');

    // Another currency and month: January 2026 in CNY, [2026-01-01, 2026-02-01) UTC.
    const asked = [];
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.pathname === '/v1/statements') asked.push(Object.fromEntries(url.searchParams));
    });
    await page.getByLabel('Currency', { exact: true }).selectOption('CNY');
    await page.getByLabel('Month', { exact: true }).fill('2026-01');
    await page.getByRole('button', { name: 'Show statement' }).click();
    await waitForText(page.locator('#st-summary-title'), 'CNY statement, January 2026');
    assert.deepEqual(asked.at(-1), { currency: 'CNY', from: '2026-01-01T00:00:00.000Z', to: '2026-02-01T00:00:00.000Z', limit: '100' });
    await waitForText(page.locator('#st-empty'), 'No movements in this month.');

    // No month: said in place, nothing asked of the server.
    const askedBefore = asked.length;
    await page.getByLabel('Month', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Show statement' }).click();
    await waitForText(page.locator('#st-month-error'), 'Choose a month, e.g. 2026-11.');
    assert.equal(await page.getByLabel('Month', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(asked.length, askedBefore);
    await checkA11y(page, 'statements, no month');
    await page.getByLabel('Month', { exact: true }).fill('2026-01');

    // A refusal of the server, in place with its request id.
    await page.route(
      (url) => url.pathname === '/v1/statements',
      (route) =>
        route.fulfill({
          status: 422,
          contentType: 'application/problem+json',
          headers: { 'x-request-id': 'E2ESTATEMENTRANGE01' },
          body: JSON.stringify({ type: 'urn:fund-account:problem:invalid_range', title: 'Unprocessable Entity', status: 422, detail: 'x', code: 'invalid_range' }),
        }),
    );
    await page.getByRole('button', { name: 'Show statement' }).click();
    await waitForText(page.locator('#form-error'), 'Choose a period of at most 366 days');
    await waitForText(page.locator('#form-error'), 'Request ID: E2ESTATEMENTRANGE01');
    await waitForText(page.locator('#live'), 'Choose a period of at most 366 days');
    await checkA11y(page, 'statements, refused range');
    await page.unroute((url) => url.pathname === '/v1/statements');

    // An export the server gives up on: the status says so, and nothing is downloaded.
    await page.route(
      (url) => url.pathname.startsWith('/v1/statements/exports/'),
      async (route) => {
        const res = await route.fetch();
        const body = await res.json();
        return route.fulfill({ response: res, json: { ...body, status: 'failed', download_url: null } });
      },
    );
    let downloads = 0;
    page.on('download', () => {
      downloads += 1;
    });
    await page.getByRole('button', { name: 'Download CSV' }).click();
    await waitForText(page.locator('#st-download-status'), 'The CSV file could not be prepared. Please try again.');
    await waitForText(page.locator('#live'), 'The CSV file could not be prepared.');
    assert.equal(downloads, 0);
    await checkA11y(page, 'statements, export failed');
    await shot(page, 'statements-04-export-failed');
    await closeCleanly(context, problems);
  });
});

describe('statements: the CSV parser of these tests', () => {
  test('quotes, doubled quotes, commas and line breaks in quotes; CRLF required', () => {
    assert.deepEqual(parseCsv('a,"b,c","d""e"\r\n"x\r\ny",,z\r\n'), [
      ['a', 'b,c', 'd"e'],
      ['x\r\ny', '', 'z'],
    ]);
    assert.throws(() => parseCsv('a,b\n'));
    assert.throws(() => parseCsv('a,b'));
    assert.throws(() => parseCsv('a"b\r\n'));
    assert.throws(() => parseCsv('"a"b\r\n'));
  });
});
