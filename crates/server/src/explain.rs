//! `jwtgrant explain` against a store: the registry, trusted issuers' keys and the
//! replay record read as the server reads them, every rule run by the core's
//! explanation in the server's order. It records no `jti`, issues nothing, and no
//! route serves it: it runs on the operator's side only.

use std::path::PathBuf;
use std::sync::Arc;

use jwtgrant_core::client_auth::{AuthenticatedClient, ClientAuthError, explain_assertion};
use jwtgrant_core::explain::Explanation;
use jwtgrant_core::grants::jwt_bearer::{
    SubjectRecords, check_presenting_client, explain_decision,
};
use jwtgrant_core::id_jag::{IdJagRequest, decide_id_jag};
use jwtgrant_core::resource::Resources;
use jwtgrant_core::trusted_issuer::{
    IssuerAssertion, TrustedIssuer, UserLookup, decide_for_issuer,
};
use jwtgrant_core::{
    AssertionPolicy, GrantDecision, GrantError, Integration, ReplayGuard, TokenSubject,
    UnverifiedAssertion,
};
use jwtgrant_store::{Store, StoreError};

use crate::config::ServerConfig;
use crate::fetch::SafeFetcher;
use crate::grants::trusted_issuer::issuer_keys;
use crate::issuer_keys::IssuerKeys;
use crate::registry::Registry;
use crate::replay::{RedisReplay, journal_remembers, redis_connection};
use crate::signing::SigningKeyError;
use crate::state::{assertion_policies, issuer_url};

/// What an explanation is asked about: the request a client would send.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExplainRequest<'a> {
    /// The `assertion` parameter.
    pub assertion: &'a str,
    /// The `client_assertion` parameter (`private_key_jwt`), if the client sends one.
    pub client_assertion: Option<&'a str>,
    /// The `scope` parameter, if any.
    pub scope: Option<&'a str>,
    /// The `resource` parameters (RFC 8707).
    pub resources: &'a [&'a str],
}

/// Where the server remembers used `jti`s, read without recording.
enum ReplayLookup {
    /// The journal beside the embedded store.
    Journal(PathBuf),
    /// The shared store's table.
    Store,
    /// Redis (`--redis`).
    Redis(RedisReplay),
}

/// Runs the server's rules on assertions against the store of `config`.
pub struct Explainer {
    issuer: String,
    policy: AssertionPolicy,
    client_policy: AssertionPolicy,
    leeway_secs: i64,
    store: Arc<dyn Store>,
    registry: Registry,
    issuer_keys: IssuerKeys,
    replay: ReplayLookup,
}

