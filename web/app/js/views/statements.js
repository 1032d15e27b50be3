// Statements: one currency, one calendar month (UTC): the opening balances, the lines
// (GET /v1/statements, followed through next_cursor with "Load more"), the closing balances
// and the month's totals; and the month as a CSV file (POST /v1/statements/exports, polled
// until ready, then downloaded from its signed URL).

import { errorMessage } from '../api.js';
import { field, h } from '../dom.js';
import { formatTime, locale, t } from '../i18n.js';
import { CURRENCIES, formatMoney } from '../money.js';
import { dataTable, fact, formError, problemText, titledCard, typeText } from '../ui.js';

/** Lines per page of GET /v1/statements. */
const PAGE_SIZE = 100;
/** How often, and for how long, an export's status is asked for. */
const POLL_MS = 500;
const POLL_TIMEOUT_MS = 30000;

const BUCKETS = /** @type {const} */ (['available', 'pending', 'in_transit']);

/** The current month in UTC, as `<input type="month">` writes it ("2026-11"). */
export function currentMonth(now = new Date()) {
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * A month ("2026-11") as the half-open range of instants the API takes: its first instant
 * and the next month's, in UTC. Null for anything else.
 * @param {string} month
 */
export function monthRange(month) {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) return null;
  const year = Number(m[1]);
  const index = Number(m[2]) - 1;
  if (year < 1970 || index < 0 || index > 11) return null;
  const from = new Date(Date.UTC(year, index, 1));
  const to = new Date(Date.UTC(year, index + 1, 1));
  return { from: from.toISOString(), to: to.toISOString() };
}

/** @param {any} app */
function state(app) {
  return (app.state.statements ??= {
    currency: 'USD',
    month: currentMonth(),
    formError: null,
    monthError: false,
    /** @type {any} the first page's answer: range, opening, closing, totals */
    statement: null,
    /** @type {any[]} */
    lines: [],
    /** @type {string | null} */
    next: null,
    moreError: null,
    loadingMore: false,
    /** @type {{status: 'idle' | 'waiting' | 'started' | 'failed' | 'error', error?: unknown, lines?: number | null}} */
    download: { status: 'idle' },
    busy: false,
  });
}

/** @type {import('../main.js').View} */
export const statementsView = {
  title: 'st.title',
  nav: '/statements',
  async load(app) {
    const s = state(app);
    s.formError = null;
    s.monthError = false;
    s.moreError = null;
    s.loadingMore = false;
    s.busy = false;
    s.download = { status: 'idle' };
    await loadStatement(app, s.currency, s.month);
  },
  render(app) {
    const s = state(app);
    return h('div', { class: 'stack' }, picker(app, s), s.statement ? [summary(s), lines(app, s), totals(s)] : null);
  },
};

/**
 * Loads the first page of a month's statement into the state (replacing what was shown).
 * @param {any} app
 * @param {string} currency
 * @param {string} month
 */
async function loadStatement(app, currency, month) {
  const s = state(app);
  const range = monthRange(month);
  if (!range) throw new Error('bad month');
  const q = new URLSearchParams({ currency, from: range.from, to: range.to, limit: String(PAGE_SIZE) });
  const res = await app.api.get(`/v1/statements?${q}`);
  s.currency = currency;
  s.month = month;
  s.statement = res.data;
  s.lines = [...res.data.lines];
  s.next = res.data.next_cursor ?? null;
  s.moreError = null;
  s.download = { status: 'idle' };
}

/**
 * The form: currency and month; "Show" loads that statement.
 * @param {any} app
 * @param {any} s
 */
