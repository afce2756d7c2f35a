//! `jwtgrant bench`: the load tool. It registers its own integration, user and
//! consent on the server's store (or takes them as arguments), mints every assertion
//! (JWT bearer grants of the integration or, with `--issuer`, a trusted issuer's
//! tokens; or client assertions for the client credentials grant) before the clock
//! starts, then drives the server over keep-alive HTTP/1.1 connections, closed loop
//! at a fixed concurrency or open loop at a fixed rate (latency then counts from
//! each request's scheduled send time). It reads the server's CPU time and peak RSS
//! from `/proc`, and measures the crypto-only cost of a grant on this machine for
//! comparison.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_proto::DEFAULT_SCOPES;
use jwtgrant_server::clock;
use jwtgrant_store::{IntegrationKeyRecord, NewIntegration, Store, UserRecord};
use serde_json::{Map, Value, json};

use crate::args::BenchArgs;
use crate::output::emit;

/// What one run measured.
#[derive(Debug, Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// Runs the load and prints the report.
pub async fn run(args: BenchArgs, store: Option<Arc<dyn Store>>) -> Result<()> {
    let base = args.server.trim_end_matches('/').to_owned();
    let authority = base
        .strip_prefix("http://")
        .context("--server must be an http:// URL (the load tool speaks plain HTTP/1.1)")?
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a number of requests per second above 0, not {rate}");
    }
    let total = args.requests + args.warmup;
    // Where the token requests go: --server's /oauth/token, or a peer's --token-url.
    let (token_authority, token_path) = match &args.token_url {
        Some(url) => split_url(url)?,
        None => (authority.clone(), "/oauth/token".to_owned()),
    };
    let audience = args.aud.clone().unwrap_or_else(|| token_authority.clone());
    let settings = RunSettings::main(&args);
    let scopes = if args.scopes.is_empty() {
        DEFAULT_SCOPES.map(str::to_owned).to_vec()
    } else {
        args.scopes.clone()
    };
    if let Some(issuer) = &args.issuer {
        if args.endpoint != "token" {
            bail!("--issuer sends JWT bearer grants: use it with --endpoint token");
        }
        let issuer = TrustedIssuerTokens::load(&args, issuer)?;
        let form_scope = (!args.scopes.is_empty()).then(|| scopes.join(" "));
        eprintln!(
            "minting {total} {} tokens of {}...",
            issuer.alg.as_str(),
            issuer.issuer
        );
        let bodies = mint_bodies(total, |now| {
            issuer.grant_body(&audience, form_scope.as_deref(), now)
        })?;
        let result = drive(
            &settings,
            token_authority,
            token_path,
            Requests::Post {
                bodies,
                basic: None,
            },
        )
        .await?;
        return finish(&args, result, None, issuer.alg).await;
    }
    let subject = prepare_subject(&args, store).await?;
    let scope = scopes.join(" ");
    let jti = !args.no_jti;
    let (target, path, requests) = match args.endpoint.as_str() {
        "token" => {
            eprintln!("minting {total} RS256 assertions...");
            let bodies = mint_bodies(total, |now| {
                grant_body(&subject, &audience, &scope, args.github_claims, jti, now)
            })?;
            (
                token_authority,
                token_path,
                Requests::Post {
                    bodies,
                    basic: None,
                },
            )
        }
        "client-credentials" => {
            let issuer = match &args.aud {
                Some(aud) => aud.clone(),
                None => fetch_issuer(&authority).await?,
            };
            eprintln!("minting {total} RS256 client assertions for {issuer}...");
            let bodies = mint_bodies(total, |now| {
                client_credentials_body(&subject, &issuer, &scope, now)
            })?;
            (
                token_authority,
                token_path,
                Requests::Post {
                    bodies,
                    basic: None,
                },
            )
        }
        "userinfo" => {
            let body = grant_body(&subject, &audience, &scope, false, true, clock::now())?;
            let token = fetch_token(&authority, body).await?;
            (
                authority.clone(),
                "/oauth/userinfo".to_owned(),
                Requests::Get {
                    authorization: Some(format!("Bearer {token}")),
                },
            )
        }
        "introspect" => {
            let body = grant_body(&subject, &audience, &scope, false, true, clock::now())?;
            let token = fetch_token(&authority, body).await?;
            let secret = subject
                .client_secret
                .as_deref()
                .context("--endpoint introspect needs the integration's --client-secret")?;
            let mut form = form_urlencoded_pair("token", &token);
            form.push_str("&token_type_hint=access_token");
            (
                authority.clone(),
                "/oauth/introspect".to_owned(),
                Requests::Post {
                    bodies: vec![Bytes::from(form); total],
                    basic: Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:{secret}", subject.integration_key))
                    )),
                },
            )
        }
        other => bail!(
            "unknown --endpoint {other}: use token, client-credentials, userinfo or introspect"
        ),
    };
    let result = drive(&settings, target, path, requests).await?;
    finish(&args, result, Some(&subject), JwsAlgorithm::Rs256).await
}

