// The account overview: status, phone, balances, and the ledger with paging.

import { h } from '../dom.js';
import { feeRuleText, fetchFeeSchedule } from '../fx.js';
import { formatTime, t } from '../i18n.js';
import { CURRENCIES, formatMoney, moneyText } from '../money.js';
import { badge, CursorPages, dataTable, fact, formError, pager, titledCard, typeText } from '../ui.js';

const PAGE_SIZE = 10;

/** @type {import('../main.js').View} */
export const accountView = {
  title: 'account.title',
  nav: '/account',
  async load(app) {
    const s = (app.state.account ??= { account: null, tx: new CursorPages(), currency: '' });
    s.tx.reset();
    // The fee schedule is a side note: the account shows without it.
    const [account, fees] = await Promise.all([app.api.get('/v1/account'), fetchFeeSchedule(app), loadTransactions(app)]);
    s.account = account.data;
    s.fees = fees;
  },
  render(app) {
    const s = app.state.account;
    const a = s.account;
    return h(
      'div',
      { class: 'stack' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'account-title' },
        h('h1', { id: 'account-title' }, t('account.title')),
        h(
          'dl',
          { class: 'facts' },
          fact('account.member', 'member-id', a.member_id),
          fact('account.status', 'account-status', badge('status', a.status)),
          fact('account.phone', 'account-phone', a.phone ? h('span', { class: 'mono', dir: 'ltr' }, a.phone) : t('account.noPhone')),
        ),
        callToAction(a.status),
      ),
      balances(a, app),
      transactions(app),
      feeSchedule(s.fees),
    );
  },
};

/** @param {string} status */
function callToAction(status) {
  if (status === 'inactive') {
    return h(
      'div',
      { class: 'callout' },
      h('p', null, t('account.inactive.text')),
      h('a', { class: 'button primary', href: '#/activate', id: 'activate-now' }, t('account.activate')),
    );
  }
  if (status === 'pending_verification') {
    return h(
      'div',
      { class: 'callout' },
      h('p', null, t('account.pending.text')),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'button primary', href: '#/activate/code' }, t('account.continue')),
        h('a', { class: 'button', href: '#/activate' }, t('account.changePassword')),
      ),
    );
  }
  return h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/withdraw' }, t('account.withdraw')));
}

/**
 * @param {any} a the account
 * @param {any} app
 */
function balances(a, app) {
  const cell = (currency, bucket) =>
    h('td', { class: 'num', 'data-testid': `${currency}-${bucket}` }, formatMoney(a.balances[currency][bucket]));
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'balances-title' },
    h(
      'div',
      { class: 'section-head' },
      h('h2', { id: 'balances-title' }, t('balances.title')),
      h('button', { type: 'button', class: 'button small', id: 'refresh', onclick: () => app.route() }, t('account.refresh')),
    ),
    dataTable({
      id: 'balances',
      columns: [
        [t('balances.currency')],
        [t('balances.available'), true],
        [t('balances.pending'), true],
        [t('balances.in_transit'), true],
      ],
      rows: CURRENCIES.map((c) =>
        h('tr', null, h('th', { scope: 'row' }, c), cell(c, 'available'), cell(c, 'pending'), cell(c, 'in_transit')),
      ),
    }),
    h('p', { class: 'hint' }, t('balances.note')),
  );
}

/** @param {any} app */
async function loadTransactions(app) {
  const s = app.state.account;
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (s.currency) q.set('currency', s.currency);
  if (s.tx.cursor) q.set('cursor', s.tx.cursor);
  const res = await app.api.get(`/v1/account/transactions?${q}`);
  s.tx.loaded(res.data);
}

/** Loads another page (or filter) and draws it, keeping the focus where it was. */
async function reload(app) {
  const s = app.state.account;
  try {
    await loadTransactions(app);
  } catch (error) {
    s.tx.error = error;
    app.update();
    app.showError(error);
    return;
  }
  app.update();
}

/** @param {any} app */
function transactions(app) {
  const s = app.state.account;
  const tx = s.tx;
  const filter = h(
    'div',
    { class: 'field inline' },
    h('label', { for: 'tx-currency' }, t('tx.filter')),
    h(
      'select',
      {
        id: 'tx-currency',
        onchange: (event) => {
          s.currency = event.target.value;
          tx.reset();
          void reload(app);
        },
      },
      h('option', { value: '', selected: s.currency === '' }, t('tx.all')),
      CURRENCIES.map((c) => h('option', { value: c, selected: s.currency === c }, c)),
    ),
  );
  const rows = tx.items.map((e) =>
    h(
      'tr',
      null,
      h('td', null, h('time', { datetime: e.created_at }, formatTime(e.created_at))),
      h('td', null, typeText(e.type)),
      h('td', null, e.currency),
      h('td', null, t(`bucket.${e.bucket}`)),
      h('td', { class: `num ${e.amount.startsWith('-') ? 'negative' : 'positive'}` }, formatMoney(e.amount)),
      h('td', { class: 'mono small' }, e.reference),
    ),
  );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'tx-title' },
    h('div', { class: 'section-head' }, h('h2', { id: 'tx-title' }, t('tx.title')), filter),
    formError(tx.error),
    tx.items.length === 0
      ? h('p', { class: 'empty' }, t('tx.empty'))
      : dataTable({
          id: 'transactions',
          caption: `${t('tx.title')}, ${t('paging.page', { n: tx.page + 1 })}`,
          columns: [[t('tx.date')], [t('tx.type')], [t('tx.currency')], [t('tx.bucket')], [t('tx.amount'), true], [t('tx.reference')]],
          rows,
        }),
    tx.page > 0 || tx.next
      ? pager({
          id: 'tx',
          label: t('tx.title'),
          page: tx.page,
          hasPrev: tx.page > 0,
          hasNext: Boolean(tx.next),
          onPrev: () => tx.back() && void reload(app),
          onNext: () => tx.forward() && void reload(app),
        })
      : null,
  );
}

/**
 * The withdrawal fees as the API publishes them (GET /v1/fees): one row per balance
 * currency and payout currency.
 * @param {{rows: import('../fx.js').FeeRow[] | null, error: unknown}} fees
 */
function feeSchedule(fees) {
  const money = (value, currency) => (value === null ? t('fees.noMax') : moneyText(value, currency));
  return titledCard(
    { id: 'fees', title: t('fees.title'), error: fees.error },
    !fees.rows?.length
      ? fees.error
        ? null
        : h('p', { class: 'empty' }, t('fees.empty'))
      : dataTable({
          id: 'fees',
          columns: [
            [t('fees.pair')],
            [t('fees.fixed'), true],
            [t('fees.percent'), true],
            [t('fees.min'), true],
            [t('fees.max'), true],
            [t('fees.rule')],
          ],
          rows: fees.rows.map((r) =>
            h(
              'tr',
              { 'data-pair': `${r.currency}-${r.payout_currency}` },
              h('th', { scope: 'row' }, t('fees.pairText', { from: r.currency, to: r.payout_currency })),
              h('td', { class: 'num' }, money(r.fixed, r.currency)),
              h('td', { class: 'num' }, `${r.percent} %`),
              h('td', { class: 'num' }, money(r.min, r.currency)),
              h('td', { class: 'num' }, money(r.max, r.currency)),
              h('td', null, feeRuleText(r)),
            ),
          ),
        }),
    h('p', { class: 'hint' }, t('fees.note')),
  );
}
