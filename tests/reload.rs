//! Hot reload: the policy file is watched, and each valid new version is put in force.
//! Every wait polls for the effect with a bounded deadline.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use intercept::audit::{AuditLog, sha256_hex};
use intercept::engine::{Args, Call, Engine, Verdict};
use intercept::policy;
use intercept::reload;
use intercept::state::MemoryStore;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);
const T0: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z

const ALLOW_ALL: &str =
    "tools:\n  t:\n    rules:\n      - name: calls\n        rate_limit: 3/hour\n";
const DENY_U: &str = "tools:\n  t:\n    rules:\n      - name: calls\n        rate_limit: 3/hour\n  u:\n    rules:\n      - name: no u\n        action: deny\n";

fn start(dir: &Path, text: &str, audit: Option<Arc<AuditLog>>) -> (Engine, reload::PolicyWatcher) {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    let compiled = policy::parse(text, "policy.yaml").unwrap();
    let engine = Engine::new(Arc::new(compiled), Arc::new(MemoryStore::new()));
    let watcher = reload::watch(
        &path,
        engine.clone(),
        audit,
        sha256_hex(text.as_bytes()),
        intercept::telemetry::Telemetry::disabled(),
    )
    .unwrap();
    (engine, watcher)
}

fn verdict(e: &Engine, tool: &str) -> Verdict {
    let args = json!({});
    e.evaluate_without_reservation(&Call {
        tool,
        args: Some(Args::Value(&args)),
        ..Call::default()
    })
    .verdict
}

/// The `config_reload` events written to the audit log so far.
fn config_reloads(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "config_reload")
        .collect()
}

#[track_caller]
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_edit_in_place_is_put_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _w) = start(dir.path(), ALLOW_ALL, None);
    assert_eq!(verdict(&engine, "u"), Verdict::Allow);
    std::fs::write(dir.path().join("policy.yaml"), DENY_U).unwrap();
    wait_for("the new rule", || verdict(&engine, "u") == Verdict::Deny);
}

#[test]
fn a_save_by_rename_is_put_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _w) = start(dir.path(), ALLOW_ALL, None);
    let tmp = dir.path().join(".policy.yaml.swp");
    std::fs::write(&tmp, DENY_U).unwrap();
    std::fs::rename(&tmp, dir.path().join("policy.yaml")).unwrap();
    wait_for("the renamed file", || {
        verdict(&engine, "u") == Verdict::Deny
    });
}

#[test]
fn a_delete_and_recreate_is_put_in_force_and_watching_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let (engine, _w) = start(dir.path(), ALLOW_ALL, None);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, DENY_U).unwrap();
    wait_for("the recreated file", || {
        verdict(&engine, "u") == Verdict::Deny
    });
    // Still watched after the inode changed.
    std::fs::write(&path, ALLOW_ALL).unwrap();
    wait_for("the next edit", || verdict(&engine, "u") == Verdict::Allow);
}

#[test]
fn other_files_in_the_directory_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _w) = start(dir.path(), ALLOW_ALL, None);
    // A policy with the same name elsewhere in the directory tree must not be read.
    std::fs::write(dir.path().join("other.yaml"), DENY_U).unwrap();
    std::fs::write(dir.path().join("policy.yaml.bak"), DENY_U).unwrap();
    // Then a real change, to know the watcher has seen everything before it.
    let marker = "tools:\n  t:\n    rules:\n      - name: calls\n        rate_limit: 3/hour\n  v:\n    rules:\n      - name: no v\n        action: deny\n";
    std::fs::write(dir.path().join("policy.yaml"), marker).unwrap();
    wait_for("the real change", || verdict(&engine, "v") == Verdict::Deny);
    assert_eq!(verdict(&engine, "u"), Verdict::Allow);
}

#[test]
fn counters_survive_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _w) = start(dir.path(), ALLOW_ALL, None);
    let args = json!({});
    let call = Call {
        tool: "t",
        args: Some(Args::Value(&args)),
        ..Call::default()
    };
    assert!(engine.evaluate_at(&call, T0).is_allowed());
    assert!(engine.evaluate_at(&call, T0).is_allowed());
    std::fs::write(dir.path().join("policy.yaml"), DENY_U).unwrap();
    wait_for("the reload", || verdict(&engine, "u") == Verdict::Deny);
    assert!(engine.evaluate_at(&call, T0).is_allowed(), "third of 3");
    let d = engine.evaluate_at(&call, T0);
    assert_eq!(d.verdict, Verdict::Deny, "the count went on: {d:?}");
    assert_eq!(d.rule.as_deref(), Some("calls"));
}