/// The JOSE header of the `access_token` in a token response, when it is a JWT.
fn token_header(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get("access_token")?.as_str()?;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `host:port` and path of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: an http:// URL (the load tool speaks plain HTTP/1.1)"))?;
    Ok(match rest.split_once('/') {
        Some((authority, path)) => (authority.to_owned(), format!("/{path}")),
        None => (rest.to_owned(), "/".to_owned()),
    })
}

/// How one run is driven: its size, its loop and whose CPU it reads.
struct RunSettings {
    requests: usize,
    warmup: usize,
    concurrency: usize,
    rate: Option<f64>,
    pids: Vec<u32>,
    /// Shown in the report.
    endpoint: String,
    issuer: Option<String>,
    /// The crypto-only cost shown with the report (none for the floor's own runs).
    crypto: Option<bool>,
}

impl RunSettings {
    fn main(args: &BenchArgs) -> Self {
        RunSettings {
            requests: args.requests,
            warmup: args.warmup,
            concurrency: args.concurrency,
            rate: args.rate,
            pids: args.server_pids.clone(),
            endpoint: args.endpoint.clone(),
            issuer: args.issuer.clone(),
            crypto: Some(matches!(
                args.endpoint.as_str(),
                "token" | "client-credentials"
            )),
        }
    }
}

/// What a run sends.
enum Requests {
    /// One POST per body (form-urlencoded), with `Authorization: Basic` when given.
    Post {
        bodies: Vec<Bytes>,
        basic: Option<String>,
    },
    /// The same GET every time, with this `Authorization` when given.
    Get { authorization: Option<String> },
}

/// One run's report, as JSON and as text.
struct RunResult {
    report: Value,
    text: String,
    cpu_per_request_us: Option<f64>,
}

/// Prints the main run's report, measuring the floor first when asked to.
async fn finish(
    args: &BenchArgs,
    mut result: RunResult,
    subject: Option<&Subject>,
    verify_alg: JwsAlgorithm,
) -> Result<()> {
    if args.floor {
        let rate = result.report.get("per_second").and_then(Value::as_f64);
        let (report, text) =
            measure_floor(args, subject, verify_alg, result.cpu_per_request_us, rate)
                .await
                .context("measuring the floor")?;
        if let Value::Object(map) = &mut result.report {
            map.insert("floor".into(), report);
        }
        result.text.push_str(&text);
    }
    emit(args.json, result.report, result.text)
}

