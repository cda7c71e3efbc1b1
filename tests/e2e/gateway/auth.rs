//! Who may publish: the three token sources (ours, an external OpenID Connect issuer whose JWKS
//! a local server serves, a rotated key of that issuer), and the attack table: every forged,
//! stale, misdirected or mangled token is refused with the right status and challenge, on the
//! CloudEvents and the legacy endpoint alike, and stores nothing.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use serde_json::{Value, json as j};

use super::{
    Answer, Client, JwksServer, OIDC_ISSUER, OUR_AUDIENCE, OUR_ISSUER, SHOP, Shop, TestKey,
    claims_of, cloud_event, env_refs, legacy_order, now, oidc_claims, order, our_claims, part,
    with,
};
use crate::e2e_test;

/// The challenge sent when no token was sent at all.
const REALM_ONLY: &str = "Bearer realm=\"eventplane\"";

e2e_test! {
    async fn tokens_of_an_external_openid_connect_issuer_are_accepted() -> anyhow::Result<()> {
        let key = TestKey::rsa()?;
        let jwks = JwksServer::start(&[&key]).await?;
        let env = jwks.env();
        let shop = Shop::start_with(&env_refs(&env)).await?;
        let token = key.sign(&oidc_claims(SHOP))?;
        let c = Client::new(&shop.r.app).token(&token);

        c.structured(&order("oidc-1")).await?.expect(202, "structured with an OIDC token")?;
        assert!(jwks.fetches() >= 1, "the gateway fetched the issuer's JWKS");
        let fetched = jwks.fetches();
        c.binary("oidc-2", "order.created.v1", &[], &j!({"orderId": "oidc-2"}))
            .await?
            .expect(202, "binary with an OIDC token")?;
        c.batch(&[order("oidc-3"), order("oidc-4")]).await?.expect(202, "batch with an OIDC token")?;
        let id = uuid::Uuid::new_v4().to_string();
        c.legacy(SHOP, &legacy_order(&id)).await?.expect(200, "legacy with an OIDC token")?;
        c.subscribed(SHOP).await?.expect(200, "subscribed with an OIDC token")?;
        assert_eq!(jwks.fetches(), fetched, "a known kid is served from the cached JWKS");

        // Our tokens keep working beside the external issuer.
        shop.client().structured(&order("ours-1")).await?.expect(202, "our token")?;

        // An OIDC token carries no tenant: the Tenant header picks it, and the shop is an
        // application of the default tenant only.
        let answer = c.tenant("acme").structured(&order("oidc-5")).await?;
        answer.expect(404, "OIDC token, tenant without the application")?;
        assert_eq!(answer.code(), Some("NOT_FOUND"), "{}", answer.text);
        c.tenant("default").structured(&order("oidc-5")).await?.expect(202, "tenant default")?;
        shop.stop().await
    }
}

e2e_test! {
    async fn a_rotated_key_is_fetched_when_its_kid_is_first_seen() -> anyhow::Result<()> {
        let old = TestKey::rsa()?;
        let new = TestKey::ec()?;
        let jwks = JwksServer::start(&[&old]).await?;
        let env = jwks.env();
        let shop = Shop::start_with(&env_refs(&env)).await?;
        let c = Client::new(&shop.r.app);

        c.token(&old.sign(&oidc_claims(SHOP))?)
            .structured(&order("rot-1"))
            .await?
            .expect(202, "the old key")?;
        let before = jwks.fetches();
        assert!(before >= 1);

        // The issuer rotates: its JWKS now has the new key beside the old one. A token signed
        // by the new key has a kid the gateway has not seen; it refetches the JWKS and accepts.
        jwks.set(&[&old, &new]);
        // A gateway may refuse to refetch a key set it fetched a moment ago (so that a stream
        // of made-up kids cannot hammer the issuer); this one refetches after a second.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        c.token(&new.sign(&oidc_claims(SHOP))?)
            .structured(&order("rot-2"))
            .await?
            .expect(202, "the new key, unknown kid at first")?;
        assert!(jwks.fetches() > before, "the JWKS was fetched again on the unknown kid");
        let after = jwks.fetches();

        // Both keys now verify without another fetch.
        c.token(&new.sign(&oidc_claims(SHOP))?)
            .structured(&order("rot-3"))
            .await?
            .expect(202, "the new key again")?;
        c.token(&old.sign(&oidc_claims(SHOP))?)
            .structured(&order("rot-4"))
            .await?
            .expect(202, "the old key, still published")?;
        assert_eq!(jwks.fetches(), after, "known kids are served from the refreshed cache");
        shop.stop().await
    }
}

