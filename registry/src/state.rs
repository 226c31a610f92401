//! What every handler shares: the domain service, the gate, the
//! pull-through caches and the few settings handlers read.

use crate::gate::Gate;
use std::sync::Arc;
use storage::Registry;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub gate: Arc<Gate>,
    /// Lifetime of a web sign-in, seconds.
    pub session_ttl: u64,
    /// Defaults of collections asked for through the API.
    pub gc: crate::config::GcConfig,
    /// Pull-through cache rules (`[[cache]]`).
    pub proxy: Arc<crate::proxy::Proxy>,
    /// `[ecr]`: the ECR API's identifiers and path.
    pub ecr: Arc<crate::config::EcrConfig>,
    /// The URL clients reach the registry at, when configured.
    pub external_url: Option<String>,
}