/// The floor of a grant, measured now: the crypto-only cost of its two signature
/// operations on one thread, plus the server CPU of the cheapest requests jwtgrant
/// answers (`/healthz`; userinfo of a cached token when there is a user), each at
/// its own saturation. Beside it, the cheapest request once more, open loop at
/// `rate` (the main run's requests per second): a request's server CPU grows as
/// the rate falls (workers park and are woken between requests, the client is
/// woken for each answer), so the saturated floor holds fewer wake-ups per request
/// than a grant at its own, lower, rate.
async fn measure_floor(
    args: &BenchArgs,
    subject: Option<&Subject>,
    verify_alg: JwsAlgorithm,
    cpu_per_request_us: Option<f64>,
    rate: Option<f64>,
) -> Result<(Value, String)> {
    let base = args.floor_server.as_deref().unwrap_or(&args.server);
    let (authority, _) = split_url(base.trim_end_matches('/'))?;
    let pids = if args.floor_pids.is_empty() {
        if args.token_url.is_some() {
            bail!("--floor with --token-url needs --floor-pid (the jwtgrant server's pid)");
        }
        args.server_pids.clone()
    } else {
        args.floor_pids.clone()
    };
    if pids.is_empty() {
        bail!("--floor needs the server's pid (--server-pid or --floor-pid)");
    }
    let sign_alg = match &args.access_token_alg {
        Some(name) => JwsAlgorithm::from_name(name)
            .with_context(|| format!("--access-token-alg {name}: not an algorithm"))?,
        None => access_token_alg(&authority).await,
    };
    let crypto = tokio::task::spawn_blocking(move || crypto_cost(verify_alg, sign_alg))
        .await
        .context("the crypto measurement panicked")??;
    let floor_settings = |endpoint: &str| RunSettings {
        requests: args.floor_requests,
        warmup: args.floor_requests / 20,
        concurrency: args.concurrency.clamp(1, 64),
        rate: None,
        pids: pids.clone(),
        endpoint: endpoint.to_owned(),
        issuer: None,
        crypto: None,
    };
    let healthz = drive(
        &floor_settings("healthz"),
        authority.clone(),
        "/healthz".to_owned(),
        Requests::Get {
            authorization: None,
        },
    )
    .await?;
    let mut cheapest = vec![("healthz", healthz.cpu_per_request_us)];
    let mut userinfo_authorization = None;
    let mut notes = String::new();
    if let Some(subject) = subject.filter(|s| s.user_id.is_some()) {
        let scope = DEFAULT_SCOPES.join(" ");
        let body = grant_body(subject, &authority, &scope, false, true, clock::now())?;
        match fetch_token(&authority, body).await {
            Ok(token) => {
                let authorization = format!("Bearer {token}");
                let userinfo = drive(
                    &floor_settings("userinfo"),
                    authority.clone(),
                    "/oauth/userinfo".to_owned(),
                    Requests::Get {
                        authorization: Some(authorization.clone()),
                    },
                )
                .await?;
                cheapest.push(("userinfo", userinfo.cpu_per_request_us));
                userinfo_authorization = Some(authorization);
            }
            Err(error) => notes.push_str(&format!(
                "floor: no userinfo run (no token from {authority}: {error:#})\n"
            )),
        }
    }
    let (cheapest_name, cheapest_us) = cheapest
        .iter()
        .filter_map(|(name, cpu)| cpu.map(|cpu| (*name, cpu)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .context("no floor run measured the server's CPU")?;
    let floor_us = crypto.cpu_us + cheapest_us;
    let ratio = cpu_per_request_us.map(|cpu| cpu / floor_us);
    // The same cheapest request at the main run's rate, for two seconds at least.
    let at_rate = match rate.filter(|r| r.is_finite() && *r > 0.0) {
        Some(rate) => {
            let (path, authorization) = match cheapest_name {
                "userinfo" => ("/oauth/userinfo", userinfo_authorization.clone()),
                _ => ("/healthz", None),
            };
            let settings = RunSettings {
                requests: args.floor_requests.max((rate * 2.0) as usize),
                rate: Some(rate),
                ..floor_settings(cheapest_name)
            };
            drive(
                &settings,
                authority.clone(),
                path.to_owned(),
                Requests::Get { authorization },
            )
            .await?
            .cpu_per_request_us
            .map(|cpu| (rate, cpu))
        }
        None => None,
    };
    let floor_at_rate_us = at_rate.map(|(_, cpu)| crypto.cpu_us + cpu);
    let ratio_at_rate = cpu_per_request_us
        .zip(floor_at_rate_us)
        .map(|(cpu, floor)| cpu / floor);
    let report = json!({
        "verify_alg": verify_alg.as_str(),
        "sign_alg": sign_alg.as_str(),
        "crypto_cpu_us": crypto.cpu_us,
        "crypto_wall_us": crypto.wall_us,
        "requests": cheapest.iter().map(|(name, cpu)| (name.to_string(), json!(cpu))).collect::<Map<String, Value>>(),
        "cheapest": cheapest_name,
        "cheapest_cpu_us": cheapest_us,
        "floor_us": floor_us,
        "server_cpu_over_floor": ratio,
        "at_rate": at_rate.map(|(rate, cpu)| json!({
            "rate": rate,
            "cheapest_cpu_us": cpu,
            "floor_us": floor_at_rate_us,
            "server_cpu_over_floor": ratio_at_rate,
        })),
    });
    let mut text = notes;
    text.push_str(&format!(
        "floor: crypto-only {:.1} us of one thread's CPU (verify {} + sign {}; {:.1} us wall)\n",
        crypto.cpu_us,
        verify_alg.as_str(),
        sign_alg.as_str(),
        crypto.wall_us
    ));
    for (name, cpu) in &cheapest {
        if let Some(cpu) = cpu {
            text.push_str(&format!(
                "floor: {name} {cpu:.1} us of server CPU per request\n"
            ));
        }
    }
    text.push_str(&format!(
        "floor = crypto + {cheapest_name} = {floor_us:.1} us"
    ));
    match ratio {
        Some(ratio) => text.push_str(&format!("; server CPU / floor = {ratio:.2}\n")),
        None => text.push('\n'),
    }
    if let (Some((rate, cpu)), Some(floor)) = (at_rate, floor_at_rate_us) {
        text.push_str(&format!(
            "floor at this run's rate ({rate:.0}/s, open loop): {cheapest_name} {cpu:.1} us, floor {floor:.1} us"
        ));
        match ratio_at_rate {
            Some(ratio) => text.push_str(&format!("; server CPU / floor = {ratio:.2}\n")),
            None => text.push('\n'),
        }
    }
    Ok((report, text))
}

/// The algorithm of the server's access tokens, from its JWKS: the one all its keys
/// name, else ES256 (the default).
async fn access_token_alg(authority: &str) -> JwsAlgorithm {
    let jwks = get_json(authority, "/oauth/jwks").await.ok();
    let algs: std::collections::BTreeSet<&str> = jwks
        .as_ref()
        .and_then(|v| v.get("keys"))
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.get("alg").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match algs.iter().next() {
        Some(alg) if algs.len() == 1 => JwsAlgorithm::from_name(alg).unwrap_or(JwsAlgorithm::Es256),
        _ => JwsAlgorithm::Es256,
    }
}

/// Sends the requests (`bodies`, one per request, for a POST; none for a GET with
/// `bearer`), measures, and prints the report.
async fn drive(
    args: &RunSettings,
    authority: String,
    path: String,
    requests: Requests,
) -> Result<RunResult> {
    let total = args.requests + args.warmup;
    let plan = Arc::new(Plan {
        authority,
        path,
        requests,
        next: AtomicUsize::new(0),
        total,
        warmup: args.warmup,
        rate: args.rate,
        started: std::sync::OnceLock::new(),
        due: tokio::sync::Semaphore::new(0),
        sample: std::sync::OnceLock::new(),
    });

    let pids = (!args.pids.is_empty()).then_some(args.pids.as_slice());
    let cpu_before = pids.map(read_cpu_seconds).transpose()?;
    let started = Instant::now();
    let _ = plan.started.set(started);
    let pacer = args.rate.map(|rate| {
        let plan = Arc::clone(&plan);
        std::thread::spawn(move || pace(&plan, started, rate))
    });
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| tokio::spawn(worker(Arc::clone(&plan))))
        .collect();
    let mut outcome = Outcome::default();
    let mut failed = None;
    for handle in workers {
        match handle
            .await
            .context("worker panicked")
            .and_then(|part| part)
        {
            Ok(part) => {
                outcome.latencies_us.extend(part.latencies_us);
                for (key, count) in part.errors {
                    *outcome.errors.entry(key).or_default() += count;
                }
            }
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    let elapsed = started.elapsed();
    plan.due.close();
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    if let Some(error) = failed {
        return Err(error);
    }
    let cpu_after = pids.map(read_cpu_seconds).transpose()?;
    let peak_rss_kb = pids.map(read_peak_rss_kb).transpose()?;

    // The warm-up requests are the first ones sent; their latencies are dropped
    // with them, but their time stays in the window, which the rate is computed on.
    let measured = outcome.latencies_us.len() as f64;
    let ok = measured - outcome.errors.values().sum::<u64>() as f64;
    let mut sorted = outcome.latencies_us.clone();
    sorted.sort_unstable();
    let pct = |p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted.get(index).copied().unwrap_or_default() as f64 / 1000.0
    };
    let window = elapsed.as_secs_f64();
    let throughput = (total as f64 - (outcome.errors.values().sum::<u64>() as f64)) / window;
    let crypto_us = args.crypto.map(crypto_only_cost_us).transpose()?;
    let cpu_per_request_us = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some((after - before) / total as f64 * 1e6),
        _ => None,
    };
    let report = json!({
        "endpoint": args.endpoint,
        "issuer": args.issuer,
        "mode": if args.rate.is_some() { "open-loop" } else { "closed-loop" },
        "rate_target": args.rate,
        "concurrency": args.concurrency,
        "requests": total,
        "measured_requests": measured,
        "ok": ok,
        "seconds": window,
        "per_second": throughput,
        "latency_ms": {"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "p99.9": pct(99.9), "max": pct(100.0)},
        "errors": outcome.errors,
        "server_cpu_us_per_request": cpu_per_request_us,
        "access_token_header": plan.sample.get().and_then(|body| token_header(body)),
        "server_peak_rss_mb": peak_rss_kb.map(|kb| kb as f64 / 1024.0),
        "crypto_only_us": crypto_us,
        "cpu_over_crypto": cpu_per_request_us.zip(crypto_us).map(|(cpu, crypto)| cpu / crypto),
    });
    let mut text = format!(
        "endpoint {}{}  {}  concurrency {}{}\nrequests {total} ({} measured, {ok} ok) in {window:.2} s: {throughput:.0}/s\nlatency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
        args.endpoint,
        args.issuer
            .as_deref()
            .map(|issuer| format!(" (trusted issuer {issuer})"))
            .unwrap_or_default(),
        if args.rate.is_some() {
            "open-loop"
        } else {
            "closed-loop"
        },
        args.concurrency,
        args.rate
            .map(|r| format!("  rate {r}/s"))
            .unwrap_or_default(),
        measured,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0),
    );
    for (kind, count) in &outcome.errors {
        text.push_str(&format!("errors  {kind}: {count}\n"));
    }
    if let Some(header) = plan.sample.get().and_then(|body| token_header(body)) {
        text.push_str(&format!("access token header {header}\n"));
    }
    if let Some(cpu) = cpu_per_request_us {
        text.push_str(&format!(
            "server CPU {cpu:.1} us/request; peak RSS {:.1} MB\n",
            peak_rss_kb.unwrap_or_default() as f64 / 1024.0
        ));
    }
    match (crypto_us, cpu_per_request_us) {
        (Some(crypto), Some(cpu)) => text.push_str(&format!(
            "crypto-only cost {crypto:.1} us; server CPU / crypto = {:.2}\n",
            cpu / crypto
        )),
        (Some(crypto), None) => text.push_str(&format!(
            "crypto-only cost {crypto:.1} us (give --server-pid for the server's CPU and RSS)\n"
        )),
        _ => {}
    }
    Ok(RunResult {
        report,
        text,
        cpu_per_request_us,
    })
}

/// Who the assertions speak for.
struct Subject {
    integration_key: String,
    /// The user, or none for application tokens.
    user_id: Option<String>,
    key: SigningKey,
    /// The kid the key is registered under, when known (client assertions name it).
    kid: Option<String>,
    /// Its client secret, when known (introspection authenticates with it).
    client_secret: Option<String>,
}

async fn prepare_subject(args: &BenchArgs, store: Option<Arc<dyn Store>>) -> Result<Subject> {
    if let (Some(integration_key), Some(key)) = (&args.integration_key, &args.key) {
        return Ok(Subject {
            integration_key: integration_key.clone(),
            user_id: args.user_id.clone(),
            key: read_private_key(key)?,
            kid: None,
            client_secret: args.client_secret.clone(),
        });
    }
    let store = store.context(
        "give --data-dir of the server's store, or --integration-key and --key (and --user-id)",
    )?;
    let now = clock::now();
    let key = SigningKey::generate(JwsAlgorithm::Rs256, 2048)?;
    let integration_key = uuid::Uuid::new_v4().to_string();
    store
        .create_integration(NewIntegration {
            integration_key: integration_key.clone(),
            name: "jwtgrant bench".into(),
            scopes: DEFAULT_SCOPES.map(str::to_owned).to_vec(),
            redirect_uris: vec![],
            resources: vec![],
            default_scopes: vec![],
            // The client credentials grant is for integrations allowed them.
            allow_application_tokens: args.endpoint == "client-credentials",
            require_jti: !args.no_jti,
            created_at: now,
        })
        .await?;
    let kid = key.public_key().thumbprint().to_owned();
    store
        .add_integration_key(
            &integration_key,
            IntegrationKeyRecord {
                public_jwk: serde_json::to_string(&key.public_key().to_jwk(Some(&kid), None))?,
                kid: kid.clone(),
                active: true,
                created_at: now,
            },
        )
        .await?;
    let user_id = uuid::Uuid::new_v4().to_string();
    store
        .create_user(UserRecord {
            user_id: user_id.clone(),
            email: format!("bench-{user_id}@example.com"),
            name: "Bench User".into(),
            given_name: "Bench".into(),
            family_name: "User".into(),
            active: true,
            created_at: now,
        })
        .await?;
    let scopes = DEFAULT_SCOPES.map(str::to_owned).to_vec();
    store
        .grant_consent(&user_id, &integration_key, &scopes, now)
        .await?;
    let client_secret = jwtgrant_server::credentials::random_token();
    let hash = jwtgrant_server::credentials::hash_secret(&client_secret).map_err(|e| anyhow!(e))?;
    store
        .set_integration_secret(&integration_key, Some(&hash))
        .await?;
    Ok(Subject {
        integration_key,
        user_id: Some(user_id),
        key,
        kid: Some(kid),
        client_secret: Some(client_secret),
    })
}

/// `count` form bodies made by `mint(now)`, each with its own signed assertion,
/// minted on every core.
fn mint_bodies(count: usize, mint: impl Fn(i64) -> Result<Bytes> + Sync) -> Result<Vec<Bytes>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads);
    let now = clock::now();
    let mint = &mint;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<Vec<Bytes>> {
                    let start = t * per_thread;
                    let end = count.min(start + per_thread);
                    (start..end).map(|_| mint(now)).collect()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for handle in handles {
            all.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("minting thread panicked"))??,
            );
        }
        Ok(all)
    })
}

