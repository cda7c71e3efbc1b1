//! One fetch: credentials, the request, redirects, limits, and validation of the document.

use std::time::Duration;

use eventplane_core::{KvStore, TenantId};
use eventplane_outbound::fetch::{self as rules, FetchedFormat};
use eventplane_outbound::redirect::{self, MAX_REDIRECTS};
use eventplane_outbound::{FetchJob, FetchLimits, FetchMode, FetchOutcome, RequestAuth};
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
    let body = get(store, tenant, job.auth.as_ref(), &job.url, limits).await?;
    if body.len() > limits.spec_max_bytes {
        return Err(rules::spec_too_large(
            body.len(),
            limits.spec_max_bytes,
            &job.url,
        ));
    }
    let declared = job.format.map(|format| match format {
        FetchedFormat::Json => spec::SpecFormat::Json,
        FetchedFormat::Yaml => spec::SpecFormat::Yaml,
    });
    // The files the document refers to come through the same fetcher, allow-list, credentials
    // (on the document's origin only), deadline (the whole job's) and size limits; together
    // they may hold spec_max_bytes.
    let files = JobFiles {
        store,
        tenant,
        job,
        limits,
    };
    let bundle_limits = spec::BundleLimits::with_total_bytes(limits.spec_max_bytes);
    let bundled = spec::bundle(&job.url, &body, declared, &files, bundle_limits)
        .await
        .map_err(|e| rules::invalid_document(&e.to_string(), &job.url))?;
    if bundled.text.len() > limits.spec_max_bytes {
        return Err(rules::spec_too_large(
            bundled.text.len(),
            limits.spec_max_bytes,
            &job.url,
        ));
    }
    let parsed = spec::parse(&bundled.text, Some(bundled.format))
        .map_err(|e| rules::invalid_document(&e.to_string(), &job.url))?;
    let format = match parsed.format {
        spec::SpecFormat::Json => FetchedFormat::Json,
        spec::SpecFormat::Yaml => FetchedFormat::Yaml,
    };
    Ok(FetchOutcome::Succeeded {
        data: bundled.text,
        format,
    })
}

/// The files a job's document refers to, fetched like the document.
struct JobFiles<'a> {
    store: &'a dyn KvStore,
    tenant: &'a TenantId,
    job: &'a FetchJob,
    limits: FetchLimits,
}

impl spec::Files for JobFiles<'_> {
    async fn load(&self, url: &str) -> Result<Vec<u8>, String> {
        // The job's credentials go only to the origin they were given for.
        let auth = self
            .job
            .auth
            .as_ref()
            .filter(|_| origin_matches(url, origin(&self.job.url)));
        get(self.store, self.tenant, auth, url, self.limits).await
    }
}

/// The body at `url`, fetched with `auth`, following redirects: a 2xx answer of acceptable
/// content, at most `fetch_max_bytes` long.
async fn get(
    store: &dyn KvStore,
    tenant: &TenantId,
    auth: Option<&RequestAuth>,
    start: &str,
    limits: FetchLimits,
) -> Result<Vec<u8>, String> {
    let (mut url, auth_headers) = match auth {
        Some(auth) => {
            let authorized = client::authorize(store, tenant, auth, start).await?;
            (authorized.url, authorized.headers)
        }
        None => (start.to_owned(), Vec::new()),
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
            return Err(rules::too_many_redirects(start));
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
    Ok(reply.body)
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
