// Deployment settings of the web client. This is the one file to change per environment
// (see web/README.md): replace it when publishing the static site.

export default {
  // Where the API is: '' = the same origin as the page (the local gateway, or a CloudFront
  // distribution that routes /v1/* to the HTTP API). Otherwise the API's base URL, e.g.
  // 'https://abcdef1234.execute-api.us-east-1.amazonaws.com' (then CORS must be set up).
  apiBaseUrl: '',

  auth: {
    // 'dev': sign in through the local gateway's POST /dev/login (member id + login password).
    // 'oidc': sign in at the marketplace's identity provider (authorization code + PKCE).
    mode: 'dev',
    // OIDC settings (mode 'oidc'). `issuer` must equal the stack's JwtIssuer parameter;
    // the token's audience (or Cognito client id) must equal JwtAudience.
    issuer: '',
    authorizeUrl: '', // empty: read from `${issuer}/.well-known/openid-configuration`
    tokenUrl: '', // idem
    clientId: '',
    scope: 'openid',
    audience: '', // sent as `audience` for providers that need it (e.g. Auth0)
    redirectUri: '', // empty: this page's origin and path
    tokenField: 'access_token', // which token of the token response the API accepts
  },
};
