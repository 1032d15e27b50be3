// What the withdraw and convert pages share about money across currencies: the published
// fee schedule, locked FX quotes counted down on this device's clock, and Idempotency-Keys.

import { h } from './dom.js';
import { t } from './i18n.js';
import { formatMoney } from './money.js';

export const CURRENCIES = ['USD', 'CNY'];

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
 * Once a second: the countdown's text, and whether the quote has run out.
 * @param {string} id
 * @param {number} deadline
 * @returns {boolean} true when the quote is no longer good
 */
export function tickCountdown(id, deadline) {
  const el = document.getElementById(id);
  const text = t('quote.lockedFor', { time: timeLeft(deadline) });
  if (el && el.textContent !== text) el.textContent = text;
  return Date.now() >= deadline;
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
  const money = (v) => `${formatMoney(v)} ${row.currency}`;
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
