//! The admin commands: registry changes made straight on the store a server uses.
//! A running server sees them within its registry poll interval.

use anyhow::{Context, Result, anyhow, bail};
use jwtgrant_core::{JwsAlgorithm, PublicKey, SigningKey};
use jwtgrant_proto::{DEFAULT_SCOPES, Jwk};
use jwtgrant_server::signing::{add_signing_key, load_keyring};
use jwtgrant_server::{clock, credentials};
use jwtgrant_store::{
    AccountRecord, IntegrationKeyRecord, IntegrationRecord, IntegrationUpdate, NewIntegration,
    Store, UserRecord,
};
use serde_json::{Value, json};

use crate::args::{AccountCommand, ConsentCommand, IntegrationCommand, KeysCommand, UserCommand};
use crate::output::{emit, set, write_private_file};

/// The client authentication methods the integration can use at the token,
/// introspection and revocation endpoints, as the metadata spells them: the secret
/// ones when it has a secret, `private_key_jwt` when it has an active key, `none`
/// when it is a public client (no secret).
fn client_authentication_methods(record: &IntegrationRecord) -> Vec<&'static str> {
    let mut methods = Vec::new();
    if record.client_secret_hash.is_some() {
        methods.extend(["client_secret_basic", "client_secret_post"]);
    }
    if record.keys.iter().any(|key| key.active) {
        methods.push("private_key_jwt");
    }
    if record.client_secret_hash.is_none() {
        methods.push("none");
    }
    methods
}

/// Whether the integration is a confidential client: one that can prove who it is,
/// with its secret or with a client assertion signed by an active key.
fn is_confidential(record: &IntegrationRecord) -> bool {
    record.client_secret_hash.is_some() || record.keys.iter().any(|key| key.active)
}

/// `confidential` or `public`, as `client_type` says it.
fn client_type(record: &IntegrationRecord) -> &'static str {
    if is_confidential(record) {
        "confidential"
    } else {
        "public"
    }
}

/// Whether the integration may use the client credentials grant: a confidential
/// client allowed application tokens.
fn may_use_client_credentials(record: &IntegrationRecord) -> bool {
    is_confidential(record) && record.allow_application_tokens
}

