// Activation: 'Activate now' → create the payment password → Confirm → (with a bound
// phone) the SMS code page → done. Passwords and codes are read from their inputs when
// submitted and never kept anywhere else.

import { ApiError } from '../api.js';
import { field, h, valueOf } from '../dom.js';
import { formatTime, t } from '../i18n.js';
import { formError, problemText } from '../ui.js';

/** The code's validity (the contract's 30 minutes). */
const CODE_VALID_MS = 30 * 60 * 1000;

/** @param {any} app */
async function loadAccount(app) {
  const res = await app.api.get('/v1/account');
  app.state.activation ??= {};
  app.state.activation.account = res.data;
  return res.data;
}

/**
 * The steps, with the current one marked.
 * @param {'password' | 'code' | 'done'} current
 * @param {boolean} withPhone
 */
function steps(current, withPhone) {
  const all = withPhone ? ['password', 'code', 'done'] : ['password', 'done'];
  const at = all.indexOf(current);
  return h(
    'ol',
    { class: 'steps', 'aria-label': t('steps.label') },
    all.map((step, i) =>
      h(
        'li',
        { class: i < at ? 'done' : i === at ? 'current' : null, 'aria-current': i === at ? 'step' : null },
        t(`steps.${step}`),
      ),
    ),
  );
}

/** @param {string} text */
function codePoints(text) {
  return [...text].length;
}

// ---- Create the payment password ----

/** @type {import('../main.js').View} */
export const passwordView = {
  title: 'pw.title',
  nav: '/account',
  async load(app) {
    await loadAccount(app);
    app.state.activation.pw = { errors: {}, error: null, busy: false, show: false };
  },
  render(app) {
    const { account, pw } = app.state.activation;
    if (account.status === 'active') return alreadyActive();
    const password = field({
      id: 'payment-password',
      label: t('pw.password'),
      type: pw.show ? 'text' : 'password',
      describedBy: 'pw-rules',
      error: fieldError(pw.errors.password),
      attrs: { autocomplete: 'new-password', required: true, maxlength: 256 },
    });
    const confirm = field({
      id: 'payment-password-confirm',
      label: t('pw.confirm'),
      type: pw.show ? 'text' : 'password',
      error: fieldError(pw.errors.confirm),
      attrs: { autocomplete: 'new-password', required: true, maxlength: 256 },
    });
    return h(
      'section',
      { class: 'card narrow' },
      steps('password', Boolean(account.phone)),
      h('h1', null, t('pw.title')),
      h('p', null, t('pw.intro')),
      h(
        'div',
        { class: 'rules', id: 'pw-rules' },
        h('p', null, t('pw.rulesTitle')),
        h(
          'ul',
          null,
          h('li', null, t('pw.rule.length')),
          h('li', null, t('pw.rule.common')),
          h('li', { class: 'advice' }, t('pw.rule.login')),
        ),
      ),
      h(
        'form',
        { novalidate: true, onsubmit: (event) => submitPassword(event, app) },
        formError(
          pw.error,
          undefined,
          pw.error?.code === 'already_active' ? h('a', { href: '#/account' }, ` ${t('app.back')}`) : null,
        ),
        password.node,
        confirm.node,
        h(
          'div',
          { class: 'check' },
          h('input', {
            type: 'checkbox',
            id: 'show-passwords',
            checked: pw.show,
            onchange: (event) => {
              pw.show = event.target.checked;
              app.update();
            },
          }),
          h('label', { for: 'show-passwords' }, t('pw.show')),
        ),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'pw-submit' }, t('pw.submit'))),
      ),
    );
  },
};

/** A field's error: a client-side text key, or an API error with its request id. */
function fieldError(error) {
  if (!error) return null;
  if (typeof error === 'string') return t(error);
  return h('span', null, problemText(error));
}