fn read_private_key(path: &std::path::Path) -> Result<SigningKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    SigningKey::from_pem(&pem).with_context(|| format!("{}", path.display()))
}

/// The assertions' lifetime: long enough to outlast minting and the run.
const ASSERTION_LIFETIME_SECS: i64 = 3000;

/// A JWT bearer grant's form body: a DocuSign-shaped assertion with a unique `jti`
/// unless not `jti` (an application assertion, without `sub`, when there is no
/// user), and the claims of a GitHub Actions token too when `github_claims` (a
/// control as long as a trusted issuer's token).
fn grant_body(
    subject: &Subject,
    audience: &str,
    scope: &str,
    github_claims: bool,
    jti: bool,
    now: i64,
) -> Result<Bytes> {
    let mut claims = json!({
        "iss": subject.integration_key,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "scope": scope,
    });
    if let Some(map) = claims.as_object_mut() {
        if jti {
            map.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
        if let Some(user_id) = &subject.user_id {
            map.insert("sub".into(), json!(user_id));
        }
        if github_claims {
            map.extend(github_actions_claims(now));
        }
    }
    jwt_bearer_body(&subject.key, JwsAlgorithm::Rs256, None, &claims, None)
}

/// The form body of a JWT bearer grant of `claims`, signed with `key` (header `typ`
/// JWT, and `kid` when given), with the form's `scope` when given.
fn jwt_bearer_body(
    key: &SigningKey,
    alg: JwsAlgorithm,
    kid: Option<&str>,
    claims: &Value,
    form_scope: Option<&str>,
) -> Result<Bytes> {
    let assertion = sign_compact(key, alg, Some("JWT"), kid, claims)?;
    let mut body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    if let Some(scope) = form_scope {
        body.push('&');
        body.push_str(&form_urlencoded_pair("scope", scope));
    }
    Ok(Bytes::from(body))
}

/// The claims of a GitHub Actions OIDC token of octo-org/octo-repo on a push to
/// refs/heads/main, but `iss`, `sub`, `aud`, `jti`, `iat` and `exp`.
fn github_actions_claims(now: i64) -> Map<String, Value> {
    let claims = json!({
        "ref": "refs/heads/main",
        "sha": "d6cb4a5b7c2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "repository_owner_id": "1234567",
        "run_id": "7023571230",
        "run_number": "12",
        "run_attempt": "1",
        "repository_visibility": "private",
        "repository_id": "74",
        "actor_id": "12",
        "actor": "octocat",
        "workflow": "deploy",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "d6cb4a5b7c2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": "d6cb4a5b7c2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "runner_environment": "github-hosted",
        "nbf": now - 5,
    });
    match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A trusted issuer's tokens (`--issuer`), shaped like GitHub Actions OIDC tokens.
struct TrustedIssuerTokens {
    issuer: String,
    key: SigningKey,
    alg: JwsAlgorithm,
    kid: String,
}

impl TrustedIssuerTokens {
    fn load(args: &BenchArgs, issuer: &str) -> Result<Self> {
        let path = args
            .issuer_key
            .as_deref()
            .context("--issuer needs --issuer-key")?;
        let key = read_private_key(path)?;
        let kid = args
            .issuer_kid
            .clone()
            .unwrap_or_else(|| key.public_key().thumbprint().to_owned());
        Ok(TrustedIssuerTokens {
            issuer: issuer.to_owned(),
            alg: key.default_algorithm(),
            key,
            kid,
        })
    }

    /// A grant of one token with a fresh `jti`: the claims of a GitHub Actions
    /// workflow run's token, but no `sub`, so that the issuer's --subject-expr names
    /// the workload.
    fn grant_body(&self, audience: &str, form_scope: Option<&str>, now: i64) -> Result<Bytes> {
        let mut claims = github_actions_claims(now);
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("aud".into(), json!(audience));
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + ASSERTION_LIFETIME_SECS));
        let claims = Value::Object(claims);
        jwt_bearer_body(&self.key, self.alg, Some(&self.kid), &claims, form_scope)
    }
}

