//! The command line's rough edges: the policy named by `--policy` or `INTERCEPT_POLICY` (for
//! launchers that own `-c` or `--`), a server command without `--`, `check` of a tool the
//! policy does not name, a closed output pipe, help text, shell completions, the policy
//! schema, and a start that fails before its server runs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use support::raw_session::{RawSession, is_denial, text};

/// `intercept` with no `INTERCEPT_*` variable from the environment the tests run in.
fn intercept() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("INTERCEPT_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run intercept")
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const EVERYTHING: &str = "node_modules/@modelcontextprotocol/server-everything/dist/index.js";

/// A policy for server-everything: `get-sum` denied, `get-env` hidden.
fn everything_policy(dir: &Path) -> PathBuf {
    let path = dir.join("p.yaml");
    std::fs::write(
        &path,
        "hide: [get-env]\ntools:\n  get-sum:\n    rules:\n      - action: deny\n        on_deny: no sums here\n",
    )
    .unwrap();
    path
}

/// The answer to request `id`, past the server's notifications.
fn answer(s: &RawSession, id: u64) -> Value {
    loop {
        let message = s.next();
        if message["id"] == id {
            return message;
        }
        assert!(
            message.get("id").is_none(),
            "an answer to another request: {message}"
        );
    }
}

/// Lists the tools, makes one allowed and one denied call, and ends the session.
fn allowed_and_denied(mut s: RawSession) {
    assert!(s.initialize().get("result").is_some());
    s.send(&[json!({"jsonrpc": "2.0", "method": "notifications/initialized"})]);
    s.send(&[json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})]);
    let listing = answer(&s, 1);
    let names: Vec<&str> = listing["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum"),
        "{names:?}"
    );
    assert!(!names.contains(&"get-env"), "{names:?}");
    s.send(&[json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}}})]);
    let echoed = answer(&s, 2);
    assert_eq!(text(&echoed), "Echo: hi", "{echoed}");
    s.send(&[json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "get-sum", "arguments": {"a": 1, "b": 2}}})]);
    let denied = answer(&s, 3);
    assert!(is_denial(&denied), "{denied}");
    assert!(text(&denied).contains("no sums here"), "{denied}");
    s.close_input();
    assert!(s.exit_status().success());
}

/// What the MCP Inspector CLI hands intercept (it consumes every `--` on its line): the
/// policy in the environment, the server command straight after intercept's options, with
/// arguments of its own that intercept must not read.
#[test]
fn with_the_policy_in_the_environment_the_server_command_needs_no_separator() {
    let dir = tempfile::tempdir().unwrap();
    let policy = everything_policy(dir.path());
    let mut cmd = intercept();
    cmd.env("INTERCEPT_POLICY", &policy)
        .args(["--state", "memory", "--no-audit", "--log-level", "error"])
        .arg("node")
        .arg(repo(EVERYTHING))
        // server-everything's transport argument, then one that is also an intercept option:
        // both are the server's.
        .args(["stdio", "--shadow"])
        .stderr(Stdio::null());
    allowed_and_denied(RawSession::spawn(cmd));
}

#[test]
fn policy_is_an_alias_of_config_for_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = everything_policy(dir.path());
    let mut cmd = intercept();
    cmd.arg("--policy")
        .arg(&policy)
        .args([
            "--state",
            "memory",
            "--no-audit",
            "--log-level",
            "error",
            "--",
        ])
        .arg("node")
        .arg(repo(EVERYTHING))
        .stderr(Stdio::null());
    allowed_and_denied(RawSession::spawn(cmd));
}

