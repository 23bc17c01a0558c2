//! Loading and validation of policies: both syntaxes, strictness, and every error with
//! its line, column, rule path and message.

use intercept::policy::{self, PolicyError};

fn errors(yaml: &str) -> Vec<PolicyError> {
    policy::validate(yaml)
}

/// Asserts exactly one error, with this message, at this line and column.
#[track_caller]
fn single_error(yaml: &str, message: &str, line: usize, column: usize) {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert_eq!(errs[0].message, message, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].column), (line, column), "{errs:#?}");
}

#[track_caller]
fn valid(yaml: &str) {
    let errs = errors(yaml);
    assert!(errs.is_empty(), "expected a valid policy, got {errs:#?}");
}

#[test]
fn the_public_catalog_syntax_loads_exactly_as_published() {
    valid(
        "tools:
  exchangeRefreshTokenForJWTWithId:
    rules:
      - action: allow
        rate_limit:
          max: 30
          window: 60
",
    );
}

#[test]
fn the_reference_syntax_loads() {
    valid(
        r#"version: "1"
description: "GitHub policy"
default: allow
hide: [delete_repository]
tools:
  create_issue:
    rules:
      - name: "hourly issue limit"
        rate_limit: 5/hour
        on_deny: "Hourly limit reached"
      - name: "no prod labels"
        conditions:
          - path: "args.labels"
            op: "not_in"
            value: [["prod"]]
  create_refund:
    rules:
      - name: "refund cap"
        conditions:
          - path: "args.amount"
            op: "lte"
            value: 50000
      - name: "daily spend"
        state:
          counter: "spent"
          window: "day"
          increment_from: "args.amount"
        conditions:
          - path: "state.create_refund.spent"
            op: "lte"
            value: 100000
  delete_branch:
    rules:
      - name: "block"
        action: deny
        on_deny: "Deleting branches is not allowed"
  "*":
    rules:
      - name: "global"
        rate_limit: 60/minute
"#,
    );
}

#[test]
fn version_one_unquoted_is_fine_and_anything_else_is_not() {
    valid("version: 1\ntools: {}\n");
    valid("tools: {}\n");
    single_error(
        "version: \"2\"\n",
        "version must be \"1\", got \"2\"",
        1,
        10,
    );
    single_error(
        "version: 1.0\n",
        "version must be \"1\", got \"1.0\"",
        1,
        10,
    );
}

#[test]
fn unknown_keys_are_errors_with_a_did_you_mean_hint() {
    single_error(
        "hidden: [x]\n",
        "unknown field \"hidden\" (did you mean \"hide\"?)",
        1,
        1,
    );
    single_error(
        "tools:\n  t:\n    rules:\n      - action: deny\n        on-deny: no\n",
        "tools.t.rules[0]: unknown field \"on-deny\" (did you mean \"on_deny\"?)",
        5,
        9,
    );
    single_error(
        "tools:\n  t:\n    rule: []\n",
        "tools.t: unknown field \"rule\" (did you mean \"rules\"?)",
        3,
        5,
    );
    let errs = errors(
        "tools:\n  t:\n    rules:\n      - conditions:\n          - {path: args.a, op: eq, vlaue: 1}\n",
    );
    assert!(
        errs.iter().any(|e| e
            .message
            .contains("unknown field \"vlaue\" (did you mean \"value\"?)")),
        "{errs:#?}"
    );
}

#[test]
fn every_error_is_reported_at_once_sorted_by_position() {
    let errs = errors(
        r#"version: "3"
default: maybe
tools:
  t:
    rules:
      - name: a
        action: evaluate
      - name: b
        conditions:
          - path: foo
            op: eq
            value: 1
          - path: args.x
            op: lt
            value: "10"
          - path: args.y
            op: regex
            value: "(unclosed"
"#,
    );
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "version must be \"1\", got \"3\"",
            "default must be \"allow\" or \"deny\", got \"maybe\"",
            "tools.t.rules[0]: evaluate rules must have at least one condition",
            "tools.t.rules[1].conditions[0]: path must start with \"args.\" or \"state.\" (or be \"identity\" or \"client.name\"), got \"foo\"",
            "tools.t.rules[1].conditions[1]: operator \"lt\" requires a numeric value",
            "tools.t.rules[1].conditions[2]: invalid regex \"(unclosed\": error: unclosed group",
        ]
    );
    let mut sorted = errs.clone();
    sorted.sort_by_key(|e| (e.line, e.column));
    assert_eq!(errs, sorted);
    assert_eq!(errs[4].path, "tools.t.rules[1].conditions[1]");
}

