//! The gateway file as a user checks it: `intercept validate --gateway` and
//! `intercept schema --gateway`, run as the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// intercept, run in `dir`, with none of the caller's INTERCEPT_ variables.
fn intercept(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("INTERCEPT_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run intercept")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// The token a URL server's header is read from: it must never be printed.
const TOKEN: &str = "Bearer s3cret-gateway-token";

const VALID: &str = "\
version: \"1\"
listen: { bind: 127.0.0.1, port: 8080 }
servers:
  files:
    command: npx
    args: [-y, \"@modelcontextprotocol/server-filesystem\", /srv, --api-key, hunter2hunter2]
    env_from: { FS_TOKEN: GATEWAY_TEST_TOKEN }
    policy: policies/files.yaml
  memory:
    command: npx
    args: [-y, \"@modelcontextprotocol/server-memory\"]
    policy:
      default: deny
      tools:
        read_graph: {}
        create_entities:
          rules:
            - rate_limit: 10/minute
            - name: no bulk
              conditions:
                - path: args.entities
                  op: exists
                  value: true
  remote:
    url: https://mcp.example.com/mcp
    headers: { X-Team: platform }
    headers_from_env: { Authorization: GATEWAY_TEST_TOKEN }
    policy: policies/files.yaml
";

const FILES_POLICY: &str = "tools:\n  write_file:\n    rules:\n      - action: deny\n";

#[test]
fn a_valid_file_lists_its_servers_sources_policies_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gateway.yaml", VALID);
    write(dir.path(), "policies/files.yaml", FILES_POLICY);
    let out = run(intercept(dir.path())
        .args(["validate", "--gateway", "gateway.yaml"])
        .env("GATEWAY_TEST_TOKEN", TOKEN));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        words(lines[0]),
        ["SERVER", "SOURCE", "POLICY", "TOOL", "RULES"]
    );
    assert_eq!(
        words(lines[1]),
        [
            "files",
            "command:",
            "npx",
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/srv",
            "--api-key",
            "[REDACTED]",
            "policies/files.yaml",
            "1"
        ]
    );
    assert_eq!(
        words(lines[2]),
        [
            "memory",
            "command:",
            "npx",
            "-y",
            "@modelcontextprotocol/server-memory",
            "inline",
            "2"
        ]
    );
    assert_eq!(
        words(lines[3]),
        [
            "remote",
            "url:",
            "https://mcp.example.com/mcp",
            "policies/files.yaml",
            "1"
        ]
    );
    assert_eq!(lines[4], "Gateway file is valid: 3 servers.");
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        !stdout.contains("s3cret") && !stdout.contains("hunter2"),
        "{stdout}"
    );

    let out = run(intercept(dir.path())
        .args(["validate", "--gateway", "gateway.yaml", "--json"])
        .env("GATEWAY_TEST_TOKEN", TOKEN));
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
    let doc: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["errors"], serde_json::json!([]));
    let servers = doc["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers[0]["name"], "files");
    assert_eq!(servers[0]["source"]["kind"], "command");
    assert_eq!(servers[0]["source"]["env"], serde_json::json!(["FS_TOKEN"]));
    assert_eq!(servers[0]["policy"]["file"], "policies/files.yaml");
    assert_eq!(servers[1]["policy"]["inline"], true);
    assert_eq!(servers[1]["tool_rules"], 2);
    assert_eq!(servers[2]["source"]["kind"], "url");
    assert_eq!(
        servers[2]["source"]["headers"],
        serde_json::json!(["X-Team", "Authorization"])
    );
    // One file, one text, one hash, whichever server names it.
    assert_eq!(servers[0]["policy_sha256"], servers[2]["policy_sha256"]);
    assert_eq!(servers[0]["policy_sha256"].as_str().unwrap().len(), 64);
}

