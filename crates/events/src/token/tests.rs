//! Token tests: keys are generated here (one RSA key per test binary), never committed.

use std::sync::OnceLock;

use jsonwebtoken::EncodingKey;
use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use serde_json::json;

use super::*;

const ISS: &str = "https://eventplane.test/oauth";
const AUD: &str = "eventplane-gateway";
const NOW: u64 = 1_750_000_000;

fn rsa_private() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap_or_else(|err| panic!("{err}"))
    })
}

fn rsa_key() -> SigningKey {
    let pem = rsa_private()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap_or_else(|err| panic!("{err}"));
    SigningKey::from_pem(&pem).unwrap_or_else(|err| panic!("{err}"))
}

fn ec_key() -> SigningKey {
    SigningKey::generate().unwrap_or_else(|err| panic!("{err}"))
}

fn claims(app: &str) -> AccessClaims {
    AccessClaims::publish(
        ISS,
        AUD,
        "cli_x",
        "acme",
        app,
        NOW,
        DEFAULT_TOKEN_TTL_SECONDS,
    )
}

fn sign(key: &SigningKey, claims: &AccessClaims) -> String {
    issue(key, claims).unwrap_or_else(|err| panic!("{err}"))
}

fn verifier(keys: &[&SigningKey]) -> Verifier {
    let jwks = Jwks {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    };
    Verifier::new(vec![TrustedIssuer::ours(
        ISS,
        AUD,
        jwks,
        Some("default".into()),
    )])
}

/// A token with an arbitrary header and claims, signed by `key` whatever the header says.
fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg)
        .unwrap_or_else(|err| panic!("{err}"));
    format!("{message}.{signature}")
}

#[test]
fn our_tokens_verify_with_es256_and_rs256() -> Result<(), AuthError> {
    for key in [ec_key(), rsa_key()] {
        let token = sign(&key, &claims("shop"));
        let publisher = verifier(&[&key]).verify(&token, NOW + 10)?;
        assert_eq!(
            publisher,
            Publisher {
                tenant: Some("acme".into()),
                app: "shop".into(),
                scopes: vec![SCOPE_PUBLISH.into()],
                issuer: ISS.into(),
                subject: Some("cli_x".into()),
            }
        );
        authorize(&publisher, SCOPE_PUBLISH, "shop")?;
        authorize_source(&publisher, "/applications/shop")?;
    }
    Ok(())
}

#[test]
fn headers_carry_alg_kid_and_typ() -> Result<(), Box<dyn std::error::Error>> {
    let key = ec_key();
    let token = sign(&key, &claims("shop"));
    let header = jsonwebtoken::decode_header(&token)?;
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let (_, claims) = split(&token)?;
    assert_eq!(claims["exp"], json!(NOW + 900));
    assert_eq!(claims["scope"], json!("events:publish"));
    assert_eq!(unverified_issuer(&token).as_deref(), Some(ISS));
    Ok(())
}

#[test]
fn keys_roundtrip_through_pem_with_stable_kids() -> Result<(), KeyError> {
    let ec = ec_key();
    let again = SigningKey::from_pem(ec.to_pem())?;
    assert_eq!((again.kid(), again.algorithm()), (ec.kid(), "ES256"));
    assert_eq!(ec.kid().len(), 43); // base64url of 32 bytes
    assert_ne!(ec.kid(), ec_key().kid());

    let rsa = rsa_key();
    assert_eq!(rsa.algorithm(), "RS256");
    let pkcs1 = rsa_private()
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError(e.to_string()))?;
    assert_eq!(SigningKey::from_pem(&pkcs1)?.kid(), rsa.kid());
    // A PEM squeezed into one line with literal \n.
    let squeezed = rsa.to_pem().replace('\n', "\\n");
    assert_eq!(SigningKey::from_pem(&squeezed)?.kid(), rsa.kid());

    let sec1 = p256::SecretKey::from_pkcs8_pem(ec.to_pem())
        .map_err(|e| KeyError(e.to_string()))?
        .to_sec1_pem(LineEnding::LF)
        .map_err(|e| KeyError(e.to_string()))?;
    assert_eq!(SigningKey::from_pem(&sec1)?.kid(), ec.kid());
    Ok(())
}

