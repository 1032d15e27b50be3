// Pieces of UI the views share.

import { ApiError, errorMessage } from './api.js';
import { h } from './dom.js';
import { getLang, messages, t } from './i18n.js';
import { CURRENCIES, formatMoney } from './money.js';

/**
 * An error for people: the message, and the request id support needs.
 * @param {unknown} error
 * @param {{currency?: string}} [context]
 */
export function problemText(error, context) {
  const id = error instanceof ApiError ? error.requestId : null;
  return [
    h('span', { class: 'error-message' }, errorMessage(error, context)),
    id ? h('span', { class: 'request-id' }, ` ${t('app.requestId', { id })}`) : null,
  ];
}

/**
 * The error box of a form (focusable, so the focus can go there).
 * @param {unknown} error
 * @param {{currency?: string}} [context]
 * @param {...any} extra more content (a link to where to go)
 */
export function formError(error, context, ...extra) {
  if (!error) return null;
  return h('div', { class: 'form-error', id: 'form-error', tabindex: '-1' }, problemText(error, context), ...extra);
}

/**
 * A card of a page under its own h2, labelled by it, with its own error box (`${id}-error`):
 * a part that failed to load says so in place and leaves the page's form error to the form.
 * @param {{id: string, title: string, error?: unknown}} p
 * @param {...any} content
 */
export function titledCard({ id, title, error = null }, ...content) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    error ? h('div', { class: 'form-error', id: `${id}-error` }, problemText(error)) : null,
    ...content,
  );
}

/**
 * One entry of a definition list (`dl.facts`): the text of `key`, and the value under `id`.
 * @param {string} key
 * @param {string} id
 * @param {any} value
 */
export function fact(key, id, value) {
  return h('div', null, h('dt', null, t(key)), h('dd', { id }, value));
}

/**
 * The options of a balance currency select: each currency with what is available in it.
 * @param {Record<string, {available: string}>} balances
 * @param {string} selected
 */
export function currencyOptions(balances, selected) {
  return CURRENCIES.map((c) =>
    h('option', { value: c, selected: c === selected }, t('wd.currencyOption', { currency: c, available: formatMoney(balances[c].available) })),
  );
}

/**
 * The attributes of an amount input: the decimal keypad on phones, no autofill or spell
 * check, and `form.amount` kept as typed. Typing is a change (`changed`); the value put
 * back after a redraw (the `restore` event of App.update) is not.
 * @param {{amount: string}} form
 * @param {() => void} changed
 */
export function amountAttrs(form, changed) {
  const keep = (event) => {
    form.amount = event.target.value;
  };
  return {
    inputmode: 'decimal',
    autocomplete: 'off',
    required: true,
    spellcheck: 'false',
    oninput: (event) => {
      keep(event);
      changed();
    },
    onrestore: keep,
  };
}

/**
 * Previous / next page buttons for a cursor-paged list. Disabled buttons stay focusable
 * (aria-disabled), so the focus does not jump when the last page is reached.
 * @param {{id: string, label: string, page: number, hasPrev: boolean, hasNext: boolean,
 *   onPrev: () => void, onNext: () => void}} p
 */
export function pager(p) {
  const button = (id, enabled, key, onclick) =>
    h(
      'button',
      {
        type: 'button',
        id,
        class: 'button small',
        'aria-disabled': enabled ? null : 'true',
        onclick: () => {
          if (enabled) onclick();
        },
      },
      t(key),
    );
  return h(
    'nav',
    { class: 'pager', 'aria-label': p.label },
    button(`${p.id}-prev`, p.hasPrev, 'paging.prev', p.onPrev),
    h('span', { class: 'page-number', id: `${p.id}-page`, 'aria-live': 'polite' }, t('paging.page', { n: p.page + 1 })),
    button(`${p.id}-next`, p.hasNext, 'paging.next', p.onNext),
  );
}

/**
 * A cursor-paged list: the cursors of the pages seen so far, and the current page.
 * @template T
 */
export class CursorPages {
  constructor() {
    /** @type {(string | null)[]} */
    this.cursors = [null];
    this.page = 0;
    /** @type {T[]} */
    this.items = [];
    /** @type {string | null} */
    this.next = null;
    /** @type {unknown} */
    this.error = null;
  }

  reset() {
    this.cursors = [null];
    this.page = 0;
  }

  get cursor() {
    return this.cursors[this.page];
  }

  /** @param {{items: T[], next_cursor: string | null}} data */
  loaded(data) {
    this.items = data.items;
    this.next = data.next_cursor;
    this.error = null;
  }

  forward() {
    if (!this.next) return false;
    this.cursors[this.page + 1] = this.next;
    this.page += 1;
    return true;
  }

  back() {
    if (this.page === 0) return false;
    this.page -= 1;
    return true;
  }
}

/**
 * @param {string} prefix the texts' key prefix (`status`, `wstatus`)
 * @param {string} status
 */
export function badge(prefix, status) {
  return h('span', { class: `badge badge-${status}` }, t(`${prefix}.${status}`));
}

/**
 * Loads the current page of a cursor-paged list (`{items, next_cursor}`).
 * @param {any} app
 * @param {CursorPages<any>} pages
 * @param {string} path
 * @param {number} limit
 */
export async function loadListPage(app, pages, path, limit) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (pages.cursor) q.set('cursor', pages.cursor);
  const res = await app.api.get(`${path}?${q}`);
  pages.loaded(res.data);
}

/**
 * The pager of a list page, or null when there is one page: previous / next load that page
 * with `load` and draw the view again.
 * @param {any} app
 * @param {CursorPages<any>} pages
 * @param {{id: string, label: string, load: () => Promise<void>}} p
 */
export function listPager(app, pages, { id, label, load }) {
  if (pages.page === 0 && !pages.next) return null;
  const reload = async () => {
    try {
      await load();
    } catch (error) {
      pages.error = error;
      app.showError(error);
    }
    app.update();
  };
  return pager({
    id,
    label,
    page: pages.page,
    hasPrev: pages.page > 0,
    hasNext: Boolean(pages.next),
    onPrev: () => pages.back() && void reload(),
    onNext: () => pages.forward() && void reload(),
  });
}

/**
 * A table in its scrolling wrapper: column headers (numeric ones right-aligned), the rows
 * as given, and a caption for screen readers.
 * @param {{id: string, caption?: string | null, columns: [string, boolean?][], rows: Node[]}} p
 */
export function dataTable({ id, caption = null, columns, rows }) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', null, h('tr', null, columns.map(([text, numeric]) => h('th', { scope: 'col', class: numeric ? 'num' : null }, text)))),
      h('tbody', null, rows),
    ),
  );
}

/**
 * A page that needs an active account, for one that is not: why, and the way to activate.
 * @param {string} titleKey
 * @param {string} textKey
 * @param {string} status the account's status
 */
export function notActiveCard(titleKey, textKey, status) {
  return h(
    'section',
    { class: 'card narrow' },
    h('h1', null, t(titleKey)),
    h('p', null, t(textKey)),
    h('a', { class: 'button primary', href: status === 'inactive' ? '#/activate' : '#/activate/code' }, t('account.activate')),
  );
}

/**
 * A ledger entry's or statement line's type in words; a type this client does not know yet,
 * as it is.
 * @param {string} type
 */
export function typeText(type) {
  return `tx.type.${type}` in messages[getLang()] ? t(`tx.type.${type}`) : type;
}
