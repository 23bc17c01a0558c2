fn main() {
    // Without a rerun-if directive cargo reruns this script, and so rebuilds the crate, when any
    // file of the package changes (docs, tests, scripts); it only depends on itself and the
    // `node` feature, which cargo tracks.
    println!("cargo::rerun-if-changed=build.rs");
    // The napi link flags (`-undefined dynamic_lookup` on macOS) are only wanted for the
    // Node addon; the plain library, the binary and the tests link normally.
    if std::env::var_os("CARGO_FEATURE_NODE").is_some() {
        napi_build::setup();
    }
}
