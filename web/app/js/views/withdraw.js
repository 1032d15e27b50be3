// Withdraw (with the fee preview and 'withdraw all'), its result, and the withdrawals list.
//
// Idempotency: each submission gets one Idempotency-Key. If its outcome is unknown (a
// network error or a 5xx) the key is kept, and pressing Confirm
// again with the same form sends the same key, so the server answers the first result
// instead of paying out twice. Any definite answer (201, or a 4xx refusal, which leaves the
// key free on the server) ends the submission; a changed form starts a new one.

import config from '../../config.js';
import { ApiError } from '../api.js';
import { field, h, valueOf } from '../dom.js';
import { formatTime, t } from '../i18n.js';
import { formatMoney, parseAmount, parseMoney, toPlain } from '../money.js';
import { badge, CursorPages, formError, pager, problemText } from '../ui.js';

const CURRENCIES = ['USD', 'CNY'];
const PAGE_SIZE = 10;

function newForm(currency = 'USD') {
  return { currency, amount: '' };
}

/** A fresh Idempotency-Key: 122 random bits. */
function newKey() {
  if (typeof crypto.randomUUID === 'function') return `web-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** @type {import('../main.js').View} */
export const withdrawView = {
  title: 'wd.title',
  nav: '/withdraw',
  async load(app) {
    const res = await app.api.get('/v1/account');
    const s = (app.state.withdraw ??= {
      form: newForm(),
      errors: {},
      error: null,
      result: null,
      replayed: false,
      busy: false,
      retry: null,
      uncertain: false,
    });
    s.account = res.data;
    s.errors = {};
    s.error = null;
    s.busy = false;
  },
  render(app) {
    const s = app.state.withdraw;
    const a = s.account;
    if (a.status !== 'active') {
      return h(
        'section',
        { class: 'card narrow' },
        h('h1', null, t('wd.title')),
        h('p', null, t('wd.notActive')),
        h('a', { class: 'button primary', href: a.status === 'inactive' ? '#/activate' : '#/activate/code' }, t('account.activate')),
      );
    }
    if (s.result) return resultView(app);
    return formView(app);
  },
};

/** @param {any} app */
function formView(app) {
  const s = app.state.withdraw;
  const a = s.account;
  const currency = s.form.currency;
  const available = a.balances[currency].available;
  const errorOf = (name) => {
    const e = s.errors[name];
    if (!e) return null;
    return typeof e === 'string' ? t(e) : h('span', null, problemText(e, { currency: s.errorCurrency }));
  };

  const currencyField = field({
    id: 'wd-currency',
    label: t('wd.currency'),
    type: 'select',
    error: errorOf('currency'),
    attrs: {
      onchange: (event) => {
        s.form.currency = event.target.value;
        app.update();
      },
    },
  });
  for (const c of CURRENCIES) {
    currencyField.input.append(
      h(
        'option',
        { value: c, selected: c === currency },
        t('wd.currencyOption', { currency: c, available: formatMoney(a.balances[c].available) }),
      ),
    );
  }

  const amountField = field({
    id: 'wd-amount',
    label: t('wd.amount'),
    hint: t('wd.amountHint', { available: formatMoney(available), currency }),
    error: errorOf('amount'),
    value: s.form.amount,
    attrs: {
      inputmode: 'decimal',
      autocomplete: 'off',
      required: true,
      spellcheck: 'false',
      oninput: (event) => {
        s.form.amount = event.target.value;
        refreshPreview(app);
      },
      onrestore: (event) => {
        s.form.amount = event.target.value;
        refreshPreview(app);
      },
    },
    after: h(
      'button',
      {
        type: 'button',
        id: 'wd-all',
        class: 'button',
        'aria-label': t('wd.allLabel'),
        onclick: () => {
          s.form.amount = s.account.balances[s.form.currency].available;
          const input = /** @type {HTMLInputElement} */ (document.getElementById('wd-amount'));
          input.value = s.form.amount;
          refreshPreview(app);
        },
      },
      t('wd.all'),
    ),
  });

  const bankError = s.errors.bank ? 'wd-bank-error' : undefined;
  const holder = field({
    id: 'wd-holder',
    label: t('wd.holder'),
    error: errorOf('holder'),
    describedBy: bankError,
    attrs: { autocomplete: 'name', required: true, maxlength: 140, 'data-error-focus': bankError ? 'true' : null },
  });
  const number = field({
    id: 'wd-number',
    label: t('wd.number'),
    hint: t('wd.numberHint'),
    error: errorOf('number'),
    describedBy: bankError,
    attrs: { autocomplete: 'off', required: true, maxlength: 34, spellcheck: 'false', inputmode: 'text' },
  });
  const bankName = field({
    id: 'wd-bank',
    label: t('wd.bankName'),
    error: errorOf('bankName'),
    describedBy: bankError,
    attrs: { autocomplete: 'off', required: true, maxlength: 140 },
  });
  const password = field({
    id: 'wd-password',
    label: t('wd.password'),
    type: 'password',
    error: errorOf('password'),
    attrs: { autocomplete: 'off', required: true, maxlength: 256 },
  });

  return h(
    'section',
    { class: 'card narrow' },
    h('h1', null, t('wd.title')),
    h(
      'form',
      { novalidate: true, onsubmit: (event) => submit(event, app) },
      formError(
        s.error,
        { currency: s.errorCurrency },
        s.error?.code === 'account_not_active' ? h('a', { href: '#/activate' }, ` ${t('account.activate')}`) : null,
        s.uncertain ? h('p', { class: 'hint' }, t('wd.networkRetry')) : null,
      ),
      currencyField.node,
      amountField.node,
      h(
        'section',
        { class: 'preview', 'aria-labelledby': 'wd-preview-title' },
        h('h2', { id: 'wd-preview-title' }, t('wd.previewTitle')),
        h('div', { id: 'wd-preview', 'aria-live': 'polite' }, preview(s)),
        h('p', { class: 'hint', id: 'wd-fee-note' }, t('wd.feeNote')),
      ),
      h(
        'fieldset',
        null,
        h('legend', null, t('wd.bank')),
        s.errors.bank ? h('p', { class: 'error-text', id: 'wd-bank-error' }, errorOf('bank')) : null,
        holder.node,
        number.node,
        bankName.node,
      ),
      password.node,
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          { type: 'submit', class: 'button primary', id: 'wd-submit', 'aria-disabled': s.busy ? 'true' : null },
          s.busy ? t('wd.submitting') : t('wd.submit'),
        ),
      ),
    ),
  );
}

/** The fee and net amount for what is typed, with the client's default fees. */
function preview(s) {
  const currency = s.form.currency;
  const minor = parseAmount(s.form.amount);
  if (minor === null || minor === 0n) return h('p', { class: 'hint' }, t('wd.previewEmpty'));
  const feeText = String(config.withdrawalFees?.[currency] ?? '0.00');
  const fee = parseMoney(feeText);
  if (minor <= fee) {
    return h('p', { class: 'warning' }, t('wd.previewBelowFee', { fee: formatMoney(fee), currency }));
  }
  const row = (key, id, value) =>
    h('div', null, h('dt', null, t(key)), h('dd', { id }, `${formatMoney(value)} ${currency}`));
  return h(
    'dl',
    { class: 'facts preview-facts' },
    row('wd.previewAmount', 'wd-preview-amount', minor),
    row('wd.previewFee', 'wd-preview-fee', fee),
    row('wd.previewNet', 'wd-preview-net', minor - fee),
  );
}

function refreshPreview(app) {
  const box = document.getElementById('wd-preview');
  if (box) box.replaceChildren(preview(app.state.withdraw));
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function submit(event, app) {
  event.preventDefault();
  const s = app.state.withdraw;
  if (s.busy) return;
  const currency = s.form.currency;
  const amountText = valueOf('wd-amount').trim();
  const holder = valueOf('wd-holder').trim();
  const number = valueOf('wd-number').trim();
  const bankName = valueOf('wd-bank').trim();
  const password = valueOf('wd-password');
  s.errors = {};
  s.error = null;
  s.errorCurrency = currency;
  const minor = parseAmount(amountText);
  if (minor === null || minor === 0n) s.errors.amount = 'wd.err.amount';
  if (!holder) s.errors.holder = 'app.fieldRequired';
  if (!/^[A-Za-z0-9]{4,34}$/.test(number)) s.errors.number = number ? 'wd.err.number' : 'app.fieldRequired';
  if (!bankName) s.errors.bankName = 'app.fieldRequired';
  if (!password) s.errors.password = 'app.fieldRequired';
  const firstError = Object.values(s.errors)[0];
  if (firstError) {
    app.update();
    app.showError(t(/** @type {string} */ (firstError)));
    return;
  }
  const amount = toPlain(/** @type {bigint} */ (minor));
  const fingerprint = JSON.stringify([currency, amount, holder, number, bankName]);
  if (!s.retry || s.retry.fingerprint !== fingerprint) s.retry = { key: newKey(), fingerprint };
  s.busy = true;
  s.uncertain = false;
  app.update();
  try {
    const res = await app.api.post(
      '/v1/withdrawals',
      {
        currency,
        amount,
        payment_password: password,
        bank_account: { holder_name: holder, account_number: number, bank_name: bankName },
      },
      { 'idempotency-key': s.retry.key },
    );
    s.retry = null;
    s.busy = false;
    s.result = res.data;
    s.replayed = res.headers.get('idempotent-replayed') === 'true';
    s.form = newForm(currency);
    try {
      s.account = (await app.api.get('/v1/account')).data;
    } catch {
      // the balances show again on the next visit
    }
    app.update({ preserve: false });
    const title = document.getElementById('wd-result-title');
    title?.focus();
    app.announce(`${t('wd.resultTitle')}. ${t('wd.previewNet')}: ${formatMoney(res.data.net_amount)} ${res.data.currency}`);
  } catch (error) {
    s.busy = false;
    if (error instanceof ApiError && error.uncertain) {
      s.uncertain = true; // keep s.retry: the same submission goes out with the same key
    } else {
      s.retry = null;
    }
    placeError(s, error);
    app.update();
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById('wd-password'));
    if (input) input.value = '';
    app.showError(error, { currency });
  }
}

/** Shows a refusal next to the field it is about. */
function placeError(s, error) {
  const code = error instanceof ApiError ? error.code : '';
  if (['insufficient_funds', 'amount_below_fee', 'invalid_amount'].includes(code)) s.errors.amount = error;
  else if (code === 'unsupported_currency') s.errors.currency = error;
  else if (code === 'invalid_bank_account') s.errors.bank = error;
  else if (code === 'payment_password_incorrect' || code === 'payment_password_locked') s.errors.password = error;
  else s.error = error;
}

/** @param {any} app */
function resultView(app) {
  const s = app.state.withdraw;
  const w = s.result;
  const money = (v) => `${formatMoney(v)} ${w.currency}`;
  const row = (key, id, value) => h('div', null, h('dt', null, t(key)), h('dd', { id }, value));
  return h(
    'section',
    { class: 'card narrow', 'aria-labelledby': 'wd-result-title' },
    h('h1', null, t('wd.title')),
    h(
      'div',
      { class: 'result', id: 'wd-result' },
      h('h2', { id: 'wd-result-title', tabindex: '-1' }, t('wd.resultTitle')),
      h('p', null, t('wd.resultText')),
      s.replayed ? h('p', { class: 'notice' }, t('wd.replayed')) : null,
      h(
        'dl',
        { class: 'facts' },
        row('wd.id', 'wd-result-id', h('span', { class: 'mono' }, w.id)),
        row('wd.previewAmount', 'wd-result-amount', money(w.amount)),
        row('wd.previewFee', 'wd-result-fee', money(w.fee)),
        row('wd.previewNet', 'wd-result-net', money(w.net_amount)),
        row('wd.status', 'wd-result-status', badge('wstatus', w.status)),
        row('wd.bankAccount', 'wd-result-bank', bankText(w.bank_account)),
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      h('a', { class: 'button primary', href: '#/withdrawals' }, t('wd.seeAll')),
      h(
        'button',
        {
          type: 'button',
          class: 'button',
          id: 'wd-another',
          onclick: () => {
            s.result = null;
            s.replayed = false;
            app.update({ preserve: false });
            document.getElementById('wd-amount')?.focus();
          },
        },
        t('wd.another'),
      ),
    ),
  );
}

/** @param {{holder_name: string, bank_name: string, account_last4: string}} b */
function bankText(b) {
  return `${b.bank_name} · ${b.holder_name} · ****${b.account_last4}`;
}

// ---- The list ----

/** @type {import('../main.js').View} */
export const withdrawalsView = {
  title: 'wds.title',
  nav: '/withdrawals',
  async load(app) {
    const s = (app.state.withdrawals ??= { pages: new CursorPages() });
    s.pages.reset();
    await loadPage(app);
  },
  render(app) {
    const pages = app.state.withdrawals.pages;
    const money = (w, v) => `${formatMoney(v)} ${w.currency}`;
    return h(
      'section',
      { class: 'card' },
      h('div', { class: 'section-head' }, h('h1', null, t('wds.title')), h('a', { class: 'button primary', href: '#/withdraw' }, t('wds.new'))),
      formError(pages.error),
      pages.items.length === 0
        ? h('p', { class: 'empty' }, t('wds.empty'))
        : h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { id: 'withdrawals' },
              h('caption', { class: 'visually-hidden' }, `${t('wds.title')}, ${t('paging.page', { n: pages.page + 1 })}`),
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  h('th', { scope: 'col' }, t('wds.date')),
                  h('th', { scope: 'col', class: 'num' }, t('wds.amount')),
                  h('th', { scope: 'col', class: 'num' }, t('wds.fee')),
                  h('th', { scope: 'col', class: 'num' }, t('wds.net')),
                  h('th', { scope: 'col' }, t('wds.bank')),
                  h('th', { scope: 'col' }, t('wds.status')),
                ),
              ),
              h(
                'tbody',
                null,
                pages.items.map((w) =>
                  h(
                    'tr',
                    { 'data-id': w.id },
                    h('td', null, h('time', { datetime: w.created_at }, formatTime(w.created_at))),
                    h('td', { class: 'num' }, money(w, w.amount)),
                    h('td', { class: 'num' }, money(w, w.fee)),
                    h('td', { class: 'num' }, money(w, w.net_amount)),
                    h('td', null, bankText(w.bank_account)),
                    h(
                      'td',
                      null,
                      badge('wstatus', w.status),
                      w.return_reason ? h('div', { class: 'small' }, t('wds.reason', { reason: w.return_reason })) : null,
                    ),
                  ),
                ),
              ),
            ),
          ),
      pages.page > 0 || pages.next
        ? pager({
            id: 'wds',
            label: t('wds.title'),
            page: pages.page,
            hasPrev: pages.page > 0,
            hasNext: Boolean(pages.next),
            onPrev: () => pages.back() && void reloadPage(app),
            onNext: () => pages.forward() && void reloadPage(app),
          })
        : null,
    );
  },
};

async function loadPage(app) {
  const pages = app.state.withdrawals.pages;
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (pages.cursor) q.set('cursor', pages.cursor);
  const res = await app.api.get(`/v1/withdrawals?${q}`);
  pages.loaded(res.data);
}

async function reloadPage(app) {
  try {
    await loadPage(app);
  } catch (error) {
    app.state.withdrawals.pages.error = error;
    app.showError(error);
  }
  app.update();
}
