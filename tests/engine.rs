//! The engine: operators, paths, rule order, hide/default/grants, approval, counters.

use std::sync::Arc;

use intercept::engine::{Args, Call, Decision, Engine, Reason, Verdict};
use intercept::policy;
use intercept::state::{MemoryStore, SqliteStore, Store, Window};
use serde_json::{Value, json};

/// A day and hour boundary (UTC), so calendar windows are easy to reason about.
const T0: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z: ahead of the real clock, which store sweeps use

fn engine_with(yaml: &str, store: Arc<dyn Store>) -> Engine {
    let compiled = policy::parse(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    Engine::new(Arc::new(compiled), store)
}

fn engine(yaml: &str) -> Engine {
    engine_with(yaml, Arc::new(MemoryStore::new()))
}

fn call<'a>(tool: &'a str, args: &'a Value) -> Call<'a> {
    Call {
        tool,
        args: Some(Args::Value(args)),
        ..Call::default()
    }
}

fn at(e: &Engine, tool: &str, args: Value, now: i64) -> Decision {
    e.evaluate_at(&call(tool, &args), now)
}

fn eval(e: &Engine, tool: &str, args: Value) -> Decision {
    at(e, tool, args, T0)
}

#[track_caller]
fn allowed(d: &Decision) {
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[track_caller]
fn denied(d: &Decision, message: &str) {
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert_eq!(d.message.as_deref(), Some(message), "{d:?}");
}

/// A policy with one condition on tool `t`.
fn one_condition(path: &str, op: &str, value: &str) -> Engine {
    engine(&format!(
        "tools:\n  t:\n    rules:\n      - name: c\n        conditions:\n          - path: {path}\n            op: {op}\n            value: {value}\n"
    ))
}

#[track_caller]
fn check(e: &Engine, args: Value, expect_allow: bool) {
    let d = eval(e, "t", args.clone());
    assert_eq!(d.is_allowed(), expect_allow, "args {args}: {d:?}");
    if !expect_allow {
        assert_eq!(d.rule.as_deref(), Some("c"));
        assert_eq!(d.message.as_deref(), Some("Denied by rule \"c\""));
    }
}

#[test]
fn eq_and_neq_are_loose_like_the_reference_and_fail_closed_on_missing_fields() {
    let e = one_condition("args.n", "eq", "100");
    check(&e, json!({"n": 100}), true);
    check(&e, json!({"n": 100.0}), true);
    check(&e, json!({"n": "100"}), true);
    check(&e, json!({"n": "100.0"}), false);
    check(&e, json!({"n": 101}), false);
    check(&e, json!({}), false);

    let e = one_condition("args.flag", "eq", "true");
    check(&e, json!({"flag": true}), true);
    check(&e, json!({"flag": "true"}), true);
    check(&e, json!({"flag": false}), false);

    let e = one_condition("args.branch", "neq", "main");
    check(&e, json!({"branch": "dev"}), true);
    check(&e, json!({"branch": "main"}), false);
    check(&e, json!({"branch": null}), false); // not a string: denied, see below
    check(&e, json!({}), false); // missing: denied, not inverted
}

#[test]
fn in_and_not_in() {
    let e = one_condition("args.n", "in", "[1, 2, 3]");
    check(&e, json!({"n": 2}), true);
    check(&e, json!({"n": "2"}), true);
    check(&e, json!({"n": 4}), false);
    check(&e, json!({}), false);

    let e = one_condition("args.env", "not_in", "[prod, production]");
    check(&e, json!({"env": "staging"}), true);
    check(&e, json!({"env": "prod"}), false);
    check(&e, json!({}), false); // missing: denied, not inverted
}

/// Evaluates `args` both as a parsed tree and as the JSON text the proxy reads in place,
/// and asserts that both allow or both deny, as `expect_allow` says.
#[track_caller]
fn check_both_ways(e: &Engine, args: Value, expect_allow: bool) {
    check(e, args.clone(), expect_allow);
    check_text(e, &args.to_string(), expect_allow);
}

/// Evaluates arguments given as JSON text, read in place as the proxy reads them.
#[track_caller]
fn check_text(e: &Engine, text: &str, expect_allow: bool) {
    let d = e.evaluate_at(
        &Call {
            tool: "t",
            args: Some(Args::Text(text.as_bytes())),
            ..Call::default()
        },
        T0,
    );
    assert_eq!(d.is_allowed(), expect_allow, "args as text {text}: {d:?}");
}

#[test]
fn negative_operators_deny_values_of_another_kind() {
    // Written for a string: null, a list or a mapping cannot be compared, so the call is
    // denied rather than let through as "not equal".
    for (op, value) in [("neq", "prod"), ("not_in", "[prod, production]")] {
        let e = one_condition("args.env", op, value);
        check_both_ways(&e, json!({"env": "staging"}), true);
        check_text(&e, r#"{"env": "st\u0061ging"}"#, true);
        check_both_ways(&e, json!({"env": 7}), true); // a scalar: compared loosely
        check_both_ways(&e, json!({"env": "prod"}), false);
        check_text(&e, r#"{"env": "pr\u006fd"}"#, false);
        check_both_ways(&e, json!({"env": null}), false);
        check_both_ways(&e, json!({"env": ["prod"]}), false);
        check_both_ways(&e, json!({"env": ["staging"]}), false);
        check_both_ways(&e, json!({"env": [["prod"]]}), false);
        check_both_ways(&e, json!({"env": {"name": "prod"}}), false);
        check_both_ways(&e, json!({"env": []}), false);
    }

    // Written for a list: lists are compared, and a string is of another kind.
    let e = one_condition("args.labels", "not_in", "[[prod], [prod, hotfix]]");
    check_both_ways(&e, json!({"labels": ["dev"]}), true);
    check_both_ways(&e, json!({"labels": ["prod"]}), false);
    check_both_ways(&e, json!({"labels": ["prod", "hotfix"]}), false);
    check_both_ways(&e, json!({"labels": "prod"}), false);
    check_both_ways(&e, json!({"labels": null}), false);
    let e = one_condition("args.where", "neq", "{env: prod}");
    check_both_ways(&e, json!({"where": {"env": "dev"}}), true);
    check_both_ways(&e, json!({"where": {"env": "prod"}}), false);
    check_both_ways(&e, json!({"where": "prod"}), false);

    // `null` in the policy means "not null", and compares with anything.
    let e = one_condition("args.token", "neq", "null");
    check_both_ways(&e, json!({"token": "x"}), true);
    check_both_ways(&e, json!({"token": [1]}), true);
    check_both_ways(&e, json!({"token": null}), false);
    // ... but next to a string it does not make a list comparable with it.
    let e = one_condition("args.env", "not_in", "[null, prod]");
    check_both_ways(&e, json!({"env": "dev"}), true);
    check_both_ways(&e, json!({"env": null}), false);
    check_both_ways(&e, json!({"env": ["dev"]}), false);
}

#[test]
fn numeric_comparisons_need_numbers_and_compare_big_integers_exactly() {
    let e = one_condition("args.amount", "lte", "1000");
    check(&e, json!({"amount": 1000}), true);
    check(&e, json!({"amount": 999.5}), true);
    check(&e, json!({"amount": 1000.5}), false);
    check(&e, json!({"amount": "10"}), false);
    check(&e, json!({"amount": true}), false);
    check(&e, json!({"amount": null}), false);
    check(&e, json!({}), false);

    for (op, n, expect) in [
        ("lt", 5, false),
        ("lt", 4, true),
        ("gt", 5, false),
        ("gt", 6, true),
        ("gte", 5, true),
        ("gte", 4, false),
    ] {
        let e = one_condition("args.n", op, "5");
        check(&e, json!({ "n": n }), expect);
    }

    // 2^53 + 1 is not below 2^53 + 1, though as floats they are equal.
    let e = one_condition("args.id", "lt", "9007199254740993");
    check(&e, json!({"id": 9_007_199_254_740_992u64}), true);
    check(&e, json!({"id": 9_007_199_254_740_993u64}), false);
}

#[test]
fn regex_is_an_unanchored_search() {
    let e = one_condition("args.path", "regex", "'^/tmp/'");
    check(&e, json!({"path": "/tmp/x"}), true);
    check(&e, json!({"path": "/etc/passwd"}), false);
    check(&e, json!({"path": 5}), false);

    let e = one_condition("args.q", "regex", "drop");
    check(&e, json!({"q": "please DROP table; drop it"}), true);
    check(&e, json!({"q": "DROP"}), false);
    let e = one_condition("args.q", "regex", "'(?i)drop'");
    check(&e, json!({"q": "DROP"}), true);
}

#[test]
fn contains_tests_substrings_and_list_members() {
    let e = one_condition("args.title", "contains", "urgent");
    check(&e, json!({"title": "very urgent fix"}), true);
    check(&e, json!({"title": "later"}), false);
    let e = one_condition("args.labels", "contains", "2");
    check(&e, json!({"labels": [1, 2, 3]}), true);
    check(&e, json!({"labels": ["a"]}), false);
    check(&e, json!({"labels": {"2": true}}), false);
}

#[test]
fn exists_treats_null_as_absent() {
    let e = one_condition("args.token", "exists", "false");
    check(&e, json!({}), true);
    check(&e, json!({"token": null}), true);
    check(&e, json!({"token": "x"}), false);
    let e = one_condition("args.token", "exists", "true");
    check(&e, json!({"token": ""}), true);
    check(&e, json!({}), false);
}

#[test]
fn paths_reach_into_objects_and_arrays() {
    let e = one_condition("args.items.0.id", "eq", "7");
    check(&e, json!({"items": [{"id": 7}, {"id": 8}]}), true);
    check(&e, json!({"items": [{"id": 8}, {"id": 7}]}), false);
    check(&e, json!({"items": []}), false);
    check(&e, json!({"items": {"0": {"id": 7}}}), true);
    check(&e, json!({"items": "7"}), false);

    let e = one_condition("identity", "eq", "alice");
    assert!(
        e.evaluate_at(
            &Call {
                tool: "t",
                identity: Some("alice"),
                ..Call::default()
            },
            T0
        )
        .is_allowed()
    );
    assert!(
        !e.evaluate_at(
            &Call {
                tool: "t",
                identity: Some("bob"),
                ..Call::default()
            },
            T0
        )
        .is_allowed()
    );
    assert!(
        !e.evaluate_at(
            &Call {
                tool: "t",
                ..Call::default()
            },
            T0
        )
        .is_allowed()
    );

    let e = one_condition("client.name", "regex", "'^claude'");
    assert!(
        e.evaluate_at(
            &Call {
                tool: "t",
                client_name: Some("claude-code"),
                ..Call::default()
            },
            T0
        )
        .is_allowed()
    );
    assert!(
        !e.evaluate_at(
            &Call {
                tool: "t",
                client_name: Some("cursor"),
                ..Call::default()
            },
            T0
        )
        .is_allowed()
    );
}

#[test]
fn arguments_that_are_not_an_object_are_denied() {
    let e = engine("tools: {}\n");
    for args in [json!("rm -rf /"), json!([1, 2]), json!(5)] {
        let d = eval(&e, "anything", args);
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.reason, Reason::InvalidArguments);
        assert!(
            d.message
                .as_deref()
                .unwrap()
                .starts_with("Tool arguments must be a JSON object")
        );
    }
    allowed(&e.evaluate_at(
        &Call {
            tool: "anything",
            args: None,
            ..Call::default()
        },
        T0,
    ));
    allowed(&eval(&e, "anything", Value::Null));
}

#[test]
fn rules_run_in_order_tool_then_globs_then_wildcard_and_the_first_failure_decides() {
    let e = engine(
        r#"tools:
  delete_repo:
    rules:
      - name: own
        conditions: [{path: args.confirm, op: eq, value: true}]
        on_deny: "confirm first"
  "delete_*":
    rules:
      - name: glob
        conditions: [{path: args.owner, op: eq, value: me}]
  "*":
    rules:
      - name: wildcard
        conditions: [{path: args.dry_run, op: exists, value: false}]
        reason: "no dry runs here"
"#,
    );
    denied(&eval(&e, "delete_repo", json!({})), "confirm first");
    denied(
        &eval(&e, "delete_repo", json!({"confirm": true})),
        "Denied by rule \"glob\"",
    );
    denied(
        &eval(
            &e,
            "delete_repo",
            json!({"confirm": true, "owner": "me", "dry_run": 1}),
        ),
        "no dry runs here",
    );
    allowed(&eval(
        &e,
        "delete_repo",
        json!({"confirm": true, "owner": "me"}),
    ));
    denied(
        &eval(&e, "delete_branch", json!({})),
        "Denied by rule \"glob\"",
    );
    allowed(&eval(&e, "delete_branch", json!({"owner": "me"})));
    allowed(&eval(&e, "read_file", json!({})));
    denied(
        &eval(&e, "read_file", json!({"dry_run": true})),
        "no dry runs here",
    );
}

#[test]
fn deny_rules_always_block() {
    let e = engine("tools:\n  rm:\n    rules:\n      - name: never\n        action: deny\n");
    let d = eval(&e, "rm", json!({}));
    denied(&d, "Denied by rule \"never\"");
    assert_eq!(d.rule.as_deref(), Some("never"));
    assert_eq!(d.reason, Reason::Rule);
}

#[test]
fn hidden_tools_are_denied_before_default_deny() {
    let e = engine("default: deny\nhide: [secret, 'admin_*']\ntools:\n  ok: {}\n");
    let d = eval(&e, "secret", json!({}));
    denied(&d, "Tool \"secret\" is hidden by policy");
    assert_eq!(d.rule.as_deref(), Some("(hidden)"));
    denied(
        &eval(&e, "admin_reset", json!({})),
        "Tool \"admin_reset\" is hidden by policy",
    );
    let d = eval(&e, "other", json!({}));
    denied(&d, "Tool \"other\" is not permitted by policy");
    assert_eq!(d.rule.as_deref(), Some("(default deny)"));
    allowed(&eval(&e, "ok", json!({})));
    assert!(!e.is_visible("secret", None));
    assert!(!e.is_visible("other", None));
    assert!(e.is_visible("ok", None));

    let e = engine("hide: ['*']\n");
    denied(&eval(&e, "x", json!({})), "Tool \"x\" is hidden by policy");
}

#[test]
fn escaped_wildcards_name_tools_with_a_literal_star_or_question_mark() {
    let e = engine(
        r#"default: deny
hide: ['secret\*', 'x\?*']
tools:
  'what\?':
    rules:
      - {name: question, action: deny}
  'run\*_*':
    rules:
      - {name: starred, action: deny}
  'back\\slash': {}
  'plain_*': {}
"#,
    );
    // An escape and no other wildcard: one exact name.
    denied(&eval(&e, "what?", json!({})), "Denied by rule \"question\"");
    denied(
        &eval(&e, "whatX", json!({})),
        "Tool \"whatX\" is not permitted by policy",
    );
    // Escaped and unescaped wildcards in one glob.
    denied(
        &eval(&e, "run*_fast", json!({})),
        "Denied by rule \"starred\"",
    );
    denied(
        &eval(&e, "runX_fast", json!({})),
        "Tool \"runX_fast\" is not permitted by policy",
    );
    allowed(&eval(&e, r"back\slash", json!({})));
    allowed(&eval(&e, "plain_x", json!({})));
    // hide entries too.
    denied(
        &eval(&e, "secret*", json!({})),
        "Tool \"secret*\" is hidden by policy",
    );
    denied(
        &eval(&e, "secretX", json!({})),
        "Tool \"secretX\" is not permitted by policy",
    );
    denied(
        &eval(&e, "x?y", json!({})),
        "Tool \"x?y\" is hidden by policy",
    );
    denied(
        &eval(&e, "xay", json!({})),
        "Tool \"xay\" is not permitted by policy",
    );

    // And grants.
    let e = engine("grants:\n  '*': {tools: ['ask\\?', 'get\\*_*']}\n");
    allowed(&eval(&e, "ask?", json!({})));
    allowed(&eval(&e, "get*_user", json!({})));
    for tool in ["askX", "getX_user"] {
        assert_eq!(eval(&e, tool, json!({})).verdict, Verdict::Deny, "{tool}");
    }
}

#[test]
fn default_deny_is_not_rescued_by_wildcard_rules_but_glob_keys_list_tools() {
    let e = engine(
        "default: deny\ntools:\n  'get_*': {}\n  '*':\n    rules:\n      - {name: all, action: allow, rate_limit: 10/minute}\n",
    );
    allowed(&eval(&e, "get_issue", json!({})));
    denied(
        &eval(&e, "put_issue", json!({})),
        "Tool \"put_issue\" is not permitted by policy",
    );
}

#[test]
fn grants_limit_what_each_identity_may_call_and_see() {
    let e = engine(
        "identities:\n  alice: {}\n  bot: {}\ngrants:\n  alice: {tools: '*', hide: [drop_db]}\n  bot: {tools: [read_file, 'list_*']}\n",
    );
    let as_ = |tool: &str, id: Option<&str>| {
        e.evaluate_at(
            &Call {
                tool,
                identity: id,
                ..Call::default()
            },
            T0,
        )
    };
    allowed(&as_("write_file", Some("alice")));
    denied(
        &as_("drop_db", Some("alice")),
        "Tool \"drop_db\" is hidden by policy",
    );
    allowed(&as_("read_file", Some("bot")));
    allowed(&as_("list_dir", Some("bot")));
    let d = as_("write_file", Some("bot"));
    denied(&d, "Tool \"write_file\" is not granted to identity \"bot\"");
    assert_eq!(d.reason, Reason::NotGranted);
    denied(
        &as_("read_file", None),
        "Tool \"read_file\" is not granted to callers without an identity",
    );
    assert!(e.is_visible("list_dir", Some("bot")));
    assert!(!e.is_visible("write_file", Some("bot")));
    assert!(!e.is_visible("drop_db", Some("alice")));
    assert!(!e.is_visible("read_file", None));

    let e = engine("grants:\n  '*': {tools: [ping]}\n  root: {tools: '*'}\n");
    let d = e.evaluate_at(
        &Call {
            tool: "ping",
            identity: Some("anyone"),
            ..Call::default()
        },
        T0,
    );
    allowed(&d);
    let d = e.evaluate_at(
        &Call {
            tool: "exec",
            identity: Some("anyone"),
            ..Call::default()
        },
        T0,
    );
    assert_eq!(d.verdict, Verdict::Deny);
    allowed(&e.evaluate_at(
        &Call {
            tool: "exec",
            identity: Some("root"),
            ..Call::default()
        },
        T0,
    ));
}

#[test]
fn require_approval_holds_matching_calls_unless_a_rule_denies() {
    let e = engine(
        r#"tools:
  transfer:
    rules:
      - name: big transfers
        action: require_approval
        approval_timeout: 30m
        conditions: [{path: args.amount, op: gt, value: 1000}]
      - name: cap
        conditions: [{path: args.amount, op: lte, value: 50000}]
"#,
    );
    allowed(&eval(&e, "transfer", json!({"amount": 10})));
    let d = eval(&e, "transfer", json!({"amount": 5000}));
    assert_eq!(d.verdict, Verdict::RequireApproval);
    assert_eq!(d.rule.as_deref(), Some("big transfers"));
    assert_eq!(
        d.approval_timeout,
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(
        d.message.as_deref(),
        Some("Tool \"transfer\" requires human approval (rule \"big transfers\")")
    );
    denied(
        &eval(&e, "transfer", json!({"amount": 90000})),
        "Denied by rule \"cap\"",
    );
}

#[test]
fn shorthand_rate_limits_use_calendar_windows_and_the_reference_message() {
    let e = engine("tools:\n  t:\n    rules:\n      - name: hourly\n        rate_limit: 3/hour\n");
    for i in 0..3 {
        allowed(&at(&e, "t", json!({}), T0 + i * 1000));
    }
    let d = at(&e, "t", json!({}), T0 + 600_000);
    denied(&d, "Rate limit of 3 per hour reached. Try again later.");
    assert_eq!(d.reason, Reason::RateLimit);
    assert_eq!(d.rule.as_deref(), Some("hourly"));
    assert_eq!(d.retry_after_seconds, Some(3000));
    // The next UTC hour starts a new window.
    allowed(&at(&e, "t", json!({}), T0 + 3_600_000));
}

#[test]
fn rolling_rate_limits_never_pass_more_than_max_in_any_window() {
    let e = engine(
        "tools:\n  t:\n    rules:\n      - action: allow\n        rate_limit: {max: 3, window: 60}\n",
    );
    allowed(&at(&e, "t", json!({}), T0));
    allowed(&at(&e, "t", json!({}), T0 + 10_000));
    allowed(&at(&e, "t", json!({}), T0 + 20_000));
    let d = at(&e, "t", json!({}), T0 + 30_000);
    denied(
        &d,
        "Rate limit of 3 per 60 seconds reached. Try again later.",
    );
    assert_eq!(d.rule.as_deref(), Some("t#0"));
    assert_eq!(d.retry_after_seconds, Some(30));
    // A calendar window would reset at the minute; a rolling one waits for the oldest call.
    denied(
        &at(&e, "t", json!({}), T0 + 59_999),
        "Rate limit of 3 per 60 seconds reached. Try again later.",
    );
    allowed(&at(&e, "t", json!({}), T0 + 60_000));
    denied(
        &at(&e, "t", json!({}), T0 + 60_001),
        "Rate limit of 3 per 60 seconds reached. Try again later.",
    );
}

#[test]
fn lt_limits_are_one_less_than_lte() {
    let e = engine(
        "tools:\n  t:\n    rules:\n      - name: r\n        state: {counter: n, window: hour}\n        conditions: [{path: state.t.n, op: lt, value: 3}]\n",
    );
    allowed(&eval(&e, "t", json!({})));
    allowed(&eval(&e, "t", json!({})));
    let d = eval(&e, "t", json!({}));
    denied(
        &d,
        "Budget of 2 per hour on \"n\" would be exceeded by this call (rule \"r\")",
    );
    assert_eq!(d.reason, Reason::Budget);
}

#[test]
fn allowed_calls_name_the_rule_that_allowed_them_or_say_no_rule_did() {
    let e = engine(
        r#"tools:
  limited:
    rules:
      - {name: approve big, action: require_approval, conditions: [{path: args.n, op: gt, value: 10}]}
      - {name: hourly, rate_limit: 5/hour}
      - {name: small, conditions: [{path: args.n, op: lte, value: 100}]}
  held_only:
    rules:
      - {name: approve big, action: require_approval, conditions: [{path: args.n, op: gt, value: 10}]}
  bare: {}
"#,
    );
    // Both allow rules passed: the first one is named.
    let d = eval(&e, "limited", json!({"n": 1}));
    allowed(&d);
    assert_eq!(
        (d.reason, d.rule.as_deref()),
        (Reason::Rule, Some("hourly"))
    );
    assert_eq!(d.reason.as_str(), "rule");
    // No rule allowed these: the policy's default did.
    for (tool, args) in [
        ("unlisted", json!({})),
        ("bare", json!({})),
        ("held_only", json!({"n": 1})),
    ] {
        let d = eval(&e, tool, args);
        allowed(&d);
        assert_eq!(
            (d.reason, d.rule.as_deref()),
            (Reason::DefaultAllow, None),
            "{tool}"
        );
        assert_eq!(d.reason.as_str(), "default_allow");
    }
    // A deny or a hold is still the rule's.
    let d = eval(&e, "held_only", json!({"n": 50}));
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::RequireApproval, Reason::Rule)
    );

    // Under `default: deny`, a listed tool without rules is allowed because it is listed.
    let e = engine(
        "default: deny\ntools:\n  read: {}\n  'list_*': {}\n  write:\n    rules:\n      - {name: w, action: allow}\n",
    );
    for tool in ["read", "list_dir"] {
        let d = eval(&e, tool, json!({}));
        allowed(&d);
        assert_eq!(
            (d.reason, d.rule.as_deref()),
            (Reason::Listed, None),
            "{tool}"
        );
        assert_eq!(d.reason.as_str(), "listed");
    }
    let d = eval(&e, "write", json!({}));
    assert_eq!((d.reason, d.rule.as_deref()), (Reason::Rule, Some("w")));
}

#[test]
fn budgets_say_which_budget_ran_out_and_rate_limits_stay_rate_limits() {
    let e = engine(
        r#"tools:
  pay:
    rules:
      - name: daily spend
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 100000}]
  refund:
    rules:
      - name: refunds per caller
        scope: identity
        state: {counter: refunds, window: hour, increment: 2}
        conditions: [{path: state.refund.refunds, op: lt, value: 5}]
  ping:
    rules:
      - {name: pings, rate_limit: 1/minute}
"#,
    );
    allowed(&eval(&e, "pay", json!({"amount": 99000})));
    let d = eval(&e, "pay", json!({"amount": 2000}));
    denied(
        &d,
        "Budget of 100000 per day on \"spent\" would be exceeded by this call (rule \"daily spend\")",
    );
    assert_eq!(d.reason, Reason::Budget);
    assert_eq!(d.reason.as_str(), "budget");
    assert_eq!(d.rule.as_deref(), Some("daily spend"));
    assert!(d.retry_after_seconds.is_some(), "{d:?}");

    // `lt 5` lets the counter reach 4: two calls of 2, not a third.
    allowed(&eval(&e, "refund", json!({})));
    allowed(&eval(&e, "refund", json!({})));
    let d = eval(&e, "refund", json!({}));
    denied(
        &d,
        "Budget of 4 per hour for each identity on \"refunds\" would be exceeded by this call (rule \"refunds per caller\")",
    );
    assert_eq!(d.reason, Reason::Budget);

    allowed(&eval(&e, "ping", json!({})));
    let d = eval(&e, "ping", json!({}));
    denied(&d, "Rate limit of 1 per minute reached. Try again later.");
    assert_eq!(d.reason, Reason::RateLimit);
}