#[test]
fn rfc7638_thumbprint_example() {
    // The example key of RFC 7638 §3.1.
    let jwk = Jwk {
        kty: "RSA".into(),
        kid: None,
        key_use: None,
        alg: None,
        crv: None,
        x: None,
        y: None,
        n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
        e: Some("AQAB".into()),
    };
    assert_eq!(
        jwk.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn bad_pems_are_key_errors() {
    for bad in [
        "",
        "not a pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ] {
        assert!(SigningKey::from_pem(bad).is_err(), "{bad:?}");
    }
    let err: Error = KeyError("x".into()).into();
    assert_eq!(err.status(), 500);
}

#[test]
fn debug_does_not_print_the_private_key() {
    let key = ec_key();
    let debug = format!("{key:?}");
    assert!(
        debug.contains(key.kid()) && !debug.contains("PRIVATE"),
        "{debug}"
    );
}

#[test]
fn jwks_documents() -> Result<(), Box<dyn std::error::Error>> {
    let key = ec_key();
    let doc = serde_json::to_value(key.jwks())?;
    assert_eq!(doc["keys"][0]["kty"], "EC");
    assert_eq!(doc["keys"][0]["use"], "sig");
    assert_eq!(doc["keys"][0]["alg"], "ES256");
    assert_eq!(doc["keys"][0]["kid"], key.kid());
    assert!(doc["keys"][0].get("n").is_none());
    assert!(doc["keys"][0].get("d").is_none());
    let parsed = Jwks::parse(doc.to_string().as_bytes())?;
    assert_eq!(parsed, key.jwks());
    Ok(())
}

#[test]
fn external_jwks_keep_only_usable_keys() -> Result<(), JwksError> {
    let rsa = rsa_key().public_jwk();
    let ec = ec_key().public_jwk();
    let doc = json!({"keys": [
        rsa,
        ec,
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa.n, "e": "AQAB"},
        {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": rsa.n, "e": "AQAB"},
        {"kty": "RSA", "kid": "small", "n": b64(&[0xff; 64]), "e": "AQAB"},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "EC", "kid": "short", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(&[7; 32])},
        {"kty": "RSA", "n": rsa.n, "e": "AQAB"},
        "garbage",
        {"kid": "no-kty"}
    ]});
    let jwks = Jwks::parse(doc.to_string().as_bytes())?;
    let kids: Vec<&str> = jwks.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
    assert_eq!(
        kids,
        vec![
            rsa.kid.as_deref().unwrap_or("?"),
            ec.kid.as_deref().unwrap_or("?"),
            "ed"
        ]
    );
    assert!(Jwks::parse(b"[]").is_err());
    assert!(Jwks::parse(b"{}").is_err());
    assert!(Jwks::parse(b"{").is_err());
    assert_eq!(Jwks::parse(br#"{"keys": []}"#)?.keys.len(), 0);
    Ok(())
}

#[test]
fn external_issuer_with_its_own_claim_and_eddsa() -> Result<(), Box<dyn std::error::Error>> {
    let ed = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&ed)?;
    let encoding = EncodingKey::from_ed_der(der.as_bytes());
    let x = b64(ed.verifying_key().as_bytes());
    let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]});
    let issuer = TrustedIssuer {
        issuer: "https://idp.example".into(),
        audience: "events".into(),
        keys: Jwks::parse(doc.to_string().as_bytes())?,
        app_claim: "azp".into(),
        default_tenant: Some("default".into()),
    };
    let verifier = Verifier::new(vec![issuer]);
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"});
    let body = json!({
        "iss": "https://idp.example",
        "aud": ["other", "events"],
        "azp": "shop",
        "exp": NOW + 30,
        "nbf": NOW - 5,
        "scp": ["events:publish", "x"],
    });
    let token = forge(&header, &body, &encoding, Algorithm::EdDSA);
    let publisher = verifier.verify(&token, NOW)?;
    assert_eq!(publisher.app, "shop");
    assert_eq!(publisher.tenant.as_deref(), Some("default"));
    assert_eq!(publisher.subject, None);
    assert!(publisher.has_scope("events:publish"));

    let mut no_app = body.clone();
    no_app.as_object_mut().map(|m| m.remove("azp"));
    let token = forge(&header, &no_app, &encoding, Algorithm::EdDSA);
    assert!(
        matches!(verifier.verify(&token, NOW), Err(AuthError::InvalidToken(m)) if m.contains("azp"))
    );
    Ok(())
}

#[test]
fn unknown_kid_asks_for_a_refresh_and_rotation_works() -> Result<(), AuthError> {
    let old = ec_key();
    let new = ec_key();
    let token = sign(&new, &claims("shop"));
    let mut verifier = verifier(&[&old]);
    assert_eq!(
        verifier.verify(&token, NOW),
        Err(AuthError::UnknownKey {
            issuer: ISS.into(),
            kid: new.kid().into()
        })
    );
    assert!(verifier.set_keys(ISS, new.jwks().merged(&old.jwks())));
    assert!(!verifier.set_keys("https://nope", Jwks::default()));
    verifier.verify(&token, NOW)?;
    verifier.verify(&sign(&old, &claims("shop")), NOW)?;
    Ok(())
}

