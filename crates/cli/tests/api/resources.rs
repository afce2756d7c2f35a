//! RFC 8707 resources over HTTP: `resource` on the JWT bearer and client credentials
//! grants narrows the token's audience to the integration's own resources, anything
//! else is `invalid_target` and consumes nothing; `integration update` sets them.

use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::IntegrationUpdate;
use serde_json::{Value, json};

use crate::support::*;

const MCP: &str = "https://mcp.example.com/mcp";
const FILES: &str = "https://files.example.com";

/// A fixture whose integration may ask tokens for [`MCP`] and [`FILES`].
async fn with_resources(spec: IntegrationSpec) -> Fixture {
    let fixture = Fixture::with(TestServer::start().await, spec).await;
    fixture
        .server
        .store
        .update_integration(
            &fixture.integration_key,
            IntegrationUpdate {
                resources: Some(vec![MCP.into(), FILES.into()]),
                ..IntegrationUpdate::default()
            },
        )
        .await
        .unwrap();
    fixture.server.refresh().await;
    fixture
}

async fn grant(fixture: &Fixture, assertion: &str, resources: &[&str]) -> (u16, Value) {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    fixture.server.post_form(&form).await
}

fn audience(body: &Value) -> Value {
    jwt_claims(body["access_token"].as_str().unwrap_or_default())["aud"].clone()
}

#[tokio::test]
async fn the_jwt_grant_narrows_the_audience_to_the_requested_resources() {
    let fixture = with_resources(IntegrationSpec::default()).await;
    let default_audience = {
        let (status, body) = grant(&fixture, &fixture.sign(&fixture.claims()), &[]).await;
        assert_eq!(status, 200, "{body}");
        audience(&body)
    };
    assert!(default_audience.is_string(), "{default_audience}");
    assert_ne!(default_audience, MCP);

    let (status, one) = grant(&fixture, &fixture.sign(&fixture.claims()), &[MCP]).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(audience(&one), MCP);

    let (status, both) = grant(
        &fixture,
        &fixture.sign(&fixture.claims()),
        &[FILES, MCP, FILES],
    )
    .await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(audience(&both), json!([FILES, MCP]));

    // Introspection tells a resource server the same audience.
    let token = one["access_token"].as_str().unwrap();
    assert_eq!(
        jwt_claims(token)["client_id"],
        fixture.integration_key.as_str()
    );
}

#[tokio::test]
async fn a_resource_not_allowed_or_malformed_is_invalid_target_and_consumes_nothing() {
    let fixture = with_resources(IntegrationSpec::default()).await;
    let assertion = fixture.sign(&fixture.claims());
    for (resources, rule) in [
        (vec!["https://evil.example.com"], "resource_not_allowed:"),
        (
            vec![MCP, "https://evil.example.com"],
            "resource_not_allowed:",
        ),
        (
            vec!["https://mcp.example.com/mcp/"],
            "resource_not_allowed:",
        ),
        (vec!["mcp.example.com/mcp"], "resource_malformed:"),
        (vec!["/mcp"], "resource_malformed:"),
        (
            vec!["https://mcp.example.com/mcp#tools"],
            "resource_malformed:",
        ),
    ] {
        let (status, body) = grant(&fixture, &assertion, &resources).await;
        let (code, description) = oauth_error(&body);
        assert_eq!(
            (status, code),
            (400, "invalid_target"),
            "{resources:?}: {body}"
        );
        assert!(
            description.starts_with(rule),
            "{resources:?}: {description}"
        );
    }
    assert!(fixture.server.refused("invalid_target") >= 6);
    // The refusals recorded no `jti`: the same assertion still gets its token.
    let (status, body) = grant(&fixture, &assertion, &[MCP]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_integration_without_resources_may_name_none() {
    let fixture = Fixture::new().await;
    let (status, body) = grant(&fixture, &fixture.sign(&fixture.claims()), &[MCP]).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_target"),
        "{body}"
    );
}

#[tokio::test]
async fn client_credentials_take_resources_too() {
    let fixture = with_resources(IntegrationSpec::applications()).await;
    let secret = "s3cret client credentials";
    fixture
        .server
        .store
        .set_integration_secret(
            &fixture.integration_key,
            Some(&hash_secret(secret).unwrap()),
        )
        .await
        .unwrap();
    fixture.server.refresh().await;
    let token = |resource: &'static str| {
        let server = &fixture.server;
        let ik = fixture.integration_key.clone();
        async move {
            let response = server
                .http
                .post(server.token_endpoint())
                .basic_auth(ik, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("resource", resource)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = token(FILES).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&body), FILES);
    let (status, body) = token("https://evil.example.com").await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_target"),
        "{body}"
    );
}

#[tokio::test]
async fn integration_update_sets_resources_and_default_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let created = admin(
        dir.path(),
        &[
            "integration",
            "create",
            "--name",
            "MCP client",
            "--resource",
            MCP,
        ],
    );
    let key = created["integration_key"].as_str().unwrap().to_owned();
    assert_eq!(created["resources"], json!([MCP]));
    assert_eq!(created["default_scopes"], json!([]));

    let updated = admin(
        dir.path(),
        &[
            "integration",
            "update",
            &key,
            "--resource",
            FILES,
            "--resource",
            MCP,
            "--default-scope",
            "signature",
        ],
    );
    assert_eq!(updated["resources"], json!([FILES, MCP]));
    assert_eq!(updated["default_scopes"], json!(["signature"]));
    assert_eq!(updated["scopes"], json!(["signature", "impersonation"]));

    let cleared = admin(
        dir.path(),
        &["integration", "update", &key, "--clear-resources"],
    );
    assert_eq!(cleared["resources"], json!([]));
    assert_eq!(cleared["default_scopes"], json!(["signature"]));

    // Refused before anything is written: the form of a resource, a default scope
    // the integration may not have, nothing to change, an unknown integration.
    let store = store_args(dir.path());
    for (args, says) in [
        (vec!["--resource", "not-absolute"], "absolute URI"),
        (vec!["--resource", "https://x.example/#f"], "absolute URI"),
        (
            vec!["--default-scope", "admin"],
            "not one of the integration's scopes",
        ),
        (vec![], "nothing to change"),
    ] {
        let mut command = jwtgrant(dir.path());
        command
            .args(["integration", "update", &key])
            .args(&store)
            .args(&args);
        let output = run(command);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let mut command = jwtgrant(dir.path());
    command
        .args([
            "integration",
            "update",
            "no-such-integration",
            "--resource",
            MCP,
        ])
        .args(&store);
    assert!(!run(command).status.success());
    let shown = admin(dir.path(), &["integration", "show", &key]);
    assert_eq!(shown["resources"], json!([]));
    assert_eq!(shown["default_scopes"], json!(["signature"]));
}
