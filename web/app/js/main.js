// The app shell: header, language, router, and the helpers the views share.

import config from '../config.js';
import { ApiClient, ApiError, errorMessage } from './api.js';
import { clearSession, completeIdpSignIn, token } from './auth.js';
import { h } from './dom.js';
import { formError } from './ui.js';
import { getLang, locale, pickLang, setLang, t } from './i18n.js';
import { accountView } from './views/account.js';
import { codeView, doneView, passwordView } from './views/activation.js';
import { convertView } from './views/convert.js';
import { signinView } from './views/signin.js';
import { statementsView } from './views/statements.js';
import { withdrawalsView, withdrawView } from './views/withdraw.js';

const LANG_KEY = 'fa.lang';

/**
 * @typedef {{title: string, public?: boolean, nav?: string,
 *   load?: (app: App) => Promise<void>, render: (app: App) => Node, leave?: (app: App) => void}} View
 */

/** @type {Record<string, View>} */
const routes = {
  '/signin': signinView,
  '/account': accountView,
  '/activate': passwordView,
  '/activate/code': codeView,
  '/activate/done': doneView,
  '/withdraw': withdrawView,
  '/withdrawals': withdrawalsView,
  '/convert': convertView,
  '/statements': statementsView,
};

class App {
  constructor() {
    this.config = config;
    this.api = new ApiClient({
      baseUrl: String(config.apiBaseUrl || '').replace(/\/+$/, ''),
      token,
      onUnauthorized: () => this.signedOut('unauthorized'),
    });
    /** Per-view state, kept while the tab lives (never passwords or codes). */
    this.state = {};
    /** @type {View | null} */
    this.view = null;
    /** @type {unknown} */
    this.loadError = null;
    /** A notice for the sign-in page (why the user is there). */
    this.notice = null;
    this.navigation = 0;
    /** @type {number[]} */
    this.timers = [];
  }

  /** @param {string} path */
  go(path) {
    if (location.hash === `#${path}`) void this.route();
    else location.hash = path;
  }

  /** The session ended (401) or the user signed out. */
  signedOut(reason) {
    clearSession();
    this.state = {};
    this.notice = reason;
    this.go('/signin');
  }

  /** Calls `fn` every second until the view changes. */
  every(ms, fn) {
    this.timers.push(window.setInterval(fn, ms));
  }

