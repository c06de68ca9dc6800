// Test-only OpenID Provider for Vestibule's interop tests.
//
// Runs panva/oidc-provider (OpenID Certified) on 127.0.0.1 with a port chosen
// by the OS, prints "READY <issuer>" on stdout once listening, and reads its
// settings (clients, signing keys, accounts) from the JSON file named on the
// command line, which the pytest fixture writes.
//
// Additions of our own, all test-only:
//   * /interaction/:uid auto-completes login (account = login_hint) and
//     consent, so tests drive the code+PKCE flow with plain HTTP, no browser;
//   * POST /__admin/rotate swaps to the second signing JWKS (new key first,
//     old key still published), to exercise unknown-kid -> JWKS refetch.
import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function makeProvider(issuer, jwks) {
  const provider = new Provider(issuer, {
    clients: settings.clients,
    jwks,
    cookies: { keys: ['interop-cookie-key-not-a-secret'] },
    pkce: { required: () => true },
    // Put scope claims into the ID token too (not only UserInfo), like most
    // enterprise IdPs do; "groups" stays UserInfo-only (see findAccount).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
      tenant: ['tid'],
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = settings.accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims(use) {
          const out = { sub, email: account.email, email_verified: true, name: account.name, tid: account.tid };
          if (use === 'userinfo') out.groups = account.groups;
          return out;
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

let current;
let handler;
const server = http.createServer(async (req, res) => {
  try {
    if (req.url.startsWith('/interaction/')) {
      await interaction(current, req, res);
      return;
    }
    if (req.url === '/__admin/rotate' && req.method === 'POST') {
      current = makeProvider(current.issuer, settings.rotated_jwks);
      handler = current.callback();
      res.writeHead(204).end();
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
  current = makeProvider(`http://127.0.0.1:${port}`, settings.jwks);
  handler = current.callback();
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
