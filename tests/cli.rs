//! The `intercept` binary as a user runs it: output, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn intercept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intercept"))
        .args(args)
        .output()
        .expect("run intercept")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn version_and_help() {
    let out = intercept(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("intercept {}", intercept::VERSION)
    );

    let out = intercept(&[]);
    assert!(
        out.status.success(),
        "bare intercept prints help and succeeds"
    );
    let help = text(&out.stdout);
    assert!(
        help.contains("validate") && help.contains("check"),
        "{help}"
    );

    let out = intercept(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument 'frobnicate'"));
}

#[test]
fn validate_prints_valid_or_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yaml",
        "tools:\n  t:\n    rules:\n      - action: allow\n        rate_limit: {max: 30, window: 60}\n",
    );
    let out = intercept(&["validate", "-c", &good]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "Policy file is valid.\n");

    let bad = write(
        dir.path(),
        "bad.yaml",
        "version: \"2\"\nhidden: [x]\ntools:\n  t:\n    rules:\n      - action: evaluate\n",
    );
    let out = intercept(&["validate", "-c", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{bad}:1:10: version must be \"1\", got \"2\"\n\
             {bad}:2:1: unknown field \"hidden\" (did you mean \"hide\"?)\n\
             {bad}:6:9: tools.t.rules[0]: evaluate rules must have at least one condition\n"
        )
    );
    assert_eq!(
        text(&out.stderr),
        "policy validation failed with 3 error(s)\n"
    );

    let out = intercept(&[
        "validate",
        "-c",
        &dir.path().join("missing.yaml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("reading config file"));

    // Several files at once, and JSON for scripts.
    let out = intercept(&["validate", "--json", &good, &bad]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["files"][0]["valid"], true);
    assert_eq!(doc["files"][1]["errors"][2]["path"], "tools.t.rules[0]");
    assert_eq!(doc["files"][1]["errors"][2]["line"], 6);
}

/// `intercept` with at most 1 GiB of address space, so that a policy that defeats the
/// loader's limits fails this test instead of exhausting the machine.
#[allow(unsafe_code)]
fn intercept_in_a_gib(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
    cmd.args(args);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit only changes this child's own limit; it allocates nothing and
        // is async-signal-safe, as a pre_exec closure must be.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1 << 30,
                    rlim_max: 1 << 30,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().expect("run intercept")
}

#[test]
fn validate_refuses_an_alias_bomb_with_its_position() {
    let bomb = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alias-bomb.yaml")
        .display()
        .to_string();
    let out = intercept_in_a_gib(&["validate", "-c", &bomb]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{bomb}:7:8: aliases repeat more than 100000 nodes in all, the most a policy may (this guards against alias bombs): write the repeated parts out or use fewer aliases\n"
        )
    );

    // An over-size file is refused the same way, with its size limit.
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), "big.yaml", &"# padding\n".repeat(900_000));
    let out = intercept_in_a_gib(&["validate", "-c", &big]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{big}:1:1: the policy is larger than 8388608 bytes (8 MiB), the most a policy file may hold\n"
        )
    );
}

#[test]
fn check_denies_a_value_a_negative_operator_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "p.yaml",
        "tools:\n  deploy:\n    rules:\n      - name: not prod\n        conditions: [{path: args.env, op: not_in, value: [prod]}]\n",
    );
    let run = |args: &str| intercept(&["check", "-c", &policy, "--tool", "deploy", "--args", args]);
    assert_eq!(run(r#"{"env":"dev"}"#).status.code(), Some(0));
    for args in [
        r#"{"env":"prod"}"#,
        r#"{"env":null}"#,
        r#"{"env":["prod"]}"#,
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args}");
        assert_eq!(
            text(&out.stdout),
            "deny (rule not prod): Denied by rule \"not prod\"\n",
            "{args}"
        );
    }
}