fn integration_json(record: &IntegrationRecord) -> Value {
    json!({
        "integration_key": record.integration_key,
        "name": record.name,
        "active": record.active,
        "allow_application_tokens": record.allow_application_tokens,
        "require_jti": record.require_jti,
        "scopes": record.scopes,
        "redirect_uris": record.redirect_uris,
        "resources": record.resources,
        "default_scopes": record.default_scopes,
        "client_type": client_type(record),
        "client_authentication_methods": client_authentication_methods(record),
        "client_credentials": may_use_client_credentials(record),
        "created": clock::rfc3339(record.created_at),
        "keys": record.keys.iter().map(|k| json!({
            "kid": k.kid,
            "active": k.active,
            "created": clock::rfc3339(k.created_at),
            "public_jwk": serde_json::from_str::<Value>(&k.public_jwk).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
    })
}

/// The `client:` of the text: confidential with the methods that prove it, or
/// public.
fn client_kind(record: &IntegrationRecord) -> String {
    if is_confidential(record) {
        let proving: Vec<&str> = client_authentication_methods(record)
            .into_iter()
            .filter(|method| *method != "none")
            .collect();
        format!("confidential ({})", proving.join(" "))
    } else {
        "public (PKCE)".to_owned()
    }
}

/// The list as words, or `-` when it is empty.
fn or_dash(list: &[String]) -> String {
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(" ")
    }
}

/// Scopes given as repeated flags, each of which may hold several.
fn split_each(given: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in given
        .iter()
        .flat_map(|s| jwtgrant_core::model::split_scopes(s))
    {
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

fn check_redirect_uris(uris: &[String]) -> Result<()> {
    for uri in uris {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) || uri.contains('#') {
            bail!("--redirect-uri '{uri}' must be an absolute http(s) URL without a fragment");
        }
    }
    Ok(())
}

/// RFC 8707's form, checked by the core's rule, so that the server accepts every
/// resource an operator could register.
fn check_resources(resources: &[String]) -> Result<()> {
    for resource in resources {
        jwtgrant_core::resource::check_form(resource).map_err(|_| {
            anyhow!("--resource '{resource}' must be an absolute URI without a fragment")
        })?;
    }
    Ok(())
}

fn check_default_scopes(defaults: &[String], scopes: &[String]) -> Result<()> {
    if let Some(scope) = defaults.iter().find(|s| !scopes.contains(s)) {
        bail!("--default-scope '{scope}' is not one of the integration's scopes");
    }
    Ok(())
}

fn integration_text(record: &IntegrationRecord) -> String {
    let mut text = format!(
        "{}  {}  {}\n  scopes: {}\n  redirect URIs: {}\n  client: {}  application tokens: {}  requires jti: {}\n",
        record.integration_key,
        record.name,
        if record.active { "active" } else { "DISABLED" },
        record.scopes.join(" "),
        if record.redirect_uris.is_empty() {
            "-".to_owned()
        } else {
            record.redirect_uris.join(" ")
        },
        client_kind(record),
        record.allow_application_tokens,
        record.require_jti,
    );
    if !record.resources.is_empty() || !record.default_scopes.is_empty() {
        text.push_str(&format!(
            "  resources: {}  default scopes: {}\n",
            or_dash(&record.resources),
            or_dash(&record.default_scopes),
        ));
    }
    text.push_str(&format!(
        "  client authentication: {}  client credentials grant: {}\n",
        client_authentication_methods(record).join(" "),
        if may_use_client_credentials(record) {
            "yes"
        } else {
            "no"
        },
    ));
    for key in &record.keys {
        text.push_str(&format!(
            "  key {} {}\n",
            key.kid,
            if key.active { "active" } else { "DISABLED" }
        ));
    }
    text
}

async fn require_integration(store: &dyn Store, key: &str) -> Result<IntegrationRecord> {
    store
        .integration(key)
        .await?
        .with_context(|| format!("no integration has key '{key}'"))
}

async fn register_key(
    store: &dyn Store,
    integration_key: &str,
    public_key: &PublicKey,
    kid: String,
) -> Result<()> {
    require_integration(store, integration_key).await?;
    let jwk = public_key.to_jwk(Some(&kid), None);
    store
        .add_integration_key(
            integration_key,
            IntegrationKeyRecord {
                kid,
                public_jwk: serde_json::to_string(&jwk)?,
                active: true,
                created_at: clock::now(),
            },
        )
        .await?;
    Ok(())
}

/// Runs `jwtgrant integration ...`.
pub async fn integration(store: &dyn Store, command: IntegrationCommand) -> Result<()> {
    match command {
        IntegrationCommand::Create {
            name,
            scopes,
            redirect_uris,
            resources,
            default_scopes,
            allow_application_tokens,
            require_jti,
            json,
        } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let scopes = if scopes.is_empty() {
                DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
            } else {
                split_each(&scopes)
            };
            check_redirect_uris(&redirect_uris)?;
            check_resources(&resources)?;
            let default_scopes = split_each(&default_scopes);
            check_default_scopes(&default_scopes, &scopes)?;
            let record = store
                .create_integration(NewIntegration {
                    integration_key: uuid::Uuid::new_v4().to_string(),
                    name,
                    scopes,
                    redirect_uris,
                    resources,
                    default_scopes,
                    allow_application_tokens,
                    require_jti,
                    created_at: clock::now(),
                })
                .await?;
            emit(
                json,
                integration_json(&record),
                format!("{}\n", record.integration_key),
            )
        }
        IntegrationCommand::Update {
            integration_key,
            scopes,
            redirect_uris,
            resources,
            clear_resources,
            default_scopes,
            clear_default_scopes,
            json,
        } => {
            let current = require_integration(store, &integration_key).await?;
            let given =
                |list: Vec<String>, clear: bool| (clear || !list.is_empty()).then_some(list);
            let update = IntegrationUpdate {
                scopes: given(split_each(&scopes), false),
                redirect_uris: given(redirect_uris, false),
                resources: given(resources, clear_resources),
                default_scopes: given(split_each(&default_scopes), clear_default_scopes),
            };
            if update == IntegrationUpdate::default() {
                bail!(
                    "nothing to change: give --scope, --redirect-uri, --resource, --default-scope or a --clear- flag"
                );
            }
            check_redirect_uris(update.redirect_uris.as_deref().unwrap_or_default())?;
            check_resources(update.resources.as_deref().unwrap_or_default())?;
            let scopes_after = update.scopes.as_ref().unwrap_or(&current.scopes);
            let defaults_after = update
                .default_scopes
                .as_ref()
                .unwrap_or(&current.default_scopes);
            check_default_scopes(defaults_after, scopes_after)?;
            let record = store.update_integration(&integration_key, update).await?;
            emit(json, integration_json(&record), integration_text(&record))
        }
        IntegrationCommand::AddKey {
            integration_key,
            public_key,
            kid,
            json,
        } => {
            let text = std::fs::read_to_string(&public_key)
                .with_context(|| format!("cannot read {}", public_key.display()))?;
            let parsed =
                PublicKey::from_text(&text).with_context(|| format!("{}", public_key.display()))?;
            let jwk_kid = serde_json::from_str::<Jwk>(text.trim())
                .ok()
                .and_then(|j| j.kid);
            let kid = kid
                .or(jwk_kid)
                .unwrap_or_else(|| parsed.thumbprint().to_owned());
            register_key(store, &integration_key, &parsed, kid.clone()).await?;
            emit(
                json,
                json!({"integration_key": integration_key, "kid": kid, "key_type": parsed.key_type().to_string()}),
                format!("{kid}\n"),
            )
        }
        IntegrationCommand::GenerateKey {
            integration_key,
            alg,
            out,
            json,
        } => {
            let alg =
                JwsAlgorithm::from_name(&alg).with_context(|| format!("unknown alg {alg}"))?;
            require_integration(store, &integration_key).await?;
            let key = SigningKey::generate(alg, 2048)?;
            let kid = key.public_key().thumbprint().to_owned();
            register_key(store, &integration_key, key.public_key(), kid.clone()).await?;
            let private_pem = key.to_pkcs8_pem()?;
            if let Some(path) = &out {
                write_private_file(path, private_pem.as_bytes())?;
            }
            let mut value = json!({
                "integration_key": integration_key,
                "kid": kid,
                "alg": alg.as_str(),
                "public_key_pem": key.public_key().to_pem(),
            });
            let human = match &out {
                Some(path) => {
                    set(
                        &mut value,
                        "private_key_file",
                        json!(path.display().to_string()),
                    );
                    format!("{kid}\n")
                }
                None => {
                    set(&mut value, "private_key_pem", json!(private_pem.as_str()));
                    eprintln!(
                        "kid: {kid}\nThe private key below is shown once and not stored; keep it safe."
                    );
                    private_pem.to_string()
                }
            };
            emit(json, value, human)
        }
        IntegrationCommand::RemoveKey(r) => {
            store
                .remove_integration_key(&r.integration_key, &r.kid)
                .await?;
            emit(
                r.json,
                json!({"integration_key": r.integration_key, "kid": r.kid, "removed": true}),
                format!("removed key {}\n", r.kid),
            )
        }
        IntegrationCommand::DisableKey(r) => {
            set_key_active(store, r.integration_key, r.kid, false, r.json).await
        }
        IntegrationCommand::EnableKey(r) => {
            set_key_active(store, r.integration_key, r.kid, true, r.json).await
        }
        IntegrationCommand::Disable(r) => {
            set_integration_active(store, r.integration_key, false, r.json).await
        }
        IntegrationCommand::Enable(r) => {
            set_integration_active(store, r.integration_key, true, r.json).await
        }
        IntegrationCommand::List { json } => {
            let all = store.list_integrations().await?;
            let text: String = all.iter().map(integration_text).collect();
            emit(
                json,
                json!({"integrations": all.iter().map(integration_json).collect::<Vec<_>>()}),
                text,
            )
        }
        IntegrationCommand::Show(r) => {
            let record = require_integration(store, &r.integration_key).await?;
            emit(r.json, integration_json(&record), integration_text(&record))
        }
        IntegrationCommand::SetSecret {
            integration_key,
            stdin,
            remove,
            json,
        } => {
            if remove {
                store.set_integration_secret(&integration_key, None).await?;
                return emit(
                    json,
                    json!({"integration_key": integration_key, "client_secret": null}),
                    format!("removed the client secret of {integration_key}\n"),
                );
            }
            let secret = if stdin {
                read_stdin_line("client secret")?
            } else {
                credentials::random_token()
            };
            if secret.len() < 16 {
                bail!("a client secret must be at least 16 characters");
            }
            let hash = credentials::hash_secret(&secret).map_err(|e| anyhow!(e))?;
            store
                .set_integration_secret(&integration_key, Some(&hash))
                .await?;
            emit(
                json,
                json!({"integration_key": integration_key, "client_secret": secret}),
                format!("{secret}\n"),
            )
        }
    }
}

/// The first line of stdin, without its line ending; refuses an empty one.
fn read_stdin_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no {what} on stdin");
    }
    Ok(line)
}

