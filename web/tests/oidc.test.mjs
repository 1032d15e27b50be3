// The AWS sign-in path: config.js in 'oidc' mode sends the browser to the marketplace's
// identity provider (authorization code + PKCE S256) and swaps the code for the token the
// API accepts. The provider is played by request interception (no network); its token is
// one the local gateway accepts.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { apiToken, createMember, GATEWAY_URL, heading, launch, openPage, shot, waitForText } from './helpers.mjs';

const IDP = 'https://idp.marketplace.test';

/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

describe('marketplace sign-in', () => {
  test('OIDC with PKCE: discovery, authorize redirect, code exchange, signed in', async () => {
    const { memberId } = await createMember({ prefix: 'idp' });
    const accessToken = await apiToken(memberId);
    const { context, page, problems } = await openPage(browser);

    await page.route(`${GATEWAY_URL}/config.js`, (route) =>
      route.fulfill({
        contentType: 'text/javascript; charset=utf-8',
        body: `export default {
          apiBaseUrl: '',
          auth: { mode: 'oidc', issuer: '${IDP}', clientId: 'fund-account-web', scope: 'openid' },
          withdrawalFees: { USD: '15.00', CNY: '0.00' },
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
    await context.route(`${IDP}/oauth2/authorize**`, (route) => {
      authorize = new URL(route.request().url()).searchParams;
      const back = new URL(authorize.get('redirect_uri') || '');
      back.searchParams.set('code', 'code-from-idp');
      back.searchParams.set('state', authorize.get('state') || '');
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

    // A forged callback (unknown state) does not sign in.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in');
    await page.goto(`${GATEWAY_URL}/?code=stolen&state=forged`);
    await heading(page, 'Sign in');
    await waitForText(page.locator('main'), 'Sign-in with the marketplace did not complete.');

    assert.deepEqual(problems, []);
    await context.close();
  });
});
