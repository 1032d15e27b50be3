// The Convert page in the browser (issue 12): a quote with the rate, the mid-market rate and
// the markup and its countdown; the conversion on it (one Idempotency-Key per quote), the
// result, the balances and the list; buy-exact; and an expired quote, by the browser's
// clock (page.clock) or by the server's 410, replaced by a new quote and never converted.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assertBalances,
  call,
  checkA11y,
  closeCleanly,
  fundedMember,
  openAsFundedMember,
  openFromNav,
  openSignedIn,
  pressForQuote,
  quoteRenewedAfter410,
  quoteRenewedByClock,
  recordCalls,
  setReferenceRate,
  shot,
  useBrowser,
  waitForCalls,
  waitForText,
} from './helpers.mjs';

const browser = useBrowser();

/** Asks for a quote and waits for it; answers the quote. */
function getQuote(page, quotes) {
  return pressForQuote(page, quotes, 'Get a quote', 'convert');
}

describe('conversions', () => {
  test('a conversion: the quote with mid rate and markup, Convert, the result, the balances and the list', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), { rate: '7.20', at: 'convert' });
    const quotes = recordCalls(page, 'POST', '/v1/fx/quotes');
    const conversions = recordCalls(page, 'POST', '/v1/conversions');
    await waitForText(page.locator('.empty'), 'No conversions yet.');
    await checkA11y(page, 'convert, empty');

    // Choosing the currency to get flips the other one.
    await page.getByLabel('You get', { exact: true }).selectOption('USD');
    assert.equal(await page.getByLabel('You sell', { exact: true }).inputValue(), 'CNY');
    await page.getByLabel('You sell', { exact: true }).selectOption('USD');
    assert.equal(await page.getByLabel('You get', { exact: true }).inputValue(), 'CNY');

    await page.getByLabel('Amount to sell (USD)').fill('100');
    const q = await getQuote(page, quotes);
    assert.deepEqual(quotes[0].body, { sell_currency: 'USD', buy_currency: 'CNY', sell_amount: '100.00' });
    assert.match(q.id, /^fxq_/);
    // 7.20 less the 0.50 % markup is 7.164000; 100.00 USD buys 716.40 CNY.
    assert.deepEqual(
      { rate: q.rate, mid: q.mid_rate, markup: q.markup_percent, sell: q.sell_amount, buy: q.buy_amount },
      { rate: '7.164000', mid: '7.20000000', markup: '0.50', sell: '100.00', buy: '716.40' },
    );
    await waitForText(page.locator('#cv-quote-sell'), '100.00 USD');
    await waitForText(page.locator('#cv-quote-buy'), '716.40 CNY');
    await waitForText(page.locator('#cv-quote-rate'), '1 USD = 7.164000 CNY');
    await waitForText(page.locator('#cv-quote-mid'), '1 USD = 7.20000000 CNY');
    await waitForText(page.locator('#cv-quote-markup'), '0.50 %');
    await waitForText(page.locator('#cv-countdown'), /^Rate locked for (30:00|29:[0-5]\d)$/);
    await waitForText(page.locator('#live'), 'Your quote: 100.00 USD → 716.40 CNY');
    await checkA11y(page, 'convert with a quote');
    await shot(page, 'convert-01-quote');

    await page.getByRole('button', { name: 'Convert', exact: true }).click();
    await waitForText(page.locator('#cv-result-sell'), '100.00 USD');
    await waitForText(page.locator('#cv-result-buy'), '716.40 CNY');
    await waitForText(page.locator('#cv-result-rate'), '1 USD = 7.164000 CNY');
    await waitForText(page.locator('#cv-balances'), 'Available now: 1,400.00 USD · 1,516.40 CNY.');
    await waitForText(page.locator('#live'), 'Converted: 100.00 USD → 716.40 CNY');
    assert.equal(conversions.length, 1);
    assert.deepEqual(conversions[0].body, { quote_id: q.id });
    assert.match(conversions[0].headers['idempotency-key'], /^web-[0-9a-f-]{32,36}$/);
    assert.equal(conversions[0].status, 201);
    const row = page.locator('#conversions tbody tr');
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute('data-id'), conversions[0].answer.id);
    await waitForText(row, '716.40 CNY');
    await checkA11y(page, 'conversion result and list');
    await shot(page, 'convert-02-result-and-list');

    // The account page: balances and the ledger's conversion entries.
    await openFromNav(page, 'account');
    await waitForText(page.locator('[data-testid="USD-available"]'), '1,400.00');
    await waitForText(page.locator('[data-testid="CNY-available"]'), '1,516.40');
    await waitForText(page.locator('#transactions'), 'Converted to another currency');
    await waitForText(page.locator('#transactions'), 'Converted from another currency');
    await closeCleanly(context, problems);
  });

  test('buy-exact, in Chinese: the amount to get, the amount to sell rounded up', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser(), {
      rate: '7.20',
      locale: 'zh-CN',
      at: 'convert',
    });
    const quotes = recordCalls(page, 'POST', '/v1/fx/quotes');

    await page.getByLabel('买入金额', { exact: true }).check();
    await page.getByLabel('买入金额（CNY）').fill('1000');
    await page.getByRole('button', { name: '获取报价' }).click();
    await waitForCalls(quotes, 1);
    assert.deepEqual(quotes[0].body, { sell_currency: 'USD', buy_currency: 'CNY', buy_amount: '1000.00' });
    // 1000.00 ÷ 7.164 = 139.586…, rounded up to the cent.
    assert.equal(quotes[0].answer.sell_amount, '139.59');
    await waitForText(page.locator('#cv-quote-sell'), '139.59 USD');
    await waitForText(page.locator('#cv-quote-buy'), '1,000.00 CNY');
    await waitForText(page.locator('#cv-quote-markup'), '0.50 %');
    await waitForText(page.locator('#cv-countdown'), /^汇率锁定剩余 (30:00|29:[0-5]\d)$/);
    await checkA11y(page, 'convert buy-exact, Chinese');
    await shot(page, 'convert-03-buy-exact-zh');

    await page.getByRole('button', { name: '确认换汇' }).click();
    await waitForText(page.locator('#cv-result-buy'), '1,000.00 CNY');
    await waitForText(page.locator('#cv-result'), '换汇成功');
    await assertBalances(member, { 'USD.available': '1360.41', 'CNY.available': '1800.00' });
    await closeCleanly(context, problems);
  });

  test('refusals in place: more than the available balance, and the limit of open quotes with its wait', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser(), {
      rate: '7.20',
      at: 'convert',
      expectHttp: ['POST /v1/conversions 422', 'POST /v1/fx/quotes 429'],
    });
    const quotes = recordCalls(page, 'POST', '/v1/fx/quotes');

    // A quote reserves nothing: it can be for more than the balance; the conversion cannot.
    await page.getByLabel('Amount to sell (USD)').fill('2000');
    await getQuote(page, quotes);
    await page.getByRole('button', { name: 'Convert', exact: true }).click();
    await waitForText(page.locator('#form-error'), 'The amount is more than your available balance (1,500.00 USD).');
    await waitForText(page.locator('#form-error'), /Request ID: [0-9A-Z]{10,}/);
    await waitForText(page.locator('#live'), 'more than your available balance');
    await checkA11y(page, 'conversion refused: insufficient funds');
    await shot(page, 'convert-05-insufficient-funds');

    // Nine more open quotes (ten with the one on screen): the eleventh waits.
    for (let i = 0; i < 9; i += 1) {
      const res = await call('POST', '/v1/fx/quotes', {
        token: member.token,
        body: { sell_currency: 'USD', buy_currency: 'CNY', sell_amount: '1.00' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    await page.getByLabel('Amount to sell (USD)').fill('20');
    await page.getByRole('button', { name: 'Get a quote' }).click();
    await waitForCalls(quotes, 2);
    assert.equal(quotes[1].status, 429);
    await waitForText(page.locator('#form-error'), /You already have 10 open quotes, the most at once\. Try again in \d+ min, when the oldest expires\./);
    assert.equal(await page.locator('#cv-quote').count(), 0);
    await checkA11y(page, 'quote refused: quote_limit');
    await shot(page, 'convert-06-quote-limit');
    await assertBalances(member, { 'USD.available': '1500.00' });
    await closeCleanly(context, problems);
  });

  test('the list of conversions pages through next_cursor', async () => {
    await setReferenceRate('USD-CNY', '7.20');
    const m = await fundedMember();
    for (let i = 1; i <= 12; i += 1) {
      const q = await call('POST', '/v1/fx/quotes', {
        token: m.token,
        body: { sell_currency: 'USD', buy_currency: 'CNY', sell_amount: `${i}.00` },
      });
      assert.equal(q.status, 201, JSON.stringify(q.body));
      const c = await call('POST', '/v1/conversions', {
        token: m.token,
        headers: { 'idempotency-key': `e2e-${m.memberId}-${i}` },
        body: { quote_id: q.body.id },
      });
      assert.equal(c.status, 201, JSON.stringify(c.body));
    }
    const { context, page, problems } = await openSignedIn(browser(), m.memberId, { at: 'convert' });
    const rows = page.locator('#conversions tbody tr');
    await waitForText(page.locator('#cvs-page'), 'Page 1');
    assert.equal(await rows.count(), 10);
    await waitForText(rows.first(), '12.00 USD');
    await page.getByRole('button', { name: 'Next page' }).click();
    await waitForText(page.locator('#cvs-page'), 'Page 2');
    assert.equal(await rows.count(), 2);
    await waitForText(rows.last(), '1.00 USD');
    assert.equal(await page.getByRole('button', { name: 'Next page' }).getAttribute('aria-disabled'), 'true');
    await checkA11y(page, 'conversions, page 2');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await waitForText(page.locator('#cvs-page'), 'Page 1');
    await closeCleanly(context, problems);
  });

  test('an expired quote is never converted: the countdown and a 410 quote_expired both bring a new quote', async () => {
    const { member, context, page, problems } = await openAsFundedMember(browser(), {
      rate: '7.20',
      at: 'convert',
      clock: true,
      expectHttp: ['POST /v1/conversions 410'],
    });
    const quotes = recordCalls(page, 'POST', '/v1/fx/quotes');
    const conversions = recordCalls(page, 'POST', '/v1/conversions');

    await page.getByLabel('Amount to sell (USD)').fill('50');
    const old = await getQuote(page, quotes);
    const renewed = await quoteRenewedByClock(page, quotes, old, 'convert');
    assert.equal(conversions.length, 0);
    await checkA11y(page, 'quote refreshed after the countdown');
    await shot(page, 'convert-04-quote-refreshed');

    const after410 = await quoteRenewedAfter410(page, quotes, 'convert');
    const third = after410.renewed;
    assert.deepEqual(after410.refused, [{ quote_id: renewed.id }]);
    assert.equal(await page.locator('#cv-result').count(), 0, 'not converted on its own');

    await page.getByRole('button', { name: 'Convert', exact: true }).click();
    await waitForText(page.locator('#cv-result-sell'), '50.00 USD');
    // The result can be on screen before the recorder has read the answer's body.
    await waitForCalls(conversions, 2);
    const sent = conversions.map((c) => c.body.quote_id);
    assert.deepEqual(sent, [renewed.id, third.id]);
    assert.ok(!sent.includes(old.id), 'the expired quote was never sent');
    const keys = conversions.map((c) => c.headers['idempotency-key']);
    assert.notEqual(keys[0], keys[1], 'a new quote, a new Idempotency-Key');
    const list = await call('GET', '/v1/conversions', { token: member.token });
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].quote_id, third.id);
    await closeCleanly(context, problems);
  });
});
