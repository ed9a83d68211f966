//! The in-memory store passes the CasStore conformance suite (paused time).

use std::sync::Arc;

use weft_lease::MemoryStore;
use weft_test::cas;

#[tokio::test(start_paused = true)]
async fn memory_store_passes_the_conformance_suite() {
    cas::conformance(Arc::new(MemoryStore::new()), cas::Options::default()).await;
}

#[tokio::test(start_paused = true)]
async fn memory_store_with_whole_second_ttls_passes_too() {
    let limits = weft_lease::Limits {
        ttl_granularity: std::time::Duration::from_secs(1),
        min_ttl: std::time::Duration::from_secs(2),
        ..weft_lease::CasStore::limits(&MemoryStore::new())
    };
    cas::conformance(
        Arc::new(MemoryStore::with_limits(limits).unwrap()),
        cas::Options::default(),
    )
    .await;
}
