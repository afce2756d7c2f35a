// The DocuSign IAM SDK's five auth operations against a real jwtgrant server.
// Started by run.sh, which passes the server URL and the registrations in JG_*
// environment variables. Prints one PASS/FAIL (or INFO) line per check and
// exits 1 when any check failed. Talks to 127.0.0.1 only.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { AuthUtils, IamClient } from "@docusign/iam-sdk";
import { OAuthErrorResponse, APIError } from "@docusign/iam-sdk/models/errors";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`test.mjs: ${name} is not set (run it through run.sh)`);
  return v;
};
const BASE = env("JG_URL");
const JG_BIN = env("JG_BIN");
const JG_DATA = env("JG_DATA");
const REDIRECT = env("JG_REDIRECT");
const IK = env("JG_IK");
const SECRET = env("JG_SECRET");
const KEY_PEM = readFileSync(env("JG_KEY_FILE"), "utf8");
const PUB = env("JG_PUB");
const USER_ID = env("JG_USER_ID");
const EMAIL = env("JG_EMAIL");
const PASSWORD = env("JG_PASSWORD");
const ACCOUNT_ID = env("JG_ACCOUNT_ID");
const ORG_ACCOUNT_ID = env("JG_ORG_ACCOUNT_ID");
const SCOPES = ["signature", "impersonation"];

if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(BASE)) throw new Error(`refusing non-loopback server ${BASE}`);

// Per-call options for every SDK operation: our server, no retries (a 5xx must
// show at once, not after 30 s of backoff), a timeout.
const OPTS = { serverURL: BASE, retries: { strategy: "none" }, timeoutMs: 15000 };
const sdk = new IamClient({}); // no accessToken: token calls carry no Bearer header

let failures = 0;
const pass = (name, detail = "") => console.log(`PASS ${name}${detail ? ` — ${detail}` : ""}`);
const fail = (name, detail = "") => { failures++; console.log(`FAIL ${name}${detail ? ` — ${detail}` : ""}`); };
const info = (name, detail = "") => console.log(`INFO ${name}${detail ? ` — ${detail}` : ""}`);
const check = (name, ok, detail = "") => (ok ? pass(name, detail) : fail(name, detail));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// How the SDK surfaced an error, in one line.
function describe(e) {
  if (e instanceof OAuthErrorResponse) {
    return `OAuthErrorResponse status=${e.statusCode} error=${e.error} error_description=${JSON.stringify(e.errorDescription)}`;
  }
  if (e instanceof APIError) return `APIError status=${e.statusCode} body=${JSON.stringify(e.body)}`;
  if (e && typeof e.pretty === "function") return `${e.name}: ${e.pretty()} body=${JSON.stringify(e.body)}`;
  if (e && e.name) return `${e.name}: ${e.message}${e.cause ? ` (cause: ${e.cause.message ?? e.cause})` : ""}`;
  return String(e);
}

// Runs one SDK call as a check: PASS with the result, or FAIL with how it failed.
async function step(name, fn) {
  try {
    const r = await fn();
    pass(name);
    return r;
  } catch (e) {
    fail(name, describe(e));
    return undefined;
  }
}

// The SDK builds DocuSign URLs (https://account-d.docusign.com/oauth/auth?...);
// keep its query string exactly and send it to our server instead.
function authUrl({ clientId, state, codeChallenge }) {
  const sdkUrl = AuthUtils.createAuthorizationUrl({
    type: "code", clientId, redirectUri: REDIRECT, scopes: SCOPES, state, codeChallenge,
  });
  const u = new URL(sdkUrl);
  if (u.origin !== "https://account-d.docusign.com" || u.pathname !== "/oauth/auth") {
    throw new Error(`unexpected SDK authorization URL ${sdkUrl}`);
  }
  return `${BASE}/oauth/auth${u.search}`;
}