async fn set_key_active(
    store: &dyn Store,
    integration_key: String,
    kid: String,
    active: bool,
    json: bool,
) -> Result<()> {
    store
        .set_integration_key_active(&integration_key, &kid, active)
        .await?;
    let state = if active { "enabled" } else { "disabled" };
    emit(
        json,
        json!({"integration_key": integration_key, "kid": kid, "active": active}),
        format!("{state} key {kid}\n"),
    )
}

async fn set_integration_active(
    store: &dyn Store,
    integration_key: String,
    active: bool,
    json: bool,
) -> Result<()> {
    store
        .set_integration_active(&integration_key, active)
        .await?;
    let state = if active { "enabled" } else { "disabled" };
    emit(
        json,
        json!({"integration_key": integration_key, "active": active}),
        format!("{state} {integration_key}\n"),
    )
}

fn user_json(user: &UserRecord, accounts: Option<&[AccountRecord]>) -> Value {
    let mut value = json!({
        "user_id": user.user_id,
        "email": user.email,
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "active": user.active,
        "created": clock::rfc3339(user.created_at),
    });
    if let Some(accounts) = accounts {
        set(
            &mut value,
            "accounts",
            json!(accounts.iter().map(account_json).collect::<Vec<_>>()),
        );
    }
    value
}

