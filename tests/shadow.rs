//! Shadow mode: `mode: shadow` on a rule, or the whole policy with `--shadow`. What would be
//! denied is reported as `shadow_deny` and the call goes through; shadow counters count
//! what the enforced rule would have counted.

use std::sync::Arc;

use intercept::engine::{Args, Call, Decision, Engine, Reason, Verdict};
use intercept::policy;
use intercept::state::{CalendarUnit, MemoryStore, Store, Window};
use serde_json::{Value, json};

const T0: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn engine(yaml: &str) -> (Engine, Arc<MemoryStore>) {
    let compiled = policy::parse(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(MemoryStore::new());
    (Engine::new(Arc::new(compiled), store.clone()), store)
}

fn at(e: &Engine, tool: &str, args: Value, now: i64) -> Decision {
    e.evaluate_at(
        &Call {
            tool,
            args: Some(Args::Value(&args)),
            ..Call::default()
        },
        now,
    )
}

#[track_caller]
fn is(d: &Decision, verdict: Verdict, rule: Option<&str>) {
    assert_eq!(d.verdict, verdict, "{d:?}");
    assert_eq!(d.rule.as_deref(), rule, "{d:?}");
}

fn hourly(store: &MemoryStore, key: &str, now: i64) -> u64 {
    store
        .read(key, Window::Calendar(CalendarUnit::Hour), now)
        .unwrap()
}

#[test]
fn a_shadow_deny_rule_lets_the_call_through_and_says_what_it_would_have_done() {
    let (e, _) = engine(
        "tools:\n  drop_table:\n    rules:\n      - name: no drops\n        action: deny\n        mode: shadow\n        on_deny: Dropping tables is not allowed\n",
    );
    let d = at(&e, "drop_table", json!({}), T0);
    is(&d, Verdict::ShadowDeny, Some("no drops"));
    assert!(d.is_allowed());
    assert_eq!(d.reason, Reason::Rule);
    assert_eq!(d.message.as_deref(), Some("Dropping tables is not allowed"));
    assert_eq!(Verdict::ShadowDeny.as_str(), "shadow_deny");
}

#[test]
fn an_enforced_denial_still_denies_whatever_the_shadow_rules_say() {
    let yaml = "tools:
  pay:
    rules:
      - name: small amounts
        mode: shadow
        conditions:
          - {path: args.amount, op: lte, value: 100}
      - name: known currency
        conditions:
          - {path: args.currency, op: in, value: [usd, eur]}
";
    let (e, _) = engine(yaml);
    is(
        &at(&e, "pay", json!({"amount": 500, "currency": "usd"}), T0),
        Verdict::ShadowDeny,
        Some("small amounts"),
    );
    is(
        &at(&e, "pay", json!({"amount": 500, "currency": "gbp"}), T0),
        Verdict::Deny,
        Some("known currency"),
    );
    is(
        &at(&e, "pay", json!({"amount": 5, "currency": "usd"}), T0),
        Verdict::Allow,
        Some("small amounts"),
    );
}

#[test]
fn a_shadow_rate_limit_counts_what_enforcement_would_have_counted() {
    let (e, store) = engine(
        "tools:\n  t:\n    rules:\n      - name: two an hour\n        mode: shadow\n        rate_limit: 2/hour\n",
    );
    is(
        &at(&e, "t", json!({}), T0),
        Verdict::Allow,
        Some("two an hour"),
    );
    is(
        &at(&e, "t", json!({}), T0 + 1),
        Verdict::Allow,
        Some("two an hour"),
    );
    for i in 0..3 {
        let d = at(&e, "t", json!({}), T0 + 10 + i);
        is(&d, Verdict::ShadowDeny, Some("two an hour"));
        assert_eq!(d.reason, Reason::RateLimit);
        assert!(d.retry_after_seconds.is_some_and(|s| s > 3000), "{d:?}");
        assert!(d.reservation.is_none(), "nothing counted: {d:?}");
    }
    // The counter never goes over its limit: it shows what the enforced rule would hold.
    assert_eq!(hourly(&store, "global:t:_rate_hour", T0 + 20), 2);
    // Next window: passes again, exactly when enforcement would have let it.
    is(
        &at(&e, "t", json!({}), T0 + HOUR),
        Verdict::Allow,
        Some("two an hour"),
    );
}

#[test]
fn enforced_counters_count_every_call_that_goes_through_and_shadow_ones_their_own() {
    let yaml = "tools:
  t:
    rules:
      - name: enforced
        rate_limit: 3/hour
      - name: shadow
        mode: shadow
        rate_limit: {max: 1, window: 3600}
";
    let (e, store) = engine(yaml);
    is(
        &at(&e, "t", json!({}), T0),
        Verdict::Allow,
        Some("enforced"),
    );
    let second = at(&e, "t", json!({}), T0 + 1);
    is(&second, Verdict::ShadowDeny, Some("shadow"));
    assert!(second.reservation.is_some(), "the enforced counter counted");
    is(
        &at(&e, "t", json!({}), T0 + 2),
        Verdict::ShadowDeny,
        Some("shadow"),
    );
    assert_eq!(hourly(&store, "global:t:_rate_hour", T0 + 3), 3);
    // Over the enforced limit: denied, whatever the shadow rule says.
    let d = at(&e, "t", json!({}), T0 + 3);
    is(&d, Verdict::Deny, Some("enforced"));
    assert_eq!(d.reason, Reason::RateLimit);
    // A rolled-back shadow_deny gives its enforced count back.
    e.rollback(second.reservation.as_ref().unwrap()).unwrap();
    is(
        &at(&e, "t", json!({}), T0 + 4),
        Verdict::ShadowDeny,
        Some("shadow"),
    );
}

#[test]
fn a_call_a_shadow_rule_would_deny_does_not_count_on_shadow_counters() {
    let yaml = "tools:
  t:
    rules:
      - name: only small
        mode: shadow
        conditions:
          - {path: args.n, op: lt, value: 10}
      - name: limit
        mode: shadow
        rate_limit: 5/hour
";
    let (e, store) = engine(yaml);
    is(
        &at(&e, "t", json!({"n": 50}), T0),
        Verdict::ShadowDeny,
        Some("only small"),
    );
    assert_eq!(hourly(&store, "global:t:_rate_hour", T0), 0);
    is(
        &at(&e, "t", json!({"n": 1}), T0),
        Verdict::Allow,
        Some("only small"),
    );
    assert_eq!(hourly(&store, "global:t:_rate_hour", T0), 1);
}

#[test]
fn a_shadow_approval_rule_reports_the_hold_and_lets_the_call_through() {
    let (e, _) = engine(
        "tools:\n  wire:\n    rules:\n      - name: big wires\n        action: require_approval\n        mode: shadow\n        conditions:\n          - {path: args.amount, op: gt, value: 1000}\n",
    );
    let d = at(&e, "wire", json!({"amount": 5000}), T0);
    is(&d, Verdict::ShadowDeny, Some("big wires"));
    assert!(
        d.message
            .as_deref()
            .unwrap()
            .contains("requires human approval")
    );
    assert!(d.approval_timeout.is_none());
    is(
        &at(&e, "wire", json!({"amount": 5}), T0),
        Verdict::Allow,
        None,
    );
}

#[test]
fn the_whole_policy_in_shadow_mode_enforces_nothing() {
    let yaml = "default: deny
hide: [secret_tool]
tools:
  t:
    rules:
      - name: never
        action: deny
  r:
    rules:
      - name: once
        rate_limit: 1/hour
";
    let (e, store) = engine(yaml);
    let e = e.with_shadow(true);
    assert!(e.is_shadow());
    let d = at(&e, "secret_tool", json!({}), T0);
    is(&d, Verdict::ShadowDeny, Some("(hidden)"));
    assert_eq!(d.reason, Reason::Hidden);
    let d = at(&e, "unlisted", json!({}), T0);
    is(&d, Verdict::ShadowDeny, Some("(default deny)"));
    is(
        &at(&e, "t", json!({}), T0),
        Verdict::ShadowDeny,
        Some("never"),
    );
    is(&at(&e, "r", json!({}), T0), Verdict::Allow, Some("once"));
    is(
        &at(&e, "r", json!({}), T0),
        Verdict::ShadowDeny,
        Some("once"),
    );
    assert_eq!(hourly(&store, "global:r:_rate_hour", T0), 1);
    // Nothing is hidden from tools/list either.
    assert!(e.is_visible("secret_tool", None));
    assert!(e.is_visible("unlisted", None));
    // Calls that cannot be evaluated at all are still refused.
    let args = json!("not an object");
    let d = e.evaluate_at(
        &Call {
            tool: "t",
            args: Some(Args::Value(&args)),
            ..Call::default()
        },
        T0,
    );
    assert_eq!(d.verdict, Verdict::Deny);
}

#[test]
fn mode_is_validated_with_a_position_and_a_hint() {
    assert!(
        policy::validate("tools:\n  t:\n    rules:\n      - action: deny\n        mode: enforce\n")
            .is_empty()
    );
    let errors =
        policy::validate("tools:\n  t:\n    rules:\n      - action: deny\n        mode: shadwo\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "tools.t.rules[0].mode: mode must be \"enforce\" or \"shadow\", got \"shadwo\" (did you mean \"shadow\"?)"
    );
    assert_eq!((errors[0].line, errors[0].column), (5, 15));
    let errors =
        policy::validate("tools:\n  t:\n    rules:\n      - action: deny\n        mdoe: shadow\n");
    assert!(
        errors[0].message.contains("did you mean \"mode\""),
        "{errors:#?}"
    );
}