#[test]
fn an_invalid_edit_keeps_the_policy_and_records_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let audit = Arc::new(AuditLog::open(&log, "test", false).unwrap());
    let (engine, _w) = start(dir.path(), DENY_U, Some(audit.clone()));
    let invalid = "tools:\n  t:\n    rules:\n      - name: calls\n        rate_limit: 3/fortnight\n  u:\n    rules:\n      - action: deny\n        on-deny: nope\n";
    std::fs::write(dir.path().join("policy.yaml"), invalid).unwrap();
    let reloads = || config_reloads(&log);
    wait_for("the rejected reload", || !reloads().is_empty());
    let event = &reloads()[0];
    assert_eq!(event["status"], "failure", "{event}");
    assert_eq!(
        event["policy_sha256"],
        sha256_hex(DENY_U.as_bytes()),
        "in force"
    );
    assert_eq!(event["rejected_sha256"], sha256_hex(invalid.as_bytes()));
    let errors: Vec<&str> = event["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let file = dir.path().join("policy.yaml").display().to_string();
    assert_eq!(errors.len(), 2, "{event}");
    assert!(
        errors[0].starts_with(&format!("{file}:5:21: ")),
        "{errors:?}"
    );
    assert!(errors[0].contains("fortnight"), "{errors:?}");
    assert!(
        errors[1].starts_with(&format!("{file}:9:9: ")),
        "{errors:?}"
    );
    assert!(errors[1].contains("did you mean \"on_deny\""), "{errors:?}");
    assert_eq!(verdict(&engine, "u"), Verdict::Deny, "the old policy stays");

    // A valid version after it is applied, with its hash.
    std::fs::write(dir.path().join("policy.yaml"), ALLOW_ALL).unwrap();
    wait_for("the applied reload", || {
        verdict(&engine, "u") == Verdict::Allow
    });
    wait_for("its event", || reloads().len() == 2);
    let applied = &reloads()[1];
    assert_eq!(applied["status"], "success");
    assert_eq!(applied["policy_sha256"], sha256_hex(ALLOW_ALL.as_bytes()));
    assert_eq!(applied["previous_sha256"], sha256_hex(DENY_U.as_bytes()));
    audit.close();
}

#[test]
fn a_replaced_policy_is_seen_at_once_and_engines_never_see_each_others() {
    let parse = |text: &str| Arc::new(policy::parse(text, "p.yaml").unwrap());
    let a = Engine::new(parse(ALLOW_ALL), Arc::new(MemoryStore::new()));
    let b = Engine::new(parse(DENY_U), Arc::new(MemoryStore::new()));
    let a2 = a.clone();
    for _ in 0..3 {
        assert_eq!(verdict(&a, "u"), Verdict::Allow);
        assert_eq!(verdict(&b, "u"), Verdict::Deny);
    }
    a2.replace_policy(parse(DENY_U));
    assert_eq!(
        verdict(&a, "u"),
        Verdict::Deny,
        "the clone's swap, seen at once"
    );
    b.replace_policy(parse(ALLOW_ALL));
    assert_eq!(verdict(&b, "u"), Verdict::Allow);
    assert_eq!(verdict(&a, "u"), Verdict::Deny);
    // From another thread too.
    let a3 = a.clone();
    std::thread::spawn(move || a3.replace_policy(parse(ALLOW_ALL)))
        .join()
        .unwrap();
    assert_eq!(verdict(&a, "u"), Verdict::Allow);
}

#[test]
fn an_emptied_file_or_an_empty_policy_is_not_put_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let audit = Arc::new(AuditLog::open(&log, "test", false).unwrap());
    let (engine, _w) = start(dir.path(), DENY_U, Some(audit));
    let path = dir.path().join("policy.yaml");
    // What an editor leaves between truncating the file and writing it, held long enough
    // for the watcher to read it (well past the debounce).
    std::fs::write(&path, "\n").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        verdict(&engine, "u"),
        Verdict::Deny,
        "the policy in force stays"
    );
    // Nor a file of comments only, or a document that is only `~`: saved on purpose, they
    // would still allow every call.
    for text in ["# every rule removed\n", "---\n~\n"] {
        std::fs::write(&path, text).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(verdict(&engine, "u"), Verdict::Deny, "{text:?}");
    }
    // The next real save is applied, and it is the only reload recorded.
    std::fs::write(&path, ALLOW_ALL).unwrap();
    wait_for("the new policy", || verdict(&engine, "u") == Verdict::Allow);
    let reloads = || config_reloads(&log);
    wait_for("the reload event", || !reloads().is_empty());
    let reloads = reloads();
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert_eq!(
        reloads[0]["policy_sha256"],
        sha256_hex(ALLOW_ALL.as_bytes())
    );
}

#[test]
fn an_alias_bomb_or_an_over_size_file_saved_over_the_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let audit = Arc::new(AuditLog::open(&log, "test", false).unwrap());
    let (engine, _w) = start(dir.path(), DENY_U, Some(audit.clone()));
    let path = dir.path().join("policy.yaml");
    let file = path.display().to_string();
    let reloads = || config_reloads(&log);

    let bomb =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alias-bomb.yaml"))
            .unwrap();
    std::fs::write(&path, &bomb).unwrap();
    wait_for("the rejected bomb", || !reloads().is_empty());
    let event = &reloads()[0];
    assert_eq!(event["status"], "failure", "{event}");
    assert_eq!(event["policy_sha256"], sha256_hex(DENY_U.as_bytes()));
    assert_eq!(event["rejected_sha256"], sha256_hex(&bomb));
    assert_eq!(event["errors"].as_array().unwrap().len(), 1, "{event}");
    let error = event["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "{file}:7:8: aliases repeat more than 100000 nodes"
        )),
        "{error}"
    );
    assert_eq!(verdict(&engine, "u"), Verdict::Deny, "the old policy stays");

    // Too large to be read: refused before its hash could be taken.
    let mut big = DENY_U.to_string();
    big.push_str(&"# padding\n".repeat(900_000));
    // Saved by rename, so no partly written (and so smaller) version is ever read.
    let tmp = dir.path().join("policy.yaml.tmp");
    std::fs::write(&tmp, &big).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    wait_for("the rejected big file", || reloads().len() == 2);
    let event = &reloads()[1];
    assert_eq!(event["status"], "failure", "{event}");
    assert_eq!(event["rejected_sha256"], Value::Null);
    assert_eq!(
        event["errors"][0],
        format!(
            "{file}:1:1: the policy is larger than 8388608 bytes (8 MiB), the most a policy file may hold"
        )
    );
    assert_eq!(verdict(&engine, "u"), Verdict::Deny, "the old policy stays");
    audit.close();
}