#[test]
fn subcommands_take_the_policy_as_policy_or_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let policy = everything_policy(dir.path());
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "hidden: [x]\n").unwrap();

    let out = run(intercept()
        .args(["check", "--tool", "get-sum", "--policy"])
        .arg(&policy));
    assert_eq!(
        text_of(&out.stdout),
        "deny (rule get-sum#0): no sums here\n"
    );
    let out = run(intercept()
        .env("INTERCEPT_POLICY", &policy)
        .args(["check", "--tool", "get-sum"]));
    assert_eq!(
        text_of(&out.stdout),
        "deny (rule get-sum#0): no sums here\n"
    );
    assert_eq!(out.status.code(), Some(1));
    // The command line wins over the environment.
    let allow_all = dir.path().join("allow.yaml");
    std::fs::write(&allow_all, "tools: {}\n").unwrap();
    let out = run(intercept()
        .env("INTERCEPT_POLICY", &policy)
        .args(["check", "--tool", "get-sum", "-c"])
        .arg(&allow_all));
    assert_eq!(text_of(&out.stdout), "allow\n");

    let out = run(intercept().args(["validate", "--policy"]).arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    let out = run(intercept().env("INTERCEPT_POLICY", &bad).arg("validate"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stdout).contains("unknown field \"hidden\""));
    // Files named on the command line are checked, and only they.
    let out = run(intercept()
        .env("INTERCEPT_POLICY", &bad)
        .arg("validate")
        .arg(&policy));
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out.stdout));
    assert_eq!(text_of(&out.stdout), "Policy file is valid.\n");

    let out = run(intercept().arg("validate"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text_of(&out.stderr),
        "Error: no policy file given: use -c FILE (or set INTERCEPT_POLICY)\n"
    );

    let out = run(intercept()
        .args(["replay", "--policy"])
        .arg(&policy)
        .arg(dir.path().join("none.jsonl")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text_of(&out.stderr).contains("cannot open"),
        "{}",
        text_of(&out.stderr)
    );
}

/// Every subcommand, run with `INTERCEPT_POLICY` as `value` (`None`: unset): what each prints
/// and its exit code must not depend on a variable it does not read, nor on one set empty.
fn every_subcommand(dir: &Path, policy: &Path, value: Option<&std::ffi::OsStr>) -> Vec<String> {
    let d = dir.display().to_string();
    let p = policy.display().to_string();
    let missing = dir.join("missing.jsonl").display().to_string();
    let lines: [&[&str]; 7] = [
        &["validate", &p],
        &["validate", "-c", &p],
        &["check", "-c", &p, "--tool", "get-sum"],
        &["status", "--audit-dir", &d],
        &["schema"],
        &["completions", "bash"],
        &["audit", "verify", &missing],
    ];
    lines
        .iter()
        .map(|args| {
            let mut cmd = intercept();
            if let Some(value) = value {
                cmd.env("INTERCEPT_POLICY", value);
            }
            let out = run(cmd.args(*args));
            let stderr = text_of(&out.stderr);
            assert!(
                !stderr.contains("a value is required"),
                "{args:?}: {stderr}"
            );
            // Only the start of long outputs (schema, completions): enough to tell them apart.
            let stdout: String = text_of(&out.stdout).chars().take(200).collect();
            format!("{args:?} -> {:?}\n{stdout}{stderr}", out.status.code())
        })
        .collect()
}

#[test]
fn an_empty_intercept_policy_is_unset_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let policy = everything_policy(dir.path());
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, "default: deny\n").unwrap();
    let unset = every_subcommand(dir.path(), &policy, None);
    assert!(unset[0].contains("Policy file is valid."), "{}", unset[0]);
    assert!(unset[2].contains("deny (rule get-sum#0)"), "{}", unset[2]);
    // Set empty, or to another file: a policy given on the command line is the one used.
    assert_eq!(
        every_subcommand(dir.path(), &policy, Some("".as_ref())),
        unset
    );
    assert_eq!(
        every_subcommand(dir.path(), &policy, Some(other.as_os_str())),
        unset
    );

    // Set empty, it names no policy.
    for args in [&["validate"][..], &["check", "--tool", "t"]] {
        let out = run(intercept().env("INTERCEPT_POLICY", "").args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text_of(&out.stderr),
            "Error: no policy file given: use -c FILE (or set INTERCEPT_POLICY)\n",
            "{args:?}"
        );
    }
    let out = run(intercept().env("INTERCEPT_POLICY", "").args([
        "--state",
        "memory",
        "--no-audit",
        "--",
        "node",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text_of(&out.stderr),
        "Error: a policy is required: intercept -c policy.yaml -- <server command> (or set INTERCEPT_POLICY)\n"
    );
    // Set to a file, it is the policy of a command that names none.
    let out = run(intercept()
        .env("INTERCEPT_POLICY", &other)
        .args(["check", "--tool", "t"]));
    assert_eq!(
        text_of(&out.stdout),
        "deny (rule (default deny)): Tool \"t\" is not permitted by policy\n"
    );
    let out = run(intercept().env("INTERCEPT_POLICY", &other).arg("validate"));
    assert_eq!(text_of(&out.stdout), "Policy file is valid.\n");
}

#[test]
fn a_server_command_without_separator_gets_the_line_to_type() {
    let dir = tempfile::tempdir().unwrap();
    let policy = everything_policy(dir.path());
    let p = policy.display().to_string();
    for flag in ["-c", "--config", "--policy"] {
        let out = run(intercept().args([flag, &p, "node", "srv.js", "--token", "s3cret"]));
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text_of(&out.stderr),
            format!(
                "Error: the server command must follow `--`, so that its arguments are never read as intercept's: intercept {flag} {p} -- node srv.js --token [REDACTED]\n"
            )
        );
        assert_eq!(text_of(&out.stdout), "");
    }
    // Also when the environment has a policy too: the one on the command line asks for `--`.
    let out = run(intercept()
        .env("INTERCEPT_POLICY", &policy)
        .args(["--state", "memory", "-c", &p, "srv"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text_of(&out.stderr).contains(&format!("intercept --state memory -c {p} -- srv")));
    // Without any policy, a word that is no command is clap's to report.
    let out = run(intercept().arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text_of(&out.stderr).contains("unexpected argument 'frobnicate'"));
}

#[test]
fn check_says_when_the_policy_names_no_such_tool() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "default: deny\ntools:\n  create_issue:\n    rules:\n      - rate_limit: 5/hour\n  'get_*': {}\n",
    )
    .unwrap();
    let check = |tool: &str, extra: &[&str]| {
        run(intercept()
            .args(["check", "--tool", tool, "-c"])
            .arg(&policy)
            .args(extra))
    };

    let out = check("create_isue", &[]);
    assert_eq!(out.status.code(), Some(1));
    // stdout keeps the decision line alone, for scripts.
    assert_eq!(
        text_of(&out.stdout),
        "deny (rule (default deny)): Tool \"create_isue\" is not permitted by policy\n",
    );
    assert_eq!(
        text_of(&out.stderr),
        "note: no tools key of the policy names \"create_isue\" (did you mean \"create_issue\"?); it is decided by the default (deny) alone\n"
    );
    let out = check("create_isue", &["--json"]);
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["decision"], "deny");
    assert!(text_of(&out.stderr).contains("did you mean \"create_issue\""));

    // Named exactly, or through a glob key: no note.
    for tool in ["create_issue", "get_user"] {
        let out = check(tool, &[]);
        assert_eq!(text_of(&out.stderr), "", "{tool}");
    }
    // Nothing close: the note without a guess, and what decides instead.
    let wildcard = dir.path().join("w.yaml");
    std::fs::write(
        &wildcard,
        "tools:\n  '*':\n    rules:\n      - rate_limit: 100/day\n",
    )
    .unwrap();
    let out = run(intercept()
        .args(["check", "--tool", "deploy", "-c"])
        .arg(&wildcard));
    assert_eq!(text_of(&out.stdout), "allow (rule *#0)\n");
    assert_eq!(
        text_of(&out.stderr),
        "note: no tools key of the policy names \"deploy\"; it is decided by the rules of \"*\" and the default (allow) alone\n"
    );
}