fn account_json(account: &AccountRecord) -> Value {
    json!({
        "account_id": account.account_id,
        "user_id": account.user_id,
        "account_name": account.account_name,
        "base_uri": account.base_uri,
        "is_default": account.is_default,
        "organization": account.organization.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok()),
    })
}

/// Runs `jwtgrant user ...`.
pub async fn user(store: &dyn Store, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Create {
            email,
            name,
            given_name,
            family_name,
            json,
        } => {
            if !email.contains('@') || email.trim() != email {
                bail!("--email '{email}' is not an email address");
            }
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let mut parts = name.split_whitespace();
            let first = parts.next().unwrap_or_default().to_owned();
            let rest = parts.collect::<Vec<_>>().join(" ");
            let record = store
                .create_user(UserRecord {
                    user_id: uuid::Uuid::new_v4().to_string(),
                    email,
                    given_name: given_name.unwrap_or(first),
                    family_name: family_name.unwrap_or(rest),
                    name,
                    active: true,
                    created_at: clock::now(),
                })
                .await?;
            emit(
                json,
                user_json(&record, None),
                format!("{}\n", record.user_id),
            )
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            let text: String = users
                .iter()
                .map(|u| {
                    format!(
                        "{}  {}  {}{}\n",
                        u.user_id,
                        u.email,
                        u.name,
                        if u.active { "" } else { "  DISABLED" }
                    )
                })
                .collect();
            emit(
                json,
                json!({"users": users.iter().map(|u| user_json(u, None)).collect::<Vec<_>>()}),
                text,
            )
        }
        UserCommand::Show(r) => {
            let user = store
                .user(&r.user_id)
                .await?
                .with_context(|| format!("no user has id '{}'", r.user_id))?;
            let accounts = store.accounts(&r.user_id).await?;
            let value = user_json(&user, Some(&accounts));
            let text = serde_json::to_string_pretty(&value)? + "\n";
            emit(r.json, value, text)
        }
        UserCommand::Link {
            user_id,
            issuer,
            subject,
            json,
        } => crate::issuer::link_user(store, user_id, issuer, subject, json).await,
        UserCommand::Disable(r) => set_user_active(store, r.user_id, false, r.json).await,
        UserCommand::Enable(r) => set_user_active(store, r.user_id, true, r.json).await,
        UserCommand::SetPassword(r) => {
            let password = read_stdin_line("password")?;
            if password.chars().count() < 8 {
                bail!("a password must be at least 8 characters");
            }
            let hash = credentials::hash_secret(&password).map_err(|e| anyhow!(e))?;
            store.set_user_password(&r.user_id, Some(&hash)).await?;
            emit(
                r.json,
                json!({"user_id": r.user_id, "password_set": true}),
                format!("password set for {}\n", r.user_id),
            )
        }
    }
}

