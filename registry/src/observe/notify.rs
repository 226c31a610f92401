//! Push and delete events to webhooks, in the CNCF registry's notification
//! envelope (`application/vnd.docker.distribution.events.v1+json`), so
//! receivers written for it work unchanged.
//!
//! Events are written by the database in the transaction of each change
//! (see `storage` migration `0009_events.sql`). Each endpoint reads them in
//! order from its cursor, filters them (repository globs, actions), posts
//! a batch, and moves its cursor only once the endpoint answered 2xx: at
//! least once, in order, across restarts. A failed delivery is retried
//! with exponential backoff (1 s to 5 min). One node delivers to an
//! endpoint at a time (a lease); the queue keeps at most `max_age_secs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use storage::metadata::Event;
use storage::Registry;

pub const MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";
const BATCH: i64 = 100;

/// `[[notifications]]`: one webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// A name of your choosing: its cursor and its metrics' label.
    pub name: String,
    pub url: String,
    /// Headers sent with each delivery (an `Authorization`, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Repositories to tell of (globs, `*` any run); none: all.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// `push`, `delete`; none: both.
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    5
}

impl Endpoint {
    pub fn wants(&self, e: &Event) -> bool {
        (self.actions.is_empty() || self.actions.contains(&e.action))
            && (self.repositories.is_empty()
                || self
                    .repositories
                    .iter()
                    .any(|p| storage::lifecycle::glob(p, &e.repository)))
    }
}

/// The envelope of `events` as the CNCF registry sends it.
pub fn envelope(events: &[Event], source: &str, base_url: &str) -> serde_json::Value {
    let items: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let timestamp = humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(e.at_ms.max(0) as u64),
            )
            .to_string();
            let mut target = serde_json::json!({
                "mediaType": e.media_type,
                "size": e.size,
                "length": e.size,
                "digest": e.digest,
                "repository": e.repository,
                "url": format!("{base_url}/v2/{}/manifests/{}", e.repository, e.digest),
            });
            if let Some(t) = &e.tag {
                target["tag"] = t.clone().into();
            }
            serde_json::json!({
                "id": e.id.to_string(),
                "timestamp": timestamp,
                "action": e.action,
                "target": target,
                "actor": { "name": e.actor.clone().unwrap_or_default() },
                "source": { "addr": source },
            })
        })
        .collect();
    serde_json::json!({ "events": items })
}

/// Deliver to every endpoint, forever; and keep the queue bounded.
pub fn spawn(
    registry: Registry,
    endpoints: Vec<Endpoint>,
    source: String,
    base_url: String,
    max_age: Duration,
) {
    let names: Vec<String> = endpoints.iter().map(|e| e.name.clone()).collect();
    {
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match registry
                    .trim_events(&names, max_age.as_millis() as i64)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(events = n, "delivered or expired events forgotten"),
                    Err(e) => tracing::warn!(error = %e, "events could not be trimmed"),
                }
            }
        });
    }
    for endpoint in endpoints {
        let (registry, source, base_url) = (registry.clone(), source.clone(), base_url.clone());
        tokio::spawn(async move { deliver_forever(registry, endpoint, source, base_url).await });
    }
}

async fn deliver_forever(registry: Registry, endpoint: Endpoint, source: String, base_url: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(endpoint.timeout_secs))
        .build()
        .expect("an HTTP client");
    let mut backoff = Duration::from_secs(1);
    loop {
        let Ok(Some(lease)) = registry.try_notify_lease(&endpoint.name).await else {
            // Another node delivers (or the database is away): look again later.
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        };
        let outcome = deliver_while_leased(
            &registry,
            &endpoint,
            &client,
            &source,
            &base_url,
            &mut backoff,
        )
        .await;
        lease.release().await;
        if let Err(e) = outcome {
            tracing::warn!(endpoint = %endpoint.name, error = %e, "event delivery paused");
            tokio::time::sleep(backoff).await;
        }
    }
}

async fn deliver_while_leased(
    registry: &Registry,
    endpoint: &Endpoint,
    client: &reqwest::Client,
    source: &str,
    base_url: &str,
    backoff: &mut Duration,
) -> storage::Result<()> {
    let mut cursor = registry.event_cursor(&endpoint.name).await?;
    loop {
        let batch = registry.events_after(cursor, BATCH).await?;
        let Some(last) = batch.last().map(|e| e.id) else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let wanted: Vec<Event> = batch.into_iter().filter(|e| endpoint.wants(e)).collect();
        if !wanted.is_empty() {
            loop {
                match post(client, endpoint, &envelope(&wanted, source, base_url)).await {
                    Ok(()) => {
                        metrics::counter!("registry_events_delivered_total", "endpoint" => endpoint.name.clone())
                            .increment(wanted.len() as u64);
                        *backoff = Duration::from_secs(1);
                        break;
                    }
                    Err(why) => {
                        metrics::counter!("registry_event_delivery_failures_total", "endpoint" => endpoint.name.clone())
                            .increment(1);
                        tracing::warn!(endpoint = %endpoint.name, error = %why, retry_in = ?*backoff, "event delivery failed");
                        tokio::time::sleep(*backoff).await;
                        *backoff = (*backoff * 2).min(Duration::from_secs(300));
                    }
                }
            }
        }
        registry.set_event_cursor(&endpoint.name, last).await?;
        cursor = last;
    }
}

async fn post(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    body: &serde_json::Value,
) -> Result<(), String> {
    let mut req = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
        .body(body.to_string());
    for (k, v) in &endpoint.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, repo: &str) -> Event {
        Event {
            id: 7,
            action: action.into(),
            repository: repo.into(),
            digest: "sha256:ab".into(),
            tag: Some("v1".into()),
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            size: Some(500),
            actor: Some("ci".into()),
            at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn filters_and_the_cncf_envelope() {
        let ep = Endpoint {
            name: "ci".into(),
            url: "http://127.0.0.1:1/".into(),
            headers: BTreeMap::new(),
            repositories: vec!["team/*".into()],
            actions: vec!["push".into()],
            timeout_secs: 5,
        };
        assert!(ep.wants(&event("push", "team/app")));
        assert!(!ep.wants(&event("delete", "team/app")));
        assert!(!ep.wants(&event("push", "other/app")));
        let v = envelope(&[event("push", "team/app")], "node-1:5000", "http://reg");
        let e = &v["events"][0];
        assert_eq!(e["action"], "push");
        assert_eq!(e["id"], "7");
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(e["target"]["tag"], "v1");
        assert_eq!(e["target"]["repository"], "team/app");
        assert_eq!(
            e["target"]["url"],
            "http://reg/v2/team/app/manifests/sha256:ab"
        );
        assert_eq!(e["actor"]["name"], "ci");
    }
}
