// Activation in the browser: 'Activate now' → payment password page → Confirm → SMS code
// page (with a bound phone) → done; and the same without a phone, by keyboard only.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  apiToken,
  call,
  checkA11y,
  closeCleanly,
  countRequests,
  createMember,
  GATEWAY_URL,
  heading,
  LOGIN_PASSWORD,
  openPage,
  PAYMENT_PASSWORD,
  randomPhone,
  shot,
  signIn,
  smsFor,
  storageDump,
  submitSignIn,
  useBrowser,
  waitForCode,
  waitForText,
} from './helpers.mjs';

const browser = useBrowser();

/**
 * Presses Tab until the focused element's accessible name is `name` (keyboard only).
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function tabTo(page, name, max = 40) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = /** @type {HTMLElement | null} */ (document.activeElement);
      if (!el) return '';
      const input = /** @type {HTMLInputElement} */ (el);
      if (input.labels && input.labels.length) return input.labels[0].textContent?.trim() ?? '';
      return (el.getAttribute('aria-label') || el.textContent || '').trim();
    });
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

/** Only the session token and the language choice may be in web storage. */
async function assertNothingSecretStored(page, ...secrets) {
  const dump = JSON.parse(await storageDump(page));
  assert.deepEqual(Object.keys(dump.session).filter((k) => k !== 'fa.session'), []);
  assert.deepEqual(Object.keys(dump.local).filter((k) => k !== 'fa.lang'), []);
  if (dump.session['fa.session']) {
    assert.deepEqual(Object.keys(JSON.parse(dump.session['fa.session'])).sort(), ['expiresAt', 'token']);
  }
  for (const secret of secrets) assert.ok(!JSON.stringify(dump).includes(secret), 'a secret is in web storage');
}