#[test]
fn check_dry_runs_calls_and_exits_by_decision() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "p.yaml",
        "tools:\n  create_issue:\n    rules:\n      - name: hourly\n        rate_limit: 2/hour\n      - name: no prod\n        conditions: [{path: args.repo, op: neq, value: prod}]\n        on_deny: \"Not in prod\"\n",
    );
    let out = intercept(&[
        "check",
        "-c",
        &policy,
        "--tool",
        "create_issue",
        "--args",
        r#"{"repo":"dev"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "allow (rule hourly)\n");

    // A tool no rule applies to: allowed by the policy's default, and said so.
    let out = intercept(&["check", "-c", &policy, "--tool", "list_issues", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["decision"], "allow");
    assert_eq!(json["reason"], "default_allow");
    assert!(json.get("rule").is_none(), "{json}");

    let out = intercept(&[
        "check",
        "-c",
        &policy,
        "--tool",
        "create_issue",
        "--args",
        r#"{"repo":"prod"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "deny (rule no prod): Not in prod\n");

    let out = intercept(&[
        "check",
        "-c",
        &policy,
        "--tool",
        "create_issue",
        "--args",
        r#"{"repo":"dev"}"#,
        "--repeat",
        "3",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["decision"], "allow");
    assert_eq!(lines[2]["decision"], "deny");
    assert_eq!(lines[2]["reason"], "rate_limit");
    assert_eq!(lines[2]["rule"], "hourly");
    assert_eq!(
        lines[2]["message"],
        "Rate limit of 2 per hour reached. Try again later."
    );
    assert!(lines[2]["retryAfterSeconds"].as_u64().unwrap() <= 3600);

    let out = intercept(&[
        "check",
        "-c",
        &policy,
        "--tool",
        "create_issue",
        "--args",
        "not json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--args is not valid JSON"));

    let bad = write(dir.path(), "bad.yaml", "tools: [x]\n");
    let out = intercept(&["check", "-c", &bad, "--tool", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.yaml:1:8: tools: value must be a mapping"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_never_consumes_quota_in_a_shared_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "p.yaml",
        "tools:\n  t:\n    rules:\n      - rate_limit: 1/day\n",
    );
    let state = format!("sqlite:{}", dir.path().join("s.sqlite").display());
    for _ in 0..3 {
        let out = intercept(&["check", "-c", &policy, "--tool", "t", "--state", &state]);
        assert_eq!(text(&out.stdout), "allow (rule t#0)\n");
    }
    let out = intercept(&[
        "check",
        "-c",
        &policy,
        "--tool",
        "t",
        "--state",
        "mongodb://nowhere",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid state setting"));
}

#[test]
fn audit_flags_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.yaml", "tools: {}\n");
    let events = dir.path().join("events").display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["-c", &policy, "--state", "memory", "--audit-dir", &events];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "no-such-command-xyz"]);
        intercept(&args)
    };
    let out = run(&["--audit-retention", "7w"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --audit-retention \"7w\""));
    let out = run(&["--no-audit", "--audit-required"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"));
}

#[test]
fn status_of_an_empty_audit_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = intercept(&["status", "--audit-dir", &d]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("No event data found in {d}\n"));
    let out = intercept(&["status", "--audit-dir", &d, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["files"], 0);
}

/// A start-up error is printed once, with its cause once, and says what is wrong.
#[test]
fn a_server_command_that_cannot_run_is_reported_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.yaml", "tools: {}\n");
    let plain_file = write(dir.path(), "server.py", "print('hi')\n");
    let folder = dir.path().display().to_string();
    let missing = dir.path().join("missing").display().to_string();
    let start = |server: &str| {
        intercept(&[
            "-c",
            &policy,
            "--no-audit",
            "--state",
            "memory",
            "--log-level",
            "error",
            "--",
            server,
        ])
    };
    let mut cases = vec![
        (
            folder.clone(),
            format!("Error: cannot start the upstream command \"{folder}\": it is a directory\n"),
        ),
        (
            missing.clone(),
            format!(
                "Error: cannot start the upstream command \"{missing}\": there is no such file\n"
            ),
        ),
        (
            "no-such-command-xyz".to_string(),
            "Error: cannot find the upstream command \"no-such-command-xyz\" on PATH\n".to_string(),
        ),
    ];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        cases.push((
            plain_file.clone(),
            format!(
                "Error: cannot start the upstream command \"{plain_file}\": it is not executable (no execute permission)\n"
            ),
        ));
        // Executable, but its interpreter does not exist: the system's own error, once.
        let script = write(dir.path(), "server.sh", "#!/no/such/interpreter\n");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        cases.push((
            script.clone(),
            format!(
                "Error: cannot start the upstream command \"{script}\": No such file or directory (os error 2)\n"
            ),
        ));
    }
    for (server, expected) in cases {
        let out = start(&server);
        assert_eq!(out.status.code(), Some(2), "{server}");
        assert_eq!(text(&out.stderr), expected);
    }

    #[cfg(unix)]
    {
        let out = intercept(&["scan", "-q", "--", &plain_file]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr),
            format!(
                "Error: cannot start the server command \"{plain_file}\": it is not executable (no execute permission)\n"
            )
        );
    }
}

#[test]
fn file_errors_at_start_up_name_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.yaml", "tools: {}\n");
    let not_a_dir = write(dir.path(), "file", "");
    let audit = format!("{not_a_dir}/events/a.jsonl");
    // A server that exists (it is never started: the log comes first).
    let out = intercept(&[
        "-c",
        &policy,
        "--audit-log",
        &audit,
        "--state",
        "memory",
        "--log-level",
        "error",
        "--",
        env!("CARGO_BIN_EXE_intercept"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "Error: cannot create the audit directory {not_a_dir}/events: Not a directory (os error 20)\n"
        )
    );

    let missing = dir.path().join("missing.yaml").display().to_string();
    let out = intercept(&["-c", &missing, "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("Error: reading config file {missing}: No such file or directory (os error 2)\n")
    );
}

#[test]
fn an_empty_policy_is_refused_by_validate_and_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let message = "the policy is empty, and an empty policy would allow every call: write its rules, or write `tools: {}` to allow every call on purpose";
    for (name, body) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# todo\n"),
        ("null.yaml", "~\n"),
    ] {
        let file = write(dir.path(), name, body);
        let out = intercept(&["validate", "-c", &file]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(text(&out.stdout), format!("{file}:1:1: {message}\n"));

        let out = intercept(&[
            "-c",
            &file,
            "--state",
            "memory",
            "--no-audit",
            "--",
            env!("CARGO_BIN_EXE_intercept"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert_eq!(
            text(&out.stderr),
            format!("Error: policy validation failed with 1 error(s):\n  {file}:1:1: {message}\n")
        );
    }
}
