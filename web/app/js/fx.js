// What the withdraw and convert pages share about money across currencies: the published
// fee schedule, locked FX quotes counted down on this device's clock (and when one is over,
// renewed or dropped), and Idempotency-Keys.

import { h } from './dom.js';
import { t } from './i18n.js';
import { CURRENCIES, moneyText } from './money.js';

/**
 * A quote is given up this long before the server's `expires_at`, so that a submit sent in
 * its last seconds does not arrive after it (network time, and the Date header's whole
 * seconds).
 */
const MARGIN_MS = 3000;

/** A fresh Idempotency-Key: 122 random bits. */
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return `web-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Whether the answer is the server's replay of an earlier request with the same
 * Idempotency-Key (a retry after a lost answer): the page says the first attempt went through.
 * @param {Headers} headers
 */
export function isReplayed(headers) {
  return headers.get('idempotent-replayed') === 'true';
}

/**
 * The server's time when it answered: its `Date` header, or null (unreadable across
 * origins unless exposed).
 * @param {Headers} headers
 */
export function serverDate(headers) {
  const at = Date.parse(headers.get('date') || '');
  return Number.isFinite(at) ? at : null;
}

/** How long the server locks a quote (the contract's 30 minutes): a fresh one has no more. */
const QUOTE_LOCK_MS = 30 * 60 * 1000;

/**
 * When a fresh quote ends on this device's clock. A device's clock can be minutes off the
 * server's, so the time the server leaves the quote (`expires_at` − the server's now) is
 * counted from when its answer arrived, less a margin. Without the server's time, this
 * device's clock is used as long as it agrees that the quote is fresh; when it does not
 * (it says the quote is over, or has more than the lock), the clock is off and the quote
 * is taken to have its whole lock.
 * @param {string} expiresAt the quote's expires_at
 * @param {number | null} serverNow the server's time of the answer (ms), if known
 * @param {number} receivedAt this device's time when the answer arrived (ms)
 */
export function quoteDeadline(expiresAt, serverNow, receivedAt) {
  let left = Date.parse(expiresAt) - (serverNow ?? receivedAt);
  if (serverNow === null && !(left > 0 && left <= QUOTE_LOCK_MS)) left = QUOTE_LOCK_MS;
  return receivedAt + Math.min(left, QUOTE_LOCK_MS) - MARGIN_MS;
}

/**
 * "29:58": the whole seconds left until `deadline`, never below 0:00.
 * @param {number} deadline
 */
export function timeLeft(deadline) {
  const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/**
 * The quote's countdown. role=timer is not announced at each tick; the page says when the
 * rate is refreshed.
 * @param {string} id
 * @param {number} deadline
 */
export function countdown(id, deadline) {
  return h('p', { class: 'countdown', id, role: 'timer' }, t('quote.lockedFor', { time: timeLeft(deadline) }));
}

/**
 * The countdown's text, once a second; answers whether the quote has run out.
 * @param {string} id
 * @param {number} deadline
 */
function tickCountdown(id, deadline) {
  const el = document.getElementById(id);
  const text = t('quote.lockedFor', { time: timeLeft(deadline) });
  if (el && el.textContent !== text) el.textContent = text;
  return Date.now() >= deadline;
}

/**
 * Once a second, for the quote on screen: its countdown; answers whether to renew the quote
 * now, because it has run out. Not while a submission on it is under way or its outcome is
 * unknown (a lost answer): that quote is kept, so that pressing the button again resends the
 * very same request (the server replays it, or answers 410 and the page renews it then).
 * @param {string} id the countdown's element
 * @param {number} deadline
 * @param {{busy: boolean, uncertain: boolean}} submission
 */
export function quoteToRenew(id, deadline, { busy, uncertain }) {
  return tickCountdown(id, deadline) && !busy && !uncertain;
}

/**
 * Whether a quote is not to be sent: it ran out on this device's clock. A quote whose last
 * submission had an unknown outcome is sent again all the same, with the same key, so that the
 * server replays what it did (or answers 410).
 * @param {number} deadline
 * @param {boolean} uncertain
 */
export function isQuoteOver(deadline, uncertain) {
  return Date.now() >= deadline && !uncertain;
}

/** Refusals about the quote itself: the quote is dropped, and a new one can be asked for. */
export const QUOTE_REFUSALS = ['quote_required', 'quote_mismatch', 'quote_not_found', 'quote_used'];

/**
 * The note that the quote on screen is a new one, and why; focusable, so the focus can go to
 * it after the seller pressed a button that brought it.
 * @param {string} id
 * @param {string} text
 */
export function quoteNotice(id, text) {
  return h('p', { class: 'notice', id, tabindex: '-1' }, text);
}

/**
 * "1 USD = 7.164000 CNY"
 * @param {string} rate
 * @param {string} from
 * @param {string} to
 */
export function rateText(rate, from, to) {
  return `1 ${from} = ${rate} ${to}`;
}

/**
 * @typedef {{currency: string, payout_currency: string, fixed: string, percent: string,
 *   min: string, max: string | null}} FeeRow
 */

/**
 * The published withdrawal fees (GET /v1/fees) as `{rows, error}`, rows null when they could
 * not be had: a page shows without them (the fee charged is the one the server previews).
 * @param {any} app
 * @returns {Promise<{rows: FeeRow[] | null, error: unknown}>}
 */
export function fetchFeeSchedule(app) {
  return app.api.get('/v1/fees').then(
    (res) => ({ rows: res.data.withdrawal, error: null }),
    (error) => ({ rows: null, error }),
  );
}

/**
 * The payout currencies the schedule offers for a balance currency; without a schedule,
 * the balance's own currency.
 * @param {FeeRow[] | null} rows
 * @param {string} currency
 */
export function payoutCurrencies(rows, currency) {
  const offered = (rows || []).filter((r) => r.currency === currency).map((r) => r.payout_currency);
  return offered.length ? CURRENCIES.filter((c) => offered.includes(c)) : [currency];
}

/**
 * One row of the schedule in words: "15.00 USD", "0.30 % (at least 8.00 USD)", "free".
 * @param {FeeRow} row
 */
export function feeRuleText(row) {
  const money = (v) => moneyText(v, row.currency);
  const hasFixed = !/^0+(\.0+)?$/.test(row.fixed);
  const hasPercent = !/^0+(\.0+)?$/.test(row.percent);
  const hasMin = !/^0+(\.0+)?$/.test(row.min);
  let text;
  if (hasFixed && hasPercent) text = t('fees.rule.both', { fixed: money(row.fixed), percent: row.percent });
  else if (hasPercent) text = t('fees.rule.percent', { percent: row.percent });
  else if (hasFixed) text = money(row.fixed);
  else if (!hasMin) return t('fees.rule.free');
  else text = '';
  const limits = [
    hasMin ? t('fees.rule.min', { min: money(row.min) }) : null,
    row.max !== null ? t('fees.rule.max', { max: money(row.max) }) : null,
  ].filter(Boolean);
  if (!text) return limits.join(t('fees.rule.sep'));
  return limits.length ? t('fees.rule.limits', { rule: text, limits: limits.join(t('fees.rule.sep')) }) : text;
}
