use serde_json::json;

use super::*;

fn text(s: &str) -> String {
    redact_text(s).into_owned()
}

#[test]
fn url_passwords_are_hidden_and_the_rest_kept() {
    assert_eq!(
        text("postgres://u:DBPASS@h/db"),
        "postgres://u:[REDACTED]@h/db"
    );
    assert_eq!(
        text("connect to redis://:p@ss@cache:6379/0 now"),
        "connect to redis://:[REDACTED]@cache:6379/0 now"
    );
    // Already masked by the state store's description: left as it is.
    assert_eq!(
        text("redis://:***@cache:6379/0"),
        "redis://:***@cache:6379/0"
    );
    // No password, a port, an `@` in the path: nothing to hide.
    assert_eq!(
        text("https://user@host:8080/a@b"),
        "https://user@host:8080/a@b"
    );
}

#[test]
fn secret_query_parameters_are_hidden_others_kept() {
    assert_eq!(
        text("https://api.example.com/v1?key=abc&page=2&access_token=t0k#top"),
        "https://api.example.com/v1?key=[REDACTED]&page=2&access_token=[REDACTED]#top"
    );
    assert_eq!(
        text(
            "https://s3.example.com/f?X-Amz-Signature=ff00&X-Amz-Credential=AK%2F1&sig=s&api_key=k&password=p&secret=s2&token=t"
        ),
        "https://s3.example.com/f?X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]&sig=[REDACTED]&api_key=[REDACTED]&password=[REDACTED]&secret=[REDACTED]&token=[REDACTED]"
    );
    assert_eq!(
        text("https://h/?q=rust&lang=en"),
        "https://h/?q=rust&lang=en"
    );
    assert_eq!(
        text("cannot reach https://h/?token=abc: refused"),
        "cannot reach https://h/?token=[REDACTED]: refused"
    );
}

#[test]
fn the_values_of_secret_options_are_hidden() {
    assert_eq!(
        text("python3 srv.py --token SECRETTOKEN --api-key=APIKEY123 --port 80 -v"),
        "python3 srv.py --token [REDACTED] --api-key=[REDACTED] --port 80 -v"
    );
    assert_eq!(
        text("mysql -u root -p hunter2 --password='a b' db"),
        "mysql -u root -p [REDACTED] --password='[REDACTED]' db"
    );
    // A harmless option before a secret one does not hide it from the scan.
    assert_eq!(
        text("srv --verbose --client-secret s3"),
        "srv --verbose --client-secret [REDACTED]"
    );
}

