// Sign in: the local gateway's /dev/login, or the marketplace's identity provider.

import { ApiError } from '../api.js';
import { devSignIn, startIdpSignIn } from '../auth.js';
import { field, h, valueOf } from '../dom.js';
import { t } from '../i18n.js';
import { formError } from '../ui.js';

/** @type {import('../main.js').View} */
export const signinView = {
  title: 'signin.title',
  public: true,
  async load(app) {
    app.state.signin = { error: null, missing: {}, busy: false };
  },
  render(app) {
    const s = app.state.signin;
    const notice = app.notice
      ? h('p', { class: 'notice', role: 'status' }, noticeText(app.notice))
      : null;
    if (app.config.auth?.mode === 'oidc') {
      return h(
        'section',
        { class: 'card narrow' },
        h('h1', null, t('signin.title')),
        notice,
        h('p', null, t('signin.intro')),
        formError(s.error),
        h(
          'button',
          {
            type: 'button',
            class: 'button primary',
            onclick: () => {
              startIdpSignIn(app.config.auth).catch(() => {
                s.error = new ApiError({ status: 0, code: 'network_error' });
                app.update();
              });
            },
          },
          t('signin.idp'),
        ),
      );
    }
    const member = field({
      id: 'member-id',
      label: t('signin.memberId'),
      error: s.missing.member ? t('app.fieldRequired') : null,
      attrs: { autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' },
    });
    const password = field({
      id: 'login-password',
      label: t('signin.password'),
      type: 'password',
      error: s.missing.password ? t('app.fieldRequired') : null,
      attrs: { autocomplete: 'current-password', required: true },
    });
    return h(
      'section',
      { class: 'card narrow' },
      h('h1', null, t('signin.title')),
      notice,
      h('p', null, t('signin.intro')),
      h('p', { class: 'hint' }, t('signin.devNote')),
      h(
        'form',
        { novalidate: true, onsubmit: (event) => submit(event, app) },
        formError(s.error),
        member.node,
        password.node,
        h('button', { type: 'submit', class: 'button primary', 'aria-disabled': s.busy ? 'true' : null }, t('signin.submit')),
      ),
    );
  },
};

function noticeText(notice) {
  if (notice === 'unauthorized') return t('error.unauthorized');
  if (notice === 'idpFailed') return t('signin.idpFailed');
  return t('signin.signedOut');
}

/**
 * @param {SubmitEvent} event
 * @param {any} app
 */
async function submit(event, app) {
  event.preventDefault();
  const s = app.state.signin;
  if (s.busy) return;
  const memberId = valueOf('member-id').trim();
  const password = valueOf('login-password');
  s.missing = { member: !memberId, password: !password };
  s.error = null;
  if (!memberId || !password) {
    app.update();
    app.showError(t('app.fieldRequired'));
    return;
  }
  s.busy = true;
  try {
    await devSignIn(app.api, memberId, password);
    app.notice = null;
    app.go('/account');
  } catch (error) {
    s.error = error;
    s.busy = false;
    app.update();
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById('login-password'));
    if (input) input.value = '';
    app.showError(error);
  }
}