#[test]
fn reference_messages_for_operators_and_values() {
    let cond = |op: &str, value: &str| {
        format!(
            "tools:\n  t:\n    rules:\n      - conditions:\n          - path: args.a\n            op: {op}\n            value: {value}\n"
        )
    };
    single_error(
        &cond("like", "1"),
        "tools.t.rules[0].conditions[0]: unknown operator \"like\"",
        6,
        17,
    );
    single_error(
        &cond("in", "1"),
        "tools.t.rules[0].conditions[0]: operator \"in\" requires a list value",
        7,
        20,
    );
    single_error(
        &cond("not_in", "x"),
        "tools.t.rules[0].conditions[0]: operator \"not_in\" requires a list value",
        7,
        20,
    );
    single_error(
        &cond("gte", "\"5\""),
        "tools.t.rules[0].conditions[0]: operator \"gte\" requires a numeric value",
        7,
        20,
    );
    single_error(
        &cond("exists", "yes"),
        "tools.t.rules[0].conditions[0]: operator \"exists\" requires a boolean value",
        7,
        20,
    );
    single_error(
        &cond("regex", "5"),
        "tools.t.rules[0].conditions[0]: regex value must be a string",
        7,
        20,
    );
    single_error(
        &cond("eqq", "5"),
        "tools.t.rules[0].conditions[0]: unknown operator \"eqq\" (did you mean \"eq\"?)",
        6,
        17,
    );
    valid(&cond("eq", "5"));
    valid(&cond("exists", "false"));
    valid(&cond("regex", "'^(?i)main$'"));
}

#[test]
fn reference_messages_for_rules() {
    let rule = |body: &str| format!("tools:\n  t:\n    rules:\n      - {body}\n");
    single_error(
        &rule("action: block"),
        "tools.t.rules[0]: action must be \"evaluate\", \"allow\", \"deny\" or \"require_approval\", got \"block\"",
        4,
        17,
    );
    single_error(
        &rule("action: deny\n        conditions: [{path: args.a, op: exists, value: true}]"),
        "tools.t.rules[0]: deny rules must not have conditions",
        4,
        9,
    );
    single_error(
        &rule("rate_limit: 5/hour\n        action: deny"),
        "tools.t.rules[0]: rate_limit cannot be used with action \"deny\"",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: 5/hour\n        conditions: [{path: args.a, op: exists, value: true}]"),
        "tools.t.rules[0]: rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: five/hour"),
        "tools.t.rules[0].rate_limit: rate_limit count must be a positive integer, got \"five\"",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: 0/hour"),
        "tools.t.rules[0].rate_limit: rate_limit count must be a positive integer, got \"0\"",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: 5/week"),
        "tools.t.rules[0].rate_limit: rate_limit window must be \"minute\", \"hour\", or \"day\", got \"week\"",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: \"5 per hour\""),
        "tools.t.rules[0].rate_limit: rate_limit must be in the format \"N/window\" (e.g. \"5/hour\"), got \"5 per hour\"",
        4,
        21,
    );
    single_error(
        &rule("rate_limit: {max: 0, window: 60}"),
        "tools.t.rules[0].rate_limit.max: rate_limit max must be a positive integer, got \"0\"",
        4,
        27,
    );
    single_error(
        &rule("rate_limit: {max: 5}"),
        "tools.t.rules[0].rate_limit: rate_limit needs \"window\" (seconds)",
        4,
        21,
    );
    single_error(
        &rule("action: deny\n        on_deny: a\n        reason: b"),
        "tools.t.rules[0]: on_deny and reason are the same setting; set only one of them",
        5,
        18,
    );
    single_error(
        &rule("action: deny\n        scope: session"),
        "tools.t.rules[0]: scope only applies to rules with rate_limit or state",
        5,
        16,
    );
    single_error(
        &rule("rate_limit: 5/hour\n        scope: team"),
        "tools.t.rules[0].scope: scope must be \"global\", \"identity\" or \"session\", got \"team\"",
        5,
        16,
    );
    single_error(
        &rule("action: deny\n        approval_timeout: 5m"),
        "tools.t.rules[0]: approval_timeout only applies to rules with action \"require_approval\"",
        5,
        27,
    );
    single_error(
        &rule("action: require_approval\n        approval_timeout: soon"),
        "tools.t.rules[0].approval_timeout: approval_timeout must be a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", got \"soon\"",
        5,
        27,
    );
    valid(&rule(
        "action: require_approval\n        approval_timeout: 30m",
    ));
    valid(&rule("action: allow"));
}

