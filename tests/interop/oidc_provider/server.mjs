// Test-only OpenID Provider for Vestibule's interop and end-to-end tests.
//
// Runs panva/oidc-provider (OpenID Certified) on 127.0.0.1 with a port chosen
// by the OS, prints "READY <issuer>" on stdout once listening, and reads its
// settings (clients, signing keys, accounts, scope -> claims) from the JSON
// file named on the command line, which the pytest launcher writes.
//
// Additions of our own, all test-only:
//   * /interaction/:uid auto-completes login (account = login_hint) and
//     consent, so tests drive the code+PKCE flow with plain HTTP, no browser;
//   * POST /__admin/rotate swaps to the second signing JWKS (new key first,
//     old key still published), or to the JWKS in the JSON body, to exercise
//     unknown-kid -> JWKS refetch;
//   * PUT /__admin/clients registers (or replaces) one client, e.g. with the
//     redirect_uri of a connection created by the test;
//   * PUT /__admin/accounts sets an account's claims ({"id", "claims",
//     "userinfo"}); with settings.dynamic_scope, new claim names join that
//     scope so any JSON claim reaches the ID token and UserInfo;
//   * GET /__admin/requests counts requests per path (discovery caching).
//
// oidc-provider reads clients, keys and the claims configuration once, at
// construction, so each change builds a fresh Provider; its memory adapter
// storage is module-wide, so sessions and codes in flight survive.
import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const DEFAULT_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name'],
  groups: ['groups'],
  tenant: ['tid'],
};
// Claims the provider itself sets; an account cannot assert them.
const PROTOCOL_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'azp', 'at_hash', 'c_hash', 's_hash',
  'auth_time', 'acr', 'amr', 'sid', 'jti',
]);

const state = {
  clients: [...settings.clients],
  jwks: settings.jwks,
  accounts: { ...settings.accounts },
  claims: settings.claims || DEFAULT_CLAIMS,
};
const requestCounts = {};

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: state.clients,
    jwks: state.jwks,
    cookies: { keys: ['interop-cookie-key-not-a-secret'] },
    pkce: { required: () => true },
    // Put scope claims into the ID token too (not only UserInfo), like most
    // enterprise IdPs do; "groups" stays UserInfo-only (see findAccount).
    conformIdTokenClaims: false,
    claims: state.claims,
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = state.accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        // "userinfo" claims are UserInfo-only; the scope mapping filters both.
        async claims(use) {
          const extra = use === 'userinfo' ? account.userinfo : {};
          return { ...account.claims, ...extra, sub };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    const accountId = params.login_hint || 'alice';
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  // consent: grant exactly what the prompt reports missing.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try { resolve(body ? JSON.parse(body) : {}); } catch (err) { reject(err); }
    });
    req.on('error', reject);
  });
}

function publicClaims(claims) {
  return Object.fromEntries(Object.entries(claims || {}).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
}

let current;
let handler;
function rebuild() {
  current = makeProvider(current.issuer);
  handler = current.callback();
}

async function admin(req, res, path) {
  if (path === '/__admin/rotate' && req.method === 'POST') {
    const body = await readJson(req);
    state.jwks = body.jwks || settings.rotated_jwks;
    rebuild();
    res.writeHead(204).end();
    return;
  }
  if (path === '/__admin/clients' && req.method === 'PUT') {
    const client = await readJson(req);
    state.clients = [...state.clients.filter((c) => c.client_id !== client.client_id), client];
    rebuild();
    res.writeHead(204).end();
    return;
  }
  if (path === '/__admin/accounts' && req.method === 'PUT') {
    const { id, claims, userinfo } = await readJson(req);
    const account = { claims: publicClaims(claims), userinfo: publicClaims(userinfo) };
    state.accounts[id] = account;
    const scope = settings.dynamic_scope;
    if (scope) {
      const known = new Set(state.claims[scope] || []);
      const names = [...Object.keys(account.claims), ...Object.keys(account.userinfo)];
      if (names.some((name) => !known.has(name))) {
        state.claims = { ...state.claims, [scope]: [...new Set([...known, ...names])] };
        rebuild();
      }
    }
    res.writeHead(204).end();
    return;
  }
  if (path === '/__admin/requests' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(requestCounts));
    return;
  }
  res.writeHead(404).end();
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (path.startsWith('/__admin/')) {
      await admin(req, res, path);
      return;
    }
    requestCounts[path] = (requestCounts[path] || 0) + 1;
    if (path.startsWith('/interaction/')) {
      await interaction(current, req, res);
      return;
    }
    handler(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('interop server error');
  }
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  current = makeProvider(`http://127.0.0.1:${port}`);
  handler = current.callback();
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
