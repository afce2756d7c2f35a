//! Tests of the CEL expressions: the PROTOCOL's examples, compile and runtime
//! errors, the bounds, and hostile and random inputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use serde_json::json;

const GITHUB: &str =
    r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#;

fn claims(value: Json) -> serde_json::Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => panic!("claims are an object"),
    }
}

/// An ID token of GitHub Actions, as GitHub shapes it.
fn github() -> serde_json::Map<String, Json> {
    claims(json!({
        "jti": "example-id",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": "https://github.com/octo-org",
        "ref": "refs/heads/main",
        "sha": "example-sha",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "actor_id": "12",
        "repository_visibility": "private",
        "repository_id": "74",
        "repository_owner_id": "65",
        "run_id": "example-run-id",
        "run_number": "10",
        "run_attempt": "2",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "workflow": "example-workflow",
        "head_ref": "",
        "base_ref": "",
        "event_name": "workflow_dispatch",
        "ref_type": "branch",
        "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": 1632492967,
        "exp": 1632493867,
        "iat": 1632493567
    }))
}

/// A projected Kubernetes service-account token.
fn kubernetes() -> serde_json::Map<String, Json> {
    claims(json!({
        "aud": ["https://jwtgrant.example"],
        "exp": 1_800_003_600,
        "iat": 1_800_000_000,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {
            "namespace": "ns",
            "pod": {"name": "app-7d4b9c", "uid": "5a9c1f0e-0000-4000-8000-000000000001"},
            "serviceaccount": {"name": "sa", "uid": "5a9c1f0e-0000-4000-8000-000000000002"}
        },
        "nbf": 1_800_000_000,
        "sub": "system:serviceaccount:ns:sa"
    }))
}

fn compile(source: &str) -> Expression {
    Expression::compile(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn compile_error(source: &str) -> ExpressionError {
    match Expression::compile(source) {
        Ok(_) => panic!("{source} compiled"),
        Err(e) => e,
    }
}

fn condition(
    source: &str,
    claims: &serde_json::Map<String, Json>,
) -> Result<bool, EvaluationError> {
    compile(source).evaluate_condition(claims)
}

fn with(
    mut claims: serde_json::Map<String, Json>,
    key: &str,
    value: Json,
) -> serde_json::Map<String, Json> {
    claims.insert(key.into(), value);
    claims
}

#[test]
fn an_expression_is_send_and_sync_and_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Expression>();
    let expression = Arc::new(compile(GITHUB));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let expression = Arc::clone(&expression);
            std::thread::spawn(move || expression.evaluate_condition(&github()))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(true));
    }
}

#[test]
fn the_github_actions_condition_holds_only_for_the_owner_and_branch() {
    assert_eq!(condition(GITHUB, &github()), Ok(true));
    let other_owner = with(github(), "repository_owner", json!("evil-org"));
    assert_eq!(condition(GITHUB, &other_owner), Ok(false));
    let other_ref = with(github(), "ref", json!("refs/heads/feature"));
    assert_eq!(condition(GITHUB, &other_ref), Ok(false));
    assert_eq!(compile(GITHUB).source(), GITHUB);
}