#[test]
fn state_blocks_are_checked_including_what_the_reference_accepts_silently() {
    let state = |block: &str, conds: &str| {
        format!(
            "tools:\n  t:\n    rules:\n      - name: r\n        state: {block}\n        conditions: {conds}\n"
        )
    };
    let limit = "[{path: state.t.c, op: lte, value: 10}]";
    valid(&state("{counter: c, window: day}", limit));
    single_error(
        &state("{window: day}", "[{path: args.a, op: exists, value: true}]"),
        "tools.t.rules[0].state: counter must not be empty",
        5,
        16,
    );
    single_error(
        &state("{counter: c, window: week}", limit),
        "tools.t.rules[0].state: window must be \"minute\", \"hour\", or \"day\", got \"week\"",
        5,
        37,
    );
    single_error(
        &state("{counter: c, window: day, increment_from: amount}", limit),
        "tools.t.rules[0].state: increment_from must start with \"args.\", got \"amount\"",
        5,
        58,
    );
    single_error(
        &state("{counter: c, window: day, increment: -5}", limit),
        "tools.t.rules[0].state: increment must be a positive integer, got \"-5\"",
        5,
        53,
    );
    single_error(
        &state(
            "{counter: c, window: day, increment: 2, increment_from: args.a}",
            limit,
        ),
        "tools.t.rules[0].state: increment and increment_from cannot both be set",
        5,
        53,
    );
    // The reference silently never counts a state block without a limit.
    single_error(
        &state(
            "{counter: c, window: day}",
            "[{path: args.a, op: exists, value: true}]",
        ),
        "tools.t.rules[0].state: state counter \"c\" has no limit: add a condition {path: state.t.c, op: lte, value: N} to this rule",
        5,
        16,
    );
    // The reference truncates `lt 2.5` to a limit of 1.
    single_error(
        &state(
            "{counter: c, window: day}",
            "[{path: state.t.c, op: lt, value: 2.5}]",
        ),
        "tools.t.rules[0].conditions[0]: operator \"lt\" on counter \"c\" needs a whole-number limit, got 2.5 (did you mean lte 2?)",
        6,
        55,
    );
    let errs = errors(&state(
        "{counter: c, window: day}",
        "[{path: state.t.nope, op: lte, value: 3}]",
    ));
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "tools.t.rules[0].state: state counter \"c\" has no limit: add a condition {path: state.t.c, op: lte, value: N} to this rule",
            "tools.t.rules[0].conditions[0]: condition references state.t.nope but no matching state block found",
        ]
    );
}

#[test]
fn duplicate_counters_and_hide_entries_are_reported() {
    let errs = errors(
        "hide: [a, a, '']\ntools:\n  t:\n    rules:\n      - rate_limit: 5/hour\n      - rate_limit: 9/hour\n",
    );
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "hide: duplicate entry \"a\"",
            "hide[2]: entry must not be empty",
            "tools.t.rules[1]: duplicate state counter \"_rate_hour\" (also used by rules[0])",
        ]
    );
}

#[test]
fn dotted_tool_names_just_work_with_rate_limits_and_state_paths() {
    valid(
        "tools:
  github.create_issue:
    rules:
      - name: hourly
        rate_limit: 3/hour
  github:
    rules:
      - name: spend
        state: {counter: calls, window: day}
        conditions: [{path: state.github.calls, op: lte, value: 9}]
  other:
    rules:
      - name: cross-tool read
        conditions:
          - path: state.github.create_issue._rate_hour
            op: lt
            value: 2
",
    );
}

