//! Metric families as `hookline all` holds them: every service in one
//! registry, no clash between the families they share.

#[test]
fn every_service_registers_its_families_in_one_shared_registry() {
    let registry = hookline_runtime::metrics::new_registry();
    hookline_ingest::metrics::Metrics::register(&registry).expect("ingest");
    hookline_fanout::metrics::Metrics::register(&registry).expect("fanout");
    hookline_deliverer::metrics::Metrics::register(&registry).expect("deliverer");
    hookline_api::metrics::Metrics::register(&registry).expect("api");
    let text = hookline_runtime::metrics::encode(&registry);
    for service in ["ingest", "fanout", "deliverer", "api"] {
        assert!(
            text.contains(&format!("hookline_ready{{service=\"{service}\"}}")),
            "{service}"
        );
    }
}
