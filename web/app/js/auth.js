// Sign-in. The access token lives in memory and in sessionStorage (gone when the tab
// closes), never in localStorage or a cookie. Passwords are sent once and never kept.
//
// Two modes (config.js, `auth.mode`):
// - "dev": the local gateway's POST /dev/login (member id + login password).
// - "oidc": the marketplace's identity provider, authorization code flow with PKCE (S256):
//   startIdpSignIn() redirects to the authorize URL; on the way back completeIdpSignIn()
//   checks `state`, swaps the code for tokens at the token URL and keeps the token that the
//   API's JWT authorizer expects (`auth.tokenField`, default access_token).

const SESSION_KEY = 'fa.session';
const PKCE_KEY = 'fa.pkce';

/** @typedef {{token: string, expiresAt: number}} Session */

/** @type {Session | null} */
let session = null;

/** @returns {Session | null} */
export function currentSession() {
  if (!session) {
    try {
      const raw = sessionStorage.getItem(SESSION_KEY);
      session = raw ? JSON.parse(raw) : null;
    } catch {
      session = null;
    }
  }
  if (session && !(typeof session.token === 'string' && session.expiresAt > Date.now() + 5000)) {
    clearSession();
  }
  return session;
}

export function token() {
  return currentSession()?.token ?? null;
}

/**
 * @param {string} accessToken
 * @param {number} expiresIn seconds
 */
function saveSession(accessToken, expiresIn) {
  const seconds = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600;
  session = { token: accessToken, expiresAt: Date.now() + seconds * 1000 };
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Private mode without storage: the session lives in memory only.
  }
}

export function clearSession() {
  session = null;
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing to clear
  }
}

/**
 * Local sign-in through the gateway's POST /dev/login.
 * @param {import('./api.js').ApiClient} api
 * @param {string} memberId
 * @param {string} loginPassword
 */
export async function devSignIn(api, memberId, loginPassword) {
  const res = await api.request('POST', '/dev/login', {
    body: { member_id: memberId, login_password: loginPassword },
    auth: false,
  });
  saveSession(res.data.access_token, res.data.expires_in);
}

// ---- The marketplace identity provider (OIDC, authorization code + PKCE) ----

/**
 * @typedef {{mode: string, issuer?: string, authorizeUrl?: string, tokenUrl?: string,
 *   clientId?: string, scope?: string, audience?: string, redirectUri?: string,
 *   tokenField?: string}} AuthConfig
 */

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** @param {string} verifier */
async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** @param {AuthConfig} auth */
function redirectUri(auth) {
  return auth.redirectUri || `${location.origin}${location.pathname}`;
}

/**
 * The authorize and token URLs: from the config, else from the issuer's discovery document.
 * @param {AuthConfig} auth
 */
async function endpoints(auth) {
  if (auth.authorizeUrl && auth.tokenUrl) {
    return { authorize: auth.authorizeUrl, token: auth.tokenUrl };
  }
  const issuer = String(auth.issuer || '').replace(/\/+$/, '');
  const res = await fetch(`${issuer}/.well-known/openid-configuration`, { credentials: 'omit' });
  if (!res.ok) throw new Error('discovery failed');
  const doc = await res.json();
  return { authorize: doc.authorization_endpoint, token: doc.token_endpoint };
}

/**
 * Sends the browser to the identity provider's sign-in page.
 * @param {AuthConfig} auth
 */
export async function startIdpSignIn(auth) {
  const { authorize } = await endpoints(auth);
  const verifier = randomString(48);
  const state = randomString(24);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(authorize);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', auth.clientId || '');
  url.searchParams.set('redirect_uri', redirectUri(auth));
  url.searchParams.set('scope', auth.scope || 'openid');
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await challengeOf(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (auth.audience) url.searchParams.set('audience', auth.audience);
  location.assign(url.toString());
}

/**
 * On the way back from the identity provider (`?code=…&state=…`, or `?error=…`): swaps the
 * code for a token. Answers null when the URL is not a sign-in callback, true when signed
 * in, false when the callback failed.
 * @param {AuthConfig} auth
 * @returns {Promise<boolean | null>}
 */
export async function completeIdpSignIn(auth) {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const stored = sessionStorage.getItem(PKCE_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  // Drop code and state from the address bar and the history at once.
  history.replaceState(null, '', `${location.pathname}#/account`);
  let pkce = null;
  try {
    pkce = stored ? JSON.parse(stored) : null;
  } catch {
    pkce = null;
  }
  if (!pkce || params.has('error') || params.get('state') !== pkce.state) return false;
  try {
    const { token: tokenUrl } = await endpoints(auth);
    const res = await fetch(tokenUrl, {
      method: 'POST',
      credentials: 'omit',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') || '',
        redirect_uri: redirectUri(auth),
        client_id: auth.clientId || '',
        code_verifier: pkce.verifier,
      }),
    });
    if (!res.ok) return false;
    const tokens = await res.json();
    const value = tokens[auth.tokenField || 'access_token'];
    if (typeof value !== 'string' || !value) return false;
    saveSession(value, Number(tokens.expires_in));
    return true;
  } catch {
    return false;
  }
}
