//! The Go MCP server of `tests/fixtures/go-server`, built once per test binary. It starts in
//! a few milliseconds, so tests that start many servers use it. Go (Debian's `golang-go`) is
//! installed by `.ci/run`; without it these tests fail rather than pass untested.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let out = tmp.join("go-mcp-server");
            let status = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-server/main.go"))
                .env("GO111MODULE", "off")
                .env("GOCACHE", tmp.join("go-cache"))
                .status()
                .expect(
                    "the Go toolchain (`go`, Debian package golang-go) is needed for these tests",
                );
            assert!(status.success(), "go build failed");
            out
        })
        .clone()
}