#[test]
fn the_reference_worked_example_of_a_tool_and_a_global_limit() {
    let e = engine(
        r#"tools:
  a:
    rules:
      - name: a limit
        rate_limit: 2/hour
  b: {}
  "*":
    rules:
      - name: global
        rate_limit: 3/minute
"#,
    );
    allowed(&eval(&e, "a", json!({})));
    allowed(&eval(&e, "a", json!({})));
    denied(
        &eval(&e, "a", json!({})),
        "Rate limit of 2 per hour reached. Try again later.",
    );
    // The denied call took nothing from the global counter.
    allowed(&eval(&e, "b", json!({})));
    denied(
        &eval(&e, "b", json!({})),
        "Rate limit of 3 per minute reached. Try again later.",
    );
}

#[test]
fn a_call_denied_by_one_counter_takes_nothing_from_the_others() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let e = engine_with(
        r#"tools:
  a:
    rules:
      - name: a limit
        rate_limit: 5/hour
  "*":
    rules:
      - name: global
        rate_limit: 1/minute
"#,
        store.clone(),
    );
    allowed(&eval(&e, "a", json!({})));
    denied(
        &eval(&e, "a", json!({})),
        "Rate limit of 1 per minute reached. Try again later.",
    );
    let hour = Window::Calendar(intercept::state::CalendarUnit::Hour);
    assert_eq!(store.read("global:a:_rate_hour", hour, T0).unwrap(), 1);
}