impl Explainer {
    /// Reads the configuration as `serve` does (issuer, audiences, leeway,
    /// lifetimes) and opens the registry of `store`, changing nothing in it.
    pub async fn new(
        config: &ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, SigningKeyError> {
        let issuer = issuer_url(config, config.listen);
        let (policy, client_policy) = assertion_policies(config, &issuer);
        let fetcher = SafeFetcher::new(config.fetch_policy())
            .map_err(|e| SigningKeyError::Startup(format!("the issuer key fetcher: {e}")))?;
        let replay = match (&config.redis, store.replay_journal_dir()) {
            (Some(url), _) => ReplayLookup::Redis(RedisReplay::new(
                redis_connection(url).await?,
                &config.redis_key_prefix,
            )),
            (None, Some(dir)) => ReplayLookup::Journal(dir.to_path_buf()),
            (None, None) => ReplayLookup::Store,
        };
        let registry = Registry::load(
            Arc::clone(&store),
            Arc::new(config.key_sealer()),
            crate::clock::Clock::system(),
        )
        .await?;
        Ok(Explainer {
            issuer,
            policy,
            client_policy,
            leeway_secs: config.clock_leeway_secs,
            store,
            registry,
            issuer_keys: IssuerKeys::new(fetcher),
            replay,
        })
    }

    /// The URL that sends a user to consent to `integration` for `scopes`, as the
    /// server's refusal gives it.
    fn consent_url(&self, integration: &Integration, scopes: &[String]) -> String {
        let redirect_uri = integration.redirect_uris.first().map(String::as_str);
        jwtgrant_proto::consent_url(&self.issuer, &integration.key, scopes, redirect_uri)
    }

    /// The issuer URL the rules are those of (`--public-url`, or `--listen`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Every rule the token endpoint would run on `request` at `now`, in its order.
    pub async fn explain(
        &self,
        request: ExplainRequest<'_>,
        now: i64,
    ) -> Result<Explanation, StoreError> {
        let mut explanation = Explanation::new("client_assertion");
        let client_given = request.client_assertion.is_some();
        let client = match request.client_assertion {
            Some(client_assertion) => {
                self.explain_client(client_assertion, now, &mut explanation)
                    .await?
            }
            None => None,
        };

        explanation.part("assertion");
        let parsed = UnverifiedAssertion::parse(request.assertion);
        let Some(unverified) = explanation.check("parse", parsed, |unverified| {
            format!(
                "a signed JWT (alg {}) from '{}'",
                unverified.algorithm().as_str(),
                unverified.issuer()
            )
        }) else {
            return Ok(explanation);
        };
        if let Some(integration) = self.registry.integration(unverified.issuer()).await? {
            let Some(verified) =
                unverified.explain(&integration, &self.policy, now, &mut explanation)
            else {
                return Ok(explanation);
            };
            self.explain_presenting_client(
                client_given.then_some(client.as_ref()),
                &integration,
                &mut explanation,
            );
            explanation.part("decision");
            let (user, consent) = match verified.subject() {
                Some(user_id) => (
                    self.registry.user(user_id).await?,
                    self.registry.consent(user_id, &integration.key).await?,
                ),
                None => (None, None),
            };
            let records = SubjectRecords {
                user: user.as_ref().map(|u| &u.user),
                consent: consent.as_deref(),
            };
            let decision = explain_decision(
                &verified,
                request.scope,
                &integration,
                records,
                self.leeway_secs,
                |scopes| self.consent_url(&integration, scopes),
                &mut explanation,
            );
            let decision = decision.and_then(|decision| {
                explain_resources(request.resources, &integration, decision, &mut explanation)
            });
            self.explain_replay(decision.as_ref(), now, &mut explanation)
                .await;
            return Ok(explanation);
        }
        match self.registry.trusted_issuer(unverified.issuer()).await? {
            Some(issuer) => {
                self.explain_trusted(
                    &unverified,
                    &issuer,
                    request,
                    client_given.then_some(client.as_ref()),
                    now,
                    &mut explanation,
                )
                .await?;
            }
            None => {
                explanation.fail("issuer", &GrantError::IssuerNotFound);
            }
        }
        Ok(explanation)
    }

    /// The client assertion's rules, then whether its `jti` was used.
    async fn explain_client(
        &self,
        client_assertion: &str,
        now: i64,
        explanation: &mut Explanation,
    ) -> Result<Option<AuthenticatedClient>, StoreError> {
        let integration = match UnverifiedAssertion::parse(client_assertion) {
            Ok(unverified) => {
                let integration = self.registry.integration(unverified.issuer()).await?;
                if integration.is_none()
                    && self
                        .registry
                        .trusted_issuer(unverified.issuer())
                        .await?
                        .is_some()
                {
                    explanation.skip(
                        "client",
                        "a trusted issuer's token (federated client authentication): not explained yet",
                    );
                    return Ok(None);
                }
                integration
            }
            Err(_) => None,
        };
        let Some((client, guard)) = explain_assertion(
            client_assertion,
            integration.as_deref(),
            &self.client_policy,
            now,
            explanation,
        ) else {
            return Ok(None);
        };
        match self.is_used(&guard, now).await {
            Ok(false) => explanation.pass("jti_unused", "its jti has not been used"),
            Ok(true) => explanation.fail("jti_unused", &ClientAuthError::ClientAssertionReplayed),
            Err(error) => explanation.skip(
                "jti_unused",
                format!("the replay record did not answer: {error}"),
            ),
        }
        Ok(Some(client))
    }

    /// With a client assertion, the client must be the assertion's integration.
    /// `client` is `None` without one, `Some(None)` when it was refused.
    fn explain_presenting_client(
        &self,
        client: Option<Option<&AuthenticatedClient>>,
        integration: &Integration,
        explanation: &mut Explanation,
    ) {
        match client {
            Some(None) => explanation.skip(
                "presenting_client",
                "the client assertion was refused or not explained",
            ),
            Some(Some(client)) => {
                explanation.check(
                    "presenting_client",
                    check_presenting_client(Some(client), integration),
                    |()| {
                        format!(
                            "the client is '{}', the assertion's integration",
                            client.client_id
                        )
                    },
                );
            }
            None => explanation.skip("presenting_client", "no client assertion given"),
        }
    }

    /// A trusted issuer's token: its integration, its keys, its rules, the user it
    /// maps to, the decision and the replay record, as the server's grant runs them.
    async fn explain_trusted(
        &self,
        unverified: &UnverifiedAssertion<'_>,
        issuer: &TrustedIssuer,
        request: ExplainRequest<'_>,
        client: Option<Option<&AuthenticatedClient>>,
        now: i64,
        explanation: &mut Explanation,
    ) -> Result<(), StoreError> {
        // A disabled or expired trust is refused before its keys are fetched, as
        // the server does; the rest would be about a trust that is off.
        if let Err(refusal) = issuer.check_trust(now) {
            explanation.fail("issuer", &refusal);
            return Ok(());
        }
        let integration = self
            .registry
            .integration(&issuer.integration_key)
            .await?
            .filter(|i| i.active)
            .ok_or(GrantError::IntegrationDisabled);
        let Some(integration) = explanation.check("integration", integration, |i| {
            format!("'{}' gets the token; it is active", i.key)
        }) else {
            return Ok(());
        };
        let keys = issuer_keys(&self.issuer_keys, issuer, unverified.kid(), now).await;
        let Some(keys) = explanation.check("issuer_keys", keys, |keys| {
            format!("{} usable keys", keys.keys.len())
        }) else {
            return Ok(());
        };
        let Some(assertion) =
            unverified.explain_from_issuer(issuer, &keys, &self.policy, now, explanation)
        else {
            return Ok(());
        };
        if issuer.policy.id_jag {
            explanation.skip(
                "presenting_client",
                "an ID-JAG may be presented by its client",
            );
        } else {
            self.explain_presenting_client(client, &integration, explanation);
        }

        explanation.part("decision");
        let user_id = match self.mapped_user(issuer, &assertion).await? {
            Ok(user_id) => {
                explanation.pass(
                    "subject_mapping",
                    match &user_id {
                        Some(user_id) => format!("the token's subject is user '{user_id}'"),
                        None => "a workload: no local user".into(),
                    },
                );
                user_id
            }
            Err(refusal) => {
                explanation.fail("subject_mapping", &refusal);
                return Ok(());
            }
        };
        let user = match &user_id {
            Some(user_id) => self.registry.user(user_id).await?,
            None => None,
        };
        if !issuer.policy.id_jag {
            // An ID-JAG's own rules come before its condition, in its grant step.
            issuer.explain_condition(&assertion, explanation);
        }
        let decision = if issuer.policy.id_jag {
            let request = IdJagRequest {
                client: client.flatten(),
                scope: request.scope,
                resources: request.resources,
            };
            decide_id_jag(
                &assertion,
                issuer,
                &integration,
                &self.issuer,
                request,
                user.as_ref().map(|u| &u.user),
            )
        } else {
            let consent = match &user_id {
                Some(user_id) => self.registry.consent(user_id, &integration.key).await?,
                None => None,
            };
            let records = SubjectRecords {
                user: user.as_ref().map(|u| &u.user),
                consent: consent.as_deref(),
            };
            decide_for_issuer(
                &assertion,
                issuer,
                &integration,
                request.scope,
                records,
                self.leeway_secs,
                |scopes| self.consent_url(&integration, scopes),
            )
        };
        let Some(decision) = explanation.check("grant", decision, |decision| {
            format!(
                "condition, scopes '{}' and subject '{}' hold",
                decision.scopes().join(" "),
                decision.subject_claim()
            )
        }) else {
            return Ok(());
        };
        let decision = if issuer.policy.id_jag {
            // An ID-JAG's resources were decided with it.
            decision
        } else {
            match explain_resources(request.resources, &integration, decision, explanation) {
                Some(decision) => decision,
                None => return Ok(()),
            }
        };
        if let TokenSubject::Workload(subject) = decision.subject() {
            let taken = subject != &integration.key
                && (self.registry.user(subject).await?.is_some()
                    || self.registry.integration(subject).await?.is_some());
            let result = if taken {
                Err(GrantError::SubjectNotMapped(
                    "the workload subject names a local user or another integration",
                ))
            } else {
                Ok(())
            };
            explanation.check("workload_subject", result, |()| {
                format!("'{subject}' names no local user or other integration")
            });
        }
        self.explain_replay(Some(&decision), now, explanation).await;
        Ok(())
    }

    /// The local user a `--subject user` issuer's token names, `None` for a
    /// workload; the refusal when there is none.
    async fn mapped_user(
        &self,
        issuer: &TrustedIssuer,
        assertion: &IssuerAssertion,
    ) -> Result<Result<Option<String>, GrantError>, StoreError> {
        let lookup = match issuer.user_lookup(assertion) {
            Ok(lookup) => lookup,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(match lookup {
            Some(UserLookup::Linked(subject)) => self
                .registry
                .linked_user(&issuer.id, &subject)
                .await?
                .map(Some)
                .ok_or(GrantError::SubjectNotMapped(
                    "no local user is linked to the token's subject (jwtgrant user link)",
                )),
            Some(UserLookup::Email(email)) => self
                .registry
                .user_id_by_email(&email)
                .await?
                .map(Some)
                .ok_or(GrantError::SubjectNotMapped(
                    "no local user has the token's email",
                )),
            None => Ok(None),
        })
    }

    /// Whether the decision's `jti` was used, looked up without recording it.
    async fn explain_replay(
        &self,
        decision: Option<&GrantDecision>,
        now: i64,
        explanation: &mut Explanation,
    ) {
        match decision.map(GrantDecision::replay_guard) {
            None => explanation.skip("jti_unused", "the grant was refused before it"),
            Some(None) => explanation.skip("jti_unused", "no jti to record"),
            Some(Some(guard)) => match self.is_used(guard, now).await {
                Ok(false) => explanation.pass(
                    "jti_unused",
                    format!(
                        "jti '{}' has not been used (explain does not record it)",
                        guard.jti
                    ),
                ),
                Ok(true) => explanation.fail("jti_unused", &GrantError::JtiReplayed),
                Err(error) => explanation.skip(
                    "jti_unused",
                    format!("the replay record did not answer: {error}"),
                ),
            },
        }
    }

    async fn is_used(&self, guard: &ReplayGuard, now: i64) -> Result<bool, StoreError> {
        match &self.replay {
            ReplayLookup::Journal(dir) => {
                let dir = dir.clone();
                let guard = guard.clone();
                tokio::task::spawn_blocking(move || journal_remembers(&dir, &guard, now))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
            }
            ReplayLookup::Store => {
                self.store
                    .jti_remembered(&guard.issuer, &guard.jti, now)
                    .await
            }
            ReplayLookup::Redis(redis) => redis.is_used(guard).await,
        }
    }
}

/// The `resource` parameters, each one of the integration's (RFC 8707), as the
/// decision's audience.
fn explain_resources(
    requested: &[&str],
    integration: &Integration,
    decision: GrantDecision,
    explanation: &mut Explanation,
) -> Option<GrantDecision> {
    if requested.is_empty() {
        explanation.skip("resources", "no resource parameter");
        return Some(decision);
    }
    let resources = explanation.check(
        "resources",
        Resources::for_integration(requested, integration),
        |resources| {
            format!(
                "'{}' are the integration's resources",
                resources.as_slice().join(" ")
            )
        },
    )?;
    Some(decision.for_resources(resources))
}
