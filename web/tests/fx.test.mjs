// Fees and withdrawals across currencies in the browser (issue 12): the fee schedule on the
// account page, the server's preview (the fee shown is the fee charged), a USD balance paid
// to a CNY bank through a locked quote with its countdown, and an expired quote: when the
// countdown runs out (the browser's clock moved with page.clock) or the server answers
// 410 quote_expired, the page previews again and never sends the old quote.

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
  PAYMENT_PASSWORD,
  pressForQuote,
  quoteRenewedAfter410,
  quoteRenewedByClock,
  recordCalls,
  seeAllWithdrawals,
  shot,
  useBrowser,
  waitForCalls,
  waitForText,
} from './helpers.mjs';

const browser = useBrowser();

/** Asks for a USD → CNY withdrawal's rate and waits for it; answers the preview. */
async function previewToCny(page, previews, amount) {
  await page.getByLabel('Paid to a bank account in').selectOption('CNY');
  await page.getByLabel('Amount', { exact: true }).fill(amount);
  return pressForQuote(page, previews, 'Get the rate', 'withdraw');
}

describe('fees and withdrawals across currencies', () => {
  test('the account page shows the fee schedule of GET /v1/fees', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser());
    const schedule = await call('GET', '/v1/fees', { token: member.token });
    assert.equal(schedule.status, 200);

    const rows = page.locator('#fees tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), schedule.body.withdrawal.length);
    for (const r of schedule.body.withdrawal) {
      const row = page.locator(`#fees tr[data-pair="${r.currency}-${r.payout_currency}"]`);
      await waitForText(row, `${r.currency} → ${r.payout_currency}`);
      await waitForText(row, `${r.percent} %`);
      if (r.max === null) await waitForText(row, 'No cap');
    }
    // The contract's defaults: USD→USD 15.00; USD→CNY 0.30 %, at least 8.00 USD; CNY→CNY free.
    await waitForText(page.locator('#fees tr[data-pair="USD-USD"]'), '15.00 USD');
    await waitForText(page.locator('#fees tr[data-pair="USD-CNY"]'), '0.30 % (at least 8.00 USD)');
    await waitForText(page.locator('#fees tr[data-pair="CNY-CNY"]'), 'Free');
    await checkA11y(page, 'account with the fee schedule');
    await shot(page, 'fx-01-account-fee-schedule');

    await page.getByRole('button', { name: /^中文/ }).click();
    await heading(page, '资金账户');
    await waitForText(page.locator('#fees-title'), '提现手续费');
    await waitForText(page.locator('#fees tr[data-pair="USD-CNY"]'), '0.30%（最低 8.00 USD）');
    await checkA11y(page, 'fee schedule, Chinese');
    await shot(page, 'fx-02-account-fee-schedule-zh');
    await closeCleanly(context, problems);
  });

  test('a same-currency withdrawal shows the fee the server previews, and is charged it', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), {
      at: 'withdraw',
      expectHttp: ['POST /v1/withdrawals/preview 422'],
    });
    const previews = recordCalls(page, 'POST', '/v1/withdrawals/preview');

    // Only the balance's own currency for CNY; USD may go to a USD or a CNY bank.
    await page.getByLabel('Currency').selectOption('CNY');
    assert.deepEqual(await page.locator('#wd-payout option').evaluateAll((os) => os.map((o) => o.getAttribute('value'))), ['CNY']);
    await page.getByLabel('Currency').selectOption('USD');
    assert.deepEqual(await page.locator('#wd-payout option').evaluateAll((os) => os.map((o) => o.getAttribute('value'))), ['USD', 'CNY']);
    assert.equal(await page.getByLabel('Paid to a bank account in').inputValue(), 'USD', 'a new balance currency pays out in itself');

    await page.getByLabel('Amount', { exact: true }).fill('700');
    await waitForText(page.locator('#wd-preview-net'), '685.00 USD');
    const shown = previews.at(-1);
    assert.deepEqual(shown.body, { currency: 'USD', amount: '700.00', payout_currency: 'USD' });
    assert.equal(shown.answer.fee, '15.00');
    assert.equal(shown.answer.quote_id, null);
    await waitForText(page.locator('#wd-preview-fee'), `${shown.answer.fee} USD`);
    await waitForText(page.locator('#wd-fee-note'), 'Fee for USD → USD: 15.00 USD.');
    assert.equal(await page.locator('#wd-countdown').count(), 0, 'no quote, no countdown');

    // Not more than the fee: the server says so in the preview.
    await page.getByLabel('Amount', { exact: true }).fill('15');
    await waitForText(page.locator('#wd-preview-error'), 'The amount must be more than the withdrawal fee (15.00 USD).');
    await page.getByLabel('Amount', { exact: true }).fill('700');
    await waitForText(page.locator('#wd-preview-fee'), '15.00 USD');
    await fillBankAndPassword(page);
    await checkA11y(page, 'same-currency preview');
    await shot(page, 'fx-03-withdraw-same-currency-preview');

    const submits = recordCalls(page, 'POST', '/v1/withdrawals');
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-result-fee'), '15.00 USD');
    await waitForText(page.locator('#wd-result-net'), '685.00 USD');
    assert.equal(submits.length, 1);
    assert.equal(submits[0].body.payout_currency, 'USD');
    assert.equal('quote_id' in submits[0].body, false);
    assert.equal(submits[0].answer.fee, shown.answer.fee, 'the fee charged is the fee shown');
    await closeCleanly(context, problems);
  });

  test('USD to a CNY bank: the preview locks a rate, shows what reaches the bank, and the withdrawal uses its quote', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser(), { rate: '7.20', at: 'withdraw' });
    const previews = recordCalls(page, 'POST', '/v1/withdrawals/preview');
    const submits = recordCalls(page, 'POST', '/v1/withdrawals');

    await page.getByLabel('Paid to a bank account in').selectOption('CNY');
    await page.getByLabel('Amount', { exact: true }).fill('1000');
    // A quote counts against the member's open quotes: none is asked for while typing.
    await waitForText(page.locator('#wd-preview'), 'Get the exchange rate to see the fee and what reaches your bank');
    assert.equal(previews.length, 0);
    await page.getByLabel('Amount', { exact: true }).fill('');
    const p = await previewToCny(page, previews, '1000');
    assert.deepEqual(previews[0].body, { currency: 'USD', amount: '1000.00', payout_currency: 'CNY' });
    assert.match(p.quote_id, /^fxq_/);
    // 0.30 % of 1000.00 is 3.00, raised to the 8.00 minimum; 7.20 less the 0.50 % markup is
    // 7.164000; 992.00 × 7.164 = 7106.688, rounded down to the fen.
    assert.deepEqual(
      { fee: p.fee, net: p.net_amount, rate: p.rate, payout: p.payout_amount },
      { fee: '8.00', net: '992.00', rate: '7.164000', payout: '7106.68' },
    );
    await waitForText(page.locator('#wd-preview-fee'), '8.00 USD');
    await waitForText(page.locator('#wd-preview-net'), '992.00 USD');
    await waitForText(page.locator('#wd-preview-rate'), '1 USD = 7.164000 CNY');
    await waitForText(page.locator('#wd-preview-payout'), '7,106.68 CNY');
    await waitForText(page.locator('#wd-countdown'), /^Rate locked for (30:00|29:[0-5]\d)$/);
    await waitForText(page.locator('#wd-fee-note'), 'Fee for USD → CNY: 0.30 % (at least 8.00 USD).');
    // The countdown runs.
    const first = await page.locator('#wd-countdown').textContent();
    await waitForText(page.locator('#wd-countdown'), new RegExp(`^(?!${first}$)Rate locked for 29:`), 5000);
    await fillBankAndPassword(page);
    await checkA11y(page, 'cross-currency preview');
    await shot(page, 'fx-04-withdraw-usd-to-cny-preview');

    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await page.locator('#wd-result').waitFor();
    assert.equal(submits.length, 1);
    const sent = submits[0];
    assert.equal(sent.body.payout_currency, 'CNY');
    assert.equal(sent.body.quote_id, p.quote_id);
    assert.match(sent.headers['idempotency-key'], /^web-[0-9a-f-]{32,36}$/);
    assert.equal(sent.status, 201);
    await waitForText(page.locator('#wd-result-amount'), '1,000.00 USD');
    await waitForText(page.locator('#wd-result-fee'), '8.00 USD');
    await waitForText(page.locator('#wd-result-rate'), '1 USD = 7.164000 CNY');
    await waitForText(page.locator('#wd-result-payout'), '7,106.68 CNY');
    await waitForText(page.locator('#live'), 'Reaches your bank: 7,106.68 CNY');
    await checkA11y(page, 'cross-currency result');
    await shot(page, 'fx-05-withdraw-usd-to-cny-result');

    await seeAllWithdrawals(page);
    await waitForText(page.locator('#withdrawals tbody tr'), 'to the bank: 7,106.68 CNY');
    await assertBalances(member, { 'USD.available': '500.00', 'USD.in_transit': '1000.00' });
    await closeCleanly(context, problems);
  });

  test('an expired quote is never sent: the countdown and a 410 quote_expired both bring a new preview', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), {
      rate: '7.20',
      at: 'withdraw',
      clock: true,
      expectHttp: ['POST /v1/withdrawals 410'],
    });
    const previews = recordCalls(page, 'POST', '/v1/withdrawals/preview');
    const submits = recordCalls(page, 'POST', '/v1/withdrawals');

    const old = await previewToCny(page, previews, '200');
    await fillBankAndPassword(page);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'wd-password');
    // The seller looks away for 31 minutes: past expires_at on the browser's clock.
    const renewed = await quoteRenewedByClock(page, previews, old, 'withdraw');
    assert.equal(submits.length, 0, 'nothing was sent while the rate was renewed');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'wd-password', 'the focus stays where the seller was');
    await checkA11y(page, 'rate refreshed after the countdown');
    await shot(page, 'fx-06-withdraw-quote-refreshed');

    // The server has its own clock: it may still say the quote is over (410).
    const after410 = await quoteRenewedAfter410(page, previews, 'withdraw');
    const third = after410.renewed;
    assert.equal(after410.refused.length, 1);
    assert.equal(after410.refused[0].quote_id, renewed.quote_id);
    assert.equal(await page.locator('#wd-result').count(), 0, 'not submitted again on its own');
    await shot(page, 'fx-07-withdraw-quote-expired-410');

    await page.getByLabel('Payment password', { exact: true }).fill(PAYMENT_PASSWORD);
    await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
    await waitForText(page.locator('#wd-result-payout'), `${third.payout_amount.replace(/\B(?=(\d{3})+(?!\d))/g, ',')} CNY`);
    // The result can be on screen before the recorder has read the answer's body.
    await waitForCalls(submits, 2);
    const sentQuotes = submits.map((s) => s.body.quote_id);
    assert.deepEqual(sentQuotes, [renewed.quote_id, third.quote_id]);
    assert.ok(!sentQuotes.includes(old.quote_id), 'the expired quote was never sent');
    assert.equal(submits[1].status, 201);

    await closeCleanly(context, problems);
  });
});
