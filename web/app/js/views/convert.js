// Convert between the member's own balances: a locked quote (POST /v1/fx/quotes) with the
// mid-market rate and the markup next to the rate, then the conversion (POST /v1/conversions)
// on that quote; and the list of conversions.
//
// Each quote has its own Idempotency-Key: pressing Convert again after a lost answer resends
// the same key, so the server replays the first conversion instead of converting twice. A
// quote that runs out (on this device's clock, or a 410 from the server) is replaced by a
// new one and the seller is told; a stale quote is never sent.

import { ApiError, errorMessage } from '../api.js';
import { field, h, replaceContent, setValue } from '../dom.js';
import {
  countdown,
  isQuoteOver,
  isReplayed,
  newIdempotencyKey,
  QUOTE_REFUSALS,
  quoteDeadline,
  quoteNotice,
  quoteToRenew,
  rateText,
} from '../fx.js';
import { formatTime, t } from '../i18n.js';
import { CURRENCIES, formatMoney, moneyText, positiveAmount } from '../money.js';
import { amountAttrs, currencyOptions, CursorPages, dataTable, fact, formError, listPager, loadListPage, notActiveCard, problemText, titledCard } from '../ui.js';

const PAGE_SIZE = 10;

/**
 * @typedef {{sell: string, buy: string, side: 'sell' | 'buy', amount: string}} ConvertForm
 * @typedef {{fingerprint: string, data: any, deadline: number, key: string}} Quote
 */

/** @returns {ConvertForm} */
function newForm(sell = 'USD') {
  return { sell, buy: other(sell), side: 'sell', amount: '' };
}

/** @param {string} currency */
function other(currency) {
  return CURRENCIES.find((c) => c !== currency) || currency;
}

/** @type {import('../main.js').View} */
export const convertView = {
  title: 'cv.title',
  nav: '/convert',
  async load(app) {
    const s = (app.state.convert ??= {
      form: newForm(),
      pages: new CursorPages(),
      result: null,
      replayed: false,
      uncertain: false,
    });
    s.pages.reset();
    s.error = null;
    s.amountError = null;
    s.notice = null;
    s.busy = false;
    s.quoting = false;
    s.seq = 0;
    // A quote left behind on an earlier visit is not offered again, unless a conversion
    // on it may have gone through (then Convert resends it with its key).
    if (!s.uncertain) s.quote = null;
    const [account] = await Promise.all([app.api.get('/v1/account'), loadPage(app)]);
    s.account = account.data;
    app.every(1000, () => tick(app));
  },
  render(app) {
    const s = app.state.convert;
    if (s.account.status !== 'active') return notActiveCard('cv.title', 'cv.notActive', s.account.status);
    return h('div', { class: 'stack' }, formCard(app), listCard(app));
  },
};

/** What a quote is for; null while the amount is not one the API would take. */
function fingerprintOf(form) {
  const amount = positiveAmount(form.amount);
  return amount && JSON.stringify([form.sell, form.buy, form.side, amount]);
}

/**
 * "100.00 USD → 716.40 CNY": what a quote or a conversion sells and buys.
 * @param {{sell_amount: string, sell_currency: string, buy_amount: string, buy_currency: string}} x
 */
function exchangeText(x) {
  return `${moneyText(x.sell_amount, x.sell_currency)} → ${moneyText(x.buy_amount, x.buy_currency)}`;
}