#[test]
fn authorization_schemes_keep_their_name() {
    assert_eq!(
        text("Authorization: Bearer abc.def-123"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        text(r#"{"auth":"Basic dXNlcjpwYXNz"}"#),
        r#"{"auth":"[REDACTED]"}"#
    );
    assert_eq!(text("header Basic dXNlcjpwYXNz"), "header Basic [REDACTED]");
    // Prose is not a credential.
    assert_eq!(text("Bearer token required"), "Bearer token required");
    assert_eq!(
        text("Basic Authentication failed"),
        "Basic Authentication failed"
    );
}

#[test]
fn credentials_are_recognised_by_their_shape() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    assert_eq!(text(&format!("got {jwt} back")), "got [REDACTED] back");
    for (secret, shown) in [
        ("ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_[REDACTED]"),
        ("gho_0123456789abcdefghij", "gho_[REDACTED]"),
        ("ghs_0123456789abcdefghij", "ghs_[REDACTED]"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "github_pat_[REDACTED]",
        ),
        ("sk-proj-0123456789abcdefghij", "sk-[REDACTED]"),
        ("sk_live_0123456789abcdef", "sk_live_[REDACTED]"),
        ("rk_live_0123456789abcdef", "rk_live_[REDACTED]"),
        ("xoxb-1234567890-abcdefghij", "xoxb-[REDACTED]"),
        ("xoxp-1234567890-abcdefghij", "xoxp-[REDACTED]"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA[REDACTED]"),
        ("ASIAIOSFODNN7EXAMPLE", "ASIA[REDACTED]"),
    ] {
        assert_eq!(text(&format!("use {secret}.")), format!("use {shown}."));
    }
    // Words that merely start alike are left alone.
    assert_eq!(
        text("task-manager sk-learn AKIA ghp_short"),
        "task-manager sk-learn AKIA ghp_short"
    );
}

#[test]
fn private_keys_are_hidden_between_their_armour_lines() {
    let pem =
        "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- done";
    assert_eq!(
        text(pem),
        "key: -----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY----- done"
    );
    // Cut short: hidden to the end.
    assert_eq!(
        text("-----BEGIN PRIVATE KEY-----\\nMIIEvQIB"),
        "-----BEGIN PRIVATE KEY-----[REDACTED]"
    );
}

#[test]
fn secret_keys_in_text_lose_their_values() {
    assert_eq!(
        text("GITHUB_TOKEN=abc DEBUG=1 db.password = 'p w'\npwd: x1, secret: y"),
        "GITHUB_TOKEN=[REDACTED] DEBUG=1 db.password = '[REDACTED]'\npwd: [REDACTED], secret: [REDACTED]"
    );
    assert_eq!(
        text(r#"{"client_secret": "s", "name": "n"}"#),
        r#"{"client_secret": "[REDACTED]", "name": "n"}"#
    );
    assert_eq!(text("opts:password=x"), "opts:password=[REDACTED]");
    assert_eq!(
        text("Authorization: Bearer abc"),
        "Authorization: Bearer [REDACTED]"
    );
    // Advice and policy errors that merely mention a secret's key keep their words.
    let advice = r#"pass credentials with --header "Authorization: Bearer <token>""#;
    assert_eq!(text(advice), advice);
    let error =
        "p.yaml:3:5: identities.bob.token_sha256: token_sha256 must be 64 hexadecimal characters";
    assert_eq!(text(error), error);
    let prose = "the server needs credentials: Error: API_KEY is required";
    assert_eq!(text(prose), prose);
    let challenge = r#"(WWW-Authenticate: Bearer resource_metadata="http://x/.well-known/r")"#;
    assert_eq!(text(challenge), challenge);
}

#[test]
fn secret_key_names() {
    for key in [
        "api_key",
        "apiKey",
        "X-Api-Key",
        "Authorization",
        "GITHUB_TOKEN",
        "access_token",
        "db-password",
        "passwd",
        "pwd",
        "PWD",
        "auth",
        "proxy_auth",
        "authHeader",
        "credential",
        "credentials",
        "github_pat",
        "GITHUB_PAT",
        "client_secret",
        "secretValue",
        "Cookie",
        "passphrase",
    ] {
        assert!(is_secret_key(key), "{key}");
    }
    for key in [
        "author",
        "authority",
        "pattern",
        "path",
        "name",
        "keyboard",
        "url",
        "token_sha256",
        "token_env",
        "password_file",
    ] {
        assert!(!is_secret_key(key), "{key}");
    }
    for flag in ["--token", "--api-key", "-password", "-p", "--github-pat"] {
        assert!(is_secret_flag(flag), "{flag}");
    }
    for flag in ["--port", "-v", "-P", "--author", "token", "-"] {
        assert!(!is_secret_flag(flag), "{flag}");
    }
}

#[test]
fn a_command_line_is_redacted_word_by_word() {
    let words = [
        "python3",
        "srv.py",
        "--token",
        "SECRET TOKEN",
        "--api-key=APIKEY123",
        "-p",
        "hunter2",
        "postgres://u:DBPASS@h/db",
        "--port",
        "80",
    ];
    assert_eq!(
        redact_command(&words),
        "python3 srv.py --token [REDACTED] --api-key=[REDACTED] -p [REDACTED] postgres://u:[REDACTED]@h/db --port 80"
    );
}

#[test]
fn arguments_lose_secrets_by_key_and_by_shape() {
    let args = json!({
        "title": "x",
        "api_key": "k1",
        "auth": "Basic dXNlcjpwYXNz",
        "pwd": "p",
        "github_pat": "ghp_0123456789abcdefghij",
        "url": "https://user:pw@host/?key=abc&q=1",
        "note": "call with Bearer abc123def456",
        "headers": {"Authorization": "Bearer t", "Accept": "json"},
        "items": [{"GITHUB_TOKEN": "g"}, {"name": "n"}, "sk_live_0123456789abcdef"],
        "count": 3,
    });
    assert_eq!(
        redact_arguments(&args),
        json!({
            "title": "x",
            "api_key": "[REDACTED]",
            "auth": "[REDACTED]",
            "pwd": "[REDACTED]",
            "github_pat": "[REDACTED]",
            "url": "https://user:[REDACTED]@host/?key=[REDACTED]&q=1",
            "note": "call with Bearer [REDACTED]",
            "headers": {"Authorization": "[REDACTED]", "Accept": "json"},
            "items": [{"GITHUB_TOKEN": "[REDACTED]"}, {"name": "n"}, "sk_live_[REDACTED]"],
            "count": 3,
        })
    );
}

#[test]
fn text_without_secrets_is_borrowed_unchanged() {
    let line = "intercept 0.1.0 starting policy=/etc/p.yaml state=memory";
    assert!(matches!(redact_text(line), Cow::Borrowed(s) if s == line));
}