#[test]
fn rollback_gives_quota_back_but_never_to_a_later_window() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let e = engine_with(
        "tools:\n  t:\n    rules:\n      - rate_limit: 1/minute\n",
        store.clone(),
    );
    let d = eval(&e, "t", json!({}));
    allowed(&d);
    denied(
        &eval(&e, "t", json!({})),
        "Rate limit of 1 per minute reached. Try again later.",
    );
    e.rollback(d.reservation.as_ref().unwrap()).unwrap();
    let d2 = eval(&e, "t", json!({}));
    allowed(&d2);

    // A late failure after the window turned over does not free the new window's quota.
    let next = at(&e, "t", json!({}), T0 + 60_000);
    allowed(&next);
    e.rollback(d2.reservation.as_ref().unwrap()).unwrap();
    denied(
        &at(&e, "t", json!({}), T0 + 61_000),
        "Rate limit of 1 per minute reached. Try again later.",
    );
}

fn spend_engine(store: Arc<dyn Store>) -> Engine {
    engine_with(
        r#"tools:
  pay:
    rules:
      - name: daily spend
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 1000}]
        on_deny: "Daily spend cap reached"
"#,
        store,
    )
}

#[test]
fn increment_from_counts_amounts_like_the_reference_worked_example() {
    let e = spend_engine(Arc::new(MemoryStore::new()));
    allowed(&eval(&e, "pay", json!({"amount": 400})));
    allowed(&eval(&e, "pay", json!({"amount": 500})));
    let d = eval(&e, "pay", json!({"amount": 200}));
    // `on_deny` replaces the budget message; the reason stays.
    denied(&d, "Daily spend cap reached");
    assert_eq!(d.reason, Reason::Budget);
    assert!(d.retry_after_seconds.is_some());
    allowed(&eval(&e, "pay", json!({"amount": 100})));
    denied(
        &eval(&e, "pay", json!({"amount": 1})),
        "Daily spend cap reached",
    );
    allowed(&eval(&e, "pay", json!({"amount": 0})));
}