/** @param {any} app */
function formCard(app) {
  const s = app.state.convert;
  const f = s.form;
  const a = s.account;
  const select = (id, label, value, onchange) => {
    const fld = field({ id, label, type: 'select', attrs: { onchange } });
    fld.input.append(...currencyOptions(a.balances, value));
    return fld.node;
  };
  const changed = () => {
    formChanged(app);
    app.update();
    setValue('cv-sell', f.sell);
    setValue('cv-buy', f.buy);
  };
  const amountCurrency = f.side === 'sell' ? f.sell : f.buy;
  const amount = field({
    id: 'cv-amount',
    label: t(f.side === 'sell' ? 'cv.amountSell' : 'cv.amountBuy', { currency: amountCurrency }),
    hint: t('cv.amountHint', { available: formatMoney(a.balances[f.sell].available), currency: f.sell }),
    error: s.amountError ? h('span', null, problemText(s.amountError, { currency: f.sell })) : null,
    value: f.amount,
    attrs: amountAttrs(f, () => formChanged(app)),
  });
  const radio = (side) =>
    h(
      'div',
      { class: 'check' },
      h('input', {
        type: 'radio',
        id: `cv-side-${side}`,
        name: 'cv-side',
        value: side,
        checked: f.side === side,
        onchange: () => {
          f.side = side;
          changed();
        },
      }),
      h('label', { for: `cv-side-${side}` }, t(`cv.side.${side}`)),
    );
  return h(
    'section',
    { class: 'card narrow', 'aria-labelledby': 'cv-title' },
    h('h1', { id: 'cv-title' }, t('cv.title')),
    h('p', null, t('cv.intro')),
    s.result ? resultBox(s) : null,
    formError(
      s.error,
      { currency: f.sell },
      s.uncertain ? h('p', { class: 'hint' }, t('cv.networkRetry')) : null,
    ),
    h(
      'form',
      { novalidate: true, onsubmit: (event) => getQuote(event, app) },
      h(
        'div',
        { class: 'pair' },
        select('cv-sell', t('cv.sell'), f.sell, (event) => {
          f.sell = event.target.value;
          if (f.buy === f.sell) f.buy = other(f.sell);
          changed();
        }),
        select('cv-buy', t('cv.buy'), f.buy, (event) => {
          f.buy = event.target.value;
          if (f.sell === f.buy) f.sell = other(f.buy);
          changed();
        }),
      ),
      h('fieldset', { class: 'choice' }, h('legend', null, t('cv.side')), radio('sell'), radio('buy')),
      amount.node,
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          { type: 'submit', class: 'button', id: 'cv-get-quote', 'aria-disabled': s.quoting ? 'true' : null },
          t('cv.getQuote'),
        ),
      ),
    ),
    h('div', { id: 'cv-quote-box' }, quoteBox(app)),
  );
}

/** The quote: both amounts, the rate with the mid-market rate and the markup, the countdown. */
function quoteBox(app) {
  const s = app.state.convert;
  const q = s.quote;
  const notice = s.notice ? quoteNotice('cv-notice', t(`cv.notice.${s.notice}`)) : null;
  if (!q) {
    if (s.quoting) return [notice, h('p', { class: 'hint' }, t('cv.quoting'))];
    return notice;
  }
  const d = q.data;
  return h(
    'section',
    { class: 'preview', id: 'cv-quote', 'aria-labelledby': 'cv-quote-title' },
    h('h2', { id: 'cv-quote-title', tabindex: '-1' }, t('cv.quoteTitle')),
    notice,
    h(
      'dl',
      { class: 'facts preview-facts' },
      fact('cv.youSell', 'cv-quote-sell', moneyText(d.sell_amount, d.sell_currency)),
      fact('cv.youGet', 'cv-quote-buy', moneyText(d.buy_amount, d.buy_currency)),
      fact('cv.rate', 'cv-quote-rate', rateText(d.rate, d.sell_currency, d.buy_currency)),
      fact('cv.midRate', 'cv-quote-mid', rateText(d.mid_rate, d.sell_currency, d.buy_currency)),
      fact('cv.markup', 'cv-quote-markup', `${d.markup_percent} %`),
    ),
    countdown('cv-countdown', q.deadline),
    h('p', { class: 'hint' }, t('cv.markupNote'), ' ', h('span', { class: 'small' }, t('quote.ref', { id: d.id }))),
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          class: 'button primary',
          id: 'cv-convert',
          'aria-disabled': s.busy ? 'true' : null,
          onclick: () => void convert(app),
        },
        s.busy ? t('cv.converting') : t('cv.convert'),
      ),
    ),
  );
}