/// A client credentials grant's form body: the client authenticated by a client
/// assertion (`private_key_jwt`) with a unique `jti`, `aud` the server's issuer, and
/// the same scopes as the grant assertions ask for.
fn client_credentials_body(
    subject: &Subject,
    issuer: &str,
    scope: &str,
    now: i64,
) -> Result<Bytes> {
    let claims = json!({
        "iss": subject.integration_key,
        "sub": subject.integration_key,
        "aud": issuer,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let assertion = sign_compact(
        &subject.key,
        JwsAlgorithm::Rs256,
        Some(jwtgrant_proto::CLIENT_ASSERTION_TYP),
        subject.kid.as_deref(),
        &claims,
    )?;
    Ok(Bytes::from(format!(
        "grant_type=client_credentials&{}&{}&{}&{}",
        form_urlencoded_pair("scope", scope),
        form_urlencoded_pair("client_id", &subject.integration_key),
        form_urlencoded_pair(
            "client_assertion_type",
            jwtgrant_proto::CLIENT_ASSERTION_TYPE
        ),
        form_urlencoded_pair("client_assertion", &assertion),
    )))
}

struct Plan {
    authority: String,
    path: String,
    requests: Requests,
    next: AtomicUsize,
    total: usize,
    warmup: usize,
    rate: Option<f64>,
    started: std::sync::OnceLock<Instant>,
    /// Open loop: one permit per request whose scheduled send time has come,
    /// released by [`pace`].
    due: tokio::sync::Semaphore,
    /// The body of the first 200 answer: the report shows its token's JOSE header.
    sample: std::sync::OnceLock<Bytes>,
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The open-loop pacer's shortest sleep: a request is sent at most this late.
const PACER_TICK: Duration = Duration::from_micros(200);

/// Open loop: releases a permit for each request when its scheduled send time
/// (`started + index / rate`) has come. A thread of its own sleeps to each time:
/// tokio's timer rounds up to the next millisecond, which would send each request
/// up to a millisecond late and count that as the server's latency.
fn pace(plan: &Plan, started: Instant, rate: f64) {
    let mut released = 0usize;
    while released < plan.total && !plan.due.is_closed() {
        let since = started.elapsed().as_secs_f64();
        let due = ((since * rate).floor() as usize + 1).min(plan.total);
        if due > released {
            plan.due.add_permits(due - released);
            released = due;
        }
        // At high rates a wake-up per request would cost the machine more than the
        // server does: the permits due within a tick are released together.
        let next = started + Duration::from_secs_f64(released as f64 / rate);
        let wait = next
            .checked_duration_since(Instant::now())
            .unwrap_or_default()
            .max(PACER_TICK);
        std::thread::sleep(wait);
    }
    // Every request is due: the workers waiting for a permit find the plan done.
    plan.due
        .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
}

async fn worker(plan: Arc<Plan>) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut sender = connect(&plan.authority).await?;
    let started = *plan.started.get().context("not started")?;
    loop {
        if plan.rate.is_some() {
            match plan.due.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            }
        }
        let index = plan.next.fetch_add(1, Ordering::Relaxed);
        if index >= plan.total {
            break;
        }
        let scheduled = match plan.rate {
            // Taken after `index + 1` permits were released, so at or after its time.
            Some(rate) => started + Duration::from_secs_f64(index as f64 / rate),
            None => Instant::now(),
        };
        let request = build_request(&plan, index)?;
        let result = match sender.ready().await {
            Ok(()) => sender
                .send_request(request)
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error.into()),
        };
        let kind = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // A server that closes after each response (gunicorn's sync workers)
                // gets a new connection for the next request, as its clients would.
                let closes = response
                    .headers()
                    .get(hyper::header::CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                if closes {
                    sender = connect(&plan.authority).await?;
                }
                if status == 200 {
                    if plan.sample.get().is_none() {
                        let _ = plan.sample.set(body);
                    }
                    None
                } else {
                    let code = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    Some(format!("{status} {code}"))
                }
            }
            Err(error) => {
                sender = connect(&plan.authority).await?;
                Some(format!("connection: {error}"))
            }
        };
        if index >= plan.warmup {
            outcome
                .latencies_us
                .push(scheduled.elapsed().as_micros() as u64);
            if let Some(kind) = kind {
                *outcome.errors.entry(kind).or_default() += 1;
            }
        }
    }
    Ok(outcome)
}

