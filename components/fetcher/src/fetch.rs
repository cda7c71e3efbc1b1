//! One fetch: credentials, the request, redirects, limits, and validation of the document.

use std::time::Duration;

use eventplane_core::{KvStore, TenantId};
use eventplane_outbound::fetch::{self as rules, FetchedFormat};
use eventplane_outbound::redirect::{self, MAX_REDIRECTS};
use eventplane_outbound::{FetchJob, FetchLimits, FetchMode, FetchOutcome};
use eventplane_spec as spec;
use eventplane_spin::client::{self, CallError};
use eventplane_spin::timer::timeout;
use spin_sdk::http::Method;

/// Runs `job` within `limits`: a document, or why not.
pub async fn run(
    store: &dyn KvStore,
    tenant: &TenantId,
    job: &FetchJob,
    limits: FetchLimits,
) -> FetchOutcome {
    if job.mode != FetchMode::Single {
        return FetchOutcome::failed(rules::unsupported_mode(job.mode));
    }
    let limit = Duration::from_millis(limits.timeout_ms);
    match timeout(limit, fetch(store, tenant, job, limits)).await {
        Some(Ok(outcome)) => outcome,
        Some(Err(message)) => FetchOutcome::failed(message),
        None => FetchOutcome::failed(rules::timed_out(limits.timeout_ms, &job.url)),
    }
}

async fn fetch(
    store: &dyn KvStore,
    tenant: &TenantId,
    job: &FetchJob,
    limits: FetchLimits,
) -> Result<FetchOutcome, String> {
    let (mut url, auth_headers) = match &job.auth {
        Some(auth) => {
            let authorized = client::authorize(store, tenant, auth, &job.url).await?;
            (authorized.url, authorized.headers)
        }
        None => (job.url.clone(), Vec::new()),
    };
    let origin = origin(&url).to_owned();
    let mut redirects = 0;
    let reply = loop {
        // Credentials go only to the origin they were given for, never to a redirect target
        // elsewhere.
        let mut headers = if origin_matches(&url, &origin) {
            auth_headers.clone()
        } else {
            Vec::new()
        };
        headers.push((
            "accept".to_owned(),
            "application/vnd.aai.asyncapi+json, application/vnd.aai.asyncapi+yaml, application/json, application/yaml, text/yaml, */*;q=0.5".to_owned(),
        ));
        let reply = client::send(Method::Get, &url, &headers, Vec::new(), limits.max_bytes)
            .await
            .map_err(|e| call_error(e, redirects > 0))?;
        if !redirect::is_redirect(reply.status) {
            break reply;
        }
        if redirects == MAX_REDIRECTS {
            return Err(rules::too_many_redirects(&job.url));
        }
        let location = reply
            .header("location")
            .ok_or_else(|| format!("HTTP {} from {url} without a Location", reply.status))?;
        url = redirect::resolve(&url, location)?;
        redirects += 1;
    };
    if !(200..300).contains(&reply.status) {
        return Err(rules::http_status(reply.status, &url));
    }
    rules::check_content_type(reply.header("content-type"), &url)?;
    if reply.body.len() > limits.spec_max_bytes {
        return Err(rules::spec_too_large(
            reply.body.len(),
            limits.spec_max_bytes,
            &url,
        ));
    }
    let declared = job.format.map(|format| match format {
        FetchedFormat::Json => spec::SpecFormat::Json,
        FetchedFormat::Yaml => spec::SpecFormat::Yaml,
    });
    let parsed = spec::parse_bytes(&reply.body, declared)
        .map_err(|e| rules::invalid_document(&e.to_string(), &url))?;
    let format = match parsed.format {
        spec::SpecFormat::Json => FetchedFormat::Json,
        spec::SpecFormat::Yaml => FetchedFormat::Yaml,
    };
    // parse_bytes accepted it, so it is UTF-8; a byte-order mark is not part of the text.
    let text = String::from_utf8_lossy(&reply.body);
    Ok(FetchOutcome::Succeeded {
        data: text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned(),
        format,
    })
}

fn call_error(error: CallError, redirected: bool) -> String {
    match error {
        CallError::Denied { url } if redirected => format!(
            "the redirect goes to {url}, which the fetcher may not reach (fetch_allowed_hosts)"
        ),
        CallError::Denied { url } => {
            format!("the fetcher may not reach {url} (fetch_allowed_hosts)")
        }
        other => other.to_string(),
    }
}

/// `scheme://authority` of `url` (lower case scheme and host compare equal below).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

fn origin_matches(url: &str, origin_of_auth: &str) -> bool {
    origin(url).eq_ignore_ascii_case(origin_of_auth)
}