describe('activation', () => {
  test('with a bound phone: password page, SMS code from /dev/sms, a wrong code, done', async () => {
    const phone = randomPhone();
    const { memberId } = await createMember({ phone, prefix: 'act' });
    const { context, page, problems } = await openPage(browser(), {
      expectHttp: ['POST /v1/activation 422', 'POST /v1/activation/confirm 422'],
    });
    const codeRequests = countRequests(page, 'POST', `${GATEWAY_URL}/v1/activation/code`);

    await page.goto(`${GATEWAY_URL}/`);
    await heading(page, 'Sign in');
    await checkA11y(page, 'sign in');
    await shot(page, 'activation-phone-01-sign-in');
    await submitSignIn(page, memberId);
    await waitForText(page.locator('#account-status'), 'Not activated');
    await waitForText(page.locator('#account-phone'), `+86*******${phone.slice(-4)}`);
    await checkA11y(page, 'account, inactive');
    await shot(page, 'activation-phone-02-account-inactive');

    // 'Activate now' opens the create-payment-password page.
    await page.getByRole('link', { name: 'Activate now' }).click();
    await heading(page, 'Create a payment password');
    await waitForText(page.locator('#pw-rules'), '8 to 64 characters');
    await waitForText(page.locator('#pw-rules'), 'different from your login password — do not reuse it');
    await checkA11y(page, 'create payment password');
    await shot(page, 'activation-phone-03-password');

    const password = page.getByLabel('Payment password', { exact: true });
    const confirm = page.getByLabel('Confirm payment password');
    const submit = page.getByRole('button', { name: 'Confirm' });

    // The confirm field must match (checked in the page).
    await password.fill(PAYMENT_PASSWORD);
    await confirm.fill('Another-Key-2026');
    await submit.click();
    await waitForText(page.locator('#payment-password-confirm-error'), 'The two passwords do not match.');
    assert.equal(await confirm.getAttribute('aria-invalid'), 'true');

    // The server's refusal shows in place, with its request id, and is announced.
    await password.fill(LOGIN_PASSWORD);
    await confirm.fill(LOGIN_PASSWORD);
    await submit.click();
    await waitForText(
      page.locator('#payment-password-error'),
      'The payment password must be different from your login password.',
    );
    await waitForText(page.locator('#payment-password-error'), /Request ID: [0-9A-Z]{10,}/);
    assert.equal(await password.getAttribute('aria-invalid'), 'true');
    assert.equal(await password.inputValue(), '', 'a refused password is cleared');
    await waitForText(page.locator('#live'), 'different from your login password');
    await checkA11y(page, 'payment password refused');
    await shot(page, 'activation-phone-04-password-refused');

    // A common password.
    await password.fill('password1');
    await confirm.fill('password1');
    await submit.click();
    await waitForText(page.locator('#payment-password-error'), 'This payment password is too weak');

    // Confirm → the code page.
    await password.fill(PAYMENT_PASSWORD);
    await confirm.fill(PAYMENT_PASSWORD);
    await submit.click();
    await heading(page, 'Verify your phone');
    await waitForText(page.locator('main'), 'The code is valid for 30 minutes.');
    await checkA11y(page, 'SMS code page');
    await shot(page, 'activation-phone-05-code-page');

    const before = (await smsFor(phone)).length;
    await page.getByRole('button', { name: 'Send code' }).click();
    const code = await waitForCode(phone, before);
    await waitForText(page.locator('#code-status'), 'It is valid for 30 minutes, until');
    assert.equal(codeRequests.count(), 1, 'one request for the first code');
    // The resend countdown comes from resend_after (60 s).
    const sendButton = page.locator('#send-code');
    await waitForText(sendButton, /Resend code \(0:[0-5]\d\)/);
    assert.equal(await sendButton.getAttribute('aria-disabled'), 'true');
    await checkA11y(page, 'SMS code sent');
    await shot(page, 'activation-phone-06-code-sent');

    // Pressing it during the countdown sends nothing (it keeps the focus: aria-disabled),
    // not even a request the server would refuse: by keyboard and by mouse, then wait a
    // tick of the countdown (its label changes each second).
    await sendButton.focus();
    const label = await sendButton.textContent();
    await page.keyboard.press('Enter');
    await sendButton.click({ force: true });
    await page.waitForFunction((shown) => document.getElementById('send-code')?.textContent !== shown, label);
    await waitForText(sendButton, /Resend code \(0:[0-5]\d\)/);
    assert.equal(codeRequests.count(), 1, 'no request to /v1/activation/code during the countdown');
    assert.equal(await page.locator('#form-error').count(), 0, 'no error shown');
    assert.equal((await smsFor(phone)).length, before + 1);

    // A wrong code: the message, the attempts left and the request id, announced.
    const wrong = String((Number(code) + 1) % 1000000).padStart(6, '0');
    await page.getByLabel('SMS code').fill(wrong);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page.locator('#sms-code-error'), 'The code is wrong. Attempts left: 4.');
    await waitForText(page.locator('#sms-code-error'), /Request ID: [0-9A-Z]{10,}/);
    await waitForText(page.locator('#live'), 'Attempts left: 4');
    assert.equal(await page.getByLabel('SMS code').getAttribute('aria-invalid'), 'true');
    await checkA11y(page, 'wrong code');
    await shot(page, 'activation-phone-07-code-wrong');

    // Not 6 digits: refused in the page.
    await page.getByLabel('SMS code').fill('12a');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page.locator('#sms-code-error'), 'Enter the 6 digits of the code.');

    // The right code → done.
    await page.getByLabel('SMS code').fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await heading(page, 'Your fund account is active');
    await checkA11y(page, 'activation done');
    await shot(page, 'activation-phone-08-done');

    await page.getByRole('link', { name: 'Go to my account' }).click();
    await heading(page, 'Fund account');
    await waitForText(page.locator('#account-status'), 'Active');
    await shot(page, 'activation-phone-09-account-active');

    await assertNothingSecretStored(page, PAYMENT_PASSWORD, LOGIN_PASSWORD, `"${code}"`);
    await closeCleanly(context, problems);
  });

  test('five wrong codes void the code: the last attempt and the lock are said', async () => {
    const phone = randomPhone();
    const { memberId } = await createMember({ phone, prefix: 'lock' });
    const token = await apiToken(memberId);
    const pending = await call('POST', '/v1/activation', { token, body: { payment_password: PAYMENT_PASSWORD } });
    assert.equal(pending.status, 202);
    const { context, page, problems } = await openPage(browser(), {
      expectHttp: [
        'POST /v1/activation/confirm 422',
        'POST /v1/activation/confirm 429',
        'POST /v1/activation/code 429',
      ],
    });
    const codeRequests = countRequests(page, 'POST', `${GATEWAY_URL}/v1/activation/code`);
    await signIn(page, memberId);
    await waitForText(page.locator('#account-status'), 'Waiting for SMS verification');
    await page.getByRole('link', { name: 'Continue activation' }).click();
    await heading(page, 'Verify your phone');

    const before = (await smsFor(phone)).length;
    await page.getByRole('button', { name: 'Send code' }).click();
    const code = await waitForCode(phone, before);
    const wrong = String((Number(code) + 7) % 1000000).padStart(6, '0');
    const input = page.getByLabel('SMS code');
    const error = page.locator('#sms-code-error');
    for (const left of [4, 3, 2, 1]) {
      await input.fill(wrong);
      await page.getByRole('button', { name: 'Confirm' }).click();
      await waitForText(error, `Attempts left: ${left}.`);
    }
    await input.fill(wrong);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(error, 'The code is wrong and no attempts are left. Send a new code.');
    // Even the right code is refused now.
    await input.fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(error, 'Too many wrong attempts for this code. Send a new code.');
    await waitForText(error, /Request ID: [0-9A-Z]{10,}/);
    await checkA11y(page, 'code locked');
    await shot(page, 'activation-phone-10-code-attempts-exhausted');

    // Asking again within the minute (the reloaded page does not know when the code was
    // sent): the server refuses, the wait is counted down, no SMS goes out.
    await page.reload();
    await heading(page, 'Verify your phone');
    await page.getByRole('button', { name: 'Send code' }).click();
    await waitForText(page.locator('#form-error'), 'A code was sent less than a minute ago.');
    await waitForText(page.locator('#send-code'), /Resend code \(0:[0-5]\d\)|Send code \(0:[0-5]\d\)/);
    assert.equal(codeRequests.count(), 2, 'the first send and the refused one');
    assert.equal((await smsFor(phone)).length, before + 1);
    await shot(page, 'activation-phone-11-resend-too-soon');

    await closeCleanly(context, problems);
  });

  test('without a phone, by keyboard only: Confirm activates at once', async () => {
    const { memberId } = await createMember({ phone: null, prefix: 'kbd' });
    const { context, page, problems } = await openPage(browser());
    await page.goto(`${GATEWAY_URL}/`);
    await heading(page, 'Sign in');

    await tabTo(page, 'Member ID');
    await page.keyboard.type(memberId);
    await tabTo(page, 'Login password');
    await page.keyboard.type(LOGIN_PASSWORD);
    await page.keyboard.press('Enter');
    await heading(page, 'Fund account');
    await waitForText(page.locator('#account-phone'), 'No phone bound');

    await tabTo(page, 'Activate now');
    await page.keyboard.press('Enter');
    await heading(page, 'Create a payment password');
    // Two steps only: no SMS code without a phone.
    await waitForText(page.locator('.steps'), 'Payment password');
    assert.equal(await page.locator('.steps li').count(), 2);

    await tabTo(page, 'Payment password');
    await page.keyboard.type(PAYMENT_PASSWORD);
    await tabTo(page, 'Confirm payment password');
    await page.keyboard.type(PAYMENT_PASSWORD);
    await page.keyboard.press('Enter');

    await heading(page, 'Your fund account is active');
    await checkA11y(page, 'activation done, no phone');
    await shot(page, 'activation-nophone-01-done');

    await tabTo(page, 'Go to my account');
    await page.keyboard.press('Enter');
    await heading(page, 'Fund account');
    await waitForText(page.locator('#account-status'), 'Active');
    await shot(page, 'activation-nophone-02-account-active');

    // Signing out by keyboard ends the session.
    await tabTo(page, 'Sign out');
    await page.keyboard.press('Enter');
    await heading(page, 'Sign in');
    await waitForText(page.locator('main'), 'You have signed out.');
    const dump = JSON.parse(await storageDump(page));
    assert.equal(dump.session['fa.session'], undefined);

    await closeCleanly(context, problems);
  });
});