#[test]
fn yaml_problems_are_errors_with_positions() {
    let errs = errors("tools:\n  t: [\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].message.starts_with("invalid YAML: "), "{errs:#?}");
    assert!(errs[0].line >= 2);

    single_error(
        "tools:\n  t: {}\n  t: {}\n",
        "tools.t: duplicate key \"t\" (first set on line 2)",
        3,
        3,
    );
    single_error(
        "- a\n- b\n",
        "the policy must be a mapping, got a list",
        1,
        1,
    );
    single_error(
        "tools: [a, b]\n",
        "tools: value must be a mapping, got a list",
        1,
        8,
    );
    let errs = errors("tools: {}\n---\ntools: {}\n");
    assert!(
        errs[0].message.contains("exactly one YAML document"),
        "{errs:#?}"
    );
}

/// What `validate` and every loader say of a policy with nothing in it.
const EMPTY: &str = "the policy is empty, and an empty policy would allow every call: write its rules, or write `tools: {}` to allow every call on purpose";

#[test]
fn an_empty_policy_is_refused_at_its_first_line() {
    for text in [
        "",
        "\n  \n\t\n",
        "# nothing yet\n",
        "~",
        "null",
        "---",
        "---\n...\n",
        "# a\n\n---\n# b\n~\n",
    ] {
        single_error(text, EMPTY, 1, 1);
        let e = policy::parse(text, "p.yaml").expect_err(text);
        assert_eq!(
            e.to_string(),
            format!("policy validation failed with 1 error(s):\n  p.yaml:1:1: {EMPTY}")
        );
    }
    // Allowing everything on purpose is written out.
    valid("tools: {}\n");
    valid("{}");
    valid("tools:\n");
}

#[test]
fn grants_and_identities_are_validated() {
    valid(
        "identities:
  alice: {token_env: ALICE_TOKEN}
  ci: {token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
grants:
  alice: {tools: '*'}
  ci: {tools: [read_file, 'list_*'], hide: [list_secrets]}
",
    );
    let errs = errors(
        "identities:
  alice: {token_env: A}
  bob: {token_sha256: nothex}
grants:
  alcie: {tools: '*'}
  alice: {}
",
    );
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "identities.bob.token_sha256: token_sha256 must be 64 hexadecimal characters (the SHA-256 of the token)",
            "grants: grant for unknown identity \"alcie\" (did you mean \"alice\"?)",
            "grants.alice: a grant must list its tools (tools: [..], or \"*\" for every tool)",
        ]
    );
}

#[test]
fn load_file_names_the_file_in_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "version: \"2\"\n").unwrap();
    let err = policy::load_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("policy.yaml:1:10: version must be"), "{text}");
    assert_eq!(err.errors().len(), 1);
    let missing = policy::load_file(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(
        missing.to_string().starts_with("reading config file"),
        "{missing}"
    );
}

#[test]
fn a_loaded_file_carries_the_hash_of_the_text_it_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "tools:\n  t:\n    rules:\n      - action: deny\n").unwrap();
    let loaded = policy::load_file_hashed(&path).unwrap();
    // `sha256sum` of the text above.
    assert_eq!(
        loaded.sha256,
        "6d3ce87ea0eed4c75b93d9d94498ad966a59d004b013b9801495128b96ab3343"
    );
    assert!(loaded.policy.is_listed("t"));
    assert!(!loaded.policy.is_listed("u"));
    assert!(matches!(
        policy::load_file_hashed(&dir.path().join("nope.yaml")),
        Err(policy::LoadError::Read { .. })
    ));
}

/// A file of `tests/fixtures`.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() {
    // Nine levels of nine aliases: 9^9 values if expanded.
    let text = std::fs::read_to_string(fixture("alias-bomb.yaml")).unwrap();
    single_error(
        &text,
        "aliases repeat more than 100000 nodes in all, the most a policy may (this guards against alias bombs): write the repeated parts out or use fewer aliases",
        7,
        8,
    );
    let err = policy::load_file(&fixture("alias-bomb.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("alias-bomb.yaml:7:8: aliases repeat"),
        "{err}"
    );

    // Few nodes, but a long string repeated thousands of times.
    let text = std::fs::read_to_string(fixture("alias-bomb-text.yaml")).unwrap();
    single_error(
        &text,
        "aliases repeat more than 4194304 bytes of text in all, the most a policy may (this guards against alias bombs): write the repeated parts out or use fewer aliases",
        6,
        24,
    );
}