async fn set_user_active(
    store: &dyn Store,
    user_id: String,
    active: bool,
    json: bool,
) -> Result<()> {
    store.set_user_active(&user_id, active).await?;
    let state = if active { "enabled" } else { "disabled" };
    emit(
        json,
        json!({"user_id": user_id, "active": active}),
        format!("{state} {user_id}\n"),
    )
}

/// Runs `jwtgrant account ...`.
pub async fn account(store: &dyn Store, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::Create {
            user,
            name,
            base_uri,
            default,
            organization,
            json,
        } => {
            if !(base_uri.starts_with("https://") || base_uri.starts_with("http://")) {
                bail!("--base-uri '{base_uri}' must be an http(s) URL");
            }
            if let Some(org) = &organization
                && !matches!(serde_json::from_str::<Value>(org), Ok(Value::Object(_)))
            {
                bail!("--organization must be a JSON object");
            }
            let record = store
                .create_account(AccountRecord {
                    account_id: uuid::Uuid::new_v4().to_string(),
                    user_id: user,
                    account_name: name,
                    base_uri,
                    is_default: default,
                    organization,
                    created_at: clock::now(),
                })
                .await?;
            emit(
                json,
                account_json(&record),
                format!("{}\n", record.account_id),
            )
        }
        AccountCommand::List { user, json } => {
            let accounts = store.accounts(&user).await?;
            let text: String = accounts
                .iter()
                .map(|a| {
                    format!(
                        "{}  {}  {}{}\n",
                        a.account_id,
                        a.account_name,
                        a.base_uri,
                        if a.is_default { "  (default)" } else { "" }
                    )
                })
                .collect();
            emit(
                json,
                json!({"accounts": accounts.iter().map(account_json).collect::<Vec<_>>()}),
                text,
            )
        }
    }
}