fn build_request(plan: &Plan, index: usize) -> Result<hyper::Request<Full<Bytes>>> {
    let builder = hyper::Request::builder().header(hyper::header::HOST, &plan.authority);
    Ok(match &plan.requests {
        Requests::Get { authorization } => match authorization {
            Some(value) => builder.header(hyper::header::AUTHORIZATION, value),
            None => builder,
        }
        .method("GET")
        .uri(&plan.path)
        .body(Full::new(Bytes::new()))?,
        Requests::Post { bodies, basic } => match basic {
            Some(basic) => builder.header(hyper::header::AUTHORIZATION, basic),
            None => builder,
        }
        .method("POST")
        .uri(&plan.path)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(bodies.get(index).cloned().unwrap_or_default()))?,
    })
}

/// The server's issuer identifier, from its RFC 8414 metadata: client assertions
/// name it in `aud`.
async fn fetch_issuer(authority: &str) -> Result<String> {
    let value = get_json(authority, "/.well-known/oauth-authorization-server").await?;
    value
        .get("issuer")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no issuer in the metadata: {value}"))
}

/// A GET's JSON answer.
async fn get_json(authority: &str, path: &str) -> Result<Value> {
    let mut sender = connect(authority).await?;
    let request = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, authority)
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

async fn fetch_token(authority: &str, body: Bytes) -> Result<String> {
    let mut sender = connect(authority).await?;
    let request = hyper::Request::builder()
        .method("POST")
        .uri("/oauth/token")
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&body)?;
    value
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no token: {value}"))
}

