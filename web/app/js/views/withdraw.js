// Withdraw (with the server's preview and 'withdraw all'), its result, and the withdrawals list.
//
// The preview is the server's (POST /v1/withdrawals/preview): the fee shown is the fee
// charged. To the balance's own currency it follows the amount as it is typed. To a bank in
// another currency it locks an FX quote, so it is asked for with a button (each quote counts
// against the member's limit of open quotes); its countdown runs on this device's clock,
// and when it runs out the page fetches a new quote rather than submit the old one. A
// `410 quote_expired` from the server does the same.
//
// Idempotency: each submission gets one Idempotency-Key. If its outcome is unknown (a
// network error or a 5xx) the key is kept, and pressing Confirm
// again with the same form sends the same key, so the server answers the first result
// instead of paying out twice. Any definite answer (201, or a 4xx refusal, which leaves the
// key free on the server) ends the submission; a changed form starts a new one.

import { ApiError } from '../api.js';
import { field, h, replaceContent, setValue, valueOf } from '../dom.js';
import {
  countdown,
  feeRuleText,
  fetchFeeSchedule,
  isQuoteOver,
  isReplayed,
  newIdempotencyKey,
  payoutCurrencies,
  QUOTE_REFUSALS,
  quoteDeadline,
  quoteNotice,
  quoteToRenew,
  rateText,
  serverDate,
} from '../fx.js';
import { formatTime, t } from '../i18n.js';
import { formatMoney, moneyText, positiveAmount } from '../money.js';
import { amountAttrs, badge, currencyOptions, CursorPages, dataTable, fact, formError, listPager, loadListPage, notActiveCard, problemText } from '../ui.js';

const PAGE_SIZE = 10;
/** How long typing pauses before a same-currency preview is asked for. */
const PREVIEW_DELAY_MS = 300;

function newForm(currency = 'USD', payout = currency) {
  return { currency, payout, amount: '' };
}

/**
 * @typedef {{fingerprint: string, data: any, deadline: number | null}} Preview
 */