#[test]
fn aliases_within_the_limits_still_work() {
    let mut text = String::from(
        "tools:\n  first: &rules\n    rules:\n      - {name: hourly, rate_limit: 5/hour}\n      - name: no prod\n        conditions: [{path: args.env, op: neq, value: prod}]\n",
    );
    for i in 0..500 {
        text.push_str(&format!("  tool{i}: *rules\n"));
    }
    valid(&text);
}

#[test]
fn nesting_deeper_than_64_levels_is_refused() {
    let text = std::fs::read_to_string(fixture("deep-nesting.yaml")).unwrap();
    single_error(
        &text,
        "lists and mappings are nested more than 64 levels deep, the most a policy may",
        8,
        77,
    );
    // The condition's value starts 8 levels deep: 57 more reach the limit, 58 cross it.
    let nested = |levels: usize| {
        format!(
            "tools:\n  t:\n    rules:\n      - conditions:\n          - path: args.x\n            op: eq\n            value: {}{}\n",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    valid(&nested(57));
    assert_eq!(errors(&nested(58)).len(), 1);
    // Aliases count where they are used: each piece is shallow, together they are not.
    single_error(
        &format!(
            "a: &a {}{}\nb: {}*a{}\n",
            "[".repeat(40),
            "]".repeat(40),
            "[".repeat(30),
            "]".repeat(30)
        ),
        "lists and mappings are nested more than 64 levels deep, the most a policy may",
        2,
        34,
    );
}

#[test]
fn a_policy_over_8_mib_is_refused_without_being_read_whole() {
    let message =
        "the policy is larger than 8388608 bytes (8 MiB), the most a policy file may hold";
    let limit = policy::limits::MAX_POLICY_BYTES as usize;
    let mut text = "# padding\n".repeat(limit / 10);
    text.push_str("tools: {}\n");
    assert!(text.len() > limit);
    single_error(&text, message, 1, 1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, &text).unwrap();
    let err = policy::load_file(&path).unwrap_err();
    assert_eq!(err.errors().len(), 1, "{err}");
    assert_eq!(err.errors()[0].message, message);
    assert!(
        err.to_string()
            .contains("big.yaml:1:1: the policy is larger"),
        "{err}"
    );

    // A file of no known size is read only up to the limit.
    #[cfg(unix)]
    {
        let err = policy::load_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.errors().len(), 1, "{err}");
        assert_eq!(err.errors()[0].message, message);
    }

    // At the limit exactly, it loads.
    let mut text = "# padding\n".repeat(limit / 10 - 1);
    text.push_str("tools: {}\n");
    text.push_str(&" ".repeat(limit - text.len()));
    assert_eq!(text.len(), limit);
    std::fs::write(&path, &text).unwrap();
    policy::load_file(&path).unwrap();
}

#[test]
fn a_bad_escape_in_a_tool_name_is_an_error() {
    single_error(
        "tools:\n  'a\\b': {}\n",
        "tools.a\\b: \"a\\b\" has the unknown escape \"\\b\": only \\*, \\? and \\\\ are escapes (write \"\\\\\" for a backslash)",
        2,
        10,
    );
    single_error(
        "hide: [ok, 'trailing\\']\n",
        "hide[1]: \"trailing\\\" ends with a lone \"\\\": write \"\\\\\" for a backslash (escapes are \\*, \\? and \\\\)",
        1,
        12,
    );
    single_error(
        "grants:\n  '*': {tools: ['x\\y']}\n",
        "grants.*.tools[0]: \"x\\y\" has the unknown escape \"\\y\": only \\*, \\? and \\\\ are escapes (write \"\\\\\" for a backslash)",
        2,
        17,
    );
    valid("hide: ['a\\*', 'b\\?', 'c\\\\', 'd\\**']\ntools:\n  'e\\?': {}\n");
}

#[test]
fn at_most_256_tools_keys_are_patterns() {
    let policy = |patterns: usize| {
        let mut text = String::from("tools:\n  exact: {}\n");
        for i in 0..patterns {
            text.push_str(&format!("  p{i}_*: {{}}\n"));
        }
        text
    };
    valid(&policy(256));
    // Reported once, at the first pattern past the limit (line 2 + 257).
    single_error(
        &policy(300),
        "tools.p256_*: more than 256 tools keys are patterns, the most a policy may: name the tools, or merge patterns",
        259,
        11,
    );
}