/// The cost of a grant's unavoidable cryptography on one core: verify one RS256
/// assertion and sign one ES256 access token (for userinfo: verify one ES256 token).
fn crypto_only_cost_us(token_endpoint: bool) -> Result<f64> {
    let rsa = SigningKey::generate(JwsAlgorithm::Rs256, 2048)?;
    let ec = SigningKey::generate(JwsAlgorithm::Es256, 0)?;
    let message =
        b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiZW5jaCIsInN1YiI6InVzZXIiLCJhdWQiOiIxMjcuMC4wLjEifQ";
    let rsa_sig = rsa.sign(JwsAlgorithm::Rs256, message)?;
    let ec_sig = ec.sign(JwsAlgorithm::Es256, message)?;
    let rounds = 2000;
    let start = Instant::now();
    for _ in 0..rounds {
        if token_endpoint {
            let ok = rsa
                .public_key()
                .verify(JwsAlgorithm::Rs256, message, &rsa_sig);
            let sig = ec.sign(JwsAlgorithm::Es256, message)?;
            if !ok || sig.is_empty() {
                bail!("crypto self-check failed");
            }
        } else if !ec
            .public_key()
            .verify(JwsAlgorithm::Es256, message, &ec_sig)
        {
            bail!("crypto self-check failed");
        }
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds))
}