/** @type {import('../main.js').View} */
export const withdrawView = {
  title: 'wd.title',
  nav: '/withdraw',
  async load(app) {
    const [account, fees] = await Promise.all([app.api.get('/v1/account'), fetchFeeSchedule(app)]);
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
    s.account = account.data;
    s.fees = fees.rows;
    s.feesError = fees.error;
    s.errors = {};
    s.error = null;
    s.busy = false;
    s.notice = null;
    /** @type {Preview | null} */
    s.preview = null;
    s.previewError = null;
    s.previewPending = null;
    s.previewSeq = 0;
    if (!payoutCurrencies(s.fees, s.form.currency).includes(s.form.payout)) s.form.payout = s.form.currency;
    app.every(1000, () => tick(app));
    if (s.form.payout === s.form.currency && previewFingerprint(s)) void fetchPreview(app);
  },
  leave(app) {
    window.clearTimeout(app.state.withdraw?.previewTimer);
  },
  render(app) {
    const s = app.state.withdraw;
    const a = s.account;
    if (a.status !== 'active') return notActiveCard('wd.title', 'wd.notActive', a.status);
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
        // A new balance currency starts with a payout in that currency (no conversion).
        s.form.currency = event.target.value;
        s.form.payout = s.form.currency;
        formChanged(app);
        app.update();
        setValue('wd-payout', s.form.payout);
      },
    },
  });
  currencyField.input.append(...currencyOptions(a.balances, currency));

  const payoutField = field({
    id: 'wd-payout',
    label: t('wd.payout'),
    hint: t('wd.payoutHint'),
    type: 'select',
    error: errorOf('payout'),
    attrs: {
      onchange: (event) => {
        s.form.payout = event.target.value;
        formChanged(app);
        app.update();
      },
    },
  });
  for (const c of payoutCurrencies(s.fees, currency)) {
    payoutField.input.append(
      h('option', { value: c, selected: c === s.form.payout }, t(c === currency ? 'wd.payoutSame' : 'wd.payoutOther', { currency: c })),
    );
  }

  const amountField = field({
    id: 'wd-amount',
    label: t('wd.amount'),
    hint: t('wd.amountHint', { available: formatMoney(available), currency }),
    error: errorOf('amount'),
    value: s.form.amount,
    attrs: amountAttrs(s.form, () => formChanged(app)),
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
          formChanged(app);
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
      payoutField.node,
      amountField.node,
      h(
        'section',
        { class: 'preview', 'aria-labelledby': 'wd-preview-title' },
        h('h2', { id: 'wd-preview-title' }, t('wd.previewTitle')),
        h('div', { id: 'wd-preview' }, preview(app)),
        h('p', { class: 'hint fee-note', id: 'wd-fee-note' }, feeNote(s)),
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

/** The schedule's rule for the chosen pair, from GET /v1/fees. */
function feeNote(s) {
  const row = (s.fees || []).find((r) => r.currency === s.form.currency && r.payout_currency === s.form.payout);
  if (!row) return t('wd.feeByServer');
  return t('wd.feeRule', { from: row.currency, to: row.payout_currency, rule: feeRuleText(row) });
}

/**
 * What a preview is for: currency, amount and payout currency; null while the amount is not
 * one the API would take.
 */
function previewFingerprint(s) {
  const amount = positiveAmount(s.form.amount);
  return amount && JSON.stringify([s.form.currency, amount, s.form.payout]);
}

/** The preview box: the server's numbers for what is in the form, or how to get them. */
function preview(app) {
  const s = app.state.withdraw;
  const fingerprint = previewFingerprint(s);
  const cross = s.form.payout !== s.form.currency;
  const notice = s.notice ? quoteNotice('wd-notice', t(`wd.notice.${s.notice}`)) : null;
  if (!fingerprint) return h('p', { class: 'hint' }, t('wd.previewEmpty'));
  const p = s.preview && s.preview.fingerprint === fingerprint ? s.preview : null;
  const getRate = (key) =>
    h(
      'button',
      {
        type: 'button',
        id: 'wd-get-rate',
        class: 'button small',
        'aria-disabled': s.previewPending ? 'true' : null,
        onclick: () => {
          if (!s.previewPending) void fetchPreview(app);
        },
      },
      t(key),
    );
  if (!p) {
    if (s.previewError && s.previewError.fingerprint === fingerprint) {
      return [
        notice,
        h('p', { class: 'warning', id: 'wd-preview-error' }, problemText(s.previewError.error, { currency: s.form.currency })),
        cross ? getRate('wd.getRateAgain') : null,
      ];
    }
    if (s.previewPending === fingerprint) return [notice, h('p', { class: 'hint' }, t('wd.previewLoading'))];
    if (cross) return [notice, h('p', { class: 'hint' }, t('wd.previewRateHint')), getRate('wd.getRate')];
    return h('p', { class: 'hint' }, t('wd.previewLoading'));
  }
  const d = p.data;
  return [
    notice,
    h(
      'dl',
      { class: 'facts preview-facts' },
      fact('wd.previewAmount', 'wd-preview-amount', moneyText(d.amount, d.currency)),
      fact('wd.previewFee', 'wd-preview-fee', moneyText(d.fee, d.currency)),
      fact(cross ? 'wd.previewConverted' : 'wd.previewNet', 'wd-preview-net', moneyText(d.net_amount, d.currency)),
      cross ? fact('wd.previewRate', 'wd-preview-rate', rateText(d.rate, d.currency, d.payout_currency)) : null,
      cross ? fact('wd.previewPayout', 'wd-preview-payout', moneyText(d.payout_amount, d.payout_currency)) : null,
    ),
    cross && p.deadline !== null
      ? [
          countdown('wd-countdown', p.deadline),
          h('p', { class: 'hint' }, t('wd.markupNote'), ' ', h('a', { href: '#/convert' }, t('wd.markupLink'))),
          h('p', { class: 'hint small' }, t('quote.ref', { id: d.quote_id })),
        ]
      : null,
  ];
}

/** Draws the preview box again (not the whole form: the focus stays in the amount). */
function showPreview(app) {
  const box = document.getElementById('wd-preview');
  if (box && app.view === withdrawView && !app.state.withdraw.result) replaceContent(box, preview(app));
}

/** The form changed: a preview for other values goes; a same-currency one is asked for. */
function formChanged(app) {
  const s = app.state.withdraw;
  const fingerprint = previewFingerprint(s);
  s.notice = null;
  if (s.preview && s.preview.fingerprint !== fingerprint) s.preview = null;
  window.clearTimeout(s.previewTimer);
  if (fingerprint && s.form.payout === s.form.currency && !s.preview) {
    s.previewTimer = window.setTimeout(() => void fetchPreview(app), PREVIEW_DELAY_MS);
  }
  showPreview(app);
}

/**
 * Asks the server for the preview of what is in the form (for another payout currency, a
 * new locked quote). An answer for values no longer in the form is dropped.
 * @param {any} app
 * @param {string | null} [notice] what to tell the user once it is there
 * @param {boolean} [focus] move the focus to the notice (after Confirm; not when the
 *   countdown ran out while the seller was typing elsewhere)
 * @returns {Promise<boolean>} whether a preview for the form is now shown
 */
async function fetchPreview(app, notice = null, focus = false) {
  const s = app.state.withdraw;
  const fingerprint = previewFingerprint(s);
  if (!fingerprint) return false;
  const seq = ++s.previewSeq;
  const { currency, payout } = s.form;
  const amount = positiveAmount(s.form.amount);
  s.previewPending = fingerprint;
  s.previewError = null;
  s.notice = notice;
  showPreview(app);
  try {
    const res = await app.api.post('/v1/withdrawals/preview', { currency, amount, payout_currency: payout });
    if (seq !== s.previewSeq) return false;
    const d = res.data;
    const deadline = d.expires_at ? quoteDeadline(d.expires_at, serverDate(res.headers), Date.now()) : null;
    s.preview = { fingerprint, data: d, deadline };
  } catch (error) {
    if (seq !== s.previewSeq) return false;
    s.previewError = { fingerprint, error };
  }
  s.previewPending = null;
  showPreview(app);
  if (notice && s.preview) {
    app.announce(t(`wd.notice.${notice}`));
    if (focus) document.getElementById('wd-notice')?.focus();
  } else if (s.previewError) {
    app.announce(document.getElementById('wd-preview-error')?.textContent || '');
  }
  return Boolean(s.preview);
}

/** Once a second: the quote's countdown; when it runs out, a new quote. */
function tick(app) {
  const s = app.state.withdraw;
  const p = s?.preview;
  if (!p || p.deadline === null || s.result || s.previewPending) return;
  if (!quoteToRenew('wd-countdown', p.deadline, s)) return;
  s.preview = null;
  void fetchPreview(app, 'refreshed');
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function submit(event, app) {
  event.preventDefault();
  const s = app.state.withdraw;
  if (s.busy) return;
  const { currency, payout } = s.form;
  const cross = payout !== currency;
  const amountText = valueOf('wd-amount').trim();
  const holder = valueOf('wd-holder').trim();
  const number = valueOf('wd-number').trim();
  const bankName = valueOf('wd-bank').trim();
  const password = valueOf('wd-password');
  s.errors = {};
  s.error = null;
  s.errorCurrency = currency;
  const amount = positiveAmount(amountText);
  if (!amount) s.errors.amount = 'wd.err.amount';
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
  s.form.amount = amountText;
  const fingerprint = previewFingerprint(s);
  /** @type {string | null} */
  let quoteId = null;
  if (cross) {
    // Never without a rate the seller has seen, and never on a quote that ran out.
    const p = s.preview && s.preview.fingerprint === fingerprint ? s.preview : null;
    const stale = p && p.deadline !== null && isQuoteOver(p.deadline, s.uncertain);
    if (!p || stale) {
      s.preview = null;
      app.update();
      await fetchPreview(app, stale ? 'refreshed' : 'checkRate', true);
      return;
    }
    quoteId = p.data.quote_id;
  }
  const retryFingerprint = JSON.stringify([currency, amount, payout, quoteId, holder, number, bankName]);
  if (!s.retry || s.retry.fingerprint !== retryFingerprint) s.retry = { key: newIdempotencyKey(), fingerprint: retryFingerprint };
  s.busy = true;
  s.uncertain = false;
  s.notice = null;
  app.update();
  try {
    /** @type {Record<string, unknown>} */
    const body = {
      currency,
      amount,
      payout_currency: payout,
      payment_password: password,
      bank_account: { holder_name: holder, account_number: number, bank_name: bankName },
    };
    if (quoteId) body.quote_id = quoteId;
    const res = await app.api.post('/v1/withdrawals', body, { 'idempotency-key': s.retry.key });
    s.retry = null;
    s.busy = false;
    s.result = res.data;
    s.replayed = isReplayed(res.headers);
    s.form = newForm(currency, payout);
    s.preview = null;
    try {
      s.account = (await app.api.get('/v1/account')).data;
    } catch {
      // the balances show again on the next visit
    }
    app.update({ preserve: false });
    const title = document.getElementById('wd-result-title');
    title?.focus();
    const w = res.data;
    const received = w.payout_amount && w.payout_currency ? moneyText(w.payout_amount, w.payout_currency) : moneyText(w.net_amount, w.currency);
    app.announce(`${t('wd.resultTitle')}. ${t('wd.previewPayout')}: ${received}`);
  } catch (error) {
    s.busy = false;
    if (error instanceof ApiError && error.uncertain) {
      s.uncertain = true; // keep s.retry: the same submission goes out with the same key
    } else {
      s.retry = null;
    }
    // The password goes after a refusal (after the redraw, which keeps what was typed).
    const clearPassword = () => {
      const input = /** @type {HTMLInputElement | null} */ (document.getElementById('wd-password'));
      if (input) input.value = '';
    };
    if (error instanceof ApiError && error.code === 'quote_expired') {
      // The server's clock says the quote is over: a new one, shown, and nothing sent.
      s.preview = null;
      app.update();
      clearPassword();
      await fetchPreview(app, 'refreshed', true);
      return;
    }
    if (error instanceof ApiError && QUOTE_REFUSALS.includes(error.code)) s.preview = null;
    placeError(s, error);
    app.update();
    clearPassword();
    app.showError(error, { currency });
  }
}

/** Shows a refusal next to the field it is about. */
function placeError(s, error) {
  const code = error instanceof ApiError ? error.code : '';
  if (['insufficient_funds', 'amount_below_fee', 'invalid_amount'].includes(code)) s.errors.amount = error;
  else if (code === 'unsupported_currency') s.errors.currency = error;
  else if (code === 'unsupported_payout') s.errors.payout = error;
  else if (code === 'invalid_bank_account') s.errors.bank = error;
  else if (code === 'payment_password_incorrect' || code === 'payment_password_locked') s.errors.password = error;
  else s.error = error;
}

/** @param {any} app */
function resultView(app) {
  const s = app.state.withdraw;
  const w = s.result;
  const money = (v, c = w.currency) => moneyText(v, c);
  const cross = Boolean(w.payout_currency && w.payout_currency !== w.currency);
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
        fact('wd.id', 'wd-result-id', h('span', { class: 'mono' }, w.id)),
        fact('wd.previewAmount', 'wd-result-amount', money(w.amount)),
        fact('wd.previewFee', 'wd-result-fee', money(w.fee)),
        fact(cross ? 'wd.previewConverted' : 'wd.previewNet', 'wd-result-net', money(w.net_amount)),
        cross ? fact('wd.previewRate', 'wd-result-rate', rateText(w.rate, w.currency, w.payout_currency)) : null,
        cross ? fact('wd.previewPayout', 'wd-result-payout', money(w.payout_amount, w.payout_currency)) : null,
        fact('wd.status', 'wd-result-status', badge('wstatus', w.status)),
        fact('wd.bankAccount', 'wd-result-bank', bankText(w.bank_account)),
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
    const money = (w, v) => moneyText(v, w.currency);
    return h(
      'section',
      { class: 'card' },
      h('div', { class: 'section-head' }, h('h1', null, t('wds.title')), h('a', { class: 'button primary', href: '#/withdraw' }, t('wds.new'))),
      formError(pages.error),
      pages.items.length === 0
        ? h('p', { class: 'empty' }, t('wds.empty'))
        : dataTable({
            id: 'withdrawals',
            caption: `${t('wds.title')}, ${t('paging.page', { n: pages.page + 1 })}`,
            columns: [
              [t('wds.date')],
              [t('wds.amount'), true],
              [t('wds.fee'), true],
              [t('wds.net'), true],
              [t('wds.bank')],
              [t('wds.status')],
            ],
            rows: pages.items.map((w) =>
              h(
                'tr',
                { 'data-id': w.id },
                h('td', null, h('time', { datetime: w.created_at }, formatTime(w.created_at))),
                h('td', { class: 'num' }, money(w, w.amount)),
                h('td', { class: 'num' }, money(w, w.fee)),
                h(
                  'td',
                  { class: 'num' },
                  money(w, w.net_amount),
                  w.payout_currency && w.payout_currency !== w.currency
                    ? h('div', { class: 'small' }, t('wds.payout', { amount: moneyText(w.payout_amount, w.payout_currency) }))
                    : null,
                ),
                h('td', null, bankText(w.bank_account)),
                h(
                  'td',
                  null,
                  badge('wstatus', w.status),
                  w.return_reason ? h('div', { class: 'small' }, t('wds.reason', { reason: w.return_reason })) : null,
                ),
              ),
            ),
          }),
      listPager(app, pages, { id: 'wds', label: t('wds.title'), load: () => loadPage(app) }),
    );
  },
};

/** @param {any} app */
function loadPage(app) {
  return loadListPage(app, app.state.withdrawals.pages, '/v1/withdrawals', PAGE_SIZE);
}
