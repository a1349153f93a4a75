// A relying party built on openid-client, run by the interop tests against
// dirgate's OpenID Connect provider. It reads a JSON request on stdin,
//   {issuer, client_id, client_secret, redirect_uri, post_logout_redirect_uri, login, password}
// signs the user in the way a server-side web application does, driving the
// provider's sign-in form with plain HTTP as a browser would, and prints
// one JSON object: what each step saw, or its error. Steps do not stop at
// the first failure, so one run reports on every step.
import * as client from 'openid-client';

const req = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.on('data', (d) => { s += d; }).on('end', () => resolve(s));
}));
const out = {};

// step runs fn and records its result, or its error, under name.
async function step(name, fn) {
  try {
    out[name] = { ok: true, ...(await fn()) };
  } catch (e) {
    const cause = e.cause ? ` (${e.cause.message ?? JSON.stringify(e.cause)})` : '';
    out[name] = { ok: false, error: `${e.name}: ${e.message}${cause}`, code: e.error ?? e.code, status: e.status };
  }
  return out[name];
}

const cookieHeader = (jar) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
function keepCookies(jar, res) {
  for (const c of res.headers.getSetCookie()) {
    const [kv] = c.split(';');
    const i = kv.indexOf('=');
    jar.set(kv.slice(0, i).trim(), kv.slice(i + 1));
  }
}
const unescapeHTML = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(n))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => tag.match(new RegExp(`\\s${name}="([^"]*)"`))?.[1];

// signIn sends the authorization request (GET: the URL; POST: its
// parameters as a form to the endpoint), fills in the sign-in form and
// returns the URL the provider redirects back to.
async function signIn(authURL, method) {
  const jar = new Map();
  let res;
  if (method === 'POST') {
    const endpoint = new URL(authURL.pathname, authURL);
    res = await fetch(endpoint, { method: 'POST', body: authURL.searchParams, redirect: 'manual' });
  } else {
    res = await fetch(authURL, { redirect: 'manual' });
  }
  keepCookies(jar, res);
  const page = await res.text();
  if (res.status !== 200) throw new Error(`authorization request by ${method} answered ${res.status}: ${page.slice(0, 200)}`);
  const form = new URLSearchParams({ email: req.login, password: req.password });
  for (const [tag] of page.matchAll(/<input\b[^>]*>/g)) {
    if (attr(tag, 'type') === 'hidden') form.set(attr(tag, 'name'), unescapeHTML(attr(tag, 'value') ?? ''));
  }
  const action = new URL(unescapeHTML(page.match(/<form\b[^>]*\saction="([^"]*)"/)?.[1] ?? 'login'), authURL);
  res = await fetch(action, { method: 'POST', body: form, redirect: 'manual', headers: { cookie: cookieHeader(jar) } });
  const location = res.headers.get('location');
  if (res.status < 300 || res.status > 303 || !location) {
    throw new Error(`sign-in form answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  }
  return new URL(location, action);
}

// codeFlow runs the authorization code flow with PKCE, state and nonce.
async function codeFlow(config, method) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authURL = client.buildAuthorizationUrl(config, {
    redirect_uri: req.redirect_uri,
    scope: 'openid email profile groups',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const back = await signIn(authURL, method);
  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString());
  return { tokens, facts: { id_token_alg: header.alg, sub: tokens.claims().sub, email: tokens.claims().email } };
}

const discover = (alg) => client.discovery(new URL(req.issuer), req.client_id,
  { client_secret: req.client_secret, ...(alg && { id_token_signed_response_alg: alg }) }, undefined,
  { execute: [client.allowInsecureRequests] });
// A client registered without naming an algorithm gets RS256 ID tokens
// (OpenID Connect Dynamic Client Registration, id_token_signed_response_alg);
// stating that default makes the library refuse any other algorithm.
const config = await step('discovery', async () => {
  const c = await discover('RS256');
  return { config: c, algs: c.serverMetadata().id_token_signing_alg_values_supported };
}).then((r) => r.config);

if (config) {
  let tokens;
  let cfg = config; // the configuration that got the tokens
  await step('code_flow_get', async () => {
    const r = await codeFlow(config, 'GET');
    tokens = r.tokens;
    return r.facts;
  });
  if (!tokens) {
    // So that the steps after it still report: sign in again accepting
    // whatever algorithm the provider offers.
    await step('code_flow_any_alg', async () => {
      cfg = await discover();
      const r = await codeFlow(cfg, 'GET');
      tokens = r.tokens;
      return r.facts;
    });
  }
  if (tokens) {
    await step('userinfo', async () => {
      const u = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
      return { sub: u.sub, email: u.email };
    });
    let rotated;
    await step('refresh', async () => {
      const r = await client.refreshTokenGrant(cfg, tokens.refresh_token);
      rotated = r.refresh_token;
      return { rotated: Boolean(rotated) && rotated !== tokens.refresh_token, id_token: Boolean(r.id_token) };
    });
    if (rotated) {
      // The spent token presented again is a replay: it must fail, and
      // revoke the token it was rotated into (the whole family).
      await step('refresh_reuse', async () => {
        await client.refreshTokenGrant(cfg, tokens.refresh_token);
        return { accepted: true };
      });
      await step('refresh_after_reuse', async () => {
        await client.refreshTokenGrant(cfg, rotated);
        return { accepted: true };
      });
    }
    await step('end_session_post', async () => {
      const u = client.buildEndSessionUrl(cfg, {
        id_token_hint: tokens.id_token, post_logout_redirect_uri: req.post_logout_redirect_uri, state: 'bye',
      });
      const res = await fetch(new URL(u.pathname, u), { method: 'POST', body: u.searchParams, redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location') };
    });
  }
  await step('code_flow_post', () => codeFlow(cfg, 'POST').then((r) => r.facts));
}
delete out.discovery?.config;
process.stdout.write(JSON.stringify(out));