  async route() {
    const navigation = ++this.navigation;
    this.timers.forEach((id) => clearInterval(id));
    this.timers = [];
    this.view?.leave?.(this);
    const path = location.hash.replace(/^#/, '') || '/';
    const signedIn = Boolean(token());
    let view = routes[path];
    if (!view) {
      this.go(signedIn ? '/account' : '/signin');
      return;
    }
    if (!view.public && !signedIn) {
      this.go('/signin');
      return;
    }
    if (view === signinView && signedIn) {
      this.go('/account');
      return;
    }
    this.view = view;
    this.loadError = null;
    renderHeader(this);
    const main = /** @type {HTMLElement} */ (document.getElementById('main'));
    main.setAttribute('aria-busy', 'true');
    main.replaceChildren(h('p', { class: 'loading' }, t('app.loading')));
    try {
      await view.load?.(this);
    } catch (error) {
      if (navigation !== this.navigation) return;
      if (error instanceof ApiError && error.code === 'unauthorized') return;
      this.loadError = error;
    }
    if (navigation !== this.navigation) return;
    main.removeAttribute('aria-busy');
    this.update({ preserve: false });
    document.title = `${t(view.title)} · ${t('app.name')}`;
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
    if (this.loadError) this.announce(errorMessage(this.loadError));
  }

  /**
   * Draws the current view again from its state. With `preserve`, what the user typed
   * and where the focus was survive (a language switch, a new error); without, the form
   * starts empty.
   */
  update({ preserve = true } = {}) {
    if (!this.view) return;
    const main = /** @type {HTMLElement} */ (document.getElementById('main'));
    /** @type {Map<string, string | boolean>} */
    const values = new Map();
    const focused = document.activeElement && document.activeElement.id;
    if (preserve) {
      for (const el of main.querySelectorAll('input[id], select[id], textarea[id]')) {
        const input = /** @type {HTMLInputElement} */ (el);
        values.set(input.id, input.type === 'checkbox' ? input.checked : input.value);
      }
    }
    const content = this.loadError ? loadErrorView(this) : this.view.render(this);
    main.replaceChildren(content);
    for (const [id, value] of values) {
      const input = /** @type {HTMLInputElement | null} */ (document.getElementById(id));
      if (!input) continue;
      if (typeof value === 'boolean') input.checked = value;
      else input.value = value;
      input.dispatchEvent(new Event('restore'));
    }
    if (preserve && focused) document.getElementById(focused)?.focus();
    document.title = `${t(this.view.title)} · ${t('app.name')}`;
  }

  /** Says `text` to screen readers (the assertive live region). */
  announce(text) {
    const live = document.getElementById('live');
    if (!live) return;
    live.textContent = '';
    window.setTimeout(() => {
      live.textContent = text;
    }, 60);
  }

  /**
   * After a failed submit: announce the error and move the focus to where it is.
   * @param {unknown} what an error, or the text to say
   * @param {{currency?: string}} [context]
   */
  showError(what, context) {
    this.announce(typeof what === 'string' ? what : errorMessage(what, context));
    const main = document.getElementById('main');
    const target =
      main?.querySelector('[aria-invalid="true"]') || main?.querySelector('.form-error');
    if (target instanceof HTMLElement) target.focus();
  }
}

/** @param {App} app */
function loadErrorView(app) {
  return h(
    'section',
    { class: 'card' },
    h('h1', null, t(app.view?.title || 'app.name')),
    formError(app.loadError),
    h('button', { type: 'button', class: 'button', onclick: () => app.route() }, t('app.retry')),
  );
}

/** @param {App} app */
function renderHeader(app) {
  const header = /** @type {HTMLElement} */ (document.getElementById('header'));
  const signedIn = Boolean(token());
  const link = (path, key) =>
    h(
      'a',
      { href: `#${path}`, 'aria-current': app.view?.nav === path ? 'page' : null },
      t(key),
    );
  const next = getLang() === 'zh' ? 'en' : 'zh';
  header.replaceChildren(
    h(
      'div',
      { class: 'bar' },
      h('a', { class: 'brand', href: signedIn ? '#/account' : '#/signin' }, t('app.name')),
      signedIn
        ? h(
            'nav',
            { 'aria-label': t('app.nav.label') },
            h(
              'ul',
              null,
              h('li', null, link('/account', 'app.nav.account')),
              h('li', null, link('/withdraw', 'app.nav.withdraw')),
              h('li', null, link('/withdrawals', 'app.nav.withdrawals')),
              h('li', null, link('/convert', 'app.nav.convert')),
              h('li', null, link('/statements', 'app.nav.statements')),
            ),
          )
        : null,
      h(
        'div',
        { class: 'tools' },
        h(
          'button',
          {
            type: 'button',
            id: 'lang-toggle',
            class: 'link-button',
            'aria-label': t('app.lang.switchLabel'),
            onclick: () => switchLang(app, next),
          },
          h('span', { lang: locale(next) }, t('app.lang.switch')),
        ),
        signedIn
          ? h(
              'button',
              { type: 'button', id: 'sign-out', class: 'link-button', onclick: () => app.signedOut('signedOut') },
              t('app.signout'),
            )
          : null,
      ),
    ),
  );
  const skip = document.getElementById('skip');
  if (skip) skip.textContent = t('app.skip');
  const footer = document.getElementById('footer');
  footer?.replaceChildren(h('p', null, t('app.footer')));
}

/**
 * @param {App} app
 * @param {'en' | 'zh'} lang
 */
function switchLang(app, lang) {
  setLang(lang);
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // not kept: the choice lasts for this page
  }
  document.documentElement.lang = locale();
  renderHeader(app);
  app.update({ preserve: true });
  document.getElementById('lang-toggle')?.focus();
}

async function start() {
  let saved = null;
  try {
    saved = localStorage.getItem(LANG_KEY);
  } catch {
    saved = null;
  }
  setLang(pickLang(navigator.languages || [navigator.language], saved));
  document.documentElement.lang = locale();
  const app = new App();
  document.getElementById('skip')?.addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main')?.focus();
  });
  if (config.auth?.mode === 'oidc') {
    const done = await completeIdpSignIn(config.auth);
    if (done === false) app.notice = 'idpFailed';
  }
  window.addEventListener('hashchange', () => void app.route());
  await app.route();
}

void start();