/** @param {any} s */
function resultBox(s) {
  const c = s.result;
  return h(
    'div',
    { class: 'result', id: 'cv-result' },
    h('h2', { id: 'cv-result-title', tabindex: '-1' }, t('cv.resultTitle')),
    s.replayed ? h('p', { class: 'notice' }, t('cv.replayed')) : null,
    h(
      'dl',
      { class: 'facts' },
      fact('cv.id', 'cv-result-id', h('span', { class: 'mono' }, c.id)),
      fact('cv.sold', 'cv-result-sell', moneyText(c.sell_amount, c.sell_currency)),
      fact('cv.bought', 'cv-result-buy', moneyText(c.buy_amount, c.buy_currency)),
      fact('cv.rate', 'cv-result-rate', rateText(c.rate, c.sell_currency, c.buy_currency)),
    ),
    h('p', { class: 'hint', id: 'cv-balances' }, t('cv.balancesNow', {
      usd: formatMoney(s.account.balances.USD.available),
      cny: formatMoney(s.account.balances.CNY.available),
    })),
  );
}

/** Draws the quote box again (the focus stays where it is). */
function showQuote(app) {
  const box = document.getElementById('cv-quote-box');
  if (box && app.view === convertView) replaceContent(box, quoteBox(app));
}

/** The form changed: a quote for other values is dropped (it lapses on its own). */
function formChanged(app) {
  const s = app.state.convert;
  s.notice = null;
  s.amountError = null;
  if (s.quote && s.quote.fingerprint !== fingerprintOf(s.form) && !s.uncertain) {
    s.quote = null;
    s.seq += 1;
  }
  showQuote(app);
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function getQuote(event, app) {
  event.preventDefault();
  const s = app.state.convert;
  if (s.quoting || s.busy) return;
  s.error = null;
  s.amountError = null;
  if (!fingerprintOf(s.form)) {
    s.amountError = new ApiError({ status: 422, code: 'invalid_amount' });
    app.update();
    app.showError(s.amountError);
    return;
  }
  if (s.uncertain) {
    // A conversion on the current quote may have gone through: settle that first.
    s.error = new ApiError({ status: 0, code: 'network_error' });
    app.update();
    app.showError(t('cv.networkRetry'));
    return;
  }
  s.result = null;
  await requestQuote(app, null);
}

/**
 * A new quote for what is in the form.
 * @param {any} app
 * @param {string | null} notice what to tell the user once it is there
 * @param {boolean} [focus] move the focus to the quote (the seller asked for it, or pressed
 *   Convert); a quote renewed by the countdown leaves the focus where it is
 */
async function requestQuote(app, notice, focus = true) {
  const s = app.state.convert;
  const f = s.form;
  const fingerprint = fingerprintOf(f);
  if (!fingerprint) return;
  const seq = ++s.seq;
  s.quote = null;
  s.quoting = true;
  s.notice = null;
  app.update();
  /** @type {Record<string, string>} */
  const body = { sell_currency: f.sell, buy_currency: f.buy };
  body[f.side === 'sell' ? 'sell_amount' : 'buy_amount'] = /** @type {string} */ (positiveAmount(f.amount));
  try {
    const res = await app.api.post('/v1/fx/quotes', body);
    if (seq !== s.seq) return;
    const d = res.data;
    s.quote = {
      fingerprint,
      data: d,
      deadline: quoteDeadline(d.expires_at, Date.parse(d.created_at), Date.now()),
      key: newIdempotencyKey(),
    };
    s.quoting = false;
    s.notice = notice;
    app.update();
    if (notice) {
      app.announce(t(`cv.notice.${notice}`));
      if (focus) document.getElementById('cv-notice')?.focus();
    } else {
      app.announce(`${t('cv.quoteTitle')}: ${exchangeText(d)}`);
      if (focus) document.getElementById('cv-quote-title')?.focus();
    }
  } catch (error) {
    if (seq !== s.seq) return;
    s.quoting = false;
    if (error instanceof ApiError && error.code === 'invalid_amount') s.amountError = error;
    else s.error = error;
    app.update();
    if (focus) app.showError(error, { currency: f.sell });
    else app.announce(errorMessage(error, { currency: f.sell }));
  }
}

/** @param {any} app */
async function convert(app) {
  const s = app.state.convert;
  const q = s.quote;
  if (!q || s.busy) return;
  if (isQuoteOver(q.deadline, s.uncertain)) {
    await requestQuote(app, 'refreshed');
    return;
  }
  s.busy = true;
  s.error = null;
  s.uncertain = false;
  app.update();
  try {
    const res = await app.api.post('/v1/conversions', { quote_id: q.data.id }, { 'idempotency-key': q.key });
    s.busy = false;
    s.quote = null;
    s.result = res.data;
    s.replayed = isReplayed(res.headers);
    s.form = newForm(s.form.sell);
    s.pages.reset();
    try {
      const [account] = await Promise.all([app.api.get('/v1/account'), loadPage(app)]);
      s.account = account.data;
    } catch {
      // the balances and the list show again on the next visit
    }
    app.update({ preserve: false });
    document.getElementById('cv-result-title')?.focus();
    app.announce(`${t('cv.resultTitle')}: ${exchangeText(res.data)}`);
  } catch (error) {
    s.busy = false;
    if (error instanceof ApiError && error.uncertain) {
      s.uncertain = true; // keep the quote and its key: Convert resends the same request
      s.error = error;
    } else if (error instanceof ApiError && error.code === 'quote_expired') {
      await requestQuote(app, 'refreshed');
      return;
    } else {
      if (error instanceof ApiError && QUOTE_REFUSALS.includes(error.code)) s.quote = null;
      s.error = error;
    }
    app.update();
    app.showError(error, { currency: q.data.sell_currency });
  }
}

/** Once a second: the countdown; when the quote runs out, a new one. */
function tick(app) {
  const s = app.state.convert;
  const q = s?.quote;
  if (!q || s.quoting) return;
  if (quoteToRenew('cv-countdown', q.deadline, s)) void requestQuote(app, 'refreshed', false);
}

// ---- The list ----

/** @param {any} app */
function listCard(app) {
  const pages = app.state.convert.pages;
  return titledCard(
    { id: 'cvs', title: t('cvs.title'), error: pages.error },
    pages.items.length === 0
      ? h('p', { class: 'empty' }, t('cvs.empty'))
      : dataTable({
          id: 'conversions',
          caption: `${t('cvs.title')}, ${t('paging.page', { n: pages.page + 1 })}`,
          columns: [[t('cvs.date')], [t('cv.sold'), true], [t('cv.bought'), true], [t('cv.rate'), true], [t('cv.id')]],
          rows: pages.items.map((c) =>
            h(
              'tr',
              { 'data-id': c.id },
              h('td', null, h('time', { datetime: c.created_at }, formatTime(c.created_at))),
              h('td', { class: 'num' }, moneyText(c.sell_amount, c.sell_currency)),
              h('td', { class: 'num' }, moneyText(c.buy_amount, c.buy_currency)),
              h('td', { class: 'num' }, c.rate),
              h('td', { class: 'mono small' }, c.id),
            ),
          ),
        }),
    listPager(app, pages, { id: 'cvs', label: t('cvs.title'), load: () => loadPage(app) }),
  );
}

/** @param {any} app */
function loadPage(app) {
  return loadListPage(app, app.state.convert.pages, '/v1/conversions', PAGE_SIZE);
}
