//! The tool classifier: a category and a risk from 1 to 5 for every tool, with the reasons.
//!
//! Deterministic and explainable, in this order:
//! 1. MCP annotations: `readOnlyHint: true` is Read; `destructiveHint: true` is Destructive,
//!    except on a tool whose verb is not destructive (`write_file`, `browser_navigate`),
//!    where "may overwrite" raises the risk (and makes a reading verb Write) instead.
//! 2. The verbs of the tool's name (`delete_*` Destructive, `run`/`exec`/`deploy` Execute,
//!    `create`/`update` Write, `get`/`list` Read, …); money words make a changing verb
//!    Financial (`create_refund`, `cancel_subscription`).
//! 3. The first verb of the description's first sentence ("Deletes a …").
//! 4. Nothing recognised: Write, so the tool stays usable but bounded.
//!
//! An explicit `destructiveHint: false` corrects a destructive guess from the name.
//! Risk starts from the category (Read 1, Write 2, Execute/Financial/Destructive 4) and
//! rises by one for credential-bearing or very wide inputs and by one for bulk or
//! irreversible operations.

use serde::Serialize;
use serde_json::Value;

use super::Tool;
use super::words::{name_words, text_words};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Category {
    Read,
    Write,
    Execute,
    Financial,
    Destructive,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Read,
        Category::Write,
        Category::Execute,
        Category::Financial,
        Category::Destructive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Read => "Read",
            Category::Write => "Write",
            Category::Execute => "Execute",
            Category::Financial => "Financial",
            Category::Destructive => "Destructive",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    fn base_risk(self) -> u8 {
        match self {
            Category::Read => 1,
            Category::Write => 2,
            Category::Execute | Category::Financial | Category::Destructive => 4,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub category: Category,
    /// 1 (harmless) to 5 (dangerous).
    pub risk: u8,
    /// Why the category: the annotation, verb or description word that decided it.
    pub basis: String,
    /// What raised the risk above the category's base.
    pub flags: Vec<String>,
}

impl Classification {
    /// `basis; flag; flag`, as written in policy comments.
    pub fn reasons(&self) -> String {
        std::iter::once(self.basis.as_str())
            .chain(self.flags.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Verbs whose meaning moves money.
#[rustfmt::skip]
const FINANCIAL_VERBS: &[&str] = &[
    "pay", "refund", "charge", "transfer", "withdraw", "purchase", "buy", "sell", "trade",
    "swap", "payout", "bill", "invoice",
];
/// Nouns that make a changing verb Financial (`create_refund`, `cancel_subscription`).
#[rustfmt::skip]
const MONEY_NOUNS: &[&str] = &[
    "refund", "refunds", "charge", "charges", "payment", "payments", "payout", "payouts",
    "transfer", "transfers", "invoice", "invoices", "subscription", "subscriptions", "billing",
    "transaction", "transactions", "purchase", "purchases", "coupon", "coupons", "dispute",
    "disputes", "wallet", "funds", "money", "price", "prices", "order", "orders",
    "paymentintent", "paymentlink", "credit", "balance",
];
#[rustfmt::skip]
const DESTRUCTIVE_VERBS: &[&str] = &[
    "delete", "remove", "drop", "purge", "destroy", "terminate", "wipe", "truncate", "erase",
    "kill", "uninstall", "discard", "rm", "del", "obliterate", "shred", "nuke", "unlink",
    "evict", "expunge", "deprovision", "prune", "clear",
];
#[rustfmt::skip]
const EXECUTE_VERBS: &[&str] = &[
    "run", "exec", "execute", "eval", "shell", "bash", "sh", "spawn", "invoke", "deploy",
    "launch", "script", "command", "cmd", "interpret", "trigger", "rerun", "restart", "python",
    "repl", "terminal", "build", "redeploy", "evaluate", "sql", "pipeline",
];
#[rustfmt::skip]
const WRITE_VERBS: &[&str] = &[
    "create", "update", "add", "set", "put", "post", "patch", "edit", "write", "modify",
    "insert", "upsert", "save", "upload", "import", "exchange", "send", "reply", "comment",
    "merge", "push", "commit", "move", "rename", "copy", "assign", "unassign", "close",
    "reopen", "enable", "disable", "archive", "unarchive", "restore", "apply", "approve",
    "reject", "publish", "unpublish", "submit", "schedule", "invite", "star", "unstar", "fork",
    "tag", "label", "link", "attach", "detach", "mark", "lock", "unlock", "click", "type",
    "fill", "press", "drag", "hover", "select", "install", "configure", "connect", "disconnect",
    "login", "logout", "authenticate", "register", "subscribe", "unsubscribe", "resize",
    "reset", "revoke", "rotate", "refresh", "sync", "clone", "checkout", "stage", "unstage",
    "init", "initialize", "append", "replace", "change", "cancel", "abort", "stop", "pause",
    "resume", "complete", "retry", "generate", "store", "remember", "record", "track", "toggle",
    "duplicate", "transition", "handle", "reload", "new", "manage", "grant", "share",
    "provision", "scale", "rollback", "revert", "promote", "activate", "deactivate", "suspend",
    "block", "unblock", "follow", "unfollow", "like", "vote", "react", "annotate", "finalize",
    "void", "upgrade", "downgrade", "emulate", "dismiss", "accept", "decline", "confirm",
    "rebase", "cherry", "branch", "draft", "enqueue", "request", "notify", "email", "message",
    "dm", "tweet", "book", "reserve", "claim", "mutate", "alter", "transcribe", "design",
    "draw", "plan", "setup", "bootstrap", "rebuild", "migrate", "seed", "reindex", "optimize",
    "signup", "fix", "open", "compress", "decompress", "zip", "gzip", "keyboard", "mouse",
    "scroll", "tap", "swipe", "focus", "start", "navigate", "visit", "forward", "back",
];
#[rustfmt::skip]
const READ_VERBS: &[&str] = &[
    "get", "list", "search", "read", "describe", "fetch", "find", "query", "show", "view",
    "lookup", "retrieve", "browse", "check", "inspect", "count", "explain", "analyze",
    "analyse", "download", "export", "summarize", "summarise", "validate", "preview", "diff",
    "status", "snapshot", "screenshot", "wait", "resolve", "echo", "think", "thinking",
    "sequentialthinking", "calculate", "compute", "convert", "parse", "render", "translate",
    "ping", "whoami", "info", "health", "scan", "monitor", "watch", "poll", "audit", "verify",
    "compare", "extract", "scrape", "crawl", "map", "research", "ask", "answer", "recommend",
    "suggest", "estimate", "geocode", "directions", "distance", "elevation", "autocomplete",
    "capture", "take", "measure", "trace", "help", "docs", "log", "logs", "lint", "review",
    "diagnose", "return", "returns", "retrieves", "load", "print", "test", "grep", "glob", "ls",
    "cat", "head", "tail", "tree", "stat", "exists", "identify", "detect", "classify", "match",
    "look", "see", "observe", "go", "tabs", "sample", "aggregate", "usage", "metrics", "stats",
    "outline", "overview", "details", "detail", "history", "schema", "sum", "contents",
    "content", "current", "now", "time", "weather", "forecast", "transcript", "quote", "quotes",
    "index", "analysis", "decode", "encode", "hash", "tokenize", "debug", "profile", "insights",
    "discover", "explore", "examine", "study", "learn", "understand", "fetching", "reading",
    "expand", "chat", "filter", "screen", "rank", "rerank", "sort",
];
/// What a starting or writing verb acts on that makes the tool run code or statements
/// (`start_process`, `write_query`, `write_neo4j_cypher`).
#[rustfmt::skip]
const EXECUTE_OBJECTS: &[&str] = &[
    "process", "command", "script", "code", "sql", "cypher", "query", "javascript", "shell",
    "pipeline", "workflow", "job",
];
const EXECUTING_VERBS: &[&str] = &["start", "write", "spawn", "launch", "submit", "trigger"];
/// Verbs that say little on their own; a later verb in the name decides
/// (`API-post-search` is a search, `bulk_delete` a delete).
#[rustfmt::skip]
const WEAK_VERBS: &[&str] = &[
    "post", "put", "patch", "handle", "manage", "take", "go", "new",
];
#[rustfmt::skip]
const BULK_WORDS: &[&str] = &[
    "bulk", "batch", "all", "mass", "multiple", "many", "recursive", "recursively",
];
#[rustfmt::skip]
const IRREVERSIBLE_PHRASES: &[&str] = &[
    "permanently", "permanent", "irreversible", "irreversibly", "cannot be undone",
    "can not be undone", "can't be undone", "irrevocably", "cannot be recovered",
];
/// Words in a parameter (or tool) name that say it carries a secret.
#[rustfmt::skip]
const SECRET_WORDS: &[&str] = &[
    "token", "tokens", "secret", "secrets", "password", "passwords", "passwd", "passphrase",
    "credential", "credentials", "jwt", "apikey", "cookie", "cookies", "otp", "authorization",
    "privatekey", "mnemonic",
];
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("client", "secret"),
    ("auth", "header"),
    ("seed", "phrase"),
];
/// Phrases in a description's first sentence that say the tool handles secrets.
const SECRET_PHRASES: &[&str] = &[
    "environment variable",
    "secret",
    "credential",
    "password",
    "api key",
    "private key",
    "access token",
];
/// A secret word after one of these is a count or a cursor, not a secret (`max_tokens`,
/// `nextPageToken`).
#[rustfmt::skip]
const NOT_SECRET_BEFORE: &[&str] = &[
    "max", "num", "page", "next", "continuation", "sync", "count", "total", "min", "prev",
    "previous", "cursor", "output", "input", "completion", "prompt",
];

const HIGH_PARAMETER_COUNT: usize = 20;

fn verb_category(word: &str) -> Option<Category> {
    // Order matters where a word is in two lists: the more dangerous reading wins.
    if FINANCIAL_VERBS.contains(&word) {
        Some(Category::Financial)
    } else if DESTRUCTIVE_VERBS.contains(&word) {
        Some(Category::Destructive)
    } else if EXECUTE_VERBS.contains(&word) {
        Some(Category::Execute)
    } else if WRITE_VERBS.contains(&word) {
        Some(Category::Write)
    } else if READ_VERBS.contains(&word) {
        Some(Category::Read)
    } else {
        None
    }
}

/// The deciding verb of a name and its category.
fn name_verb(words: &[String]) -> Option<(String, Category)> {
    // A destructive verb anywhere decides (`firecrawl_monitor_delete`: "monitor" is a noun).
    if let Some(w) = words
        .iter()
        .find(|w| DESTRUCTIVE_VERBS.contains(&w.as_str()))
    {
        return Some((w.clone(), Category::Destructive));
    }
    let (verb, category) = first_verb(words)?;
    if EXECUTING_VERBS.contains(&verb.as_str())
        && let Some(object) = words.iter().find(|w| EXECUTE_OBJECTS.contains(&w.as_str()))
    {
        return Some((format!("{verb} {object}"), Category::Execute));
    }
    Some((verb, category))
}

fn first_verb(words: &[String]) -> Option<(String, Category)> {
    let mut weak: Option<(String, Category)> = None;
    for w in words {
        let Some(cat) = verb_category(w) else {
            continue;
        };
        if WEAK_VERBS.contains(&w.as_str()) {
            weak.get_or_insert((w.clone(), cat));
            continue;
        }
        return Some((w.clone(), cat));
    }
    // A weak verb alone still says something (`API-post-page` creates a page).
    weak
}

/// The first verb of a description's first sentence (`sentence`), with simple stemming ("Deletes",
/// "Creating" → delete, create).
fn description_verb(sentence: &str) -> Option<(String, Category)> {
    for w in text_words(sentence).into_iter().take(12) {
        for stem in stems(&w) {
            if WEAK_VERBS.contains(&stem.as_str()) {
                continue;
            }
            if let Some(cat) = verb_category(&stem) {
                return Some((w, cat));
            }
        }
    }
    None
}

fn stems(word: &str) -> Vec<String> {
    let mut out = vec![word.to_string()];
    if let Some(s) = word.strip_suffix("ies") {
        out.push(format!("{s}y"));
    }
    if let Some(s) = word.strip_suffix("es") {
        out.push(s.to_string());
    }
    if let Some(s) = word.strip_suffix('s') {
        out.push(s.to_string());
    }
    if let Some(s) = word.strip_suffix("ing") {
        out.push(s.to_string());
        out.push(format!("{s}e"));
    }
    out
}

/// Classifies one tool.
pub fn classify(tool: &Tool) -> Classification {
    let words = name_words(&tool.name);
    let description = tool.description.as_deref().unwrap_or("");
    let sentence = super::words::first_sentence(description, 400);
    let ann = &tool.annotations;
    let money_word = words
        .iter()
        .find(|w| MONEY_NOUNS.contains(&w.as_str()))
        .cloned();

    // The verb: from the name, else from the description.
    let verb = name_verb(&words)
        .map(|(v, c)| (format!("verb \"{v}\""), c))
        .or_else(|| description_verb(&sentence).map(|(v, c)| (format!("description: \"{v}\""), c)));
    // `destructiveHint` means "may destroy or overwrite". On a tool whose verb is not
    // itself destructive (`write_file`, `browser_navigate`) the hint raises the risk and
    // makes a reading verb Write, rather than making the tool Destructive: it stays usable.
    let overwrites = ann.read_only != Some(true)
        && ann.destructive == Some(true)
        && verb
            .as_ref()
            .is_some_and(|(_, c)| *c != Category::Destructive);
    let (mut category, mut basis) = if ann.read_only == Some(true) {
        (Category::Read, "read-only (readOnlyHint)".to_string())
    } else if ann.destructive == Some(true) && !overwrites {
        (Category::Destructive, "destructiveHint".to_string())
    } else if let Some((basis, cat)) = verb {
        if overwrites && cat == Category::Read {
            (Category::Write, basis)
        } else {
            (cat, basis)
        }
    } else {
        (Category::Write, "no recognised verb".to_string())
    };

    // An explicit "not destructive" corrects a name-based guess. (An explicit
    // `readOnlyHint: false` does not: servers set it on snapshots and audits too.)
    if category == Category::Destructive && ann.destructive == Some(false) {
        category = Category::Write;
        basis.push_str(", but destructiveHint is false");
    }
    // Money turns any change into a financial operation.
    if category != Category::Read
        && category != Category::Financial
        && let Some(noun) = &money_word
    {
        category = Category::Financial;
        basis.push_str(&format!(" on \"{noun}\""));
    }

    let mut flags = Vec::new();
    let mut bump = 0u8;
    let mut secrets = Vec::new();
    let mut properties = 0usize;
    walk(
        &tool.input_schema,
        "",
        &mut |path, name| {
            properties += 1;
            if is_secret_name(&name_words(name)) {
                secrets.push(path.to_string());
            }
        },
        0,
    );
    if is_secret_name(&words) {
        secrets.insert(0, "tool name".to_string());
    }
    // A tool that says it returns secrets (`get-env`: "Returns all environment variables").
    let sentence = sentence.to_lowercase();
    if secrets.is_empty() && SECRET_PHRASES.iter().any(|p| sentence.contains(p)) {
        secrets.push("description".to_string());
    }
    let wide = properties >= HIGH_PARAMETER_COUNT;
    if !secrets.is_empty() {
        let shown: Vec<&str> = secrets.iter().take(3).map(String::as_str).collect();
        let more = if secrets.len() > 3 { ", …" } else { "" };
        flags.push(format!(
            "handles credentials or secrets ({}{more})",
            shown.join(", ")
        ));
    }
    if wide {
        flags.push(format!("high parameter count ({properties} properties)"));
    }
    if !secrets.is_empty() || wide {
        bump += 1;
    }
    if category != Category::Read {
        let lower = description.to_lowercase();
        if overwrites {
            flags.push("may overwrite or destroy data (destructiveHint)".to_string());
            bump += 1;
        } else if let Some(w) = words.iter().find(|w| BULK_WORDS.contains(&w.as_str())) {
            flags.push(format!("bulk operation (\"{w}\")"));
            bump += 1;
        } else if let Some(p) = IRREVERSIBLE_PHRASES.iter().find(|p| lower.contains(*p)) {
            flags.push(format!("irreversible (\"{p}\")"));
            bump += 1;
        }
    }
    let risk = (category.base_risk() + bump).min(5);
    Classification {
        category,
        risk,
        basis,
        flags,
    }
}

fn is_secret_name(words: &[String]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        let before = i.checked_sub(1).map(|j| words[j].as_str());
        let next = words.get(i + 1).map(String::as_str);
        if before.is_some_and(|b| NOT_SECRET_BEFORE.contains(&b)) {
            return false;
        }
        // "tokens" as a count ("tokens_limit") is not a secret either.
        if SECRET_WORDS.contains(&w.as_str()) {
            return !(w.starts_with("token") && matches!(next, Some("limit" | "count" | "budget")));
        }
        next.is_some_and(|n| SECRET_PAIRS.contains(&(w.as_str(), n)))
    })
}

/// Calls `f(path, name)` for every property of a JSON schema, nested objects, arrays and
/// combinators included. Paths are dotted (`requestBody.token`).
fn walk(schema: &Value, prefix: &str, f: &mut dyn FnMut(&str, &str), depth: usize) {
    // Recursive schemas ($ref loops are not followed, but deep nesting is cut short).
    if depth > 8 {
        return;
    }
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            f(&path, name);
            walk(sub, &path, f, depth + 1);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, prefix, f, depth + 1);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            for sub in list {
                walk(sub, prefix, f, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Annotations;
    use serde_json::json;

    fn tool(name: &str, description: &str, schema: Value) -> Tool {
        Tool {
            name: name.into(),
            title: None,
            description: Some(description.into()),
            input_schema: schema,
            annotations: Annotations::default(),
        }
    }

    fn cat(name: &str) -> Category {
        classify(&tool(name, "", json!({}))).category
    }

    #[test]
    fn name_verbs_decide() {
        assert_eq!(cat("exchangeRefreshTokenForJWTWithId"), Category::Write);
        assert_eq!(cat("importRefreshTokensWithId"), Category::Write);
        assert_eq!(cat("delete_repo"), Category::Destructive);
        assert_eq!(cat("drop_table"), Category::Destructive);
        assert_eq!(cat("purgeCache"), Category::Destructive);
        assert_eq!(cat("terminateInstances"), Category::Destructive);
        assert_eq!(cat("create_refund"), Category::Financial);
        assert_eq!(cat("create_charge"), Category::Financial);
        assert_eq!(cat("cancel_subscription"), Category::Financial);
        assert_eq!(cat("run_shell_command"), Category::Execute);
        assert_eq!(cat("exec"), Category::Execute);
        assert_eq!(cat("browser_evaluate"), Category::Execute);
        assert_eq!(cat("deploy_edge_function"), Category::Execute);
        assert_eq!(cat("get_issue"), Category::Read);
        assert_eq!(cat("list_payments"), Category::Read);
        assert_eq!(cat("search_repositories"), Category::Read);
        assert_eq!(cat("read_file"), Category::Read);
        assert_eq!(cat("describeTable"), Category::Read);
        assert_eq!(cat("API-post-search"), Category::Read);
        assert_eq!(cat("API-post-page"), Category::Write);
        assert_eq!(cat("bulk_delete_issues"), Category::Destructive);
    }

    #[test]
    fn annotations_come_first_and_correct_names() {
        let mut t = tool("delete_thing", "", json!({}));
        t.annotations.read_only = Some(true);
        assert_eq!(classify(&t).category, Category::Read);
        let mut t = tool("frobnicate", "", json!({}));
        t.annotations.destructive = Some(true);
        let c = classify(&t);
        assert_eq!(
            (c.category, c.basis.as_str()),
            (Category::Destructive, "destructiveHint")
        );
        let mut t = tool("write_file", "", json!({}));
        t.annotations.destructive = Some(true);
        let c = classify(&t);
        assert_eq!((c.category, c.risk), (Category::Write, 3));
        assert_eq!(
            c.reasons(),
            "verb \"write\"; may overwrite or destroy data (destructiveHint)"
        );
        let mut t = tool("browser_navigate", "", json!({}));
        t.annotations.destructive = Some(true);
        assert_eq!(classify(&t).category, Category::Write);
        let mut t = tool("delete_thing", "", json!({}));
        t.annotations.destructive = Some(true);
        assert_eq!(classify(&t).category, Category::Destructive);
        let mut t = tool("remove_label", "", json!({}));
        t.annotations.destructive = Some(false);
        assert_eq!(classify(&t).category, Category::Write);
        let mut t = tool("take_snapshot", "", json!({}));
        t.annotations.read_only = Some(false);
        assert_eq!(classify(&t).category, Category::Read);
        assert_eq!(cat("git_checkout"), Category::Write);
        assert_eq!(cat("start_process"), Category::Execute);
        assert_eq!(cat("write_query"), Category::Execute);
        assert_eq!(cat("firecrawl_monitor_delete"), Category::Destructive);
    }

    #[test]
    fn description_then_default() {
        assert_eq!(
            classify(&tool(
                "frobnicate",
                "Deletes the widget forever.",
                json!({})
            ))
            .category,
            Category::Destructive
        );
        assert_eq!(
            classify(&tool("widgets", "Retrieves widgets.", json!({}))).category,
            Category::Read
        );
        let c = classify(&tool("frobnicate", "Frobs.", json!({})));
        assert_eq!((c.category, c.risk), (Category::Write, 2));
        assert_eq!(c.basis, "no recognised verb");
    }

    #[test]
    fn risk_flags_and_reason_style() {
        let mut props = serde_json::Map::new();
        for i in 0..19 {
            props.insert(format!("field{i}"), json!({"type": "string"}));
        }
        props.insert(
            "requestBody".into(),
            json!({"type": "object", "properties": {"token": {"type": "string"}}}),
        );
        let t = tool(
            "exchangeRefreshTokenForJWTWithId",
            "",
            json!({"type": "object", "properties": props}),
        );
        let c = classify(&t);
        assert_eq!(c.category, Category::Write);
        assert_eq!(c.risk, 3);
        assert_eq!(
            c.reasons(),
            "verb \"exchange\"; handles credentials or secrets (tool name, requestBody.token); high parameter count (21 properties)"
        );
        let c = classify(&tool("delete_all_files", "Permanently deletes.", json!({})));
        assert_eq!((c.category, c.risk), (Category::Destructive, 5));
        let c = classify(&tool(
            "chat",
            "Asks a model.",
            json!({"properties": {"max_tokens": {}, "nextPageToken": {}}}),
        ));
        assert!(c.flags.is_empty(), "{c:?}");
        let c = classify(&tool("login", "", json!({"properties": {"api_key": {}}})));
        assert_eq!(c.flags, ["handles credentials or secrets (api_key)"]);
        let mut t = tool(
            "get-env",
            "Returns all environment variables, for debugging.",
            json!({}),
        );
        t.annotations.read_only = Some(true);
        let c = classify(&t);
        assert_eq!((c.category, c.risk), (Category::Read, 2));
        assert_eq!(c.flags, ["handles credentials or secrets (description)"]);
    }

    /// The classifier against real tools labelled by hand (`labelled.tsv`).
    #[test]
    fn labelled_set() {
        const FLOOR: f64 = 0.90;
        const HELD_OUT_FLOOR: f64 = 0.85;
        let mut total = 0;
        let mut right = 0;
        let mut misses = Vec::new();
        let mut per_category = std::collections::BTreeMap::<Category, (usize, usize)>::new();
        let (mut held_out, mut held_out_total, mut held_out_right) = (false, 0, 0);
        for line in include_str!("labelled.tsv").lines() {
            if line == "# held-out" {
                held_out = true;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 5, "bad line: {line}");
            let expected = Category::parse(cols[2]).unwrap_or_else(|| panic!("{line}"));
            let mut t = tool(cols[1], cols[4], json!({}));
            for hint in cols[3].split(',') {
                match hint {
                    "ro=true" => t.annotations.read_only = Some(true),
                    "ro=false" => t.annotations.read_only = Some(false),
                    "de=true" => t.annotations.destructive = Some(true),
                    "de=false" => t.annotations.destructive = Some(false),
                    "-" => {}
                    other => panic!("unknown hint {other} in {line}"),
                }
            }
            let got = classify(&t);
            total += 1;
            if held_out {
                held_out_total += 1;
                held_out_right += usize::from(got.category == expected);
            }
            let entry = per_category.entry(expected).or_default();
            entry.1 += 1;
            if got.category == expected {
                right += 1;
                entry.0 += 1;
            } else {
                misses.push(format!(
                    "{}/{}: expected {expected}, got {} ({})",
                    cols[0], cols[1], got.category, got.basis
                ));
            }
        }
        let accuracy = right as f64 / total as f64;
        println!(
            "classifier accuracy on the labelled set: {right}/{total} = {:.1}%",
            accuracy * 100.0
        );
        let held_out_accuracy = held_out_right as f64 / held_out_total.max(1) as f64;
        println!(
            "  of which held out (not used to tune the word lists): {held_out_right}/{held_out_total} = {:.1}%",
            held_out_accuracy * 100.0
        );
        for (category, (ok, n)) in &per_category {
            println!("  {category}: {ok}/{n}");
        }
        for m in &misses {
            println!("  miss: {m}");
        }
        assert!(total >= 200, "the labelled set holds {total} tools");
        assert!(held_out_total >= 100, "{held_out_total} held-out tools");
        assert!(
            held_out_accuracy >= HELD_OUT_FLOOR,
            "held-out accuracy {:.1}% is below the floor of {:.0}%",
            held_out_accuracy * 100.0,
            HELD_OUT_FLOOR * 100.0
        );
        assert!(
            accuracy >= FLOOR,
            "accuracy {:.1}% is below the floor of {:.0}%",
            accuracy * 100.0,
            FLOOR * 100.0
        );
    }
}