function picker(app, s) {
  const currency = field({
    id: 'st-currency',
    label: t('st.currency'),
    type: 'select',
  });
  currency.input.append(...CURRENCIES.map((c) => h('option', { value: c, selected: c === s.currency }, c)));
  const month = field({
    id: 'st-month',
    label: t('st.month'),
    type: 'month',
    value: s.month,
    describedBy: 'st-month-hint',
    error: s.monthError ? t('st.err.month') : null,
    attrs: { required: true, min: '2020-01', max: '2099-12' },
  });
  const submit = async (/** @type {Event} */ event) => {
    event.preventDefault();
    if (s.busy) return;
    const chosenCurrency = /** @type {HTMLSelectElement} */ (currency.input).value;
    const chosenMonth = /** @type {HTMLInputElement} */ (month.input).value;
    s.monthError = !monthRange(chosenMonth);
    s.formError = null;
    if (s.monthError) {
      app.update();
      app.showError(t('st.err.month'));
      return;
    }
    s.busy = true;
    const navigation = app.navigation;
    try {
      await loadStatement(app, chosenCurrency, chosenMonth);
    } catch (error) {
      if (navigation !== app.navigation) return;
      s.formError = error;
      s.busy = false;
      app.update();
      app.showError(error);
      return;
    }
    s.busy = false;
    if (navigation !== app.navigation) return;
    app.update();
    app.announce(
      t('st.shown', { currency: s.currency, month: monthLabel(s.month), n: s.lines.length + (s.next ? '+' : '') }),
    );
  };
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'st-title' },
    h('h1', { id: 'st-title' }, t('st.title')),
    h('p', null, t('st.intro')),
    h(
      'form',
      { id: 'st-form', class: 'st-form', novalidate: true, onsubmit: submit },
      currency.node,
      month.node,
      h('div', { class: 'field' }, h('button', { type: 'submit', class: 'button primary', id: 'st-show' }, t('st.show'))),
    ),
    h('p', { class: 'hint', id: 'st-month-hint' }, t('st.monthHint')),
    formError(s.formError),
  );
}

/** "November 2026" / "2026年11月" for a "2026-11", in the page's language. */
function monthLabel(month) {
  const [y, m] = month.split('-').map(Number);
  const options = /** @type {Intl.DateTimeFormatOptions} */ ({ year: 'numeric', month: 'long', timeZone: 'UTC' });
  return new Intl.DateTimeFormat(locale(), options).format(new Date(Date.UTC(y, m - 1, 1)));
}

/** An instant in UTC, for the range of a month ("Nov 1, 2026, 00:00 UTC"). */
function utcTime(value) {
  const options = /** @type {Intl.DateTimeFormatOptions} */ ({
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZone: 'UTC',
  });
  return `${new Intl.DateTimeFormat(locale(), options).format(new Date(value))} UTC`;
}

/**
 * The range, and the opening and closing balances, side by side.
 * @param {any} s
 */
function summary(s) {
  const st = s.statement;
  const row = (key, which) =>
    h(
      'tr',
      { id: `st-${which}` },
      h('th', { scope: 'row' }, t(key)),
      BUCKETS.map((b) => h('td', { class: 'num', id: `st-${which}-${b}` }, formatMoney(st[which][b]))),
    );
  return titledCard(
    { id: 'st-summary', title: t('st.summaryTitle', { currency: st.currency, month: monthLabel(s.month) }) },
    h(
      'p',
      { class: 'hint', id: 'st-range' },
      t('st.range', {
        from: utcTime(st.from),
        to: utcTime(st.to),
        fromLocal: formatTime(st.from),
        toLocal: formatTime(st.to),
      }),
    ),
    dataTable({
      id: 'st-balances',
      caption: t('st.balancesCaption', { currency: st.currency }),
      columns: [
        [t('st.balance')],
        [t('balances.available'), true],
        [t('balances.pending'), true],
        [t('balances.in_transit'), true],
      ],
      rows: [row('st.opening', 'opening'), row('st.closing', 'closing')],
    }),
    h('p', { class: 'hint' }, t('st.balancesNote', { currency: st.currency })),
  );
}

/**
 * The lines, oldest first, with "Load more" while the server has more, and the download.
 * @param {any} app
 * @param {any} s
 */