/// One row of the attack table: what is sent as `Authorization` (`None`: no header) and the
/// expected status.
struct Attack {
    name: &'static str,
    authorization: Option<String>,
    status: u16,
}

impl Attack {
    fn bearer(name: &'static str, token: String, status: u16) -> Self {
        Self {
            name,
            authorization: Some(format!("Bearer {token}")),
            status,
        }
    }
}

/// A token with the given header and claims and a signature that is `signature` (unchecked).
fn hand_made(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// HS256 over `claims` with `secret` as the HMAC key and `kid` in the header.
fn hs256(kid: &str, claims: &Value, secret: &[u8]) -> anyhow::Result<String> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".to_owned());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// Replaces the claims of `token`, keeping its header and signature.
fn tampered(token: &str, claims: &Value) -> anyhow::Result<String> {
    let parts: Vec<&str> = token.split('.').collect();
    anyhow::ensure!(parts.len() == 3, "not a JWT: {token}");
    Ok(format!("{}.{}.{}", parts[0], part(claims), parts[2]))
}

/// Checks one answer against its row; a description of the mismatch, if any.
fn check(endpoint: &str, row: &Attack, answer: &Answer, kyma: bool) -> Option<String> {
    let fail = |why: String| {
        Some(format!(
            "{endpoint} / {}: {why}; got {} {} (WWW-Authenticate: {:?})",
            row.name,
            answer.status,
            answer.text,
            answer.challenge()
        ))
    };
    if answer.status != row.status {
        return fail(format!("expected {}", row.status));
    }
    if kyma {
        if answer.body["status"] != row.status {
            return fail("Kyma's error shape has the status".into());
        }
    } else {
        let code = if row.status == 401 {
            "UNAUTHORIZED"
        } else {
            "FORBIDDEN"
        };
        if answer.code() != Some(code) {
            return fail(format!("expected error.code {code}"));
        }
    }
    let challenge = answer.challenge();
    match (row.status, row.authorization.is_some(), row.name) {
        (401, false, _) if challenge != Some(REALM_ONLY) => {
            fail(format!("expected WWW-Authenticate {REALM_ONLY}"))
        }
        (401, true, _)
            if !challenge.is_some_and(|c| {
                c.starts_with("Bearer ") && c.contains("error=\"invalid_token\"")
            }) =>
        {
            fail("expected a Bearer challenge with error=\"invalid_token\"".into())
        }
        (403, _, "missing scope (ours)" | "missing scope (external)")
            if !challenge.is_some_and(|c| c.contains("error=\"insufficient_scope\"")) =>
        {
            fail("expected a challenge with error=\"insufficient_scope\"".into())
        }
        (403, _, "another application's token") if challenge.is_some() => {
            fail("a token that is valid but not allowed gets no challenge".into())
        }
        _ => None,
    }
}

e2e_test! {
    async fn the_attack_table_is_refused_row_by_row() -> anyhow::Result<()> {
        // Our signing key is known to the test (so it can forge our tokens with bad claims), and
        // an external RSA issuer is trusted too.
        let ours = TestKey::ec()?;
        let external = TestKey::rsa()?;
        let stranger = TestKey::ec()?.with_kid("kid-nobody-published");
        let jwks = JwksServer::start(&[&external]).await?;
        let mut env = jwks.env();
        env.push(("SPIN_VARIABLE_TOKEN_SIGNING_KEY", ours.pem.clone()));
        let shop = Shop::start_with(&env_refs(&env)).await?;
        let erp_token = shop.other_app("erp").await?;
        anyhow::ensure!(
            claims_of(&shop.token)?["iss"] == OUR_ISSUER && claims_of(&shop.token)?["aud"] == OUR_AUDIENCE,
            "the issued token's iss/aud are not the ones the test forges: {}",
            claims_of(&shop.token)?
        );

        // Controls: correctly forged tokens of both issuers are accepted, so every refusal
        // below is due to what each row changes.
        let c = Client::new(&shop.r.app);
        c.token(&ours.sign(&our_claims(SHOP))?).structured(&order("control-1")).await?
            .expect(202, "control: a token signed with our key")?;
        c.token(&external.sign(&oidc_claims(SHOP))?).structured(&order("control-2")).await?
            .expect(202, "control: an external token")?;

        let now = now();
        let rsa_public = external.rsa_public.clone().ok_or_else(|| anyhow::anyhow!("no RSA key"))?;
        let spki_pem = rsa_public.to_public_key_pem(rsa::pkcs8::LineEnding::LF)?;
        let pkcs1_pem = rsa_public.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?;
        let spki_der = rsa_public.to_public_key_der()?;
        let valid = shop.token.clone();
        let none_header = j!({"alg": "none", "kid": external.kid, "typ": "JWT"});
        let none_header_ours = j!({"alg": "none", "kid": ours.kid, "typ": "JWT"});
        let mut erp_as_shop = claims_of(&erp_token)?;
        erp_as_shop["app"] = j!(SHOP);
        let mut longer_lived = claims_of(&valid)?;
        longer_lived["exp"] = j!(now + 86_400);

        let rows = vec![
            Attack::bearer("alg none", hand_made(&none_header, &oidc_claims(SHOP), ""), 401),
            Attack::bearer("alg none (ours)", hand_made(&none_header_ours, &our_claims(SHOP), ""), 401),
            Attack::bearer(
                "alg none with a signature",
                hand_made(&none_header, &oidc_claims(SHOP), "c2lnbmF0dXJl"),
                401,
            ),
            Attack::bearer("HS256 with the RSA public key (SPKI PEM)", hs256(&external.kid, &oidc_claims(SHOP), spki_pem.as_bytes())?, 401),
            Attack::bearer("HS256 with the RSA public key (PKCS#1 PEM)", hs256(&external.kid, &oidc_claims(SHOP), pkcs1_pem.as_bytes())?, 401),
            Attack::bearer("HS256 with the RSA public key (DER)", hs256(&external.kid, &oidc_claims(SHOP), spki_der.as_bytes())?, 401),
            Attack::bearer("expired (ours)", ours.sign(&with(&our_claims(SHOP), &j!({"iat": now - 1000, "exp": now - 120})))?, 401),
            Attack::bearer("expired (external)", external.sign(&with(&oidc_claims(SHOP), &j!({"iat": now - 1000, "exp": now - 120})))?, 401),
            Attack::bearer("not yet valid (ours)", ours.sign(&with(&our_claims(SHOP), &j!({"nbf": now + 300})))?, 401),
            Attack::bearer("not yet valid (external)", external.sign(&with(&oidc_claims(SHOP), &j!({"nbf": now + 300})))?, 401),
            Attack::bearer("wrong iss, external key", external.sign(&with(&oidc_claims(SHOP), &j!({"iss": "https://evil.example.test"})))?, 401),
            Attack::bearer("wrong iss, our key", ours.sign(&with(&our_claims(SHOP), &j!({"iss": "https://evil.example.test/oauth"})))?, 401),
            Attack::bearer("external iss signed with our key", ours.sign(&with(&oidc_claims(SHOP), &j!({"iss": OIDC_ISSUER})))?, 401),
            Attack::bearer("wrong aud (ours)", ours.sign(&with(&our_claims(SHOP), &j!({"aud": "http://127.0.0.1:3000/elsewhere"})))?, 401),
            Attack::bearer("wrong aud (external)", external.sign(&with(&oidc_claims(SHOP), &j!({"aud": "another-service"})))?, 401),
            Attack::bearer("no aud (external)", external.sign(&with(&oidc_claims(SHOP), &j!({"aud": null})))?, 401),
            Attack::bearer("missing scope (ours)", ours.sign(&with(&our_claims(SHOP), &j!({"scope": "events:read"})))?, 403),
            Attack::bearer("missing scope (external)", external.sign(&with(&oidc_claims(SHOP), &j!({"scope": null})))?, 403),
            Attack::bearer("another application's token", erp_token.clone(), 403),
            Attack::bearer("tampered payload (app changed)", tampered(&erp_token, &erp_as_shop)?, 401),
            Attack::bearer("tampered payload (exp extended)", tampered(&valid, &longer_lived)?, 401),
            Attack::bearer("unknown kid (external iss)", stranger.sign(&oidc_claims(SHOP))?, 401),
            Attack::bearer("unknown kid (our iss)", stranger.sign(&our_claims(SHOP))?, 401),
            Attack::bearer("no kid", hand_made(&j!({"alg": "RS256", "typ": "JWT"}), &oidc_claims(SHOP), "c2ln"), 401),
            Attack::bearer("garbage", "garbage".to_owned(), 401),
            Attack::bearer("garbage in three parts", "a.b.c".to_owned(), 401),
            Attack::bearer("truncated (signature cut)", valid[..valid.len() - 10].to_owned(), 401),
            Attack::bearer("truncated (no signature)", valid[..valid.rfind('.').unwrap_or(0)].to_owned(), 401),
            Attack::bearer("truncated (half)", valid[..valid.len() / 2].to_owned(), 401),
            Attack {
                name: "no token",
                authorization: None,
                status: 401,
            },
        ];

        let mut failures = Vec::new();
        for row in &rows {
            let client = match &row.authorization {
                Some(value) => c.authorization(value),
                None => c.anonymous(),
            };
            let answer = client.structured(&order("attack-1")).await?;
            failures.extend(check("POST /events/publish", row, &answer, false));
            let answer = client.legacy(SHOP, &legacy_order("3f0c6a52-5d4b-4c8e-9a57-0d2c1b7e8a11")).await?;
            failures.extend(check("POST /events/shop/v1/events", row, &answer, true));
        }
        // The application in the route decides for the legacy path; the source for CloudEvents.
        let answer = c.token(&valid).legacy("erp", &legacy_order("1d7f3e0a-8c4b-4f6e-b2a9-5e3c7d1f0a22")).await?;
        if answer.status != 403 || answer.body["status"] != 403 || answer.challenge().is_some() {
            failures.push(format!("shop's token on /events/erp/v1/events: expected 403 without a challenge, got {} {} ({:?})", answer.status, answer.text, answer.challenge()));
        }
        let mut as_erp = cloud_event("attack-2", "order.created.v1", j!({"orderId": "1"}));
        as_erp["source"] = j!("/applications/erp");
        let answer = c.token(&valid).structured(&as_erp).await?;
        if answer.status != 403 || answer.code() != Some("FORBIDDEN") || answer.challenge().is_some() {
            failures.push(format!("shop's token with source /applications/erp: expected 403 FORBIDDEN without a challenge, got {} {}", answer.status, answer.text));
        }
        for source in ["https://shop.example.com", "/applications/shop/orders", "/applications/"] {
            let mut event = order("attack-3");
            event["source"] = j!(source);
            let answer = c.token(&valid).structured(&event).await?;
            if answer.status != 403 {
                failures.push(format!("source {source:?}: expected 403, got {} {}", answer.status, answer.text));
            }
        }
        assert!(failures.is_empty(), "{} of {} checks failed:\n{}", failures.len(), rows.len() * 2 + 5, failures.join("\n"));

        // Nothing any row sent was stored: the same events are new now.
        let c = c.token(&valid);
        let answer = c.structured(&order("attack-1")).await?;
        answer.expect(202, "after the attacks")?;
        assert_eq!(answer.body["duplicate"], false, "an attack row stored attack-1");
        let answer = c.legacy(SHOP, &legacy_order("3f0c6a52-5d4b-4c8e-9a57-0d2c1b7e8a11")).await?;
        answer.expect(200, "legacy after the attacks")?;
        assert_eq!(answer.body["reason"], "Event published", "an attack row stored the legacy event");
        shop.stop().await
    }
}

e2e_test! {
    async fn a_token_for_a_deleted_application_finds_no_application() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let g = shop.r.gql();
        let app_id = g.create_app(j!({"name": "gone"})).await?;
        let (client_id, secret) = super::client_credentials(&g, &app_id).await?;
        let token = super::access_token(&shop.r.app, &client_id, &secret).await?;
        g.ok("mutation($id: ID!) { deleteApplication(id: $id) { id } }", j!({"id": app_id})).await?;

        let mut event = order("gone-1");
        event["source"] = j!("/applications/gone");
        let answer = Client::new(&shop.r.app).token(&token).structured(&event).await?;
        answer.expect(404, "publishing for a deleted application")?;
        assert_eq!(answer.code(), Some("NOT_FOUND"), "{}", answer.text);
        let answer = Client::new(&shop.r.app)
            .token(&token)
            .legacy("gone", &legacy_order("0b1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"))
            .await?;
        answer.expect(404, "legacy publish for a deleted application")?;
        assert_eq!(answer.body["status"], 404, "{}", answer.text);
        shop.stop().await
    }
}