#[test]
fn kubernetes_service_accounts_by_subject_and_nested_namespace() {
    let k8s = kubernetes();
    assert_eq!(
        condition(r#"assertion.sub == "system:serviceaccount:ns:sa""#, &k8s),
        Ok(true)
    );
    assert_eq!(
        condition(r#"assertion["kubernetes.io"].namespace == "ns""#, &k8s),
        Ok(true)
    );
    assert_eq!(
        condition(
            r#"assertion["kubernetes.io"]["serviceaccount"].name == "other""#,
            &k8s
        ),
        Ok(false)
    );
}

#[test]
fn spiffe_ids_by_prefix() {
    let svid = claims(json!({"sub": "spiffe://example.org/ns/prod/sa/api", "aud": ["jwtgrant"]}));
    let source = r#"assertion.sub.startsWith("spiffe://example.org/")"#;
    assert_eq!(condition(source, &svid), Ok(true));
    let other = claims(json!({"sub": "spiffe://example.org.evil/ns/prod"}));
    assert_eq!(condition(source, &other), Ok(false));
}

#[test]
fn membership_in_an_audience_array_and_verified_email() {
    let k8s = kubernetes();
    assert_eq!(
        condition(r#""https://jwtgrant.example" in assertion.aud"#, &k8s),
        Ok(true)
    );
    assert_eq!(
        condition(r#""https://other" in assertion.aud"#, &k8s),
        Ok(false)
    );
    let verified = claims(json!({"email": "a@example.com", "email_verified": true}));
    let source = "assertion.email_verified == true";
    assert_eq!(condition(source, &verified), Ok(true));
    let unverified = claims(json!({"email": "a@example.com", "email_verified": false}));
    assert_eq!(condition(source, &unverified), Ok(false));
    // A string "true" is not the boolean (CEL compares across types as unequal).
    let string = claims(json!({"email": "a@example.com", "email_verified": "true"}));
    assert_eq!(condition(source, &string), Ok(false));
    assert!(condition("assertion.email_verified", &string).is_err());
}

#[test]
fn optional_claims_are_tested_with_has() {
    let source = r#"!has(assertion.act) || assertion.act.sub == "admin""#;
    assert_eq!(condition(source, &github()), Ok(true));
    let acting = with(github(), "act", json!({"sub": "mallory"}));
    assert_eq!(condition(source, &acting), Ok(false));
}

#[test]
fn macros_over_claims() {
    let groups = claims(json!({"groups": ["eng", "team-api", "team-web"], "amr": ["pwd", "mfa"]}));
    assert_eq!(
        condition(
            r#"assertion.groups.exists(g, g.startsWith("team-"))"#,
            &groups
        ),
        Ok(true)
    );
    assert_eq!(
        condition(
            r#"assertion.amr.all(m, m in ["pwd", "mfa", "hwk"])"#,
            &groups
        ),
        Ok(true)
    );
    assert_eq!(
        condition(
            r#"assertion.groups.filter(g, g.startsWith("team-")).size() == 2"#,
            &groups
        ),
        Ok(true)
    );
    assert_eq!(
        condition(r#"assertion.groups.exists_one(g, g == "eng")"#, &groups),
        Ok(true)
    );
    assert_eq!(
        condition(r#"["a", "b"].map(x, x + "!") == ["a!", "b!"]"#, &groups),
        Ok(true)
    );
}

#[test]
fn matches_uses_the_pattern_compiled_at_compile_time() {
    let source = r#"assertion.ref.matches("^refs/(heads/main|tags/v[0-9]+)$")"#;
    let expression = compile(source);
    assert_eq!(expression.regexes.len(), 1);
    assert_eq!(expression.evaluate_condition(&github()), Ok(true));
    let tag = with(github(), "ref", json!("refs/tags/v12"));
    assert_eq!(expression.evaluate_condition(&tag), Ok(true));
    let branch = with(github(), "ref", json!("refs/heads/dev"));
    assert_eq!(expression.evaluate_condition(&branch), Ok(false));
    // The global form, and inside a macro.
    assert_eq!(
        condition(r#"matches(assertion.actor, "^octo")"#, &github()),
        Ok(true)
    );
    let groups = claims(json!({"groups": ["eng", "team-api"]}));
    assert_eq!(
        condition(
            r#"assertion.groups.exists(g, g.matches("^team-[a-z]+$"))"#,
            &groups
        ),
        Ok(true)
    );
    // A claim of the wrong type is an error, as for cel's own `matches`.
    let number = with(github(), "ref", json!(7));
    assert!(expression.evaluate_condition(&number).is_err());
}

#[test]
fn compile_errors_say_where() {
    let error = compile_error(r#"(assertion.sub == "a""#);
    assert!(
        matches!(error.kind, ExpressionErrorKind::Syntax(_)),
        "{error}"
    );
    assert_eq!((error.line, error.column), (1, 22), "{error}");

    let error = compile_error("assertion.sub == \"a\" &&\n  assertion.sub.startswith(\"b\")");
    assert_eq!(
        error.kind,
        ExpressionErrorKind::UnknownFunction("startswith".into())
    );
    assert_eq!((error.line, error.column), (2, 27), "{error}");
    assert!(
        error.to_string().starts_with("line 2, column 27: "),
        "{error}"
    );

    // Columns count characters, not bytes.
    let error = compile_error(r#""äöü" == assertion.x.foo()"#);
    assert_eq!((error.line, error.column), (1, 25), "{error}");

    let error = compile_error("assertoin.sub == \"a\"");
    assert_eq!(
        error.kind,
        ExpressionErrorKind::UnknownVariable("assertoin".into())
    );
    assert_eq!((error.line, error.column), (1, 1));

    let error = compile_error(&format!(
        "\"{}\" == assertion.sub",
        "a".repeat(MAX_SOURCE_BYTES)
    ));
    assert!(
        matches!(error.kind, ExpressionErrorKind::TooLong { .. }),
        "{error}"
    );

    for source in [
        "",
        "   ",
        "assertion.",
        "1 +",
        "assertion.sub ==",
        "{",
        "'unterminated",
    ] {
        let error = compile_error(source);
        assert!(
            matches!(error.kind, ExpressionErrorKind::Syntax(_)),
            "{source}: {error}"
        );
    }
}

#[test]
fn what_is_not_supported_is_refused_at_compile_time() {
    let cases: &[(&str, ExpressionErrorKind)] = &[
        (
            r#"assertion.x.matches("(")"#,
            ExpressionErrorKind::Regex(String::new()),
        ),
        (
            "assertion.x.matches(assertion.y)",
            ExpressionErrorKind::Regex(String::new()),
        ),
        (
            "google.protobuf.Duration{seconds: 1}",
            ExpressionErrorKind::Unsupported(""),
        ),
        (
            "timestamp(assertion.iat) > timestamp(0)",
            ExpressionErrorKind::UnknownFunction(String::new()),
        ),
        (
            "assertion.sub.lowerAscii() == \"a\"",
            ExpressionErrorKind::UnknownFunction(String::new()),
        ),
        (
            "type(assertion.sub) == string",
            ExpressionErrorKind::UnknownFunction(String::new()),
        ),
        (
            "assertion.x.map(y, assertion.z.all(w, w == y))",
            ExpressionErrorKind::NestedComprehension,
        ),
        (
            "(assertion.x + [1]).exists(x, x == 1)",
            ExpressionErrorKind::ComprehensionRange,
        ),
        (
            "assertion.x.exists(y, y == assertion.sub)",
            ExpressionErrorKind::ClaimsInComprehension,
        ),
        (
            "assertion.x + assertion.y == []",
            ExpressionErrorKind::AddOperands,
        ),
    ];
    for (source, kind) in cases {
        let error = compile_error(source);
        assert_eq!(
            std::mem::discriminant(&error.kind),
            std::mem::discriminant(kind),
            "{source}: {error}"
        );
    }
    // Optional syntax is off.
    assert!(Expression::compile("assertion.?sub == \"a\"").is_err());
}

#[test]
fn runtime_failures_are_errors_never_false() {
    let claims = github();
    // A missing claim.
    let missing = condition(r#"assertion.repository_owner_name == "octo-org""#, &claims);
    assert!(
        matches!(missing, Err(EvaluationError::Failed(_))),
        "{missing:?}"
    );
    // ... which `!` does not turn into true.
    let negated = condition(
        r#"!(assertion.repository_owner_name == "octo-org")"#,
        &claims,
    );
    assert!(negated.is_err(), "{negated:?}");
    // A claim of the wrong type.
    assert!(condition("assertion.exp > \"1\"", &claims).is_err());
    assert!(condition(r#"assertion.nbf.startsWith("1")"#, &claims).is_err());
    assert!(
        condition(r#""x" in assertion.aud"#, &claims).is_err(),
        "aud is a string here"
    );
    // Not a bool.
    assert_eq!(
        condition("assertion.sub", &claims),
        Err(EvaluationError::NotBool {
            got: "string".into()
        })
    );
    assert_eq!(
        condition("assertion.iat", &claims),
        Err(EvaluationError::NotBool { got: "int".into() })
    );
    assert!(matches!(
        condition("null", &claims),
        Err(EvaluationError::NotBool { .. })
    ));
    // Arithmetic that fails.
    assert!(condition("assertion.iat / 0 == 1", &claims).is_err());
    assert!(condition("9223372036854775807 + assertion.iat > 0", &claims).is_err());
    // `||` forgives an error only where CEL says it does: one true side.
    assert_eq!(
        condition("assertion.missing == 1 || true", &claims),
        Ok(true)
    );
    assert!(condition("assertion.missing == 1 || false", &claims).is_err());
}

#[test]
fn subject_expressions() {
    let claims = github();
    assert_eq!(
        compile("assertion.sub").evaluate_subject(&claims),
        Ok("repo:octo-org/octo-repo:ref:refs/heads/main".into())
    );
    assert_eq!(
        compile(r#""repo:" + assertion.repository"#).evaluate_subject(&claims),
        Ok("repo:octo-org/octo-repo".into())
    );
    let k8s = kubernetes();
    let source = r#"assertion["kubernetes.io"].namespace + "/" + assertion["kubernetes.io"].serviceaccount.name"#;
    assert_eq!(compile(source).evaluate_subject(&k8s), Ok("ns/sa".into()));
    // Numbers are refused, not formatted; string() converts on purpose.
    assert_eq!(
        compile("assertion.iat").evaluate_subject(&claims),
        Err(EvaluationError::NotString { got: "int".into() })
    );
    assert_eq!(
        compile("string(assertion.iat)").evaluate_subject(&claims),
        Ok("1632493567".into())
    );
    assert_eq!(
        compile("assertion.head_ref").evaluate_subject(&claims),
        Err(EvaluationError::EmptySubject)
    );
    assert!(matches!(
        compile("assertion.nope").evaluate_subject(&claims),
        Err(EvaluationError::Failed(_))
    ));
    let long = with(claims, "long", json!("x".repeat(MAX_SUBJECT_BYTES + 1)));
    assert_eq!(
        compile("assertion.long").evaluate_subject(&long),
        Err(EvaluationError::SubjectTooLong {
            len: MAX_SUBJECT_BYTES + 1,
            max: MAX_SUBJECT_BYTES
        })
    );
}

#[test]
fn a_macro_over_a_claim_longer_than_the_limit_is_refused_before_it_runs() {
    let source = r#"assertion.groups.exists(g, g == "x")"#;
    let at_limit = claims(json!({"groups": vec!["a"; MAX_ITERATIONS]}));
    assert_eq!(condition(source, &at_limit), Ok(false));
    let over = claims(json!({"groups": vec!["a"; MAX_ITERATIONS + 1]}));
    assert_eq!(
        condition(source, &over),
        Err(EvaluationError::RangeTooLong {
            len: MAX_ITERATIONS + 1,
            max: MAX_ITERATIONS
        })
    );
    let nested = claims(json!({"a": {"b": vec![1; MAX_ITERATIONS + 1]}}));
    assert!(matches!(
        condition(r#"assertion.a["b"].all(x, x == 1)"#, &nested),
        Err(EvaluationError::RangeTooLong { .. })
    ));
    let map = claims(
        json!({"m": (0..=MAX_ITERATIONS).map(|i| (i.to_string(), json!(i))).collect::<serde_json::Map<_, _>>()}),
    );
    assert!(matches!(
        condition(r#"assertion.m.exists(k, k == "1")"#, &map),
        Err(EvaluationError::RangeTooLong { .. })
    ));
}

/// Whether a compile error is the one expected.
type Expected = fn(&ExpressionErrorKind) -> bool;

#[test]
fn hostile_expressions_are_refused_at_compile_time() {
    let deep_parens = "(".repeat(MAX_DEPTH + 2) + "true" + &")".repeat(MAX_DEPTH + 2);
    let deep_parens_max = "(".repeat(2000) + "true" + &")".repeat(2000);
    let deep_select = "assertion".to_string() + &".a".repeat(2000) + " == 1";
    let deep_index = "assertion".to_string() + &"[0]".repeat(1300) + " == 1";
    let long_sum = "1".to_string() + &" + 1".repeat(1000) + " == 1";
    let long_and = "true".to_string() + &" && true".repeat(400);
    let deep_lists = "[".repeat(1000) + &"]".repeat(1000) + " == []";
    let deep_maps = "{1: ".repeat(800) + "1" + &"}".repeat(800) + " == {}";
    let deep_calls = "size(".repeat(600) + "\"\"" + &")".repeat(600) + " == 0";
    let ternaries = "true?".repeat(400) + "true" + &":true".repeat(400);
    let unary = "!".repeat(2001) + "true";
    let negative = "-".repeat(2001) + "1 == 1";
    let body = vec!["g == \"x\""; 40].join(" || ");
    let costly = format!("assertion.groups.exists(g, {body})");
    let many = (0..9)
        .map(|i| format!("assertion.l{i}.exists(x, x == 1)"))
        .collect::<Vec<_>>()
        .join(" && ");
    let copies = format!("[{}] == []", ["assertion"; 9].join(", "));
    let huge_regex = r#"assertion.sub.matches("\\w{1000}\\w{1000}\\w{1000}")"#.to_string();
    let cases: Vec<(&str, Expected)> = vec![
        (&deep_parens, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&deep_parens_max, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&deep_select, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&deep_index, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&long_sum, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&long_and, |k| {
            matches!(k, ExpressionErrorKind::TooManyNodes { .. })
        }),
        (&deep_lists, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&deep_maps, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&deep_calls, |k| {
            matches!(k, ExpressionErrorKind::TooDeep { .. })
        }),
        (&ternaries, |k| {
            matches!(
                k,
                ExpressionErrorKind::Syntax(_) | ExpressionErrorKind::TooDeep { .. }
            )
        }),
        (&costly, |k| {
            matches!(k, ExpressionErrorKind::TooCostly { .. })
        }),
        (&many, |k| {
            matches!(
                k,
                ExpressionErrorKind::TooManyCopies { .. } | ExpressionErrorKind::TooCostly { .. }
            )
        }),
        (&copies, |k| {
            matches!(k, ExpressionErrorKind::TooManyCopies { .. })
        }),
        (&huge_regex, |k| matches!(k, ExpressionErrorKind::Regex(_))),
    ];
    // cel's parser folds runs of `!` and `-` as it reads them: no depth.
    assert_eq!(condition(&unary, &github()), Ok(false));
    assert_eq!(condition(&negative, &github()), Ok(false));
    for (source, expected) in cases {
        // On a thread with a server worker's stack: compiling must not overflow it.
        let source = source.to_owned();
        let shown: String = source.chars().take(50).collect();
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || Expression::compile(&source).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        match result {
            Ok(()) => panic!("{shown}... compiled"),
            Err(error) => assert!(expected(&error.kind), "{shown}...: {error}"),
        }
    }
}

#[test]
fn the_largest_expressions_that_compile_still_evaluate() {
    // At the limits: each compiles, and evaluates over the largest claims.
    let body = ["g == \"x\""; 4].join(" || ");
    let within = [
        format!("assertion.groups.exists(g, {body})"),
        format!("[{}].size() == 8", ["assertion"; 8].join(", ")),
        format!("({}) == \"\"", vec!["assertion.s"; 14].join(" + \"\" + ")),
        "(".repeat(MAX_DEPTH - 2) + "true" + &")".repeat(MAX_DEPTH - 2),
    ];
    let fat = claims(json!({
        "groups": vec!["g".repeat(40); MAX_ITERATIONS],
        "s": "s".repeat(4000),
        "pad": vec![json!({"k": 1}); 300],
    }));
    for source in within {
        let expression = compile(&source);
        let result = expression.evaluate_condition(&fat);
        assert!(result.is_ok(), "{source}: {result:?}");
    }
}

#[test]
fn claims_of_every_json_type_convert() {
    let all = claims(json!({
        "s": "x", "i": -3, "u": u64::MAX, "f": 1.5, "t": true, "n": null,
        "l": [1, "a", [2]], "o": {"k": {"k": "v"}}
    }));
    let source = r#"assertion.s == "x" && assertion.i == -3 && assertion.u == 18446744073709551615u
        && assertion.f == 1.5 && assertion.t && assertion.n == null && assertion.l[2][0] == 2
        && assertion.o.k.k == "v" && size(assertion.l) == 3"#;
    assert_eq!(condition(source, &all), Ok(true));
    // The whole claims, for an index or `has`, convert as well as a path does.
    let whole = r#"assertion["o"]["k"].k == "v" && has(assertion.l) && !has(assertion.z)
        && size(assertion) == 8 && "s" in assertion"#;
    assert_eq!(condition(whole, &all), Ok(true));
    // Claims deeper than serde_json would parse are refused, not recursed into;
    // only the claims an expression reads are converted.
    let mut deep = json!(1);
    for _ in 0..MAX_CLAIM_DEPTH + 1 {
        deep = json!([deep]);
    }
    let deep = claims(json!({"d": deep, "s": "x"}));
    assert_eq!(condition(r#"assertion.s == "x""#, &deep), Ok(true));
    for source in ["assertion.d == []", r#"assertion["s"] == "x""#] {
        assert_eq!(
            condition(source, &deep),
            Err(EvaluationError::ClaimsTooDeep {
                max: MAX_CLAIM_DEPTH
            }),
            "{source}"
        );
    }
}

/// A small deterministic generator: no dependency, the same inputs every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_expressions_never_panic() {
    const TOKENS: &[&str] = &[
        "assertion",
        ".",
        "sub",
        "aud",
        "groups",
        "nested",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        ",",
        ":",
        "?",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "in",
        "\"a\"",
        "'b'",
        "r\"c\"",
        "b\"d\"",
        "\"\\u00e9\"",
        "1",
        "0",
        "-1",
        "1u",
        "1.5",
        "1e308",
        "9223372036854775807",
        "true",
        "false",
        "null",
        "x",
        "g",
        "size",
        "contains",
        "startsWith",
        "matches",
        "\"^a.*$\"",
        "string",
        "int",
        "uint",
        "double",
        "bool",
        "has",
        "exists",
        "all",
        "map",
        "filter",
        "exists_one",
        "@result",
        " ",
        "\n",
        "\"",
        "\\",
        "ä",
        "`",
        "#",
        ";",
        "0x",
        "..",
        "[0]",
        "[\"sub\"]",
    ];
    let claims = claims(json!({
        "sub": "a", "aud": ["a", "b"], "groups": ["a", 1, null, {"k": []}],
        "nested": {"sub": "a", "l": [[]]}, "n": 1, "f": 1.5, "t": true
    }));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut compiled = 0;
    for _ in 0..20_000 {
        let len = 1 + rng.next() % 16;
        let source: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
        if let Ok(expression) = Expression::compile(&source) {
            compiled += 1;
            let _ = expression.evaluate_condition(&claims);
            let _ = expression.evaluate_subject(&claims);
        }
    }
    // Random bytes too.
    for _ in 0..2_000 {
        let len = rng.next() % 64;
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() % 128) as u8).collect();
        if let Ok(source) = String::from_utf8(bytes)
            && let Ok(expression) = Expression::compile(&source)
        {
            let _ = expression.evaluate_condition(&claims);
        }
    }
    assert!(
        compiled > 100,
        "the generator should reach evaluation, got {compiled}"
    );
}

#[test]
fn odd_but_valid_expressions_evaluate_without_panicking() {
    let claims = github();
    for source in [
        "{} == {}",
        "{\"a\": 1}[\"b\"] == 1",
        "{\"a\": 1, \"a\": 2} == {}",
        "[1, 2][5] == 1",
        "[1, 2][-1] == 1",
        "assertion[1] == 1",
        "assertion[null] == 1",
        "assertion[[]] == 1",
        "{[]: 1} == {}",
        "{null: 1} == {}",
        "-(-9223372036854775807 - 1) == 0",
        "int(\"x\") == 1",
        "int(1e300) == 1",
        "uint(-1) == 1u",
        "double(\"nan\") != double(\"nan\")",
        "string(b\"\\xff\") == \"\"",
        "size(assertion) > 0",
        "assertion == assertion",
        "assertion.sub < assertion.aud",
        "[assertion.sub, 1] == [1]",
        "1 / 0 == 0",
        "1 % 0 == 0",
        "1.0 / 0.0 > 0.0",
        "[] + [] == []",
        "\"a\" + 1 == \"a1\"",
        "bool(\"maybe\")",
        "has({\"a\": 1}.a)",
        "has(assertion.sub.x)",
        "assertion.sub.x == 1",
        "@result == 1",
        "[1].exists(x, x)",
        "[1].map(x, x, x) == []",
        "{\"a\": 1}.exists(k, k == \"a\")",
        "[].all(x, x) && [].exists(x, x) == false",
    ] {
        if let Ok(expression) = Expression::compile(source) {
            let _ = expression.evaluate_condition(&claims);
            let _ = expression.evaluate_subject(&claims);
        }
    }
}

const LEAVES: &[&str] = &[
    "assertion.sub",
    "assertion.aud",
    "assertion.groups",
    "assertion.nested",
    "assertion.nested.l",
    "assertion.n",
    "assertion.f",
    "assertion.t",
    "assertion.missing",
    "assertion[\"sub\"]",
    "assertion",
    "\"a\"",
    "\"\"",
    "1",
    "0",
    "1u",
    "1.5",
    "true",
    "false",
    "null",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{\"sub\": 1}",
    "9223372036854775807",
];
const BODY_LEAVES: &[&str] = &["x", "\"a\"", "1", "true", "null", "[x]", "{\"k\": x}"];

/// A random well-formed expression of at most `depth` levels over `leaves`.
fn generate(rng: &mut XorShift, depth: u32, leaves: &[&str]) -> String {
    if depth == 0 || rng.next().is_multiple_of(4) {
        return rng.pick(leaves).to_owned();
    }
    let a = generate(rng, depth - 1, leaves);
    let b = generate(rng, depth - 1, leaves);
    match rng.next() % 12 {
        0 => {
            let op = rng.pick(&[
                "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||", "+", "-", "*", "/", "%",
            ]);
            format!("({a} {op} {b})")
        }
        1 => format!("!{a}"),
        2 => format!("-{a}"),
        3 => format!("({a} ? {b} : {a})"),
        4 => format!(
            "{a}.{}({b})",
            rng.pick(&["contains", "startsWith", "endsWith"])
        ),
        5 => {
            let function = rng.pick(&["size", "string", "int", "uint", "double", "bool"]);
            format!("{function}({a})")
        }
        6 => format!("{a}[{b}]"),
        7 => format!(
            "has({}.sub)",
            rng.pick(&["assertion", "assertion.nested", "x"])
        ),
        8 if leaves == LEAVES => {
            let range = rng.pick(&[
                "assertion.groups",
                "assertion.aud",
                "assertion.nested",
                "[1, 2]",
            ]);
            let function = rng.pick(&["all", "exists", "exists_one", "map", "filter"]);
            let body = generate(rng, depth - 1, BODY_LEAVES);
            format!("{range}.{function}(x, {body})")
        }
        9 => format!("{a}.matches(\"^a+$\")"),
        10 => format!("[{a}, {b}]"),
        _ => format!("{{{a}: {b}}}"),
    }
}

#[test]
fn random_well_formed_expressions_never_panic() {
    let shapes = [
        claims(json!({
            "sub": "a", "aud": ["a", "b"], "groups": ["a", 1, null, {"k": []}],
            "nested": {"sub": "a", "l": [[]]}, "n": 1, "f": 1.5, "t": true
        })),
        claims(json!({
            "sub": 1, "aud": "a", "groups": {"a": 1}, "nested": [], "n": "1",
            "f": null, "t": "true"
        })),
        claims(json!({})),
    ];
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let (mut compiled, mut evaluated) = (0, 0);
    for _ in 0..5_000 {
        let source = generate(&mut rng, 5, LEAVES);
        let Ok(expression) = Expression::compile(&source) else {
            continue;
        };
        compiled += 1;
        for claims in &shapes {
            if expression.evaluate_condition(claims).is_ok() {
                evaluated += 1;
            }
            let _ = expression.evaluate_subject(claims);
        }
    }
    assert!(
        compiled > 1_000 && evaluated > 100,
        "{compiled} compiled, {evaluated} evaluated"
    );
}