function lines(app, s) {
  const money = (value, extra = '') =>
    h('td', { class: `num ${extra}`.trim() }, formatMoney(value));
  const change = (value) => money(value, value.startsWith('-') ? 'negative' : /^0(\.0+)?$/.test(value) ? 'zero' : 'positive');
  const rows = s.lines.map((l) =>
    h(
      'tr',
      { 'data-id': l.id, 'data-type': l.type },
      h('td', null, h('time', { datetime: l.time }, formatTime(l.time))),
      h('td', { class: 'st-type' }, typeText(l.type)),
      h('td', { class: 'mono small st-ref' }, l.reference),
      h('td', { class: 'small' }, l.description),
      BUCKETS.map((b) => change(l[`${b}_change`])),
      BUCKETS.map((b) => money(l[`${b}_after`])),
    ),
  );
  const more = async () => {
    if (s.loadingMore || !s.next) return;
    s.loadingMore = true;
    app.update();
    const before = s.lines.length;
    const navigation = app.navigation;
    try {
      const range = monthRange(s.month);
      const q = new URLSearchParams({ currency: s.currency, from: range.from, to: range.to, limit: String(PAGE_SIZE), cursor: s.next });
      const res = await app.api.get(`/v1/statements?${q}`);
      if (navigation !== app.navigation) return;
      s.lines.push(...res.data.lines);
      s.next = res.data.next_cursor ?? null;
      s.moreError = null;
    } catch (error) {
      if (navigation !== app.navigation) return;
      s.moreError = error;
      s.loadingMore = false;
      app.update();
      app.showError(error);
      return;
    }
    s.loadingMore = false;
    app.update();
    app.announce(t('st.count', { n: s.lines.length }) + (s.next ? ` ${t('st.moreAvailable')}` : ''));
    // The button is gone with the last page: the focus goes to the first line it brought.
    if (!s.next) {
      const first = document.querySelector(`#st-lines tbody tr:nth-child(${before + 1}) td`);
      if (first instanceof HTMLElement) {
        first.setAttribute('tabindex', '-1');
        first.focus();
      }
    }
  };
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'st-lines-title' },
    h(
      'div',
      { class: 'section-head' },
      h('h2', { id: 'st-lines-title' }, t('st.linesTitle')),
      downloadButton(app, s),
    ),
    downloadStatus(s),
    s.lines.length === 0
      ? h('p', { class: 'empty', id: 'st-empty' }, t('st.empty'))
      : [
          linesTable(s, rows),
          h('p', { class: 'hint', id: 'st-count' }, t('st.count', { n: s.lines.length }), s.next ? ` ${t('st.moreAvailable')}` : ''),
        ],
    s.moreError ? h('div', { class: 'form-error', id: 'st-more-error', tabindex: '-1' }, problemText(s.moreError)) : null,
    s.next
      ? h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'button',
              id: 'st-more',
              'aria-disabled': s.loadingMore ? 'true' : null,
              onclick: () => void more(),
            },
            s.loadingMore ? t('st.loadingMore') : t('st.loadMore'),
          ),
        )
      : null,
  );
}

/**
 * The lines' table: the changes and the balances after, each under its group's header
 * (two header rows, the groups scoped to their column groups). It is wider than a phone,
 * so its wrapper scrolls and the keyboard can reach it.
 * @param {any} s
 * @param {Node[]} rows
 */
function linesTable(s, rows) {
  const caption = t('st.linesCaption', { currency: s.statement.currency, month: monthLabel(s.month) });
  const single = (key) => h('th', { scope: 'col', rowspan: '2' }, t(key));
  const group = (key) => h('th', { scope: 'colgroup', colspan: '3', class: 'group' }, t(key));
  const bucket = (b) => h('th', { scope: 'col', class: 'num' }, t(`bucket.${b}`));
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption, id: 'st-lines-wrap' },
    h(
      'table',
      { id: 'st-lines' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('colgroup', { span: '4' }),
      h('colgroup', { span: '3', class: 'st-changes' }),
      h('colgroup', { span: '3', class: 'st-afters' }),
      h(
        'thead',
        null,
        h('tr', null, single('st.time'), single('st.type'), single('st.reference'), single('st.description'), group('st.change'), group('st.after')),
        h('tr', null, BUCKETS.map(bucket), BUCKETS.map(bucket)),
      ),
      h('tbody', null, rows),
    ),
  );
}

