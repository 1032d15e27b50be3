// 中文 and English: the first choice from the browser's language, the switch (which keeps
// what was typed and translates errors already shown), and every contract error code
// having a message in both.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ApiError, errorMessage } from '../app/js/api.js';
import { errorCodes, messages, pickLang, setLang } from '../app/js/i18n.js';
import { formatMoney, parseAmount, toPlain } from '../app/js/money.js';
import {
  checkA11y,
  closeCleanly,
  createMember,
  GATEWAY_URL,
  heading,
  LOGIN_PASSWORD,
  openAsFundedMember,
  openPage,
  PAYMENT_PASSWORD,
  shot,
  submitSignIn,
  useBrowser,
  waitForText,
} from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));

describe('texts', () => {
  test('every error code of openapi.yaml has a message in English and in Chinese', () => {
    const spec = readFileSync(resolve(here, '..', '..', 'openapi.yaml'), 'utf8');
    const codes = new Set();
    for (const m of spec.matchAll(/urn:fund-account:problem:([a-z_]+)/g)) codes.add(m[1]);
    for (const m of spec.matchAll(/^\s+code: ([a-z][a-z0-9_]*)\s*$/gm)) codes.add(m[1]);
    for (const m of spec.matchAll(/code:\s*\n\s+(?:const: ([a-z_]+)|enum: \[([a-z_, ]+)\])/g)) {
      if (m[1]) codes.add(m[1]);
      else for (const c of m[2].split(',')) codes.add(c.trim());
    }
    assert.ok(codes.size >= 40, `found only ${codes.size} codes in openapi.yaml`);
    const missing = [...codes].filter(
      (c) => !messages.en[`error.${c}`] || !messages.zh[`error.${c}`],
    );
    assert.deepEqual(missing, []);
    for (const c of errorCodes) assert.match(messages.zh[`error.${c}`], /[\u4e00-\u9fff]/, c);
  });

  test('the refusals of fees, quotes and conversions read clearly in both languages, waits included', () => {
    const cases = [
      [409, 'account_not_active', {}],
      [422, 'amount_below_fee', { fee: '8.00' }, '8.00 USD'],
      [422, 'insufficient_funds', { available: '1500.00' }, '1,500.00 USD'],
      [422, 'unsupported_payout', {}],
      [422, 'quote_required', {}],
      [422, 'quote_mismatch', {}],
      [404, 'quote_not_found', {}],
      [410, 'quote_expired', {}],
      [409, 'quote_used', {}],
      [429, 'quote_limit', { retry_after: 1500 }, '25'],
      [503, 'fx_rate_unavailable', { retry_after: 60 }, '60'],
      [422, 'invalid_amount', {}],
      [422, 'invalid_currency_pair', {}],
    ];
    try {
      for (const lang of /** @type {const} */ (['en', 'zh'])) {
        setLang(lang);
        const seen = new Set();
        for (const [status, code, extra, shows] of cases) {
          const error = new ApiError({ status, code, problem: { status, code, detail: 'x', ...extra } });
          const text = errorMessage(error, { currency: 'USD' });
          assert.notEqual(text, messages[lang]['error.unknown_error'], `${lang} ${code}`);
          assert.doesNotMatch(text, /\{\w+\}/, `${lang} ${code}: ${text}`);
          if (shows) assert.ok(text.includes(shows), `${lang} ${code}: ${text} lacks ${shows}`);
          if (lang === 'zh') assert.match(text, /[\u4e00-\u9fff]/, code);
          seen.add(text);
        }
        // Each says its own thing.
        assert.equal(seen.size, cases.length, lang);
      }
      // The wait comes from the Retry-After header when the body has none.
      setLang('en');
      const limited = new ApiError({ status: 503, code: 'fx_rate_unavailable', problem: { code: 'fx_rate_unavailable' }, retryAfter: 30 });
      assert.match(errorMessage(limited), /try again in 30 s/);
    } finally {
      setLang('en');
    }
  });

  test('both languages have the same texts, with the same parameters', () => {
    assert.deepEqual(Object.keys(messages.zh).sort(), Object.keys(messages.en).sort());
    const params = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(messages.en)) {
      assert.deepEqual(params(messages.zh[key]), params(messages.en[key]), key);
    }
  });

  test("the first choice follows the browser's languages", () => {
    assert.equal(pickLang(['zh-CN', 'en'], null), 'zh');
    assert.equal(pickLang(['zh-Hant-TW'], null), 'zh');
    assert.equal(pickLang(['en-GB', 'zh-CN'], null), 'en');
    assert.equal(pickLang(['fr-FR'], null), 'en');
    assert.equal(pickLang(['fr-FR', 'zh'], null), 'zh');
    assert.equal(pickLang(['zh-CN'], 'en'), 'en');
  });

  test('money is parsed and shown without floating point', () => {
    assert.equal(parseAmount('10'), 1000n);
    assert.equal(parseAmount('10.5'), 1050n);
    assert.equal(parseAmount('0.07'), 7n);
    assert.equal(parseAmount('999999999999.99'), 99999999999999n);
    for (const bad of ['', '-1', '1e3', '1.234', '1,000', '1234567890123', '.5', '5.']) {
      assert.equal(parseAmount(bad), null, bad);
    }
    assert.equal(toPlain(parseAmount('0.1') + parseAmount('0.2')), '0.30');
    assert.equal(formatMoney('1234567.80'), '1,234,567.80');
    assert.equal(formatMoney('-250.00'), '-250.00');
  });
});