#[test]
fn increment_from_rejects_what_would_inflate_or_dodge_a_budget() {
    let e = spend_engine(Arc::new(MemoryStore::new()));
    for (args, problem) in [
        (
            json!({"amount": -5000}),
            "must be a finite, non-negative number, got -5000",
        ),
        (
            json!({"amount": -0.5}),
            "must be a finite, non-negative number, got -0.5",
        ),
        (
            json!({"amount": "100"}),
            "must be a finite, non-negative number, got a string",
        ),
        (
            json!({"amount": null}),
            "must be a finite, non-negative number, got null",
        ),
        (json!({"amount": 1e300}), "is too large (1e+300)"),
        (json!({}), "is missing from the call's arguments"),
    ] {
        let d = eval(&e, "pay", args.clone());
        assert_eq!(d.verdict, Verdict::Deny, "{args}");
        assert_eq!(d.reason, Reason::InvalidArguments, "{args}");
        assert_eq!(
            d.message.as_deref(),
            Some(format!("increment_from \"args.amount\" {problem}").as_str()),
            "{args}"
        );
    }
    // Fractions round up: 0.9 is never free.
    for _ in 0..1000 {
        allowed(&eval(&e, "pay", json!({"amount": 0.9})));
    }
    denied(
        &eval(&e, "pay", json!({"amount": 0.1})),
        "Daily spend cap reached",
    );
    // An amount larger than the cap itself can never pass: no retry time is promised.
    let e = spend_engine(Arc::new(MemoryStore::new()));
    let d = eval(&e, "pay", json!({"amount": 1001}));
    denied(&d, "Daily spend cap reached");
    assert_eq!(d.retry_after_seconds, None);
}