/**
 * The month's totals as the server counts them.
 * @param {any} s
 */
function totals(s) {
  const tt = s.statement.totals;
  const c = s.statement.currency;
  const item = (key) => fact(`st.total.${key}`, `st-total-${key}`, `${formatMoney(tt[key])} ${c}`);
  return titledCard(
    { id: 'st-totals', title: t('st.totalsTitle') },
    h(
      'dl',
      { class: 'facts' },
      ['collected', 'refunded', 'withdrawn', 'fees', 'converted_in', 'converted_out'].map(item),
    ),
    h('p', { class: 'hint' }, t('st.totalsNote')),
  );
}

/**
 * @param {any} app
 * @param {any} s
 */
function downloadButton(app, s) {
  const waiting = s.download.status === 'waiting';
  return h(
    'button',
    {
      type: 'button',
      class: 'button',
      id: 'st-download',
      'aria-disabled': waiting ? 'true' : null,
      'aria-describedby': 'st-download-status',
      onclick: () => {
        if (!waiting) void download(app);
      },
    },
    t('st.download'),
  );
}

/**
 * What the download is doing, in a polite live region (always present, so that what it
 * says is announced).
 * @param {any} s
 */
function downloadStatus(s) {
  const d = s.download;
  let content = null;
  if (d.status === 'waiting') content = h('p', { class: 'hint' }, t('st.dl.waiting'));
  if (d.status === 'started') {
    content = h('p', { class: 'notice' }, t('st.dl.started', { n: d.lines ?? '?' }));
  }
  if (d.status === 'failed') content = h('div', { class: 'form-error', tabindex: '-1' }, t('st.dl.failed'));
  if (d.status === 'error') content = h('div', { class: 'form-error', tabindex: '-1' }, problemText(d.error));
  return h('div', { id: 'st-download-status', class: 'download-status', role: 'status' }, content);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asks for the month's CSV, waits until the server has written it, and starts the download.
 * @param {any} app
 */
async function download(app) {
  const s = state(app);
  const navigation = app.navigation;
  const range = monthRange(s.month);
  const body = { currency: s.statement.currency, from: range.from, to: range.to, format: 'csv' };
  s.download = { status: 'waiting' };
  app.update();
  /** @param {typeof s.download} next */
  const finish = (next) => {
    if (navigation !== app.navigation) return;
    s.download = next;
    app.update();
    if (next.status === 'failed') app.announce(t('st.dl.failed'));
    if (next.status === 'error') app.announce(errorMessage(next.error));
  };
  try {
    let exp = (await app.api.post('/v1/statements/exports', body)).data;
    const deadline = Date.now() + POLL_TIMEOUT_MS;
    while (exp.status === 'pending') {
      if (navigation !== app.navigation) return;
      if (Date.now() > deadline) {
        finish({ status: 'failed' });
        return;
      }
      await sleep(POLL_MS);
      exp = (await app.api.get(`/v1/statements/exports/${encodeURIComponent(exp.id)}`)).data;
    }
    if (exp.status !== 'ready' || !exp.download_url) {
      finish({ status: 'failed' });
      return;
    }
    if (navigation !== app.navigation) return;
    // The URL is signed and needs no token; the server sends it as an attachment, so the
    // page stays where it is. (`download` only counts on the same origin; elsewhere the
    // server's Content-Disposition does the same.)
    const a = h('a', { href: exp.download_url, download: '', class: 'visually-hidden' });
    document.body.append(a);
    a.click();
    a.remove();
    finish({ status: 'started', lines: exp.lines });
  } catch (error) {
    finish({ status: 'error', error });
  }
}
