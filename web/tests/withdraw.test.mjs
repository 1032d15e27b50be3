// Withdrawals in the browser: the server's fee preview, 'withdraw all', the server's refusals in
// place, one Idempotency-Key per submission (reused after a network error), the list;
// and the account page's balances and ledger paging.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assertBalances,
  call,
  checkA11y,
  closeCleanly,
  fillBankAndPassword,
  heading,
  openAsFundedMember,
  openFromNav,
  PAYMENT_PASSWORD,
  seeAllWithdrawals,
  shot,
  useBrowser,
  waitForText,
} from './helpers.mjs';

const browser = useBrowser();

describe('withdrawals', () => {
  test('account page: balances and the ledger with paging', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), { funds: { extraCollections: 4 } });
    await waitForText(page.locator('[data-testid="USD-available"]'), '1,504.00');
    await waitForText(page.locator('[data-testid="CNY-available"]'), '800.00');
    // 6 collections, each a `collection` entry and a settlement pair: 18 entries, 10 a page.
    const rows = page.locator('#transactions tbody tr');
    await waitForText(page.locator('#tx-page'), 'Page 1');
    assert.equal(await rows.count(), 10);
    await checkA11y(page, 'account with balances');
    await shot(page, 'withdraw-01-account-balances');
    await page.getByRole('button', { name: 'Next page' }).click();
    await waitForText(page.locator('#tx-page'), 'Page 2');
    assert.equal(await rows.count(), 8);
    assert.equal(await page.getByRole('button', { name: 'Next page' }).getAttribute('aria-disabled'), 'true');
    await shot(page, 'withdraw-02-account-transactions-page-2');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await waitForText(page.locator('#tx-page'), 'Page 1');
    // Only CNY: 3 entries.
    await page.getByLabel('Currency').selectOption('CNY');
    await page.waitForFunction(() => document.querySelectorAll('#transactions tbody tr').length === 3);
    await closeCleanly(context, problems);
  });

  test('a withdrawal with the fee preview, its result and the list', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), {
      at: 'withdraw',
      expectHttp: ['POST /v1/withdrawals/preview 422'],
    });

    await waitForText(page.locator('#wd-preview'), 'Enter an amount to see the fee');
    await page.getByLabel('Amount', { exact: true }).fill('500');
    await waitForText(page.locator('#wd-preview-amount'), '500.00 USD');
    await waitForText(page.locator('#wd-preview-fee'), '15.00 USD');
    await waitForText(page.locator('#wd-preview-net'), '485.00 USD');
    await waitForText(page.locator('#wd-fee-note'), 'Fee for USD → USD: 15.00 USD.');
    // Not more than the fee: the server's preview says so before sending.
    await page.getByLabel('Amount', { exact: true }).fill('15');
    await waitForText(page.locator('#wd-preview-error'), 'The amount must be more than the withdrawal fee (15.00 USD).');
    await page.getByLabel('Amount', { exact: true }).fill('500');
    await waitForText(page.locator('#wd-preview-net'), '485.00 USD');
    await fillBankAndPassword(page);
    await checkA11y(page, 'withdraw form with preview');
    await shot(page, 'withdraw-03-fee-preview');

    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await page.locator('#wd-result').waitFor();
    await waitForText(page.locator('#wd-result-amount'), '500.00 USD');
    await waitForText(page.locator('#wd-result-fee'), '15.00 USD');
    await waitForText(page.locator('#wd-result-net'), '485.00 USD');
    await waitForText(page.locator('#wd-result-status'), 'Processing');
    await waitForText(page.locator('#wd-result-bank'), 'ICBC · Li Wei · ****2233');
    await waitForText(page.locator('#live'), 'Withdrawal submitted');
    await checkA11y(page, 'withdrawal result');
    await shot(page, 'withdraw-04-result');

    await seeAllWithdrawals(page);
    const row = page.locator('#withdrawals tbody tr');
    assert.equal(await row.count(), 1);
    await waitForText(row, '500.00 USD');
    await waitForText(row, 'Processing');
    await checkA11y(page, 'withdrawals list');
    await shot(page, 'withdraw-05-list');

    // The payout processor reports it paid: the list shows it.
    const id = await row.getAttribute('data-id');
    const paid = await call('POST', `/internal/withdrawals/${id}/paid`, { internal: true, body: {} });
    assert.equal(paid.status, 200);
    await page.reload();
    await heading(page, 'Withdrawals');
    await waitForText(page.locator('#withdrawals tbody tr'), 'Paid');

    await closeCleanly(context, problems);
  });

  test("'withdraw all' fills the whole available amount", async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), { funds: { cny: '800.00' }, at: 'withdraw' });

    await page.getByLabel('Currency').selectOption('CNY');
    await waitForText(page.locator('#wd-amount-hint'), 'Available: 800.00 CNY');
    await page.getByRole('button', { name: 'Withdraw all' }).click();
    assert.equal(await page.getByLabel('Amount', { exact: true }).inputValue(), '800.00');
    await waitForText(page.locator('#wd-preview-fee'), '0.00 CNY');
    await waitForText(page.locator('#wd-preview-net'), '800.00 CNY');
    await fillBankAndPassword(page);
    await shot(page, 'withdraw-06-withdraw-all');
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-result-net'), '800.00 CNY');
    await shot(page, 'withdraw-07-withdraw-all-result');

    await openFromNav(page, 'account');
    await waitForText(page.locator('[data-testid="CNY-available"]'), '0.00');
    await waitForText(page.locator('[data-testid="CNY-in_transit"]'), '800.00');
    await waitForText(page.locator('[data-testid="USD-available"]'), '1,500.00');
    await closeCleanly(context, problems);
  });

  test('insufficient funds and a wrong payment password show in place, with the request id', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser(), {
      at: 'withdraw',
      expectHttp: ['POST /v1/withdrawals 422', 'POST /v1/withdrawals 403', 'POST /v1/withdrawals/preview 422'],
    });

    await page.getByLabel('Amount', { exact: true }).fill('2000');
    await waitForText(page.locator('#wd-preview-error'), 'The amount is more than your available balance (1,500.00 USD).');
    await fillBankAndPassword(page);
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    const amountError = page.locator('#wd-amount-error');
    await waitForText(amountError, 'The amount is more than your available balance (1,500.00 USD).');
    await waitForText(amountError, /Request ID: [0-9A-Z]{10,}/);
    assert.equal(await page.getByLabel('Amount', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('Payment password', { exact: true }).inputValue(), '', 'the password is not kept');
    await waitForText(page.locator('#live'), 'more than your available balance');
    await checkA11y(page, 'insufficient funds');
    await shot(page, 'withdraw-08-insufficient-funds');

    await page.getByLabel('Amount', { exact: true }).fill('100');
    await page.getByLabel('Payment password', { exact: true }).fill('Not-The-Key-1');
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-password-error'), 'The payment password is wrong. Attempts left: 4.');
    await shot(page, 'withdraw-09-wrong-payment-password');

    // Nothing moved.
    await assertBalances(member, { 'USD.available': '1500.00' });
    await closeCleanly(context, problems);
  });

  test('a retry after a network error sends the same Idempotency-Key and withdraws once', async () => {
    // The first answer is cut on the way back (below): Chromium notes the reset.
    const { member, context, page, problems } = await openAsFundedMember(browser(), {
      at: 'withdraw',
      expectConsole: ['Failed to load resource: net::ERR_CONNECTION_RESET'],
    });

    /** @type {string[]} */
    const keys = [];
    await page.route('**/v1/withdrawals', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      keys.push(request.headers()['idempotency-key']);
      if (keys.length === 1) {
        // The server takes the withdrawal, but its answer is lost on the way back.
        await route.fetch();
        return route.abort('connectionreset');
      }
      return route.continue();
    });

    await page.getByLabel('Amount', { exact: true }).fill('250.5');
    await fillBankAndPassword(page);
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#form-error'), 'The server could not be reached.');
    await waitForText(page.locator('#form-error'), 'the same request is resent');
    await shot(page, 'withdraw-10-network-error');

    await page.getByLabel('Payment password', { exact: true }).fill(PAYMENT_PASSWORD);
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-result-amount'), '250.50 USD');
    await waitForText(page.locator('#wd-result'), 'Your earlier attempt had already gone through');
    await shot(page, 'withdraw-11-retry-replayed');
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1], 'the retry reuses the key');
    assert.match(keys[0], /^web-[0-9a-f-]{32,36}$/);

    // Once only.
    const list = await call('GET', '/v1/withdrawals', { token: member.token });
    assert.equal(list.body.items.length, 1);
    await assertBalances(member, { 'USD.available': '1249.50' });

    // A new submission gets a new key.
    await page.getByRole('button', { name: 'Make another withdrawal' }).click();
    await page.getByLabel('Amount', { exact: true }).fill('100');
    await fillBankAndPassword(page);
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-result-amount'), '100.00 USD');
    assert.equal(keys.length, 3);
    assert.notEqual(keys[2], keys[0]);

    await page.unroute('**/v1/withdrawals');
    await closeCleanly(context, problems);
  });
});

