//! The registry each process exposes and its text encoding.

use prometheus::{Encoder, Registry, TextEncoder};

/// A registry with the process collector (CPU, RSS, fds) already in it.
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    registry
}

/// The Prometheus text exposition (not OpenMetrics).
pub fn encode(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}