/// Runs `jwtgrant consent ...`.
pub async fn consent(store: &dyn Store, command: ConsentCommand) -> Result<()> {
    match command {
        ConsentCommand::Grant {
            user,
            integration,
            scopes,
            json,
        } => {
            let scopes: Vec<String> = scopes
                .iter()
                .flat_map(|s| jwtgrant_core::model::split_scopes(s))
                .collect();
            let allowed = require_integration(store, &integration).await?.scopes;
            if let Some(scope) = scopes.iter().find(|s| !allowed.contains(s)) {
                bail!(
                    "scope '{scope}' is not allowed for integration {integration} (allowed: {})",
                    allowed.join(" ")
                );
            }
            let record = store
                .grant_consent(&user, &integration, &scopes, clock::now())
                .await?;
            emit(
                json,
                json!({"user_id": record.user_id, "integration_key": record.integration_key, "scopes": record.scopes}),
                format!("consented: {}\n", record.scopes.join(" ")),
            )
        }
        ConsentCommand::Revoke {
            user,
            integration,
            json,
        } => {
            store.revoke_consent(&user, &integration).await?;
            // Refresh chains and the access tokens issued with them end too.
            store
                .revoke_grants(&user, &integration, clock::now())
                .await?;
            emit(
                json,
                json!({"user_id": user, "integration_key": integration, "revoked": true}),
                "revoked\n".into(),
            )
        }
        ConsentCommand::List {
            user,
            integration,
            json,
        } => {
            let all = store
                .list_consents(user.as_deref(), integration.as_deref())
                .await?;
            let text: String = all
                .iter()
                .map(|c| {
                    format!(
                        "{}  {}  {}\n",
                        c.user_id,
                        c.integration_key,
                        c.scopes.join(" ")
                    )
                })
                .collect();
            let values: Vec<Value> = all
                .iter()
                .map(|c| json!({"user_id": c.user_id, "integration_key": c.integration_key, "scopes": c.scopes, "granted": clock::rfc3339(c.granted_at)}))
                .collect();
            emit(json, json!({"consents": values}), text)
        }
    }
}

/// Runs `jwtgrant keys ...`.
pub async fn keys(
    store: &dyn Store,
    command: KeysCommand,
    config: &jwtgrant_server::ServerConfig,
) -> Result<()> {
    let (default_alg, default_delay) = (config.access_token_alg, config.key_rotation_delay_secs);
    let sealer = config.key_sealer();
    match command {
        KeysCommand::Rotate {
            alg,
            activate_after,
            json,
        } => {
            let now = clock::now();
            let alg = match alg {
                Some(name) => {
                    JwsAlgorithm::from_name(&name).with_context(|| format!("unknown alg {name}"))?
                }
                // A rotation replaces the key that signs now with one of its kind
                // (the server chose it by its own access_token_alg).
                None => load_keyring(store, &sealer)
                    .await?
                    .signing_key(default_alg, now)
                    .map_or(default_alg, |entry| entry.alg),
            };
            let delay = activate_after.map_or(default_delay, |d| d as i64);
            let kid = add_signing_key(store, &sealer, alg, now + delay, now).await?;
            emit(
                json,
                json!({"kid": kid, "alg": alg.as_str(), "activates_at": clock::rfc3339(now + delay)}),
                format!(
                    "{kid} ({alg}) published now, signs from {}\n",
                    clock::rfc3339(now + delay)
                ),
            )
        }
        KeysCommand::List { json } => {
            let ring = load_keyring(store, &sealer).await?;
            let entries: Vec<Value> = ring
                .entries()
                .iter()
                .map(|e| json!({"kid": e.kid, "alg": e.alg.as_str(), "activates_at": clock::rfc3339(e.activates_at)}))
                .collect();
            let text: String = ring
                .entries()
                .iter()
                .map(|e| {
                    format!(
                        "{}  {}  signs from {}\n",
                        e.kid,
                        e.alg,
                        clock::rfc3339(e.activates_at)
                    )
                })
                .collect();
            emit(json, json!({"keys": entries}), text)
        }
    }
}
