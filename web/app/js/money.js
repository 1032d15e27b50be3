// Money as the API writes it: decimal strings with 2 minor digits. Arithmetic is done on
// BigInt minor units (cents / fen); no floating point anywhere.

/** The currencies an account holds, in the order the pages list them. */
export const CURRENCIES = ['USD', 'CNY'];

/** What the API accepts in a request: 1 to 12 integer digits, 0 to 2 decimals. */
const INPUT = /^(\d{1,12})(?:\.(\d{1,2}))?$/;

/**
 * Parses a money string into minor units, or null if it is not a plain decimal the API
 * would accept ("10", "10.5", "10.50"; no sign, no exponent, at most 2 decimals).
 * @param {string} text
 * @returns {bigint | null}
 */
export function parseAmount(text) {
  const m = INPUT.exec(String(text).trim());
  if (!m) return null;
  return BigInt(m[1]) * 100n + BigInt((m[2] || '').padEnd(2, '0'));
}

/**
 * An amount typed into a form, in the API's form ("10.5" → "10.50"); null when the API would
 * not take it, or it is zero: there is nothing to quote, preview or withdraw yet.
 * @param {string} text
 */
export function positiveAmount(text) {
  const minor = parseAmount(text);
  return minor === null || minor === 0n ? null : toPlain(minor);
}

/**
 * Parses a money string of a response ("-250.00" allowed).
 * @param {string} text
 * @returns {bigint}
 */
export function parseMoney(text) {
  const s = String(text).trim();
  const negative = s.startsWith('-');
  const minor = parseAmount(negative ? s.slice(1) : s);
  if (minor === null) throw new Error('not a money string');
  return negative ? -minor : minor;
}

/**
 * Minor units back to the API's form ("1500.00").
 * @param {bigint} minor
 */
export function toPlain(minor) {
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const units = abs / 100n;
  const cents = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}${units}.${cents}`;
}

/**
 * For display: grouped thousands ("1,500.00", "-250.00").
 * @param {string | bigint} value a money string or minor units
 */
export function formatMoney(value) {
  const plain = typeof value === 'bigint' ? toPlain(value) : toPlain(parseMoney(value));
  const [int, frac] = plain.split('.');
  const sign = int.startsWith('-') ? '-' : '';
  const digits = sign ? int.slice(1) : int;
  return `${sign}${digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${frac}`;
}

/**
 * Money for people, with its currency: "1,500.00 USD".
 * @param {string | bigint} value a money string or minor units
 * @param {string} currency
 */
export function moneyText(value, currency) {
  return `${formatMoney(value)} ${currency}`;
}