// ---- a tiny browser: cookies, manual redirects, forms -----------------------
class Browser {
  constructor() { this.jar = new Map(); }
  async request(method, url, form) {
    const target = new URL(url, BASE);
    if (target.origin !== BASE) throw new Error(`refusing to contact ${target.origin}`);
    const headers = { accept: "text/html" };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const res = await fetch(target, { method, headers, body, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === "";
      if (expired) this.jar.delete(name); else this.jar.set(name, value);
    }
    const text = await res.text();
    return { status: res.status, location: res.headers.get("location"), text, setCookies: res.headers.getSetCookie() };
  }
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'", "#x27": "'", "#x2F": "/", "#47": "/" };
const decode = (s) => s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e) => {
  if (ENTITIES[e] !== undefined) return ENTITIES[e];
  if (/^#x/i.test(e)) return String.fromCodePoint(parseInt(e.slice(2), 16));
  if (/^#\d/.test(e)) return String.fromCodePoint(parseInt(e.slice(1), 10));
  return m;
});
function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}
// The <form id=...> element: its attributes and its hidden inputs.
function findForm(html, id) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1]);
    if (a.id !== id) continue;
    const hidden = {};
    for (const inp of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const ia = attrs(inp[1]);
      if ((ia.type || "").toLowerCase() === "hidden" && ia.name) hidden[ia.name] = ia.value ?? "";
    }
    return { attrs: a, hidden, inner: m[2] };
  }
  return null;
}
const snippet = (r) => `HTTP ${r.status}${r.location ? ` Location: ${r.location}` : ""} body: ${JSON.stringify(r.text.slice(0, 300))}`;

