//! The committed gRPC code is what `proto/etcd.proto` generates.
//!
//! The crate ships the Rust code generated from its schema so that building
//! it needs no protoc. This test generates the code again with a protobuf
//! compiler written in Rust (protox) and the same generator the build would
//! use, and fails when the committed file differs: edit the schema, then run
//! `WEFT_REGENERATE=1 cargo test -p weft-lease-etcd --test proto_fresh` and
//! commit the result.

use std::path::Path;

#[test]
fn the_committed_grpc_code_matches_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed_path = root.join("src/proto/etcdserverpb.rs");
    let out = tempfile::tempdir().expect("a temporary directory");

    let descriptors = protox::compile([root.join("proto/etcd.proto")], [root.join("proto")])
        .expect("proto/etcd.proto compiles");
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile_fds(descriptors)
        .expect("the generator runs");
    let fresh = std::fs::read_to_string(out.path().join("etcdserverpb.rs"))
        .expect("the generator wrote etcdserverpb.rs");

    if std::env::var_os("WEFT_REGENERATE").is_some() {
        std::fs::write(&committed_path, &fresh).expect("the committed file is writable");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with \
         `WEFT_REGENERATE=1 cargo test -p weft-lease-etcd --test proto_fresh`",
        committed_path.display()
    );
}