#[test]
fn leeway_on_exp_and_nbf() {
    let key = ec_key();
    let v = verifier(&[&key]);
    let token = sign(&key, &claims("shop"));
    let exp = NOW + DEFAULT_TOKEN_TTL_SECONDS;
    assert!(v.verify(&token, exp + LEEWAY_SECONDS).is_ok());
    assert_eq!(
        v.verify(&token, exp + LEEWAY_SECONDS + 1),
        Err(AuthError::Expired)
    );

    let encoding = &key.encoding;
    let header = json!({"alg": "ES256", "kid": key.kid()});
    let nbf = json!({"iss": ISS, "aud": AUD, "app": "shop", "exp": NOW + 900, "nbf": NOW + 100});
    let token = forge(&header, &nbf, encoding, Algorithm::ES256);
    assert_eq!(v.verify(&token, NOW), Err(AuthError::NotYetValid));
    assert!(v.verify(&token, NOW + 40).is_ok());

    let no_exp = json!({"iss": ISS, "aud": AUD, "app": "shop"});
    let token = forge(&header, &no_exp, encoding, Algorithm::ES256);
    assert!(matches!(v.verify(&token, NOW), Err(AuthError::InvalidToken(m)) if m.contains("exp")));
    let text_exp = json!({"iss": ISS, "aud": AUD, "app": "shop", "exp": "soon"});
    let token = forge(&header, &text_exp, encoding, Algorithm::ES256);
    assert!(matches!(
        v.verify(&token, NOW),
        Err(AuthError::InvalidToken(_))
    ));
}

/// The attack table of the issue: every row is rejected with the right status.
#[test]
fn attack_table() {
    let rsa = rsa_key();
    let ec = ec_key();
    let v = verifier(&[&rsa, &ec]);
    let good = sign(&rsa, &claims("shop"));
    let mut rows: Vec<(&str, String, u16)> = Vec::new();

    // alg: none, unsigned.
    let none_header = json!({"alg": "none", "kid": rsa.kid(), "typ": "JWT"});
    let body = serde_json::to_value(claims("shop")).unwrap_or_default();
    rows.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(none_header.to_string().as_bytes()),
            b64(body.to_string().as_bytes())
        ),
        401,
    ));
    rows.push((
        "alg none with a signature",
        format!(
            "{}.{}.AAAA",
            b64(none_header.to_string().as_bytes()),
            b64(body.to_string().as_bytes())
        ),
        401,
    ));
    // HS256 signed with the RSA public key (PEM and DER) as HMAC secret.
    let public = rsa_private().to_public_key();
    let public_pem = public.to_public_key_pem(LineEnding::LF).unwrap_or_default();
    let public_pkcs1 = public
        .to_pkcs1_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    for (name, secret) in [
        (
            "HS256 with the RSA public key PEM",
            public_pem.as_bytes().to_vec(),
        ),
        ("HS256 with the RSA public key DER", public_pkcs1),
    ] {
        let hs = json!({"alg": "HS256", "kid": rsa.kid(), "typ": "JWT"});
        rows.push((
            name,
            forge(
                &hs,
                &body,
                &EncodingKey::from_secret(&secret),
                Algorithm::HS256,
            ),
            401,
        ));
        // The same forgery claiming RS256 in the header.
        let rs = json!({"alg": "RS256", "kid": rsa.kid(), "typ": "JWT"});
        rows.push((
            name,
            forge(
                &rs,
                &body,
                &EncodingKey::from_secret(&secret),
                Algorithm::HS256,
            ),
            401,
        ));
    }
    // Key type and alg must agree: an ES256 header on the RSA key's kid.
    let es_on_rsa = json!({"alg": "ES256", "kid": rsa.kid()});
    rows.push((
        "ES256 header on an RSA kid",
        forge(&es_on_rsa, &body, &ec.encoding, Algorithm::ES256),
        401,
    ));
    rows.push((
        "PS256",
        forge(
            &json!({"alg": "PS256", "kid": rsa.kid()}),
            &body,
            &rsa.encoding,
            Algorithm::PS256,
        ),
        401,
    ));
    // Expired, not yet valid.
    let mut expired = claims("shop");
    expired.iat = NOW - 2000;
    expired.exp = NOW - 61;
    rows.push(("expired", sign(&rsa, &expired), 401));
    let mut future = claims("shop");
    future.iat = NOW + 3600;
    future.exp = NOW + 7200;
    let mut future = serde_json::to_value(future).unwrap_or_default();
    future["nbf"] = json!(NOW + 3600);
    rows.push((
        "not yet valid",
        forge(
            &json!({"alg": "RS256", "kid": rsa.kid()}),
            &future,
            &rsa.encoding,
            Algorithm::RS256,
        ),
        401,
    ));
    // Wrong iss (even signed with a trusted key), wrong aud.
    let mut wrong_iss = claims("shop");
    wrong_iss.iss = "https://evil.example".into();
    rows.push(("wrong iss", sign(&rsa, &wrong_iss), 401));
    let mut wrong_aud = claims("shop");
    wrong_aud.aud = "someone-else".into();
    rows.push(("wrong aud", sign(&rsa, &wrong_aud), 401));
    // Tampered payload: the signature of another payload.
    let other = sign(&rsa, &claims("other-app"));
    let good_parts: Vec<&str> = good.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    rows.push((
        "tampered payload",
        format!("{}.{}.{}", good_parts[0], other_parts[1], good_parts[2]),
        401,
    ));
    let mut flipped = good.clone().into_bytes();
    let middle = good_parts[0].len() + 5;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    rows.push((
        "flipped payload byte",
        String::from_utf8(flipped).unwrap_or_default(),
        401,
    ));
    // Unknown kid.
    let stranger = ec_key();
    rows.push(("unknown kid", sign(&stranger, &claims("shop")), 401));
    rows.push((
        "no kid",
        forge(
            &json!({"alg": "ES256"}),
            &body,
            &ec.encoding,
            Algorithm::ES256,
        ),
        401,
    ));
    // Garbage, truncated, empty.
    rows.push(("garbage", "garbage".into(), 401));
    rows.push(("garbage parts", "a.b.c".into(), 401));
    rows.push(("truncated", good[..good.len() - 10].to_owned(), 401));
    rows.push(("truncated to two parts", good_parts[..2].join("."), 401));
    rows.push(("four parts", format!("{good}.x"), 401));
    rows.push(("empty", String::new(), 401));

    for (name, token, status) in &rows {
        match v.verify(token, NOW) {
            Ok(p) => panic!("{name}: accepted as {p:?}"),
            Err(err) => {
                assert_eq!(err.status(), *status, "{name}: {err:?}");
                let challenge = err.www_authenticate().unwrap_or_default();
                assert!(
                    challenge.contains("error=\"invalid_token\""),
                    "{name}: {challenge}"
                );
            }
        }
    }

    // Missing scope and another application's token: valid tokens, 403.
    let mut no_scope = claims("shop");
    no_scope.scope = "profile".into();
    let publisher = v
        .verify(&sign(&rsa, &no_scope), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = authorize(&publisher, SCOPE_PUBLISH, "shop").unwrap_err();
    assert_eq!(err.status(), 403);
    assert!(
        err.www_authenticate()
            .unwrap_or_default()
            .contains("error=\"insufficient_scope\"")
    );
    assert!(authorize_source(&publisher, "/applications/shop").is_err());

    let publisher = v
        .verify(&sign(&rsa, &claims("other")), NOW)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = authorize(&publisher, SCOPE_PUBLISH, "shop").unwrap_err();
    assert!(matches!(err, AuthError::Forbidden(_)));
    assert_eq!((err.status(), err.www_authenticate()), (403, None));
    let err = authorize_source(&publisher, "/applications/shop").unwrap_err();
    assert_eq!(err.status(), 403);
    assert!(authorize_source(&publisher, "/applications/other").is_ok());
    assert!(authorize_source(&publisher, "/applications/other/x").is_err());

    // No token at all.
    let err = bearer_token(None).unwrap_err();
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.www_authenticate().as_deref(),
        Some("Bearer realm=\"eventplane\"")
    );
}