function alreadyActive() {
  return h(
    'section',
    { class: 'card narrow' },
    h('h1', null, t('done.title')),
    h('p', null, t('pw.alreadyActive')),
    h('a', { class: 'button primary', href: '#/account' }, t('done.account')),
  );
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function submitPassword(event, app) {
  event.preventDefault();
  const pw = app.state.activation.pw;
  if (pw.busy) return;
  const password = valueOf('payment-password');
  const confirm = valueOf('payment-password-confirm');
  pw.error = null;
  pw.errors = {};
  const length = codePoints(password);
  if (length < 8 || length > 64) pw.errors.password = 'pw.err.length';
  if (password !== confirm) pw.errors.confirm = 'pw.err.mismatch';
  if (pw.errors.password || pw.errors.confirm) {
    app.update();
    if (pw.errors.confirm && !pw.errors.password) clearInputs('payment-password-confirm');
    app.showError(t(pw.errors.password || pw.errors.confirm));
    return;
  }
  pw.busy = true;
  try {
    const res = await app.api.post('/v1/activation', { payment_password: password });
    // A new pending password voids any code sent before.
    app.state.activation.code = null;
    app.go(res.status === 202 ? '/activate/code' : '/activate/done');
  } catch (error) {
    pw.busy = false;
    if (
      error instanceof ApiError &&
      (error.code === 'payment_password_too_weak' || error.code === 'payment_password_same_as_login')
    ) {
      pw.errors.password = error;
    } else {
      pw.error = error;
    }
    app.update();
    clearInputs('payment-password', 'payment-password-confirm');
    app.showError(error);
  }
}

/** @param {...string} ids */
function clearInputs(...ids) {
  for (const id of ids) {
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById(id));
    if (input) input.value = '';
  }
}

// ---- The SMS code ----

/**
 * @typedef {{phone?: string, sentAt?: number, expiresAt?: number, resendAt: number}} Sent
 * @typedef {{sent: Sent | null, error: unknown, codeError: unknown, busy: boolean}} CodeState
 */

/** @type {import('../main.js').View} */
export const codeView = {
  title: 'code.title',
  nav: '/account',
  async load(app) {
    await loadAccount(app);
    const a = app.state.activation;
    a.code ??= { sent: null, error: null, codeError: null, busy: false };
    a.code.error = null;
    a.code.codeError = null;
    a.code.busy = false;
    app.every(1000, () => tick(app));
  },
  render(app) {
    const { account, code } = app.state.activation;
    if (account.status === 'active') return alreadyActive();
    if (account.status === 'inactive') {
      return h(
        'section',
        { class: 'card narrow' },
        h('h1', null, t('code.title')),
        h('p', null, t('error.no_pending_activation')),
        h('a', { class: 'button primary', href: '#/activate' }, t('pw.title')),
      );
    }
    const sent = code.sent;
    const now = Date.now();
    const expired = Boolean(sent?.expiresAt && now >= sent.expiresAt);
    const codeField = field({
      id: 'sms-code',
      label: t('code.field'),
      hint: t('code.hint'),
      error: code.codeError ? fieldError(code.codeError) : null,
      attrs: {
        inputmode: 'numeric',
        autocomplete: 'one-time-code',
        maxlength: 6,
        pattern: '[0-9]{6}',
        required: true,
        class: 'code-input',
      },
    });
    return h(
      'section',
      { class: 'card narrow' },
      steps('code', true),
      h('h1', null, t('code.title')),
      h('p', null, t('code.intro', { phone: account.phone })),
      h(
        'div',
        { class: 'send-row' },
        h(
          'button',
          {
            type: 'button',
            id: 'send-code',
            class: 'button',
            'aria-disabled': waiting(code) ? 'true' : null,
            onclick: () => sendCode(app),
          },
          sendLabel(code),
        ),
        h(
          'p',
          { id: 'code-status', class: expired ? 'warning' : 'hint', role: 'status' },
          sent?.sentAt
            ? expired
              ? t('code.expiredLocal', { at: formatTime(sent.sentAt, 'time') })
              : t('code.sent', {
                  phone: sent.phone || account.phone,
                  at: formatTime(sent.sentAt, 'time'),
                  until: formatTime(/** @type {number} */ (sent.expiresAt), 'time'),
                })
            : '',
        ),
      ),
      formError(code.error),
      h(
        'form',
        { novalidate: true, onsubmit: (event) => confirmCode(event, app) },
        codeField.node,
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'code-submit' }, t('code.submit'))),
      ),
      h('p', { class: 'aside' }, h('a', { href: '#/activate' }, t('code.changePassword'))),
    );
  },
};

