//! The command line: every subcommand and flag of `jwtgrant`.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use jwtgrant_core::JwsAlgorithm;

use crate::options::{GlobalOptions, ServeOptions};

/// jwtgrant: an OAuth 2.0 JWT bearer grant (RFC 7523) authorization server.
#[derive(Debug, Parser)]
#[command(name = "jwtgrant", version, about, propagate_version = true)]
pub struct Cli {
    /// Where the store and the config file are, for the server and the admin
    /// commands alike.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve(ServeOptions),
    /// Print the configuration `serve` would run with and where each value comes
    /// from (flag, environment, config file or default), secrets hidden.
    Config(ConfigArgs),
    /// Register and manage integrations (client applications).
    #[command(subcommand)]
    Integration(IntegrationCommand),
    /// Trust identity providers and workload issuers: their JWTs are accepted as
    /// assertions (and, if allowed, client assertions) for an integration.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// As an identity provider: the servers a client may get ID-JAGs for (token
    /// exchange), with its id there and what the ID-JAG may carry.
    #[command(subcommand, name = "trust-target")]
    TrustTarget(TrustTargetCommand),
    /// Read the audit trail: every decision of the token, introspection,
    /// revocation and authorization endpoints.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run every rule of the token endpoint on an assertion (and a client
    /// assertion) against the store and the configuration, and print each with
    /// pass or fail and why. Records no jti and issues nothing.
    Explain(Box<ExplainArgs>),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage users' accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Grant, revoke and list consents.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Manage the server's access-token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a signed JWT bearer assertion.
    Assertion(AssertionArgs),
    /// Load-test a running server's token (or userinfo, or introspection) endpoint.
    Bench(Box<BenchArgs>),
    /// Generate a key pair for an integration: NAME.pem, NAME.pub.pem, NAME.jwk.json.
    Keygen(KeygenArgs),
    /// Exchange an assertion for an access token at a server and print the token.
    Token(TokenArgs),
    /// Check an access token against a server's JWKS and print its claims.
    Verify(VerifyArgs),
    /// Apply pending database migrations and exit.
    Migrate {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The same options as `serve`.
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The algorithms a server-side key is made for: [`JwsAlgorithm::ACCESS_TOKEN`].
fn key_algorithm() -> PossibleValuesParser {
    PossibleValuesParser::new(JwsAlgorithm::ACCESS_TOKEN.map(JwsAlgorithm::as_str))
}

/// `jwtgrant integration ...`.
#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Register an integration; prints its integration key.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// A scope it may request (repeatable) [default: signature impersonation].
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A resource (RFC 8707, an absolute URI) it may ask tokens for (repeatable).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// A scope an authorization request without `scope` gets (repeatable).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
        /// Allow tokens without a user (`sub`).
        #[arg(long)]
        allow_application_tokens: bool,
        /// Refuse assertions without `jti`.
        #[arg(long)]
        require_jti: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change an integration's lists: each one given replaces the stored one.
    Update {
        /// Integration key.
        integration_key: String,
        /// A scope it may request (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A resource (RFC 8707, an absolute URI) it may ask tokens for (repeatable).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Remove every resource (its tokens keep the configured audience).
        #[arg(long, conflicts_with = "resources")]
        clear_resources: bool,
        /// A scope an authorization request without `scope` gets (repeatable).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
        /// Remove the default scopes.
        #[arg(long, conflicts_with = "default_scopes")]
        clear_default_scopes: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Register a public key (PEM or JWK file); prints its kid.
    AddKey {
        /// Integration key.
        integration_key: String,
        /// File with the public key, PEM or JWK.
        #[arg(long)]
        public_key: PathBuf,
        /// Key id [default: the JWK's kid, else its RFC 7638 thumbprint].
        #[arg(long)]
        kid: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Generate a key pair, register the public half, print the private key once.
    GenerateKey {
        /// Integration key.
        integration_key: String,
        /// Algorithm.
        #[arg(long, default_value = JwsAlgorithm::Rs256.as_str(), value_parser = key_algorithm())]
        alg: String,
        /// Write the private key to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key.
    RemoveKey(IntegrationKeyRef),
    /// Stop a key from verifying assertions.
    DisableKey(IntegrationKeyRef),
    /// Let a disabled key verify assertions again.
    EnableKey(IntegrationKeyRef),
    /// Refuse every assertion of an integration.
    Disable(IntegrationRef),
    /// Accept an integration's assertions again.
    Enable(IntegrationRef),
    /// List integrations.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show one integration.
    Show(IntegrationRef),
    /// Give an integration a client secret (it becomes a confidential client):
    /// generates one and prints it once; only its argon2id hash is stored.
    SetSecret {
        /// Integration key.
        integration_key: String,
        /// Read the secret from stdin (first line) instead of generating one.
        #[arg(long)]
        stdin: bool,
        /// Remove the secret instead (the integration becomes a public client).
        #[arg(long, conflicts_with = "stdin")]
        remove: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Names an integration.
#[derive(Debug, Args)]
pub struct IntegrationRef {
    /// Integration key.
    pub integration_key: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Names a key of an integration.
#[derive(Debug, Args)]
pub struct IntegrationKeyRef {
    /// Integration key.
    pub integration_key: String,
    /// Key id (a thumbprint may start with '-').
    #[arg(allow_hyphen_values = true)]
    pub kid: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `jwtgrant user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints the user id.
    Create {
        /// Email address (unique).
        #[arg(long)]
        email: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Given name.
        #[arg(long)]
        given_name: Option<String>,
        /// Family name.
        #[arg(long)]
        family_name: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show one user with their accounts.
    Show(UserRef),
    /// Refuse tokens for a user.
    Disable(UserRef),
    /// Allow tokens for a disabled user again.
    Enable(UserRef),
    /// Set the password the user signs in with on the consent pages, read from
    /// stdin (first line); stored as an argon2id hash.
    SetPassword(UserRef),
    /// Link a trusted issuer's subject (its tokens' `sub`) to this user, for an
    /// issuer added with `--subject user --user-claim sub`.
    Link {
        /// User id.
        user_id: String,
        /// The trusted issuer's id.
        #[arg(long)]
        issuer: String,
        /// The subject the issuer gives the user.
        #[arg(long)]
        subject: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant issuer ...`.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Trust an issuer; prints its issuer id.
    Add(Box<IssuerAddArgs>),
    /// List trusted issuers.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show one trusted issuer, its policy and linked subjects.
    Show(IssuerRef),
    /// Refuse an issuer's tokens (every instance, within the registry poll).
    Disable(IssuerRef),
    /// Accept a disabled issuer's tokens again.
    Enable(IssuerRef),
    /// Remove an issuer and its linked subjects.
    Remove(IssuerRef),
}

/// `jwtgrant audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first; every filter given must match.
    List(AuditListArgs),
}

/// `jwtgrant audit list`.
#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only events since then: a duration back from now (`90s`, `15m`, `2h`, `7d`)
    /// or an RFC 3339 time (`2026-12-01T10:00:00Z`).
    #[arg(long, value_name = "DURATION|RFC3339")]
    pub since: Option<String>,
    /// Only this client's (integration key).
    #[arg(long, value_name = "KEY")]
    pub client: Option<String>,
    /// Only assertions from this issuer (an integration key or a trusted issuer's
    /// `iss`).
    #[arg(long, value_name = "ID")]
    pub issuer: Option<String>,
    /// Only for this subject.
    #[arg(long, value_name = "S")]
    pub subject: Option<String>,
    /// Only `issued` or only `refused`.
    #[arg(long, value_parser = ["issued", "refused"])]
    pub decision: Option<String>,
    /// Only refusals by this rule code (as the error_description leads with).
    #[arg(long, value_name = "CODE")]
    pub rule: Option<String>,
    /// Only assertions verified by the client key with this kid.
    #[arg(long, value_name = "KID")]
    pub key: Option<String>,
    /// At most this many events.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `jwtgrant explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The assertion (a compact JWT), or `-` to read it from standard input.
    #[arg(value_name = "ASSERTION")]
    pub assertion: String,
    /// The client assertion (`private_key_jwt`) the client would send with it.
    #[arg(long, value_name = "JWT")]
    pub client_assertion: Option<String>,
    /// The token request's `scope` parameter.
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// A `resource` parameter of the token request (RFC 8707); repeat for several.
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The same options as `serve`: the rules are those of a server run with them.
    #[command(flatten)]
    pub serve: ServeOptions,
}

/// `jwtgrant trust-target ...`.
#[derive(Debug, Subcommand)]
pub enum TrustTargetCommand {
    /// Let an integration exchange its users' ID tokens for ID-JAGs for a server.
    Add(TrustTargetAddArgs),
    /// List trust targets.
    List {
        /// Only this integration's.
        #[arg(long)]
        integration: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a trust target: the integration gets no more ID-JAGs for that server.
    Remove {
        /// The other server's issuer.
        #[arg(long)]
        audience: String,
        /// The integration key.
        #[arg(long)]
        integration: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant trust-target add`.
#[derive(Debug, Args)]
pub struct TrustTargetAddArgs {
    /// The other server's issuer identifier: the exchange's `audience` and the
    /// ID-JAG's `aud`, exactly.
    #[arg(long)]
    pub audience: String,
    /// The integration (a confidential client) that may ask.
    #[arg(long)]
    pub integration: String,
    /// The client's id at the other server, the ID-JAG's `client_id` (default: the
    /// integration key).
    #[arg(long)]
    pub remote_client_id: Option<String>,
    /// A resource at the other server an ID-JAG may name (repeatable); none: an
    /// exchange that names a resource is refused.
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// A scope an ID-JAG may carry (repeatable); the request's scopes are narrowed
    /// to these. None: the requested scopes pass as asked, for the other server
    /// to judge.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Names a trusted issuer.
#[derive(Debug, Args)]
pub struct IssuerRef {
    /// The issuer id (`issuer add` printed it).
    pub issuer_id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Whose tokens a trusted issuer's assertions speak for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SubjectArg {
    /// A local user (by a linked `sub`, or a verified email); consent applies.
    User,
    /// The workload itself: an application token whose `sub` is `--subject-expr`.
    Workload,
}

/// Which claim of a token finds the local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserClaimArg {
    /// `sub`, linked with `jwtgrant user link`.
    Sub,
    /// `email`, when `email_verified` is true.
    Email,
}

/// How an issuer's `jti`s are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayArg {
    /// `jti` required, accepted once.
    SingleUse,
    /// The same token may be presented again until it expires.
    UntilExp,
    /// No `jti` needed, none recorded.
    None,
}

/// `jwtgrant issuer add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("keys").required(true).args(["jwks_uri", "discovery", "jwks_file"])))]
pub struct IssuerAddArgs {
    /// The issuer identifier, exactly as its tokens' `iss` carries it.
    #[arg(long)]
    pub issuer: String,
    /// The integration its tokens are for (their access tokens' `client_id`).
    #[arg(long)]
    pub integration: String,
    /// The issuer's JWKS URL.
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// Find the JWKS URL in the issuer's OpenID Connect (or RFC 8414) metadata.
    #[arg(long)]
    pub discovery: bool,
    /// A JWKS file, read now and kept in the store.
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// An accepted `aud` (repeatable; replaces the server's own audiences).
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// An accepted `alg` (repeatable) [default: what the key type allows].
    #[arg(long = "alg", value_parser = PossibleValuesParser::new(JwsAlgorithm::ALL.map(JwsAlgorithm::as_str)))]
    pub algorithms: Vec<String>,
    /// An accepted header `typ` (repeatable) [default: any; oauth-id-jag+jwt with
    /// --id-jag].
    #[arg(long = "typ")]
    pub typs: Vec<String>,
    /// The longest a token may live, `iat` to `exp`.
    #[arg(long, default_value_t = 3600)]
    pub max_lifetime_secs: i64,
    /// Clock skew allowed [default: the server's leeway].
    #[arg(long)]
    pub clock_skew_secs: Option<i64>,
    /// `jti` handling [default: single-use; until-exp with --id-jag].
    #[arg(long, value_enum)]
    pub replay: Option<ReplayArg>,
    /// Whom the tokens speak for.
    #[arg(long, value_enum)]
    pub subject: SubjectArg,
    /// With `--subject user`: the claim that finds the user.
    #[arg(long, value_enum, default_value_t = UserClaimArg::Sub)]
    pub user_claim: UserClaimArg,
    /// With `--subject workload`: a CEL expression for the token's `sub`
    /// [default: assertion.sub].
    #[arg(long)]
    pub subject_expr: Option<String>,
    /// A CEL expression over `assertion` (the claims) that must be true.
    #[arg(long)]
    pub condition: Option<String>,
    /// A scope its tokens may yield (repeatable) [default: the integration's].
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// When the trust ends (RFC 3339).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// Also accept its tokens as client assertions for the integration.
    #[arg(long)]
    pub client_authentication: bool,
    /// Its tokens are ID-JAGs (cross-app access): presented by the integration,
    /// authenticated, for a user, with the IdP's consent.
    #[arg(long)]
    pub id_jag: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Names a user.
#[derive(Debug, Args)]
pub struct UserRef {
    /// User id.
    pub user_id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `jwtgrant account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account to a user; prints the account id.
    Create {
        /// The owner's user id.
        #[arg(long)]
        user: String,
        /// Account name.
        #[arg(long)]
        name: String,
        /// Base URI of the account's API.
        #[arg(long)]
        base_uri: String,
        /// Make it the user's default account.
        #[arg(long)]
        default: bool,
        /// Organization, as a JSON object.
        #[arg(long)]
        organization: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List a user's accounts.
    List {
        /// The owner's user id.
        #[arg(long)]
        user: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant consent ...`.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record that a user lets an integration act for them with these scopes.
    Grant {
        /// User id.
        #[arg(long)]
        user: String,
        /// Integration key.
        #[arg(long)]
        integration: String,
        /// Scopes (repeatable, or several after one flag).
        #[arg(long = "scope", num_args = 1.., required = true)]
        scopes: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a user's consent for an integration.
    Revoke {
        /// User id.
        #[arg(long)]
        user: String,
        /// Integration key.
        #[arg(long)]
        integration: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List consents.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Only this integration's.
        #[arg(long)]
        integration: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: published at once, signing after the delay.
    Rotate {
        /// Algorithm [default: that of the key signing now].
        #[arg(long, value_parser = key_algorithm())]
        alg: Option<String>,
        /// Seconds until it signs [default: the key_rotation_delay_secs option, from
        /// JWTGRANT_KEY_ROTATION_DELAY_SECS or the config file; 300].
        #[arg(long, value_name = "SECS")]
        activate_after: Option<u64>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List signing keys.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtgrant assertion`.
#[derive(Debug, Args)]
pub struct AssertionArgs {
    /// The integration key (`iss`).
    #[arg(long)]
    pub integration_key: String,
    /// The user to act as (`sub`); omit for an application token.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Private key file (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// Audience (repeatable): the server's OAuth host, e.g. 127.0.0.1:8080.
    #[arg(long = "aud", required = true)]
    pub audiences: Vec<String>,
    /// Scopes (repeatable) [default: signature impersonation].
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub lifetime: u64,
    /// Key id to put in the header.
    #[arg(long)]
    pub kid: Option<String>,
    /// Signing algorithm [default: the key's: RS256, ES256, ES384 or EdDSA].
    #[arg(long)]
    pub alg: Option<String>,
    /// Leave out `jti`.
    #[arg(long)]
    pub no_jti: bool,
}

/// `jwtgrant bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Which endpoint to drive: token (JWT bearer grants), client-credentials (the
    /// client credentials grant, a fresh client assertion per request), userinfo or
    /// introspect.
    #[arg(long, default_value = "token", value_parser = ["token", "client-credentials", "userinfo", "introspect"])]
    pub endpoint: String,
    /// Measured requests.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Requests sent first and not measured.
    #[arg(long, default_value_t = 1_000)]
    pub warmup: usize,
    /// Keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop: send at this many requests per second, latency from the schedule.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The server's pid, to read its CPU time and peak RSS from /proc: the sum over
    /// this process and every process it started (a peer's workers); repeatable.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Send the token requests (--endpoint token or client-credentials) to this URL
    /// instead of --server's /oauth/token: another server's token endpoint (a peer),
    /// with --integration-key and --key.
    #[arg(long)]
    pub token_url: Option<String>,
    /// The integration's assertions carry no `jti` (the integration the bench
    /// registers then does not require one).
    #[arg(long)]
    pub no_jti: bool,
    /// Also measure the floor in the same run: the crypto-only cost of this grant (one
    /// verification of the assertion's algorithm and one access-token signature, CPU
    /// time of one thread) plus the server CPU of its cheapest request (`GET
    /// /healthz`, and `GET /oauth/userinfo` from its cache when there is a user),
    /// and print the server CPU per request as a ratio to it.
    #[arg(long)]
    pub floor: bool,
    /// The jwtgrant server whose cheapest request is the floor [default: --server].
    #[arg(long, requires = "floor")]
    pub floor_server: Option<String>,
    /// Its pid [default: --server-pid] (repeatable).
    #[arg(long = "floor-pid", requires = "floor")]
    pub floor_pids: Vec<u32>,
    /// Requests of each floor run.
    #[arg(long, default_value_t = 20_000)]
    pub floor_requests: usize,
    /// The access tokens' algorithm, for the crypto-only cost [default: the floor
    /// server's JWKS, when all its keys have one algorithm; else ES256].
    #[arg(long)]
    pub access_token_alg: Option<String>,
    /// Use this integration instead of registering one (with --key, and --user-id for
    /// user tokens; without it the assertions ask for application tokens).
    #[arg(long, requires = "key")]
    pub integration_key: Option<String>,
    /// The user the assertions act as.
    #[arg(long, requires = "integration_key")]
    pub user_id: Option<String>,
    /// The integration's private key (PEM).
    #[arg(long, requires = "integration_key")]
    pub key: Option<PathBuf>,
    /// Send a trusted issuer's tokens instead (--endpoint token): `iss` this URL, a
    /// fresh `jti`, no `sub` (a workload), and the other claims of a GitHub Actions
    /// OIDC token, of repository octo-org/octo-repo on refs/heads/main.
    #[arg(long, requires = "issuer_key", conflicts_with = "integration_key")]
    pub issuer: Option<String>,
    /// The trusted issuer's private key (PEM), whose public half is in its JWKS.
    #[arg(long, requires = "issuer")]
    pub issuer_key: Option<PathBuf>,
    /// The tokens' header `kid` [default: the key's RFC 7638 thumbprint, as
    /// `jwtgrant keygen` names it in the JWK]; it may start with '-'.
    #[arg(long, requires = "issuer", allow_hyphen_values = true)]
    pub issuer_kid: Option<String>,
    /// Add the claims of a GitHub Actions token (those --issuer sends, but `iss`,
    /// `aud`, `jti` and the times) to the integration's assertions (--endpoint token):
    /// a control as long as a trusted issuer's token.
    #[arg(long, conflicts_with = "issuer")]
    pub github_claims: bool,
    /// The assertions' `aud` [default: the server's host:port; for client assertions,
    /// its issuer].
    #[arg(long)]
    pub aud: Option<String>,
    /// A scope (repeatable): the integration's assertions ask for these [default:
    /// signature impersonation]; with --issuer the form's `scope` [default: none, so
    /// the issuer's --scope list].
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The integration's client secret (for --endpoint introspect with --integration-key).
    #[arg(long, env = "JWTGRANT_BENCH_CLIENT_SECRET")]
    pub client_secret: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `jwtgrant keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Algorithm the key is for.
    #[arg(long, default_value = JwsAlgorithm::Rs256.as_str(), value_parser = key_algorithm())]
    pub alg: String,
    /// RSA modulus size.
    #[arg(long, default_value_t = 2048, value_parser = rsa_bits)]
    pub bits: usize,
    /// Output name: writes NAME.pem (private, mode 0600), NAME.pub.pem and NAME.jwk.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn rsa_bits(value: &str) -> Result<usize, String> {
    match value {
        "2048" | "3072" | "4096" => value.parse().map_err(|_| value.to_owned()),
        _ => Err(format!("{value}: RSA keys are 2048, 3072 or 4096 bits")),
    }
}

/// `jwtgrant token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The grant: jwt-bearer (the assertion is the grant, RFC 7523 2.1) or
    /// client-credentials (the integration's own token, authenticated by a client
    /// assertion signed with --key: private_key_jwt, RFC 7523 2.2).
    #[arg(long, default_value = "jwt-bearer", value_parser = ["jwt-bearer", "client-credentials"])]
    pub grant: String,
    /// The server's base URL (its issuer); the token endpoint comes from its RFC 8414
    /// metadata, and the assertion's `aud` is its bare host unless --aud says (a
    /// client assertion's is the issuer).
    #[arg(long, required_unless_present = "token_endpoint")]
    pub server: Option<String>,
    /// The token endpoint URL, for a server without RFC 8414 metadata (instead of
    /// --server); the assertion's `aud` is this URL unless --aud says.
    #[arg(long, conflicts_with = "server")]
    pub token_endpoint: Option<String>,
    /// The assertion's audience (repeatable), when the server expects another
    /// than the default (e.g. DocuSign's bare OAuth host). With client-credentials,
    /// the client assertion's one audience: the issuer, which a strict server needs
    /// when only --token-endpoint is given.
    #[arg(long = "aud")]
    pub audiences: Vec<String>,
    /// The integration key (`iss`).
    #[arg(long)]
    pub integration_key: String,
    /// The user to act as (`sub`); omit for an application token. Not with
    /// client-credentials, whose token is the integration's own.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Private key file (PEM or private JWK).
    #[arg(long)]
    pub key: PathBuf,
    /// Scopes (repeatable) [default: signature impersonation with --user-id; with
    /// client-credentials, none: the server decides].
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Print the whole token response as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `jwtgrant verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The server's base URL (its issuer); the JWKS comes from its metadata.
    #[arg(long)]
    pub server: String,
    /// The audience the token must carry [default: the issuer URL].
    #[arg(long)]
    pub audience: Option<String>,
    /// A scope the token must carry (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The access token.
    pub token: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command, IntegrationCommand};

    #[test]
    fn a_kid_may_start_with_a_hyphen() {
        // RFC 7638 thumbprints are base64url: one in 64 starts with '-'.
        let parsed = Cli::try_parse_from([
            "jwtgrant",
            "integration",
            "remove-key",
            "e6646f2a-40aa-49a5-8967-ccf362f7709a",
            "-3cth_94S30Jz9MO7xUjAuWf0Ngwh7KOL9yml_iZcVk",
            "--json",
        ]);
        match parsed.map(|cli| cli.command) {
            Ok(Command::Integration(IntegrationCommand::RemoveKey(key))) => {
                assert_eq!(key.kid, "-3cth_94S30Jz9MO7xUjAuWf0Ngwh7KOL9yml_iZcVk");
                assert!(key.json);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_trusted_issuers_kid_may_start_with_a_hyphen() {
        let parsed = Cli::try_parse_from([
            "jwtgrant",
            "bench",
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--issuer-key",
            "issuer.pem",
            "--issuer-kid",
            "-3cth_94S30Jz9MO7xUjAuWf0Ngwh7KOL9yml_iZcVk",
        ]);
        match parsed.map(|cli| cli.command) {
            Ok(Command::Bench(bench)) => assert_eq!(
                bench.issuer_kid.as_deref(),
                Some("-3cth_94S30Jz9MO7xUjAuWf0Ngwh7KOL9yml_iZcVk")
            ),
            other => panic!("{other:?}"),
        }
    }
}
