//! Publisher credentials (issue 5): client credentials requested through GraphQL, access
//! tokens from `POST /oauth/token` (RFC 6749 §4.4), verified with the keys served at
//! `GET /oauth/jwks.json`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use eventplane_events::token::{Jwks, SCOPE_PUBLISH, TrustedIssuer, Verifier};
use eventplane_tests::json;
use serde_json::{Value, json as j};

use super::{Gql, Registry, string_at};
use crate::e2e_test;

const REQUEST: &str = "mutation($app: ID!) { requestClientCredentialsForApplication(applicationID: $app) { clientId clientSecret } }";

/// Creates an application and credentials for it: (app id, client id, secret).
async fn credentials(g: &Gql, name: &str) -> anyhow::Result<(String, String, String)> {
    let app = g.create_app(j!({"name": name})).await?;
    let data = g.ok(REQUEST, j!({"app": app})).await?;
    Ok((
        app,
        string_at(&data, "/requestClientCredentialsForApplication/clientId")?,
        string_at(
            &data,
            "/requestClientCredentialsForApplication/clientSecret",
        )?,
    ))
}

/// POSTs a form to `/oauth/token` with optional Basic credentials.
async fn token(
    r: &Registry,
    basic: Option<(&str, &str)>,
    form: &str,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
    let mut request = reqwest::Client::new()
        .post(r.app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await?;
    let headers = response.headers().clone();
    let (status, body) = json(response).await?;
    Ok((status, headers, body))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

e2e_test! {
    async fn a_client_gets_a_signed_publish_token_verifiable_with_the_jwks() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_EVENTS_BASE_URL", "https://events.example.com")]).await?;
        let g = r.gql();
        let (_, client_id, secret) = credentials(&g, "shop").await?;
        assert!(client_id.starts_with("cli_"), "{client_id}");
        assert!(secret.len() >= 40, "{secret}");

        // Client authentication with Basic ...
        let (status, headers, body) =
            token(&r, Some((&client_id, &secret)), "grant_type=client_credentials").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["scope"], SCOPE_PUBLISH);
        let jwt = body["access_token"].as_str().unwrap_or_default().to_owned();

        // ... or in the body.
        let form = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope=events%3Apublish");
        let (status, _, body) = token(&r, None, &form).await?;
        assert_eq!(status, 200, "{body}");

        // The token verifies with the published keys and names the application and tenant.
        let response = reqwest::get(r.app.url("/oauth/jwks.json")).await?;
        let (status, jwks) = json(response).await?;
        assert_eq!(status, 200);
        let keys = Jwks::parse(jwks.to_string().as_bytes())?;
        assert_eq!(keys.keys.len(), 1, "{jwks}");
        let verifier = Verifier::new(vec![TrustedIssuer::ours(
            "https://events.example.com/oauth",
            "https://events.example.com/events",
            keys,
            None,
        )]);
        let publisher = verifier.verify(&jwt, now()).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(publisher.app, "shop");
        assert_eq!(publisher.tenant.as_deref(), Some("default"));
        assert_eq!(publisher.subject.as_deref(), Some(client_id.as_str()));
        assert!(publisher.has_scope(SCOPE_PUBLISH));
        let claims = jwt.split('.').nth(1).unwrap_or_default();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?,
        )?;
        assert_eq!(claims["exp"].as_u64().unwrap_or(0) - claims["iat"].as_u64().unwrap_or(0), 900);

        // The key was generated once and is kept: a restart serves the same one.
        let state_keys = jwks;
        let response = reqwest::get(r.app.url("/oauth/jwks.json")).await?;
        assert_eq!(json(response).await?.1, state_keys);
        r.stop().await
    }
}

e2e_test! {
    async fn bad_token_requests_get_rfc_6749_errors() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let (_, client_id, secret) = credentials(&g, "shop").await?;

        let (status, headers, body) =
            token(&r, Some((&client_id, "wrong")), "grant_type=client_credentials").await?;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        assert!(headers.get("www-authenticate").is_some(), "{headers:?}");

        let cases = [
            ("grant_type=password&username=a&password=b", 400, "unsupported_grant_type"),
            ("grant_type=client_credentials&scope=admin", 400, "invalid_scope"),
            ("", 400, "invalid_request"),
        ];
        for (form, expected_status, error) in cases {
            let (status, _, body) = token(&r, Some((&client_id, &secret)), form).await?;
            assert_eq!((status, body["error"].as_str()), (expected_status, Some(error)), "{form}: {body}");
        }
        // JSON is not a token request.
        let response = reqwest::Client::new()
            .post(r.app.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .json(&j!({"grant_type": "client_credentials"}))
            .send()
            .await?;
        let (status, body) = json(response).await?;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
        // An unknown client.
        let (status, _, body) = token(&r, Some(("cli_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f", &secret)), "grant_type=client_credentials").await?;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        r.stop().await
    }
}

e2e_test! {
    async fn revoked_credentials_and_deleted_applications_get_no_token() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let (_, client_id, secret) = credentials(&g, "shop").await?;
        let revoke = "mutation($id: ID!) { revokeClientCredentials(clientId: $id) }";
        assert_eq!(g.ok(revoke, j!({"id": client_id})).await?["revokeClientCredentials"], true);
        assert_eq!(g.ok(revoke, j!({"id": client_id})).await?["revokeClientCredentials"], false);
        let (status, _, _) =
            token(&r, Some((&client_id, &secret)), "grant_type=client_credentials").await?;
        assert_eq!(status, 401);

        let (app, client_id, secret) = credentials(&g, "erp").await?;
        g.ok("mutation($id: ID!) { deleteApplication(id: $id) { id } }", j!({"id": app})).await?;
        let (status, _, _) =
            token(&r, Some((&client_id, &secret)), "grant_type=client_credentials").await?;
        assert_eq!(status, 401);

        // Credentials for an unknown application are NOT_FOUND; nothing is created.
        let code = g
            .error_code(REQUEST, j!({"app": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"}))
            .await?;
        assert_eq!(code, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn the_secret_is_never_stored_in_clear() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let r = Registry::start_in(state.path(), &[]).await?;
        let (_, _, secret) = credentials(&r.gql(), "shop").await?;
        r.stop().await?;
        let db = std::fs::read(state.path().join("sqlite_key_value.db"))?;
        let needle = secret.as_bytes();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "the secret is in the store"
        );
        Ok(())
    }
}
