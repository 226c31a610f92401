//! What the registry tells its operators: logs and the access log,
//! Prometheus metrics, and push/delete events to webhooks.

pub mod access;
mod access_line;
pub mod logging;
pub mod metrics;
pub mod notify;
