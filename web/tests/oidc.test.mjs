// The AWS sign-in path: config.js in 'oidc' mode sends the browser to the marketplace's
// identity provider (authorization code + PKCE S256) and swaps the code for the token the
// API accepts. The provider is played by request interception (no network); its token is
// one the local gateway accepts.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  apiToken,
  closeCleanly,
  countRequests,
  createMember,
  GATEWAY_URL,
  heading,
  openPage,
  shot,
  useBrowser,
  waitForText,
} from './helpers.mjs';

const IDP = 'https://idp.marketplace.test';

/**
 * Waits until the page is back from the provider and has decided: the account page (signed
 * in) or the sign-in page with its note that the marketplace sign-in did not complete.
 * @param {import('playwright-core').Page} page
 */
function callbackDecided(page) {
  return page.waitForFunction(() => {
    const main = document.getElementById('main');
    return (
      main?.querySelector('h1')?.textContent === 'Fund account' ||
      (main?.textContent || '').includes('Sign-in with the marketplace did not complete.')
    );
  });
}

/**
 * The PKCE entry (verifier and state) in sessionStorage when the current document started,
 * before the client read and removed it: kept by the init script below.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{verifier?: string, state?: string} | null>}
 */
async function pendingAtLoad(page) {
  const raw = await page.evaluate(() => /** @type {any} */ (window).__e2ePkceAtLoad);
  return raw ? JSON.parse(raw) : null;
}

const browser = useBrowser();

describe('marketplace sign-in', () => {
  test('OIDC with PKCE: discovery, authorize redirect, code exchange, signed in; a wrong state is refused before the exchange', async () => {
    const { memberId } = await createMember({ prefix: 'idp' });
    const accessToken = await apiToken(memberId);
    const { context, page, problems } = await openPage(browser());
    const tokenRequests = countRequests(page, 'POST', `${IDP}/oauth2/token`);
    await context.addInitScript(() => {
      /** @type {any} */ (window).__e2ePkceAtLoad = sessionStorage.getItem('fa.pkce');
    });

    await page.route(`${GATEWAY_URL}/config.js`, (route) =>
      route.fulfill({
        contentType: 'text/javascript; charset=utf-8',
        body: `export default {
          apiBaseUrl: '',
          auth: { mode: 'oidc', issuer: '${IDP}', clientId: 'fund-account-web', scope: 'openid' },
        };`,
      }),
    );
    const cors = { 'access-control-allow-origin': '*' };
    await context.route(`${IDP}/.well-known/openid-configuration`, (route) =>
      route.fulfill({
        headers: cors,
        json: { issuer: IDP, authorization_endpoint: `${IDP}/oauth2/authorize`, token_endpoint: `${IDP}/oauth2/token` },
      }),
    );
    /** @type {URLSearchParams | null} */
    let authorize = null;
    // The provider sends the browser back with the state it got, or (forgeState) another.
    let forgeState = false;
    /** @type {{sent: string, returned: string}[]} */
    const states = [];
    await context.route(`${IDP}/oauth2/authorize**`, (route) => {
      authorize = new URL(route.request().url()).searchParams;
      const sent = authorize.get('state') || '';
      const returned = forgeState ? `forged-${sent.slice(0, 8)}` : sent;
      states.push({ sent, returned });
      const back = new URL(authorize.get('redirect_uri') || '');
      back.searchParams.set('code', 'code-from-idp');
      back.searchParams.set('state', returned);
      return route.fulfill({ status: 302, headers: { location: back.toString() } });
    });
    /** @type {URLSearchParams | null} */
    let exchange = null;
    await context.route(`${IDP}/oauth2/token`, (route) => {
      exchange = new URLSearchParams(route.request().postData() || '');
      return route.fulfill({
        headers: cors,
        json: { access_token: accessToken, id_token: 'not-used', token_type: 'Bearer', expires_in: 3600 },
      });
    });

    await page.goto(`${GATEWAY_URL}/`);
    await heading(page, 'Sign in');
    await shot(page, 'oidc-01-sign-in');
    await page.getByRole('button', { name: 'Sign in with your marketplace account' }).click();
    await heading(page, 'Fund account');
    await waitForText(page.locator('#member-id'), memberId);
    assert.equal(tokenRequests.count(), 1, 'one code exchange');

    assert.ok(authorize && exchange, 'the provider was called');
    const a = /** @type {URLSearchParams} */ (/** @type {unknown} */ (authorize));
    const x = /** @type {URLSearchParams} */ (/** @type {unknown} */ (exchange));
    assert.equal(a.get('response_type'), 'code');
    assert.equal(a.get('client_id'), 'fund-account-web');
    assert.equal(a.get('code_challenge_method'), 'S256');
    assert.equal(a.get('redirect_uri'), `${GATEWAY_URL}/`);
    assert.equal(x.get('grant_type'), 'authorization_code');
    assert.equal(x.get('code'), 'code-from-idp');
    assert.equal(x.get('redirect_uri'), `${GATEWAY_URL}/`);
    const verifier = x.get('code_verifier') || '';
    assert.ok(verifier.length >= 43, 'a 43+ character verifier');
    assert.equal(createHash('sha256').update(verifier).digest('base64url'), a.get('code_challenge'));
    // The code and state are gone from the address bar.
    assert.equal(new URL(page.url()).search, '');
    await shot(page, 'oidc-02-signed-in');

    // A callback with a state other than the one sent, while a sign-in is pending (its
    // verifier and state are stored): refused before the token endpoint is called.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in');
    forgeState = true;
    await page.getByRole('button', { name: 'Sign in with your marketplace account' }).click();
    await callbackDecided(page);
    assert.equal(states.length, 2);
    const pending = await pendingAtLoad(page);
    assert.ok(pending?.verifier && pending.state, 'a sign-in was pending when the callback came');
    assert.equal(pending.state, states[1].sent);
    assert.notEqual(states[1].returned, states[1].sent);
    assert.equal(tokenRequests.count(), 1, 'the token endpoint is not called for a state that does not match');
    await heading(page, 'Sign in');
    await waitForText(page.locator('main'), 'Sign-in with the marketplace did not complete.');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('fa.session')), null, 'no session');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('fa.pkce')), null, 'the pending sign-in is dropped');
    await shot(page, 'oidc-03-state-mismatch');

    // A callback with no sign-in pending at all (a code pushed at the browser): refused too.
    await page.goto(`${GATEWAY_URL}/?code=stolen&state=${encodeURIComponent(states[1].sent)}`);
    await callbackDecided(page);
    assert.equal(await pendingAtLoad(page), null);
    assert.equal(tokenRequests.count(), 1, 'the token endpoint is not called without a pending sign-in');
    await heading(page, 'Sign in');
    await waitForText(page.locator('main'), 'Sign-in with the marketplace did not complete.');

    // Not signed in: the account page, loaded afresh, asks to sign in.
    await page.goto(`${GATEWAY_URL}/#/account`);
    await page.reload();
    await heading(page, 'Sign in');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('fa.session')), null, 'no session');
    assert.equal(tokenRequests.count(), 1);

    await closeCleanly(context, problems);
  });
});