/// Each class of error, all in one file: every one is reported, in order, with its file,
/// line and column, and nothing else is.
#[test]
fn every_error_is_listed_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "policies/broken.yaml",
        "tools:\n  t:\n    rules:\n      - action: alow\n",
    );
    write(
        dir.path(),
        "gateway.yaml",
        "\
servres: {}
listen: { bind: localhost, port: 0 }
servers:
  Files:
    command: npx
    policy: { tools: {} }
  both:
    command: npx
    url: https://mcp.example.com/mcp
    policy: { tools: {} }
  neither:
    policy: { tools: {} }
  mixed:
    url: https://mcp.example.com/mcp
    env: { A: b }
    policy: { tools: {} }
  ftp:
    url: ftp://files.example.com/
    policy: { tools: {} }
  nopolicy:
    command: npx
  typo:
    command: npx
    polcy: { tools: {} }
  unset:
    url: https://mcp.example.com/mcp
    headers_from_env: { Authorization: GATEWAY_TEST_UNSET }
    policy: { tools: {} }
  args:
    command: npx
    args: -y server
    policy: policies/missing.yaml
  inline:
    command: npx
    policy:
      hidden: [x]
      tools:
        t:
          rules:
            - action: alow
  broken:
    command: npx
    policy: policies/broken.yaml
  broken-too:
    command: npx
    policy: policies/broken.yaml
  secret:
    url: https://mcp.example.com/mcp
    headers_from_env: { Authorization: Bearer s3cret }
    headers: { X-Team: platform, x-team: ops }
    policy: { tools: {} }
  missing-too:
    command: npx
    policy: policies/missing.yaml
",
    );
    let out = run(intercept(dir.path())
        .args(["validate", "--gateway", "gateway.yaml"])
        .env_remove("GATEWAY_TEST_UNSET"));
    assert_eq!(out.status.code(), Some(1));
    let expected = [
        r#"gateway.yaml:1:1: unknown field "servres" (did you mean "servers"?)"#,
        r#"gateway.yaml:2:17: listen.bind: "localhost" is not an IP address: write one such as 127.0.0.1, ::1 or 0.0.0.0 (names are not resolved)"#,
        "gateway.yaml:2:34: listen.port: 0 is not a port: write a number from 1 to 65535",
        r#"gateway.yaml:4:3: servers.Files: "Files" cannot be a server name: a name is lowercase letters, digits, "_" and "-", starting with a letter or digit (it is the <name> of the path /servers/<name>/mcp), e.g. "files""#,
        "gateway.yaml:9:10: servers.both: a server has either `command` (a program intercept starts) or `url` (a remote server), not both",
        "gateway.yaml:11:3: servers.neither: the server needs `command` (a program intercept starts) or `url` (a remote server)",
        r#"gateway.yaml:15:5: servers.mixed: "env" is for servers with `command`, and this one has `url`"#,
        r#"gateway.yaml:18:10: servers.ftp.url: the scheme "ftp" is not supported: a server URL starts with http:// or https://"#,
        "gateway.yaml:20:3: servers.nopolicy: the server has no policy: name a policy file (`policy: policies/NAME.yaml`, relative to this file) or write one inline; `policy: {tools: {}}` allows every call on purpose",
        r#"gateway.yaml:24:5: servers.typo: unknown field "polcy" (did you mean "policy"?)"#,
        "gateway.yaml:27:40: servers.unset.headers_from_env.Authorization: the environment variable GATEWAY_TEST_UNSET is not set: set it where intercept runs, or remove this entry",
        r#"gateway.yaml:31:11: servers.args.args: value must be a list of arguments, got "-y server": write one argument per item, e.g. [-y, my-server]"#,
        "gateway.yaml:32:13: servers.args.policy: cannot read the policy file policies/missing.yaml: No such file or directory (os error 2) (a relative path is read from the gateway file's directory)",
        r#"gateway.yaml:36:7: servers.inline.policy: unknown field "hidden" (did you mean "hide"?)"#,
        r#"gateway.yaml:40:23: servers.inline.policy.tools.t.rules[0]: action must be "evaluate", "allow", "deny" or "require_approval", got "alow""#,
        "gateway.yaml:49:40: servers.secret.headers_from_env.Authorization: the value is not an environment variable name (letters, digits and _, e.g. API_TOKEN): name the variable that holds the value, and set that variable where intercept runs (the value is not shown)",
        "gateway.yaml:50:34: servers.secret.headers: the header x-team is already set on line 50: set it in `headers` or in `headers_from_env`, once",
        // An unreadable file is told at each `policy:` that names it.
        "gateway.yaml:54:13: servers.missing-too.policy: cannot read the policy file policies/missing.yaml: No such file or directory (os error 2) (a relative path is read from the gateway file's directory)",
        // A policy file's errors are its own, with its name; listed once however many
        // servers name it.
        r#"policies/broken.yaml:4:17: tools.t.rules[0]: action must be "evaluate", "allow", "deny" or "require_approval", got "alow""#,
    ];
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
    assert_eq!(
        text(&out.stderr),
        format!(
            "gateway file validation failed with {} error(s)\n",
            expected.len()
        )
    );

    // The same errors as JSON, each with its file, path, line and column.
    let out = run(intercept(dir.path()).args(["validate", "--gateway", "gateway.yaml", "--json"]));
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), expected.len());
    assert_eq!(errors[1]["file"], "gateway.yaml");
    assert_eq!(errors[1]["path"], "listen.bind");
    assert_eq!(
        (errors[1]["line"].as_u64(), errors[1]["column"].as_u64()),
        (Some(2), Some(17))
    );
    assert_eq!(errors.last().unwrap()["file"], "policies/broken.yaml");
}