/// The crypto-only cost of one grant, measured now: one verification with
/// `verify_alg` and one signature with `sign_alg`, over fresh keys.
struct CryptoCost {
    /// This thread's CPU time per grant (`CLOCK_THREAD_CPUTIME_ID`, in ns),
    /// comparable with the server's CPU time.
    cpu_us: f64,
    /// Wall time per grant.
    wall_us: f64,
}

/// Measures [`CryptoCost`] on the calling thread: the median of 7 batches.
fn crypto_cost(verify_alg: JwsAlgorithm, sign_alg: JwsAlgorithm) -> Result<CryptoCost> {
    let key_for = |alg: JwsAlgorithm| SigningKey::generate(alg, 2048);
    let verifier = key_for(verify_alg)?;
    let signer = key_for(sign_alg)?;
    // An assertion-sized signing input (header and DocuSign-shaped claims).
    let message = vec![b'e'; 560];
    let signature = verifier.sign(verify_alg, &message)?;
    let rounds = 300;
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for batch in 0..8 {
        let cpu_start = thread_cpu_ns()?;
        let start = Instant::now();
        for _ in 0..rounds {
            let ok = verifier
                .public_key()
                .verify(verify_alg, &message, &signature);
            let sig = signer.sign(sign_alg, &message)?;
            if !ok || sig.is_empty() {
                bail!("crypto self-check failed");
            }
        }
        // The first batch warms up.
        if batch > 0 {
            wall.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds));
            cpu.push((thread_cpu_ns()? - cpu_start) as f64 / 1e3 / f64::from(rounds));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    Ok(CryptoCost {
        cpu_us: median(cpu),
        wall_us: median(wall),
    })
}

/// The calling thread's CPU time in ns, exact to the moment it is read.
/// (`/proc/thread-self/schedstat`, read by a running thread, lags by up to a
/// scheduler tick: batches of 8 ms read as 8 or 12 ms, 26.7 or 40.0 us per grant.)
fn thread_cpu_ns() -> Result<u64> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let ns = u64::try_from(now.tv_sec)?
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec)?);
    Ok(ns)
}

/// `pids` and every process descending from them (a peer's workers), alive now.
fn process_tree(pids: &[u32]) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).ok().and_then(|f| {
                // ppid is field 4, i.e. 1 after the name.
                f.get(1).and_then(|p| p.parse::<u32>().ok())
            }) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut tree = pids.to_vec();
    let mut index = 0;
    while let Some(&pid) = tree.get(index) {
        for (child, parent) in &parent_of {
            if *parent == pid && !tree.contains(child) {
                tree.push(*child);
            }
        }
        index += 1;
    }
    tree
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces).
fn stat_fields(pid: u32) -> Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("no process {pid}"))?;
    Ok(stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// The CPU time of `pids` and their descendants (each process counts all its threads).
fn read_cpu_seconds(pids: &[u32]) -> Result<f64> {
    let mut seconds = 0.0;
    for pid in process_tree(pids) {
        if let Some(on_cpu) = threads_on_cpu_seconds(pid) {
            seconds += on_cpu;
            continue;
        }
        let Ok(fields) = stat_fields(pid) else {
            // Exited between the listing and now.
            continue;
        };
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or_default()
        };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
        seconds += (field(11) + field(12)) / clock_ticks_per_second();
    }
    // The processes named must be there: a wrong pid is an error, not a zero.
    for pid in pids {
        stat_fields(*pid)?;
    }
    Ok(seconds)
}

/// The CPU time of `pid`'s threads in nanoseconds (`/proc/PID/task/*/schedstat`,
/// its first field), as seconds: `stat`'s clock ticks (10 ms) would read a short
/// run as nothing. `None` where the kernel keeps no schedstat.
fn threads_on_cpu_seconds(pid: u32) -> Option<f64> {
    let mut nanoseconds = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread that ended meanwhile is skipped; a kernel without schedstat is not.
        let schedstat = match std::fs::read_to_string(task.path().join("schedstat")) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if task.path().exists() {
                    return None;
                }
                continue;
            }
            Err(_) => continue,
        };
        nanoseconds += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())?;
    }
    Some(nanoseconds as f64 / 1e9)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The sum of the peak RSS (VmHWM) of `pids` and their descendants.
fn read_peak_rss_kb(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for pid in process_tree(pids) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or_default();
    }
    Ok(total)
}

/// One `name=value` pair, form-urlencoded (token values are base64url and dots, but
/// encode anyway).
fn form_urlencoded_pair(name: &str, value: &str) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    format!("{}={}", encode(name), encode(value))
}
