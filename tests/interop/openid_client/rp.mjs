// A relying party on panva/openid-client v6, driven one command at a time by
// tests/interop/test_op_openid_client.py.
//
// Protocol: each line on stdin is a JSON command {"op": ..., ...}; each
// answer is one JSON line on stdout, {"ok": true, ...} or {"ok": false,
// "error": {...}} when openid-client refused (its error's name, code,
// message, and the OAuth error fields of a refusal by the provider). The
// process keeps the discovered Configuration and the pending authorization
// (PKCE verifier, nonce, state) between commands, as an application would
// keep them in its session.
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';

let config;
let pending;

function clientAuth(auth, secret) {
  switch (auth) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret);
    case 'client_secret_post':
      return client.ClientSecretPost(secret);
    case 'none':
      return client.None();
    default:
      throw new Error(`unknown client authentication ${auth}`);
  }
}

function tokenSet(tokens) {
  return {
    tokens: { ...tokens },
    claims: tokens.claims() ?? null,
  };
}

const ops = {
  // Discovery from the issuer alone: openid-client fetches
  // {issuer}/.well-known/openid-configuration and requires its "issuer" to be
  // exactly the one asked for.
  async discover({ issuer, client_id, client_secret, auth }) {
    const metadata = { token_endpoint_auth_method: auth };
    if (client_secret) metadata.client_secret = client_secret;
    config = await client.discovery(new URL(issuer), client_id, metadata, clientAuth(auth, client_secret), {
      // Plain http is refused unless asked for: the provider listens on 127.0.0.1.
      execute: [client.allowInsecureRequests],
    });
    return { server: config.serverMetadata() };
  },

  async authorize({ redirect_uri, scope, params = {} }) {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      nonce,
      state,
      ...params,
    });
    pending = { verifier, nonce, state };
    return { url: url.href, nonce, state };
  },

  // The browser came back to the redirect URI with this URL. Overrides let a
  // test make the application expect something else than it sent.
  async callback({ url, expected_nonce, expected_state, code_verifier }) {
    const tokens = await client.authorizationCodeGrant(config, new URL(url), {
      pkceCodeVerifier: code_verifier ?? pending.verifier,
      expectedNonce: expected_nonce ?? pending.nonce,
      expectedState: expected_state ?? pending.state,
      idTokenExpected: true,
    });
    return tokenSet(tokens);
  },

  async userinfo({ access_token, expected_subject }) {
    return { userinfo: await client.fetchUserInfo(config, access_token, expected_subject) };
  },

  async refresh({ refresh_token }) {
    return tokenSet(await client.refreshTokenGrant(config, refresh_token));
  },

  async end_session({ id_token_hint, post_logout_redirect_uri, state }) {
    const url = client.buildEndSessionUrl(config, { id_token_hint, post_logout_redirect_uri, state });
    return { url: url.href };
  },
};

function describe(error) {
  const out = { name: error?.name, message: String(error?.message ?? error), code: error?.code };
  // A refusal by the provider (ResponseBodyError): its OAuth error fields and HTTP status.
  for (const key of ['error', 'error_description', 'status']) {
    if (error?.[key] !== undefined) out[key] = error[key];
  }
  // oauth4webapi puts what it compared in `cause`: an object ({claim, expected, ...}) or the error underneath.
  if (error?.cause instanceof Error) {
    out.cause = describe(error.cause);
  } else if (error?.cause && typeof error.cause === 'object') {
    try {
      out.cause = JSON.parse(JSON.stringify(error.cause));
    } catch {
      out.cause = String(error.cause);
    }
  }
  return out;
}

const lines = readline.createInterface({ input: process.stdin });
// Commands run one after another, in the order they arrive.
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      const { op, ...args } = JSON.parse(line);
      if (!Object.hasOwn(ops, op)) throw new Error(`unknown op ${op}`);
      answer = { ok: true, ...(await ops[op](args)) };
    } catch (error) {
      answer = { ok: false, error: describe(error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});
lines.on('close', () => queue.then(() => process.exit(0)));
const { version } = JSON.parse(
  readFileSync(new URL('./node_modules/openid-client/package.json', import.meta.url), 'utf8'),
);
process.stdout.write(JSON.stringify({ ok: true, ready: true, version }) + '\n');
