fn main() {
    // The napi link flags (`-undefined dynamic_lookup` on macOS) are only wanted for the
    // Node addon; the plain library, the binary and the tests link normally.
    if std::env::var_os("CARGO_FEATURE_NODE").is_some() {
        napi_build::setup();
    }
}