describe('language in the browser', () => {
  const browser = useBrowser();

  test('Chinese first for a Chinese browser; switching keeps the form and translates the error', async () => {
    const { memberId } = await createMember({ prefix: 'lang' });
    const { context, page, problems } = await openPage(browser(), {
      locale: 'zh-CN',
      expectHttp: ['POST /dev/login 401', 'POST /v1/activation 422'],
    });
    await page.goto(`${GATEWAY_URL}/`);
    await heading(page, '登录');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    await checkA11y(page, 'sign in, Chinese');
    await shot(page, 'language-01-sign-in-zh');

    await page.getByLabel('会员 ID').fill(memberId);
    await page.getByLabel('登录密码').fill('wrong-password');
    await page.getByRole('button', { name: '登录' }).click();
    await waitForText(page.locator('#form-error'), '会员 ID 或登录密码错误。');
    await waitForText(page.locator('#form-error'), /请求编号：[0-9A-Z]{10,}/);
    await waitForText(page.locator('#live'), '会员 ID 或登录密码错误');
    await checkA11y(page, 'sign-in error, Chinese');
    await shot(page, 'language-02-sign-in-error-zh');

    // Switch to English: the page, the error and its request id follow; the member id stays.
    await page.getByRole('button', { name: /^English/ }).click();
    await heading(page, 'Sign in');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await waitForText(page.locator('#form-error'), 'The member ID or the login password is wrong.');
    await waitForText(page.locator('#form-error'), /Request ID: [0-9A-Z]{10,}/);
    assert.equal(await page.getByLabel('Member ID').inputValue(), memberId);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'lang-toggle');
    await shot(page, 'language-03-sign-in-error-en');

    // The choice outlives a reload.
    await page.reload();
    await heading(page, 'Sign in');

    // Back to Chinese, sign in: the account, the activation page.
    await page.getByRole('button', { name: /^中文/ }).click();
    await heading(page, '登录');
    await submitSignIn(page, memberId, { lang: 'zh' });
    await waitForText(page.locator('#account-status'), '未激活');
    await checkA11y(page, 'account, Chinese');
    await shot(page, 'language-04-account-zh');

    await page.getByRole('link', { name: '立即激活' }).click();
    await heading(page, '创建支付密码');
    await waitForText(page.locator('#pw-rules'), '与登录密码不同');
    await page.getByLabel('支付密码', { exact: true }).fill(LOGIN_PASSWORD);
    await page.getByLabel('确认支付密码').fill(LOGIN_PASSWORD);
    await page.getByRole('button', { name: '确认' }).click();
    await waitForText(page.locator('#payment-password-error'), '支付密码不能与登录密码相同。');
    await checkA11y(page, 'payment password refused, Chinese');
    await shot(page, 'language-05-password-refused-zh');

    await closeCleanly(context, problems);
  });

  test('the withdraw page in Chinese: preview and a refusal', async () => {
    const { context, page, problems } = await openAsFundedMember(browser(), {
      locale: 'zh-CN',
      at: 'withdraw',
      expectHttp: ['POST /v1/withdrawals 422', 'POST /v1/withdrawals/preview 422'],
    });

    await page.getByLabel('提现金额', { exact: true }).fill('1000');
    await waitForText(page.locator('#wd-preview-fee'), '15.00 USD');
    await waitForText(page.locator('#wd-preview-net'), '985.00 USD');
    await waitForText(page.locator('#wd-fee-note'), 'USD → USD 手续费：15.00 USD。');
    await page.getByLabel('提现金额', { exact: true }).fill('3000');
    await waitForText(page.locator('#wd-preview-error'), '提现金额超过可用余额（1,500.00 USD）。');
    await page.getByLabel('开户名').fill('李伟');
    await page.getByLabel('银行账号').fill('6222020200112233');
    await page.getByLabel('开户银行').fill('中国工商银行');
    await page.getByLabel('支付密码', { exact: true }).fill(PAYMENT_PASSWORD);
    await page.getByRole('button', { name: '确认提现' }).click();
    await waitForText(page.locator('#wd-amount-error'), '提现金额超过可用余额（1,500.00 USD）。');
    await waitForText(page.locator('#wd-amount-error'), /请求编号：/);
    await checkA11y(page, 'withdraw, Chinese');
    await shot(page, 'language-06-withdraw-insufficient-zh');

    await page.getByRole('button', { name: /^English/ }).click();
    await heading(page, 'Withdraw');
    await waitForText(page.locator('#wd-amount-error'), 'The amount is more than your available balance (1,500.00 USD).');
    assert.equal(await page.getByLabel('Account holder name').inputValue(), '李伟');
    await shot(page, 'language-07-withdraw-insufficient-en');

    await closeCleanly(context, problems);
  });
});