/// `intercept validate --json … | head -c1`: the reader stops after one byte.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_a_command_quietly_with_its_own_status() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    // Many errors: more output than a pipe holds, so writing meets the closed pipe.
    let body: String = (0..3000).map(|i| format!("unknown_{i}: x\n")).collect();
    std::fs::write(&bad, body).unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "tools: {}\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_intercept");
    for (args, status) in [
        (format!("validate --json {}", bad.display()), 1),
        (format!("validate {}", bad.display()), 1),
        (
            format!("validate --json {} {}", good.display(), good.display()),
            0,
        ),
        ("schema".to_string(), 0),
        ("completions bash".to_string(), 0),
    ] {
        // The shell reports intercept's own status (PIPESTATUS) and stderr; `head` reads
        // one byte and closes the pipe; `sleep` makes sure it is closed before the rest
        // is written.
        let script = format!(
            "{{ sleep 0.2; exec \"$0\" {args}; }} 2>\"$1\" | head -c1 >/dev/null; echo \"${{PIPESTATUS[0]}}\""
        );
        let err_file = dir.path().join("stderr");
        let out = Command::new("bash")
            .args(["-c", &script, bin])
            .arg(&err_file)
            .output()
            .unwrap();
        let stderr = std::fs::read_to_string(&err_file).unwrap();
        assert_eq!(
            text_of(&out.stdout).trim(),
            status.to_string(),
            "{args}: {stderr}"
        );
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
            "{args}: {stderr}"
        );
    }
}