#[test]
fn bearer_headers() {
    assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
    assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
    assert_eq!(
        bearer_token(Some("Basic abc")),
        Err(AuthError::MissingToken)
    );
    assert_eq!(bearer_token(Some("")), Err(AuthError::MissingToken));
    assert!(matches!(
        bearer_token(Some("Bearer")),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(matches!(
        bearer_token(Some("Bearer  ")),
        Err(AuthError::InvalidToken(_))
    ));
}

#[test]
fn challenges_are_valid_quoted_strings() {
    let err = AuthError::InvalidToken("bad \"alg\" \\ é".into());
    let challenge = err.www_authenticate().unwrap_or_default();
    assert_eq!(
        challenge,
        "Bearer realm=\"eventplane\", error=\"invalid_token\", error_description=\"bad 'alg' ' ?\""
    );
    let err = AuthError::InsufficientScope {
        required: SCOPE_PUBLISH.into(),
    };
    assert_eq!(
        err.www_authenticate().unwrap_or_default(),
        "Bearer realm=\"eventplane\", error=\"insufficient_scope\", \
         error_description=\"the token lacks the scope events:publish\", scope=\"events:publish\""
    );
    let as_error: Error = err.into();
    assert_eq!((as_error.status(), as_error.code()), (403, "FORBIDDEN"));
    let as_error: Error = AuthError::Expired.into();
    assert_eq!((as_error.status(), as_error.code()), (401, "UNAUTHORIZED"));
}