/** @param {CodeState} code */
function waiting(code) {
  return Boolean(code.sent && Date.now() < code.sent.resendAt) || code.busy;
}

/** @param {CodeState} code */
function sendLabel(code) {
  if (!code.sent) return t('code.send');
  const left = Math.ceil((code.sent.resendAt - Date.now()) / 1000);
  if (left > 0) {
    const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    return t('code.resendIn', { time });
  }
  return t(code.sent.sentAt ? 'code.resend' : 'code.send');
}

/** Once a second: the resend countdown, and the code's expiry. */
function tick(app) {
  const code = app.state.activation?.code;
  const button = document.getElementById('send-code');
  if (!code || !button) return;
  const label = sendLabel(code);
  if (button.textContent !== label) button.textContent = label;
  if (waiting(code)) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
  const sent = code.sent;
  if (sent?.expiresAt && Date.now() >= sent.expiresAt && !sent.expiredShown) {
    sent.expiredShown = true;
    app.update();
  }
}

async function sendCode(app) {
  const code = app.state.activation.code;
  if (waiting(code)) return;
  code.busy = true;
  code.error = null;
  try {
    const res = await app.api.post('/v1/activation/code', {});
    const d = res.data;
    // Times on this device's clock: the server's resend delay, counted from now.
    const now = Date.now();
    const expires = Date.parse(d.expires_at);
    const resendDelay = Math.max(0, Date.parse(d.resend_after) - (expires - CODE_VALID_MS));
    code.sent = { phone: d.phone, sentAt: now, expiresAt: now + CODE_VALID_MS, resendAt: now + resendDelay };
    code.codeError = null;
    code.busy = false;
    app.update();
    app.announce(document.getElementById('code-status')?.textContent || '');
    document.getElementById('sms-code')?.focus();
  } catch (error) {
    code.busy = false;
    if (error instanceof ApiError && (error.code === 'code_resend_too_soon' || error.code === 'code_send_limit')) {
      const seconds = Number(error.problem?.retry_after ?? error.retryAfter ?? 60);
      code.sent = { ...(code.sent || {}), resendAt: Date.now() + seconds * 1000 };
    }
    code.error = error;
    app.update();
    app.showError(error);
  }
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function confirmCode(event, app) {
  event.preventDefault();
  const code = app.state.activation.code;
  if (code.busy) return;
  const value = valueOf('sms-code').trim();
  code.error = null;
  code.codeError = null;
  if (!/^[0-9]{6}$/.test(value)) {
    code.codeError = 'code.err.format';
    app.update();
    app.showError(t('code.err.format'));
    return;
  }
  code.busy = true;
  try {
    await app.api.post('/v1/activation/confirm', { code: value });
    app.state.activation.code = null;
    app.go('/activate/done');
  } catch (error) {
    code.busy = false;
    if (
      error instanceof ApiError &&
      ['code_incorrect', 'code_attempts_exhausted', 'code_expired', 'no_code_sent', 'invalid_request'].includes(error.code)
    ) {
      code.codeError = error;
    } else {
      code.error = error;
    }
    app.update();
    clearInputs('sms-code');
    app.showError(error);
  }
}

// ---- Done ----

/** @type {import('../main.js').View} */
export const doneView = {
  title: 'done.title',
  nav: '/account',
  async load(app) {
    await loadAccount(app);
  },
  render(app) {
    const { account } = app.state.activation;
    if (account.status !== 'active') {
      return h(
        'section',
        { class: 'card narrow' },
        h('h1', null, t('code.title')),
        h('p', null, t('account.pending.text')),
        h('a', { class: 'button primary', href: account.status === 'inactive' ? '#/activate' : '#/activate/code' }, t('account.continue')),
      );
    }
    return h(
      'section',
      { class: 'card narrow' },
      steps('done', Boolean(account.phone)),
      h('h1', null, t('done.title')),
      h('p', null, t('done.text')),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'button primary', href: '#/withdraw' }, t('done.withdraw')),
        h('a', { class: 'button', href: '#/account' }, t('done.account')),
      ),
    );
  },
};