#[test]
fn a_file_that_is_not_a_gateway_file_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let check = |body: &str, expected: &str| {
        write(dir.path(), "g.yaml", body);
        let out = run(intercept(dir.path()).args(["validate", "--gateway", "g.yaml"]));
        assert_eq!(out.status.code(), Some(1), "{body}");
        assert_eq!(text(&out.stdout), format!("{expected}\n"), "{body}");
    };
    check(
        "",
        "g.yaml:1:1: the gateway file is empty: list the servers under `servers:` (see docs/gateway-file.md)",
    );
    check(
        "- a\n",
        "g.yaml:1:1: the gateway file must be a mapping (with a `servers:` key), got a list",
    );
    check(
        "servers: {}\n",
        "g.yaml:1:10: servers: no server is listed: give each a name, a `command` or a `url`, and a `policy`",
    );
    check(
        "description: nothing yet\n",
        "g.yaml:1:1: the gateway file has no `servers:` key: list at least one server under it",
    );
    check(
        "servers:\n  a:\n    command: npx\n    policy: { tools: {} }\n---\nservers: {}\n",
        "g.yaml:5:1: invalid YAML: a gateway file must hold exactly one YAML document",
    );
    check(
        "servers:\n  a: [\n",
        "g.yaml:3:1: invalid YAML: while parsing a node, did not find expected node content",
    );

    // A file that cannot be read at all.
    let out = run(intercept(dir.path()).args(["validate", "--gateway", "missing.yaml"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "missing.yaml: reading gateway file: No such file or directory (os error 2)\n"
    );

    // The gateway file is bounded as a policy file is.
    let big = format!("# {}\n", "x".repeat(8 * 1024 * 1024));
    write(dir.path(), "big.yaml", &big);
    let out = run(intercept(dir.path()).args(["validate", "--gateway", "big.yaml"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "big.yaml:1:1: the gateway file is larger than 8388608 bytes (8 MiB), the most it may hold\n"
    );
}

#[test]
fn gateway_and_policy_files_are_not_checked_together() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", "tools: {}\n");
    let out = run(intercept(dir.path()).args(["validate", "--gateway", "g.yaml", "-c", "p.yaml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_shipped_example_validates() {
    let example = repo("examples/gateway.yaml");
    let out = run(intercept(&repo(""))
        .args(["validate", "--gateway", "examples/gateway.yaml"])
        .env("GITHUB_AUTH", TOKEN));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.ends_with("Gateway file is valid: 3 servers.\n"),
        "{stdout}"
    );
    for name in ["files", "memory", "github"] {
        assert!(stdout.lines().any(|l| l.starts_with(name)), "{stdout}");
    }

    // Without its token, the error points at the variable's name in the file.
    let out = run(intercept(&repo(""))
        .args(["validate", "--gateway", "examples/gateway.yaml"])
        .env_remove("GITHUB_AUTH"));
    assert_eq!(out.status.code(), Some(1));
    let source = std::fs::read_to_string(example).unwrap();
    let (line, at) = source
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(": GITHUB_AUTH").map(|c| (i + 1, c + 3)))
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "examples/gateway.yaml:{line}:{at}: servers.github.headers_from_env.Authorization: the environment variable GITHUB_AUTH is not set: set it where intercept runs, or remove this entry\n"
        )
    );
}

#[test]
fn the_shipped_gateway_schema_is_the_one_intercept_prints() {
    let out = run(intercept(&repo("")).args(["schema", "--gateway"]));
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    let shipped = std::fs::read_to_string(repo("schema/gateway.schema.json")).unwrap();
    assert!(
        printed == shipped,
        "schema/gateway.schema.json is out of date: run `cargo run -- schema --gateway > schema/gateway.schema.json`"
    );
    let schema: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(schema["title"], "Intercept gateway");
    assert_eq!(schema["additionalProperties"], false);
    // Not the policy's.
    let policy = run(intercept(&repo("")).arg("schema"));
    assert_ne!(text(&policy.stdout), printed);
}
