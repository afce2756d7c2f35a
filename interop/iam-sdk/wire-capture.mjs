// Prints exactly what @docusign/iam-sdk puts on the wire for its five auth
// operations, by pointing them (per-call serverURL) at a local echo server.
// Usage: node wire-capture.mjs          (no jwtgrant server needed)
import http from "node:http";
import { generateKeyPairSync } from "node:crypto";
import { IamClient, AuthUtils } from "@docusign/iam-sdk";

const seen = [];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    seen.push({ method: req.method, url: req.url, headers: req.rawHeaders, body });
    const tok = { access_token: "a", token_type: "Bearer", expires_in: 3600, refresh_token: "r" };
    const ui = { sub: "s", name: "n", given_name: "g", family_name: "f", created: "c", email: "e", accounts: [] };
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.url.startsWith("/oauth/userinfo") ? ui : tok));
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const serverURL = `http://127.0.0.1:${server.address().port}`;
const o = { serverURL, retries: { strategy: "none" } };

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const pem = privateKey.export({ type: "pkcs8", format: "pem" });
const assertion = AuthUtils.createJwtAssertion({
  clientId: "IK", userId: "UID", privateKey: pem, scopes: ["signature", "impersonation"],
});
const [h, p] = assertion.split(".").slice(0, 2).map((s) => JSON.parse(Buffer.from(s, "base64url")));
console.log("createJwtAssertion header:", JSON.stringify(h));
console.log("createJwtAssertion payload:", JSON.stringify(p));
console.log("createAuthorizationUrl:", AuthUtils.createAuthorizationUrl({
  type: "code", clientId: "IK", redirectUri: "http://127.0.0.1:9/callback",
  scopes: ["signature", "impersonation"], state: "S", codeChallenge: "CH",
}));

const anon = new IamClient({});
const withTok = new IamClient({ accessToken: "AT" });
const calls = [
  ["getTokenFromJwtGrant", () => anon.auth.getTokenFromJwtGrant({ assertion: "ASSERTION" }, o)],
  ["getTokenFromConfidentialAuthCode", () => anon.auth.getTokenFromConfidentialAuthCode({ clientId: "IK", secretKey: "SECRET" }, { code: "CODE" }, o)],
  ["getTokenFromPublicAuthCode", () => anon.auth.getTokenFromPublicAuthCode({ clientId: "IK", code: "CODE", codeVerifier: "VERIFIER" }, o)],
  ["getTokenFromRefreshToken (security clientId+secretKey)", () => anon.auth.getTokenFromRefreshToken({ refreshToken: "RT" }, { clientId: "IK", secretKey: "SECRET" }, o)],
  ["getTokenFromRefreshToken (public: clientId in body, security {})", () => anon.auth.getTokenFromRefreshToken({ refreshToken: "RT", clientId: "IK" }, {}, o)],
  ["getTokenFromRefreshToken (no security argument)", () => anon.auth.getTokenFromRefreshToken({ refreshToken: "RT" }, undefined, o)],
  ["getUserInfo (client accessToken AT)", () => withTok.auth.getUserInfo(o)],
  ["getTokenFromJwtGrant from a client that has accessToken AT", () => withTok.auth.getTokenFromJwtGrant({ assertion: "ASSERTION" }, o)],
];
for (const [name, f] of calls) {
  const before = seen.length;
  let outcome;
  try { outcome = "resolved " + JSON.stringify(await f()); } catch (e) { outcome = `threw ${e?.name}: ${e?.message}${e?.cause ? " (cause: " + e.cause.message + ")" : ""}`; }
  console.log(`\n## ${name}\n${outcome}`);
  for (const r of seen.slice(before)) {
    console.log(`${r.method} ${r.url}`);
    for (let i = 0; i < r.headers.length; i += 2) console.log(`  ${r.headers[i]}: ${r.headers[i + 1]}`);
    console.log(`  body: ${r.body}`);
  }
}
server.close();
