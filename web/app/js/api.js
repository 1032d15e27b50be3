// The HTTP client of the fund account API. Errors become ApiError with the contract's
// stable `code`, the problem document and the response's x-request-id. Nothing here logs
// a request body: it can carry a password or a code.

import { formatTime, messages, t, getLang } from './i18n.js';
import { formatMoney } from './money.js';

/** How long a request may take before it counts as a network error. */
const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  /**
   * @param {{status: number, code: string, problem?: any, requestId?: string | null,
   *          retryAfter?: number | null}} fields
   */
  constructor({ status, code, problem = null, requestId = null, retryAfter = null }) {
    super(code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.problem = problem;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** True when the request may not have reached the server (or its answer was lost). */
  get uncertain() {
    return this.code === 'network_error' || this.status >= 500;
  }
}

/**
 * @typedef {{baseUrl: string, token: () => string | null, onUnauthorized: () => void}} ClientOptions
 * @typedef {{status: number, data: any, requestId: string | null, headers: Headers}} ApiResponse
 */

export class ApiClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    this.options = options;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, headers?: Record<string, string>, auth?: boolean}} [init]
   * @returns {Promise<ApiResponse>}
   */
  async request(method, path, { body, headers = {}, auth = true } = {}) {
    const all = { accept: 'application/json, application/problem+json', ...headers };
    if (body !== undefined) all['content-type'] = 'application/json';
    if (auth) {
      const token = this.options.token();
      if (!token) {
        this.options.onUnauthorized();
        throw new ApiError({ status: 401, code: 'unauthorized' });
      }
      all.authorization = `Bearer ${token}`;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    /** @type {Response} */
    let res;
    let text;
    try {
      res = await fetch(this.options.baseUrl + path, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        signal: controller.signal,
      });
      text = await res.text();
    } catch {
      throw new ApiError({ status: 0, code: 'network_error' });
    } finally {
      clearTimeout(timer);
    }
    // x-request-id from the handlers; API Gateway's own refusals carry apigw-requestid.
    const requestId = res.headers.get('x-request-id') || res.headers.get('apigw-requestid');
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const retry = Number.parseInt(res.headers.get('retry-after') || '', 10);
      const code =
        data && typeof data.code === 'string' ? data.code : fallbackCode(res.status);
      const error = new ApiError({
        status: res.status,
        code,
        problem: data,
        requestId,
        retryAfter: Number.isFinite(retry) ? retry : null,
      });
      if (res.status === 401 && auth) this.options.onUnauthorized();
      throw error;
    }
    return { status: res.status, data, requestId, headers: res.headers };
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body, headers) {
    return this.request('POST', path, { body, headers });
  }
}

/** A code for answers without a problem document (API Gateway's own `{"message"}`). */
function fallbackCode(status) {
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'route_not_found';
    case 413:
      return 'payload_too_large';
    case 429:
    case 502:
    case 503:
    case 504:
      return 'service_unavailable';
    default:
      return status >= 500 ? 'internal_error' : 'unknown_error';
  }
}

/**
 * The message for an error, in the current language.
 * @param {unknown} error
 * @param {{currency?: string}} [context] what the problem leaves implicit
 */
export function errorMessage(error, context = {}) {
  if (!(error instanceof ApiError)) return t('error.unknown_error', { status: '?' });
  const p = error.problem && typeof error.problem === 'object' ? error.problem : {};
  let key = `error.${error.code}`;
  if (p.attempts_left === 0 && error.code === 'code_incorrect') key = 'error.code_incorrect_last';
  if (p.attempts_left === 0 && error.code === 'payment_password_incorrect') {
    key = 'error.payment_password_incorrect_last';
  }
  const retryAfter = Number(p.retry_after ?? error.retryAfter ?? 60);
  const params = {
    status: error.status,
    attempts_left: p.attempts_left ?? '',
    available: p.available ? formatMoney(p.available) : '',
    fee: p.fee ? formatMoney(p.fee) : '',
    refundable: p.refundable ? formatMoney(p.refundable) : '',
    locked_until: p.locked_until ? formatTime(p.locked_until) : '',
    retry_after: retryAfter,
    minutes: Math.max(1, Math.ceil(retryAfter / 60)),
    currency: context.currency ?? '',
  };
  if (key in messages[getLang()]) return t(key, params);
  // A code this client does not know yet: the server's own words, else a generic text.
  if (typeof p.detail === 'string' && p.detail) return p.detail;
  return t('error.unknown_error', params);
}