#[test]
fn scopes_keep_separate_counters_per_identity_and_session() {
    let e = engine(
        r#"tools:
  i:
    rules:
      - {name: per identity, rate_limit: 1/hour, scope: identity}
  s:
    rules:
      - {name: per session, rate_limit: 1/hour, scope: session}
  g:
    rules:
      - {name: shared, rate_limit: 1/hour}
"#,
    );
    let c = |tool: &'static str, identity: &'static str, session: &'static str| Call {
        tool,
        identity: Some(identity),
        session: Some(session),
        ..Call::default()
    };
    allowed(&e.evaluate_at(&c("i", "alice", "1"), T0));
    allowed(&e.evaluate_at(&c("i", "bob", "1"), T0));
    assert!(!e.evaluate_at(&c("i", "alice", "2"), T0).is_allowed());

    allowed(&e.evaluate_at(&c("s", "alice", "1"), T0));
    allowed(&e.evaluate_at(&c("s", "alice", "2"), T0));
    assert!(!e.evaluate_at(&c("s", "bob", "1"), T0).is_allowed());

    allowed(&e.evaluate_at(&c("g", "alice", "1"), T0));
    assert!(!e.evaluate_at(&c("g", "bob", "2"), T0).is_allowed());

    // An identity cannot borrow another's counter by spelling a key separator.
    let e = engine("tools:\n  t:\n    rules:\n      - {rate_limit: 1/hour, scope: identity}\n");
    allowed(&e.evaluate_at(&c("t", "a:global", "1"), T0));
    allowed(&e.evaluate_at(&c("t", "a", "1"), T0));
}

