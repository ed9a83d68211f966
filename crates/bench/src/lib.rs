//! Benchmarks that put two of weft's engines side by side (the lease stores
//! over etcd and Redis, each next to its raw client), kept apart so that no
//! engine depends on another. Run `cargo bench -p weft-bench`; the numbers
//! are in `docs/`.