// Drives /oauth/auth -> login -> (consent -> allow) -> 303 to the redirect URI,
// and returns the code from that Location (never followed). `expectConsent`:
// the consent page must be shown (true) or skipped (false).
async function authorize(label, { clientId, codeChallenge, expectConsent, integrationName }) {
  const b = new Browser();
  const state = randomBytes(12).toString("base64url");
  const start = authUrl({ clientId, state, codeChallenge });

  let r = await b.request("GET", start);
  const login = findForm(r.text, "login");
  if (r.status !== 200 || !login) throw new Error(`GET /oauth/auth: expected the 200 login page, got ${snippet(r)}`);
  if (!b.jar.has("jwtgrant_session")) throw new Error(`GET /oauth/auth: no jwtgrant_session cookie (Set-Cookie: ${JSON.stringify(r.setCookies)})`);
  if (!login.hidden.csrf) throw new Error(`login form has no hidden csrf input`);
  const before = b.jar.get("jwtgrant_session");

  r = await b.request("POST", login.attrs.action || "/login", {
    ...login.hidden, email: EMAIL, password: PASSWORD,
  });
  if (r.status !== 303 || !r.location) throw new Error(`POST /login: expected 303 to return_to, got ${snippet(r)}`);
  check(`${label}: POST /login answers 303 and a new jwtgrant_session cookie`,
    b.jar.has("jwtgrant_session") && b.jar.get("jwtgrant_session") !== before,
    `Location ${r.location}`);

  r = await b.request("GET", r.location);
  if (expectConsent) {
    const consent = findForm(r.text, "consent");
    if (r.status !== 200 || !consent) throw new Error(`after login: expected the 200 consent page, got ${snippet(r)}`);
    const at = r.text.search(/id=["']?integration-name\b/);
    const nameText = at < 0 ? "" : decode(r.text.slice(at).replace(/^[^>]*>/, "").slice(0, 400).replace(/<[^>]*>/g, " "));
    const nameOk = nameText.includes(integrationName);
    const scopes = [...r.text.matchAll(/<li\b[^>]*class=["'][^"']*\bscope\b[^"']*["'][^>]*>/gi)].length;
    check(`${label}: consent page names the integration and lists the scopes`, nameOk && scopes >= SCOPES.length,
      `integration-name ${nameOk ? "found" : "missing"}, ${scopes} li.scope`);
    if (!/id=["']?allow["']?/.test(consent.inner)) throw new Error(`consent form has no #allow button`);
    r = await b.request("POST", consent.attrs.action || "/oauth/auth/decision", { ...consent.hidden, decision: "allow" });
  }
  if (r.status !== 303 || !r.location) throw new Error(`expected 303 to the redirect URI, got ${snippet(r)}`);
  const back = new URL(r.location);
  if (`${back.origin}${back.pathname}` !== REDIRECT) throw new Error(`redirected to ${r.location}, not to ${REDIRECT}`);
  if (back.searchParams.get("error")) throw new Error(`redirect carries error=${back.searchParams.get("error")}: ${r.location}`);
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`no code in ${r.location}`);
  if (back.searchParams.get("state") !== state) throw new Error(`state ${back.searchParams.get("state")} != ${state}`);
  pass(`${label}: ${expectConsent ? "login + consent Allow" : "login"} -> 303 ${REDIRECT}?code=…&state=(same)`);
  return code;
}

async function userInfo(label, accessToken) {
  const client = new IamClient({ accessToken });
  const ui = await step(`${label}: getUserInfo`, () => client.auth.getUserInfo(OPTS));
  if (!ui) return;
  const acct = ui.accounts.find((a) => a.accountId === ACCOUNT_ID);
  const org = ui.accounts.find((a) => a.accountId === ORG_ACCOUNT_ID);
  check(`${label}: userinfo sub and email are the user's`, ui.sub === USER_ID && ui.email === EMAIL,
    `sub=${ui.sub} email=${ui.email}`);
  check(`${label}: userinfo lists the default account`,
    !!acct && acct.isDefault === true && acct.accountName === "Ada's account" && acct.baseUri === "https://demo.example.com",
    JSON.stringify(acct));
  check(`${label}: userinfo's organization account parses in the SDK's shape`,
    !!org && org.isDefault === false && org.organization?.organizationId === "9d1b8c5e-0a3f-4e8e-9a53-0c7d1e2f3a4b"
      && org.organization.links?.[0]?.rel === "self",
    JSON.stringify(org));
}

const jwtAssertion = () => AuthUtils.createJwtAssertion({
  clientId: IK, userId: USER_ID, privateKey: KEY_PEM, scopes: SCOPES,
  oauthBasePath: "account-d.docusign.com",
});
const isTokenResponse = (t, withRefresh) =>
  typeof t.accessToken === "string" && t.accessToken.length > 0 && /^bearer$/i.test(t.tokenType)
  && Number.isInteger(t.expiresIn) && t.expiresIn > 0 && (!withRefresh || (typeof t.refreshToken === "string" && t.refreshToken.length > 0));

// Calls the JWT grant until `want(result or error)` holds (admin commands reach
// a running server within about a second), at most `ms` milliseconds.
async function jwtGrantUntil(want, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let out;
    try { out = { ok: await sdk.auth.getTokenFromJwtGrant({ assertion: jwtAssertion() }, OPTS) }; } catch (e) { out = { err: e }; }
    if (want(out) || Date.now() > deadline) return out;
    await sleep(250);
  }
}

// ---- 1. JWT grant -----------------------------------------------------------
console.log(`# @docusign/iam-sdk ${JSON.parse(readFileSync(new URL("./node_modules/@docusign/iam-sdk/package.json", import.meta.url))).version} against ${BASE}`);
const jwt = await step("getTokenFromJwtGrant with an AuthUtils.createJwtAssertion assertion (aud account-d.docusign.com, no kid, no jti)",
  () => sdk.auth.getTokenFromJwtGrant({ assertion: jwtAssertion() }, OPTS));
if (jwt) {
  check("JWT grant: token_type Bearer, integer expires_in", isTokenResponse(jwt, false),
    `token_type=${jwt.tokenType} expires_in=${jwt.expiresIn}`);
  await userInfo("JWT grant token", jwt.accessToken);
}

// The confidential code flow must meet the consent page, so take the admin
// consent away again (and see the SDK surface consent_required meanwhile).
execFileSync(JG_BIN, ["--data-dir", JG_DATA, "consent", "revoke", "--user", USER_ID, "--integration", IK], { stdio: ["ignore", "ignore", "inherit"] });
{
  const out = await jwtGrantUntil((o) => o.err instanceof OAuthErrorResponse && o.err.error === "consent_required");
  check("JWT grant after `consent revoke` is refused with consent_required",
    out.err instanceof OAuthErrorResponse && out.err.error === "consent_required",
    out.err ? describe(out.err) : "a token was issued");
}

// ---- 2. confidential authorization code -------------------------------------
let conf, confCode;
try {
  const code = await authorize("confidential", { clientId: IK, expectConsent: true, integrationName: "IAM SDK confidential app" });
  conf = await step("getTokenFromConfidentialAuthCode (Basic KEY:SECRET, body flow=confidential&grant_type=authorization_code&code=…, no redirect_uri)",
    () => sdk.auth.getTokenFromConfidentialAuthCode({ clientId: IK, secretKey: SECRET }, { code }, OPTS));
  if (conf) {
    check("confidential exchange: Bearer, integer expires_in, refresh_token", isTokenResponse(conf, true),
      `token_type=${conf.tokenType} expires_in=${conf.expiresIn} refresh_token ${conf.refreshToken ? "present" : "missing"}`);
    await userInfo("confidential code token", conf.accessToken);
  }
  confCode = code; // replayed at the end: a replay revokes what the code gave (RFC 6749 4.1.2)
  const out = await jwtGrantUntil((o) => !!o.ok, 5000);
  check("JWT grant works again once the user pressed Allow (the consent was recorded)", !!out.ok, out.err ? describe(out.err) : "");
} catch (e) {
  fail("confidential authorization code flow", e.message);
}

// ---- 3. public authorization code with PKCE ---------------------------------
let publicTokens;
try {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const code = await authorize("public+PKCE", { clientId: PUB, codeChallenge: challenge, expectConsent: true, integrationName: "IAM SDK public app" });
  publicTokens = await step("getTokenFromPublicAuthCode (client_id + code_verifier, S256, no redirect_uri)",
    () => sdk.auth.getTokenFromPublicAuthCode({ clientId: PUB, code, codeVerifier: verifier }, OPTS));
  if (publicTokens) {
    check("public exchange: Bearer, integer expires_in, refresh_token", isTokenResponse(publicTokens, true),
      `token_type=${publicTokens.tokenType} expires_in=${publicTokens.expiresIn}`);
    await userInfo("public PKCE token", publicTokens.accessToken);
  }
  // A second code, exchanged with a wrong verifier, must be refused.
  const verifier2 = randomBytes(32).toString("base64url");
  const challenge2 = createHash("sha256").update(verifier2).digest("base64url");
  const code2 = await authorize("public+PKCE (already consented)", { clientId: PUB, codeChallenge: challenge2, expectConsent: false });
  try {
    await sdk.auth.getTokenFromPublicAuthCode({ clientId: PUB, code: code2, codeVerifier: randomBytes(32).toString("base64url") }, OPTS);
    fail("public: a wrong code_verifier is refused", "a token was issued");
  } catch (e) {
    check("public: a wrong code_verifier is refused", e instanceof OAuthErrorResponse && e.error === "invalid_grant", describe(e));
  }
} catch (e) {
  fail("public PKCE authorization code flow", e.message);
}

// ---- 4. refresh token (confidential), rotation, reuse of the old one --------
if (conf) {
  const old = conf.refreshToken;
  const fresh = await step("getTokenFromRefreshToken (Basic KEY:SECRET, grant_type=refresh_token&refresh_token=…)",
    () => sdk.auth.getTokenFromRefreshToken({ refreshToken: old }, { clientId: IK, secretKey: SECRET }, OPTS));
  if (fresh) {
    check("refresh: Bearer, integer expires_in, a new (rotated) refresh_token",
      isTokenResponse(fresh, true) && fresh.refreshToken !== old && fresh.accessToken !== conf.accessToken,
      `expires_in=${fresh.expiresIn} rotated=${fresh.refreshToken !== old}`);
    await userInfo("refreshed token", fresh.accessToken);
    try {
      const again = await sdk.auth.getTokenFromRefreshToken({ refreshToken: old }, { clientId: IK, secretKey: SECRET }, OPTS);
      fail("refresh: reusing the OLD refresh token is refused", `a token was issued (expires_in=${again.expiresIn})`);
    } catch (e) {
      check("refresh: reusing the OLD refresh token is refused", e instanceof OAuthErrorResponse && e.error === "invalid_grant", describe(e));
      info("how the SDK surfaces the reuse error", `${e?.constructor?.name}: ${e?.message}`);
    }
    // Not in the contract: does the reuse also revoke the rotated token (RFC 9700 reuse detection)?
    try {
      await sdk.auth.getTokenFromRefreshToken({ refreshToken: fresh.refreshToken }, { clientId: IK, secretKey: SECRET }, OPTS);
      info("after the reuse, the NEW refresh token", "still works (no family revocation)");
    } catch (e) {
      info("after the reuse, the NEW refresh token", `refused: ${describe(e)}`);
    }
  }
} else {
  fail("getTokenFromRefreshToken", "skipped: no refresh token from the confidential exchange");
}
if (publicTokens) {
  const r = await step("getTokenFromRefreshToken for the public client (client_id in the body, no secret)",
    () => sdk.auth.getTokenFromRefreshToken({ refreshToken: publicTokens.refreshToken, clientId: PUB }, {}, OPTS));
  if (r) check("public refresh: rotated refresh_token", isTokenResponse(r, true) && r.refreshToken !== publicTokens.refreshToken);
}

// ---- the confidential code a second time (last: it revokes its tokens) ------
if (confCode) {
  try {
    await sdk.auth.getTokenFromConfidentialAuthCode({ clientId: IK, secretKey: SECRET }, { code: confCode }, OPTS);
    fail("confidential: the same code a second time is refused", "a token was issued");
  } catch (e) {
    check("confidential: the same code a second time is refused", e instanceof OAuthErrorResponse && e.error === "invalid_grant", describe(e));
  }
  // Not in the contract: the access token the code gave, at userinfo, after the replay.
  if (conf) {
    try {
      await new IamClient({ accessToken: conf.accessToken }).auth.getUserInfo(OPTS);
      info("after the code replay, the code's ACCESS token at userinfo", "still accepted");
    } catch (e) {
      info("after the code replay, the code's ACCESS token at userinfo", `refused: ${describe(e)}`);
    }
  }
}

// ---- 5. userinfo edge: a bad token ------------------------------------------
try {
  await new IamClient({ accessToken: "not-a-token" }).auth.getUserInfo(OPTS);
  fail("getUserInfo with a bad token is refused", "it answered 200");
} catch (e) {
  check("getUserInfo with a bad token is refused (401)", e?.statusCode === 401, describe(e));
}

// ---- what a client holding an accessToken sends: Bearer on /oauth/token -----
try {
  const t = await new IamClient({ accessToken: jwt?.accessToken ?? "x" }).auth.getTokenFromJwtGrant({ assertion: jwtAssertion() }, OPTS);
  info("JWT grant from an IamClient built with accessToken (it adds Authorization: Bearer to /oauth/token)", `accepted (expires_in=${t.expiresIn})`);
} catch (e) {
  info("JWT grant from an IamClient built with accessToken (it adds Authorization: Bearer to /oauth/token)", `refused: ${describe(e)}`);
}

console.log(failures ? `\n${failures} check(s) FAILED` : "\nall checks passed");
process.exit(failures ? 1 : 0);