#[test]
fn state_conditions_read_other_tools_counters_including_dotted_names() {
    let e = engine(
        r#"tools:
  github.create_issue:
    rules:
      - name: issues
        rate_limit: 10/hour
  github.close_issue:
    rules:
      - name: close only after creating
        conditions:
          - path: state.github.create_issue._rate_hour
            op: gte
            value: 1
"#,
    );
    denied(
        &eval(&e, "github.close_issue", json!({})),
        "Denied by rule \"close only after creating\"",
    );
    allowed(&eval(&e, "github.create_issue", json!({})));
    allowed(&eval(&e, "github.close_issue", json!({})));
}

#[test]
fn the_sqlite_store_enforces_the_same_limits_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("intercept.sqlite");
    {
        let e = spend_engine(Arc::new(SqliteStore::open(&path).unwrap()));
        allowed(&eval(&e, "pay", json!({"amount": 400})));
        let d = eval(&e, "pay", json!({"amount": 500}));
        allowed(&d);
        e.rollback(d.reservation.as_ref().unwrap()).unwrap();
        allowed(&eval(&e, "pay", json!({"amount": 600})));
    }
    let e = spend_engine(Arc::new(SqliteStore::open(&path).unwrap()));
    denied(
        &eval(&e, "pay", json!({"amount": 1})),
        "Daily spend cap reached",
    );

    let e = engine_with(
        "tools:\n  t:\n    rules:\n      - rate_limit: {max: 2, window: 60}\n",
        Arc::new(SqliteStore::open(&path).unwrap()),
    );
    allowed(&at(&e, "t", json!({}), T0));
    let second = at(&e, "t", json!({}), T0 + 30_000);
    allowed(&second);
    let d = at(&e, "t", json!({}), T0 + 40_000);
    assert_eq!(d.retry_after_seconds, Some(20));
    e.rollback(second.reservation.as_ref().unwrap()).unwrap();
    allowed(&at(&e, "t", json!({}), T0 + 40_000));
    allowed(&at(&e, "t", json!({}), T0 + 60_000));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
