// openid-client's PrivateKeyJwt client authentication against a running jwtgrant.
//
// Run by run.sh, which starts the server and registers the integrations; it passes
// them in JG_* environment variables. The server is found by openid-client's own
// discovery (RFC 8414 metadata); every client assertion is signed by openid-client
// (through oauth4webapi) and every request is made by it, except the replays, which
// send again with fetch exactly the body openid-client sent. Access tokens are
// checked against the server's JWKS with jose.
//
// Prints one PASS or FAIL line per check; exits 1 when any check failed.
import { execFileSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as client from "openid-client";
import * as jose from "jose";

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this through run.sh)`);
  return value;
};
const URL_ = env("JG_URL");
const BIN = env("JG_BIN");
const DATA = env("JG_DATA");
const IK = env("JG_IK");
const KID = env("JG_KID");
const EC_IK = env("JG_EC_IK");
const NOAPP_IK = env("JG_NOAPP_IK");

const failures = [];
async function check(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (error) {
    failures.push(name);
    const cause = error?.cause ? ` (cause: ${JSON.stringify(error.cause)})` : "";
    console.log(`FAIL ${name}: ${error?.name}: ${error?.message}${cause}`);
    if (process.env.JG_VERBOSE) console.log(error?.stack);
  }
}
function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// WebCrypto signing keys from the PEM files the admin commands wrote.
async function signingKey(file, algorithm) {
  const der = createPrivateKey(readFileSync(env(file), "utf8")).export({ type: "pkcs8", format: "der" });
  return crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
}
const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
const ES256 = { name: "ECDSA", namedCurve: "P-256" };
const rsaKey = await signingKey("JG_KEY_FILE", RS256);
const ecKey = await signingKey("JG_EC_KEY_FILE", ES256);
const noappKey = await signingKey("JG_NOAPP_KEY_FILE", RS256);
const strangerKey = await signingKey("JG_STRANGER_KEY_FILE", RS256);

const server = new URL(URL_);

// A configuration from discovery that records every request and response.
async function discover(clientId, key, options = {}) {
  const config = await client.discovery(
    server,
    clientId,
    {},
    client.PrivateKeyJwt(key, options.modify ? { [client.modifyAssertion]: options.modify } : undefined),
    { execute: [client.allowInsecureRequests] },
  );
  const sent = [];
  config[client.customFetch] = async (url, init) => {
    const response = await fetch(url, init);
    sent.push({ url: String(url), body: String(init.body ?? ""), status: response.status, response: response.clone() });
    return response;
  };
  return { config, sent, last: () => sent[sent.length - 1] };
}
function assertionOf(request) {
  const form = new URLSearchParams(request.body);
  expect(form.get("client_assertion_type") === ASSERTION_TYPE, `no client_assertion_type in ${request.body}`);
  const jws = form.get("client_assertion");
  return { form, jws, header: jose.decodeProtectedHeader(jws), claims: jose.decodeJwt(jws) };
}
// An openid-client call the server must refuse with this status and error. The
// status and error are read from the response itself, so that a refusal that
// openid-client reports as a WWW-Authenticate challenge is still checked here;
// whether that header belongs there is a check of its own (below).
async function refused(c, call, status, error, what) {
  let answer;
  try {
    answer = await call();
  } catch (refusal) {
    expect(
      refusal instanceof client.ResponseBodyError || refusal instanceof client.WWWAuthenticateChallengeError,
      `${what}: ${refusal?.name}: ${refusal?.message}`,
    );
    const got = c.last();
    const body = await got.response.clone().json();
    expect(got.status === status, `${what}: HTTP ${got.status}, want ${status}: ${JSON.stringify(body)}`);
    expect(body.error === error, `${what}: error ${body.error} (${body.error_description}), want ${error}`);
    expect((got.response.headers.get("cache-control") ?? "").includes("no-store"), `${what}: no Cache-Control: no-store`);
    return { refusal, body, challenge: got.response.headers.get("www-authenticate") };
  }
  throw new Error(`${what}: accepted: ${JSON.stringify(answer)}`);
}
async function resend(request) {
  const response = await fetch(request.url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: request.body,
  });
  return { status: response.status, body: await response.json() };
}
async function accessTokenClaims(token, clientId) {
  const { payload } = await jose.jwtVerify(token, jwks, { issuer: URL_ });
  expect(payload.sub === clientId, `sub ${payload.sub}, want ${clientId}`);
  expect(payload.client_id === clientId, `client_id ${payload.client_id}, want ${clientId}`);
  return payload;
}

const main = await discover(IK, { key: rsaKey, kid: KID });
const metadata = main.config.serverMetadata();
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
const state = {};
console.log(`openid-client ${createRequire(import.meta.url)("openid-client/package.json").version} against ${URL_}`);

await check("discovery: metadata lists client_credentials and private_key_jwt (token, introspection, revocation)", async () => {
  expect(metadata.issuer === URL_, `issuer ${metadata.issuer}`);
  expect(metadata.grant_types_supported.includes("client_credentials"), `grants ${metadata.grant_types_supported}`);
  for (const field of [
    "token_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_methods_supported",
  ]) {
    expect(metadata[field]?.includes("private_key_jwt"), `${field}: ${metadata[field]}`);
  }
  const algs = metadata.token_endpoint_auth_signing_alg_values_supported ?? [];
  expect(algs.includes("RS256") && algs.includes("ES256"), `signing algs ${algs}`);
});

await check("clientCredentialsGrant with PrivateKeyJwt: aud = issuer, 60 s, nbf, kid, client_id in the form", async () => {
  const tokens = await client.clientCredentialsGrant(main.config);
  const sent = assertionOf(main.last());
  expect(main.last().url === metadata.token_endpoint, `sent to ${main.last().url}`);
  expect(sent.header.alg === "RS256" && sent.header.kid === KID, `header ${JSON.stringify(sent.header)}`);
  expect(sent.claims.iss === IK && sent.claims.sub === IK, `iss/sub ${JSON.stringify(sent.claims)}`);
  expect(sent.claims.aud === URL_, `aud ${sent.claims.aud}`);
  expect(sent.claims.exp - sent.claims.iat === 60 && sent.claims.nbf === sent.claims.iat, `times ${JSON.stringify(sent.claims)}`);
  expect(sent.form.get("client_id") === IK, `client_id form field ${sent.form.get("client_id")}`);
  expect(tokens.token_type === "bearer", `token_type ${tokens.token_type}`);
  expect(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, `expires_in ${tokens.expires_in}`);
  expect(tokens.refresh_token === undefined, "client_credentials must not give a refresh token");
  await accessTokenClaims(tokens.access_token, IK);
  state.token = tokens.access_token;
  state.granted = main.last();
});

await check("clientCredentialsGrant with scope=signature and aud = the token endpoint (modifyAssertion)", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, { modify: (_header, payload) => { payload.aud = metadata.token_endpoint; } });
  const tokens = await client.clientCredentialsGrant(c.config, { scope: "signature" });
  expect(assertionOf(c.last()).claims.aud === metadata.token_endpoint, "aud was not the token endpoint");
  expect(tokens.scope === "signature", `scope ${tokens.scope}`);
  const claims = await accessTokenClaims(tokens.access_token, IK);
  expect(claims.scope === "signature", `token scope ${claims.scope}`);
});

await check("clientCredentialsGrant with an ES256 key (keygen + add-key) and no kid in the header", async () => {
  const c = await discover(EC_IK, ecKey);
  const tokens = await client.clientCredentialsGrant(c.config);
  const sent = assertionOf(c.last());
  expect(sent.header.alg === "ES256" && sent.header.kid === undefined, `header ${JSON.stringify(sent.header)}`);
  await accessTokenClaims(tokens.access_token, EC_IK);
});

await check("tokenIntrospection with PrivateKeyJwt: active, sub = client_id = the integration", async () => {
  const answer = await client.tokenIntrospection(main.config, state.token);
  expect(main.last().url === metadata.introspection_endpoint, `sent to ${main.last().url}`);
  expect(answer.active === true, `introspection ${JSON.stringify(answer)}`);
  expect(answer.client_id === IK && answer.sub === IK, `introspection ${JSON.stringify(answer)}`);
  expect(answer.token_type === "Bearer", `token_type ${answer.token_type}`);
});

await check("tokenRevocation with PrivateKeyJwt, then the token introspects inactive", async () => {
  await client.tokenRevocation(main.config, state.token);
  expect(main.last().url === metadata.revocation_endpoint && main.last().status === 200, `revocation ${main.last().status}`);
  const answer = await client.tokenIntrospection(main.config, state.token);
  expect(answer.active === false, `after revocation ${JSON.stringify(answer)}`);
});

await check("the same client assertion again at the token endpoint: 401 invalid_client", async () => {
  const again = await resend(state.granted);
  expect(again.status === 401 && again.body.error === "invalid_client", `replay: ${again.status} ${JSON.stringify(again.body)}`);
  expect(again.body.access_token === undefined, "replay gave a token");
});

await check("the grant's client assertion replayed at introspection: 401 invalid_client", async () => {
  const again = await resend({ url: metadata.introspection_endpoint, body: `token=x&${state.granted.body}` });
  expect(again.status === 401 && again.body.error === "invalid_client", `replay: ${again.status} ${JSON.stringify(again.body)}`);
});

await check("an assertion signed by a key the integration does not have: 401 invalid_client", async () => {
  const c = await discover(IK, strangerKey);
  await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
});

await check("introspection with an assertion signed by another key: 401 invalid_client", async () => {
  const c = await discover(IK, strangerKey);
  await refused(c, () => client.tokenIntrospection(c.config, "x"), 401, "invalid_client", "introspection");
});

await check("another integration's key and kid (keys are pinned to their integration): 401 invalid_client", async () => {
  const c = await discover(EC_IK, { key: rsaKey, kid: KID });
  await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
});

await check("aud = the introspection URL: 401 invalid_client", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, { modify: (_h, payload) => { payload.aud = metadata.introspection_endpoint; } });
  await refused(c, () => client.tokenIntrospection(c.config, "x"), 401, "invalid_client", "introspection");
});

await check("an assertion living 7200 s (over the 3600 s default cap): 401 invalid_client", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, { modify: (_h, payload) => { payload.exp = payload.iat + 7200; } });
  const { body } = await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
  expect(/lifetime|exp/.test(body.error_description ?? ""), `description does not name the rule: ${body.error_description}`);
});

await check("an assertion without jti: 401 invalid_client", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, { modify: (_h, payload) => { delete payload.jti; } });
  await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
});

await check("an expired assertion: 401 invalid_client", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, {
    modify: (_h, payload) => { payload.iat -= 900; payload.nbf -= 900; payload.exp = payload.iat + 60; },
  });
  await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
});

await check("typ client-authentication+jwt is accepted, typ at+jwt is 401 invalid_client", async () => {
  const good = await discover(IK, { key: rsaKey, kid: KID }, { modify: (header) => { header.typ = "client-authentication+jwt"; } });
  await client.clientCredentialsGrant(good.config);
  const bad = await discover(IK, { key: rsaKey, kid: KID }, { modify: (header) => { header.typ = "at+jwt"; } });
  await refused(bad, () => client.clientCredentialsGrant(bad.config), 401, "invalid_client", "token");
});

await check("sub different from iss: 401 invalid_client", async () => {
  const c = await discover(IK, { key: rsaKey, kid: KID }, { modify: (_h, payload) => { payload.sub = EC_IK; } });
  await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
});

await check("a private_key_jwt refusal has no WWW-Authenticate (Basic was not tried) and reaches openid-client as invalid_client", async () => {
  const c = await discover(IK, strangerKey);
  const { refusal, challenge } = await refused(c, () => client.clientCredentialsGrant(c.config), 401, "invalid_client", "token");
  expect(challenge === null, `WWW-Authenticate: ${challenge} (PROTOCOL.md: only when Basic was tried); openid-client reports ${refusal.name} instead of the invalid_client body`);
  expect(refusal instanceof client.ResponseBodyError && refusal.error === "invalid_client", `openid-client reports ${refusal.name}`);
});

await check("client_credentials for an integration without --allow-application-tokens: 400 unauthorized_client", async () => {
  const c = await discover(NOAPP_IK, noappKey);
  await refused(c, () => client.clientCredentialsGrant(c.config), 400, "unauthorized_client", "token");
});

await check("a disabled key stops authenticating within the registry poll: 401 invalid_client", async () => {
  execFileSync(BIN, ["--data-dir", DATA, "integration", "disable-key", IK, KID, "--json"], { stdio: "pipe" });
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = await discover(IK, { key: rsaKey, kid: KID });
    const refusal = await client.clientCredentialsGrant(c.config).then(() => null, () => c.last());
    if (refusal !== null) {
      const body = await refusal.response.clone().json();
      expect(refusal.status === 401 && body.error === "invalid_client", `${refusal.status} ${JSON.stringify(body)}`);
      return;
    }
    expect(Date.now() < deadline, "a disabled key still authenticates after 5 s");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

console.log();
// --- OpenID Connect: the code flow as openid-client's relying party -----------
// The sign-in and consent pages are driven with fetch, as a browser would (one
// cookie, redirects followed by hand); openid-client builds the request (PKCE,
// state, nonce), redeems the code and validates the ID token (issuer, audience,
// times, nonce); its signature is checked here against the server's JWKS.
async function signInAndConsent(authorizationUrl) {
  let cookie = "";
  const go = async (url, init = {}) => {
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) },
    });
    const set = response.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0];
    return response;
  };
  const hidden = (html) =>
    Object.fromEntries(
      [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [
        m[1],
        m[2].replaceAll("&#38;", "&").replaceAll("&amp;", "&").replaceAll("&#34;", '"').replaceAll("&quot;", '"').replaceAll("&#39;", "'"),
      ]),
    );
  const login = await go(authorizationUrl);
  expect(login.status === 200, `authorization page: HTTP ${login.status}`);
  const fields = hidden(await login.text());
  const signedIn = await go(new URL("/login", server), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: fields.csrf, return_to: fields.return_to, email: env("JG_RP_EMAIL"), password: env("JG_RP_PASSWORD") }),
  });
  expect(signedIn.status === 303, `sign-in: HTTP ${signedIn.status}`);
  const consent = await go(new URL(signedIn.headers.get("location"), server));
  if (consent.status === 303) return new URL(consent.headers.get("location")); // consented before
  expect(consent.status === 200, `consent page: HTTP ${consent.status}`);
  const decided = await go(new URL("/oauth/auth/decision", server), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ ...hidden(await consent.text()), decision: "allow" }),
  });
  expect(decided.status === 303, `consent: HTTP ${decided.status}`);
  return new URL(decided.headers.get("location"));
}

await check("openid-client's code flow gets an ID token it validates, with the nonce, auth_time and at_hash", async () => {
  const rp = await client.discovery(server, env("JG_RP"), {}, client.ClientSecretBasic(env("JG_RP_SECRET")), {
    execute: [client.allowInsecureRequests],
  });
  const meta = rp.serverMetadata();
  expect(meta.id_token_signing_alg_values_supported?.length > 0, "no id_token_signing_alg_values_supported");
  const { callback, verifier, nonce, state: stateValue } = await authorize(rp);
  const tokens = await client.authorizationCodeGrant(rp, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: stateValue,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  expect(claims?.nonce === nonce, `nonce ${claims?.nonce}`);
  expect(claims?.aud === env("JG_RP"), `aud ${claims?.aud}`);
  expect(claims?.sub === env("JG_RP_USER"), `sub ${claims?.sub}`);
  expect(Number.isInteger(claims?.auth_time), `auth_time ${claims?.auth_time}`);
  const { payload } = await jose.jwtVerify(tokens.id_token, jwks, { issuer: URL_, audience: env("JG_RP") });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(tokens.access_token)));
  const atHash = Buffer.from(digest.slice(0, 16)).toString("base64url");
  expect(payload.at_hash === atHash, `at_hash ${payload.at_hash}, want ${atHash}`);
  // A wrong nonce is caught by openid-client.
  const again = await authorize(rp);
  let caught = null;
  try {
    await client.authorizationCodeGrant(rp, again.callback, {
      pkceCodeVerifier: again.verifier,
      expectedNonce: "not-the-nonce",
      expectedState: again.state,
      idTokenExpected: true,
    });
  } catch (error) {
    caught = error;
  }
  expect(caught !== null, "openid-client accepted an ID token with another nonce");
});

// An authorization request of openid-client's (PKCE, state, nonce), signed in and
// consented to: the callback and what the code's redemption must send and expect.
async function authorize(rp) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const stateValue = client.randomState();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: "http://127.0.0.1:9/callback",
    scope: "openid signature",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state: stateValue,
  });
  return { callback: await signInAndConsent(url), verifier, nonce, state: stateValue };
}

if (failures.length > 0) {
  console.log(`FAILED: ${failures.length} check(s): ${failures.join("; ")}`);
  process.exit(1);
}
console.log("all openid-client checks passed");