/// clap writes `[env: NAME=]` for an unset variable and `[env: NAME=value]` for a set one.
#[test]
fn help_names_environment_variables_without_a_value() {
    let helps: [&[&str]; 10] = [
        &["--help"],
        &["validate", "--help"],
        &["check", "--help"],
        &["scan", "--help"],
        &["init", "--help"],
        &["replay", "--help"],
        &["status", "--help"],
        &["audit", "verify", "--help"],
        &["completions", "--help"],
        &["schema", "--help"],
    ];
    for set in [false, true] {
        for args in helps {
            let mut cmd = intercept();
            if set {
                cmd.env("INTERCEPT_IDENTITY", "alice-secret")
                    .env("INTERCEPT_LOG_LEVEL", "debug");
            }
            let out = run(cmd.args(args));
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            let help = text_of(&out.stdout);
            assert!(!help.contains("=]"), "{args:?}: {help}");
            assert!(!help.contains("alice-secret"), "{args:?}: {help}");
        }
    }
    // Help is wrapped to the terminal's width: compare words, not lines.
    let help = text_of(&run(intercept().arg("--help")).stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for env in [
        "[env: INTERCEPT_POLICY]",
        "[env: INTERCEPT_IDENTITY]",
        "[env: INTERCEPT_STATE_DSN]",
        "[alias: --policy]",
    ] {
        assert!(help.contains(env), "{env}: {help}");
    }
}

#[test]
fn completion_scripts_know_every_command() {
    let commands = [
        "validate",
        "check",
        "audit",
        "scan",
        "init",
        "replay",
        "status",
        "completions",
        "schema",
    ];
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(intercept().args(["completions", shell]));
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text_of(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {script}");
        for c in commands {
            assert!(script.contains(c), "{shell} lacks {c}");
        }
        // Options, as each shell spells them (fish: `-l policy`).
        assert!(
            (script.contains("--policy") || script.contains("-l policy"))
                && script.contains("state-fail-mode"),
            "{shell}"
        );
    }
    let out = run(intercept().args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text_of(&out.stderr).contains("invalid value 'tcsh'"));
}

#[cfg(unix)]
#[test]
fn the_bash_completion_script_is_valid_shell_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("intercept.bash");
    std::fs::write(
        &script,
        run(intercept().args(["completions", "bash"])).stdout,
    )
    .unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text_of(&syntax.stderr));
    // Loaded and asked, it completes a subcommand and an option.
    let ask = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source \"$0\"; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _intercept intercept \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1
        );
        let out = Command::new("bash")
            .args(["-c", &probe])
            .arg(&script)
            .output()
            .unwrap();
        text_of(&out.stdout)
    };
    assert!(ask("intercept val").lines().any(|l| l == "validate"));
    assert!(ask("intercept check --too").lines().any(|l| l == "--tool"));
}

#[test]
fn the_shipped_schema_is_the_one_intercept_prints() {
    let out = run(intercept().arg("schema"));
    assert_eq!(out.status.code(), Some(0));
    let printed = text_of(&out.stdout);
    let shipped = std::fs::read_to_string(repo("schema/policy.schema.json")).unwrap();
    assert!(
        printed == shipped,
        "schema/policy.schema.json is out of date: run `cargo run -- schema > schema/policy.schema.json`"
    );
    let schema: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(schema["title"], "Intercept policy");
    assert_eq!(schema["additionalProperties"], false);
    // Shipped in the npm package.
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("package.json")).unwrap()).unwrap();
    assert!(
        package["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "schema/" || f == "schema/policy.schema.json"),
        "{}",
        package["files"]
    );
}

/// A start that fails because its server cannot run creates no audit log; one that fails
/// later (a missing `#!` interpreter) leaves a complete, verifiable log saying why.
#[cfg(unix)]
#[test]
fn a_failed_start_leaves_no_empty_audit_log() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "tools: {}\n").unwrap();
    let events = dir.path().join("events");
    let start = |server: &Path| {
        run(intercept()
            .arg("-c")
            .arg(&policy)
            .args(["--state", "memory", "--log-level", "error", "--audit-dir"])
            .arg(&events)
            .arg("--")
            .arg(server))
    };

    let out = start(Path::new("no-such-command-xyz"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text_of(&out.stderr),
        "Error: cannot find the upstream command \"no-such-command-xyz\" on PATH\n"
    );
    assert!(
        !events.exists(),
        "{:?}",
        std::fs::read_dir(&events).map(|d| d.count())
    );
    // An explicit --audit-log is not created either.
    let log = dir.path().join("a.jsonl");
    let out = run(intercept()
        .arg("-c")
        .arg(&policy)
        .args(["--state", "memory", "--log-level", "error", "--audit-log"])
        .arg(&log)
        .args(["--", "no-such-command-xyz"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!log.exists());

    let script = dir.path().join("server.sh");
    std::fs::write(&script, "#!/no/such/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = start(&script);
    assert_eq!(out.status.code(), Some(2));
    let logs: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let lines: Vec<Value> = std::fs::read_to_string(&logs[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["startup", "shutdown", "seal"]);
    assert_eq!(lines[1]["exit_code"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot start the upstream command"),
        "{}",
        lines[1]
    );
    let verify = run(intercept().args(["audit", "verify"]).arg(&logs[0]));
    assert_eq!(verify.status.code(), Some(0), "{}", text_of(&verify.stdout));
}
