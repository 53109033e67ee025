//! Property tests of the segments language (`regulars_core::segment`):
//!
//! - the parser never panics, on arbitrary Unicode and on "token soup" made
//!   of the language's own words, and every error points inside the input;
//! - a parsed segment prints to a canonical form that parses back to the same
//!   tree, and so does every random well-typed tree;
//! - `matches` agrees with a reference evaluator written here from the
//!   language's definition (three-valued logic, tiers by rank, tags as sets).

use proptest::prelude::*;
use regulars_core::segment::{
    catalogue, matches, parse, to_sql, Expr, FactValue, Facts, Field, Kind, Op, SqlTarget,
    SqlValue, Value, MAX_DEPTH, MAX_INPUT_CHARS,
};
use std::collections::{BTreeMap, BTreeSet};

/// Parse without panicking and check the invariants every result must hold.
fn check(input: &str) {
    let chars = input.chars().count();
    match parse(input) {
        Err(e) => {
            assert!(e.position <= chars, "{input:?}: {e:?}");
            assert_eq!(e.column, e.position + 1);
            assert!(!e.message.is_empty() && !e.expected.is_empty() && !e.found.is_empty());
            assert!(e.to_string().starts_with(&format!("column {}: ", e.column)));
        }
        Ok(expr) => {
            let canonical = expr.to_string();
            assert_eq!(
                parse(&canonical).as_ref(),
                Ok(&expr),
                "{input:?} → {canonical:?} does not parse back"
            );
            // Compiling never panics and binds one value per placeholder.
            let (sql, values) = to_sql(&expr, &columns, 1);
            for i in 1..=values.len() {
                assert!(sql.contains(&format!("${i}")), "{sql} lacks ${i}");
            }
            assert!(!sql.contains(&format!("${}", values.len() + 1)));
        }
    }
}

fn columns(field: Field) -> SqlTarget {
    match field {
        Field::Tag => SqlTarget::Exists(
            "EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = {})".into(),
        ),
        other => SqlTarget::Expr(format!("m.{}", other.name())),
    }
}

const SOUP: &[&str] = &[
    "tier",
    "TIER",
    "grade",
    "vip",
    "lifecycle",
    "r_score",
    "rfm",
    "days_since_visit",
    "p_alive",
    "churn_risk",
    "city",
    "store",
    "age_group",
    "gender",
    "tag",
    "spice_level",
    "consent_sms",
    "tiers",
    "城市",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "≥",
    "≠",
    "and",
    "or",
    "not",
    "in",
    "AND",
    "Not",
    "&&",
    "||",
    "!",
    "&",
    "|",
    "(",
    ")",
    "[",
    "]",
    ",",
    "（",
    "）",
    "，",
    "gold",
    "black_gold",
    "金卡",
    "platinum",
    "dormant",
    "medium",
    "55+",
    "25-34",
    "true",
    "false",
    "0",
    "1",
    "3",
    "5",
    "60",
    "-5",
    "0.3",
    "1.5",
    "555",
    "560",
    "1_000",
    "-",
    ".",
    "1.",
    "99999999999999999999",
    "-9223372036854775808",
    "\"成都\"",
    "“辣”",
    "'x'",
    "\"a\\\"b\"",
    "\"bad\\n\"",
    "\"open",
    "“open",
    "\\",
    "成都",
    "辣",
    "@",
    "#",
    "\u{0}",
    "\n",
    "\u{3000}",
    "é",
    "👍",
];

const FIELDS: &[&str] = &[
    "tier",
    "vip",
    "lifecycle",
    "r_score",
    "rfm",
    "p_alive",
    "churn_risk",
    "city",
    "age_group",
    "tag",
    "spice_level",
    "consent_sms",
    "points_balance",
];
const OPS: &[&str] = &["=", "!=", "<", "<=", ">", ">=", "in", "not in"];
const VALUES: &[&str] = &[
    "gold",
    "black_gold",
    "金卡",
    "dormant",
    "medium",
    "25-34",
    "true",
    "false",
    "0",
    "1",
    "3",
    "0.3",
    "555",
    "60",
    "\"成都\"",
    "“辣”",
    "辣",
    "[gold, silver]",
    "[1, 2]",
    "[\"a\"]",
    "[]",
];
const JOINS: &[&str] = &[
    "and", "or", "&&", "||", "and not", "or (", ") and", ")", "(", "not", "!",
];

/// Token soup: the language's own tokens in random order. Half of the
/// pieces are `field op value` triples (often of mismatched types) and
/// connectives, so a fair share of the soup parses, or fails deep inside.
fn soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => (
            prop::sample::select(FIELDS),
            prop::sample::select(OPS),
            prop::sample::select(VALUES),
        )
            .prop_map(|(f, o, v)| format!("{f} {o} {v}")),
        2 => prop::sample::select(JOINS).prop_map(String::from),
        1 => prop::sample::select(SOUP).prop_map(String::from),
    ];
    prop::collection::vec(
        (piece, prop::sample::select(&["", " ", " ", "  "][..])),
        0..16,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(token, sep)| format!("{token}{sep}"))
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Random well-typed trees
// ---------------------------------------------------------------------------

fn enum_values(field: Field) -> &'static [&'static str] {
    match field.kind() {
        Kind::Enum { values, .. } => values,
        _ => &[],
    }
}

fn ops_for(field: Field) -> Vec<Op> {
    match field.kind() {
        Kind::Int { .. } | Kind::Float { .. } | Kind::Enum { ordered: true, .. } => {
            Op::ALL.to_vec()
        }
        _ => vec![Op::Eq, Op::Ne],
    }
}

/// A value of the field's kind. `narrow` draws from small pools, so values
/// and member facts collide often (for the model check); otherwise from the
/// whole range (for the round trip).
fn value_for(field: Field, narrow: bool) -> BoxedStrategy<Value> {
    match field.kind() {
        Kind::Int { .. } if field == Field::Rfm => (1i64..=5, 1i64..=5, 1i64..=5)
            .prop_map(|(r, f, m)| Value::Int(r * 100 + f * 10 + m))
            .boxed(),
        Kind::Int {
            min: Some(lo),
            max: Some(hi),
        } => (lo..=hi).prop_map(Value::Int).boxed(),
        Kind::Int { .. } if narrow => (-2i64..8).prop_map(Value::Int).boxed(),
        Kind::Int { .. } => prop_oneof![any::<i64>(), -100i64..100]
            .prop_map(Value::Int)
            .boxed(),
        Kind::Float { .. } if narrow => prop::sample::select(vec![0.0, 0.25, 0.3, 0.5, 1.0])
            .prop_map(Value::Float)
            .boxed(),
        Kind::Float { min, max } => (min..=max).prop_map(Value::Float).boxed(),
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Enum { values, .. } => prop::sample::select(values).prop_map(Value::Enum).boxed(),
        Kind::Text | Kind::Set if narrow => prop::sample::select(vec!["成都", "辣", "a", "", "A"])
            .prop_map(|s| Value::Text(s.to_string()))
            .boxed(),
        Kind::Text | Kind::Set => prop::collection::vec(any::<char>(), 0..8)
            .prop_map(|cs| Value::Text(cs.into_iter().collect()))
            .boxed(),
    }
}

fn leaf(narrow: bool) -> impl Strategy<Value = Expr> {
    prop::sample::select(Field::ALL.to_vec()).prop_flat_map(move |field| {
        let compare = (
            prop::sample::select(ops_for(field)),
            value_for(field, narrow),
        )
            .prop_map(move |(op, value)| Expr::Compare { field, op, value });
        if matches!(field.kind(), Kind::Bool) {
            return compare.boxed();
        }
        let list = (
            prop::collection::vec(value_for(field, narrow), 1..5),
            any::<bool>(),
        )
            .prop_map(move |(values, negated)| Expr::In {
                field,
                values,
                negated,
            });
        prop_oneof![3 => compare, 1 => list].boxed()
    })
}

fn tree(narrow: bool) -> impl Strategy<Value = Expr> {
    leaf(narrow).prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

/// A printed well-typed tree with a few token-level mutations (a token
/// dropped, doubled, replaced by a soup token, or two swapped): inputs that
/// are nearly right, which is where parsers go wrong.
fn mutated() -> impl Strategy<Value = String> {
    (
        tree(false),
        prop::collection::vec(
            (
                0u8..4,
                any::<prop::sample::Index>(),
                prop::sample::select(SOUP),
            ),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(expr, edits, tight)| {
            let text = expr.to_string();
            let mut tokens: Vec<String> = text.split(' ').map(String::from).collect();
            for (kind, at, soup) in edits {
                if tokens.is_empty() {
                    break;
                }
                let i = at.index(tokens.len());
                match kind {
                    0 => {
                        tokens.remove(i);
                    }
                    1 => {
                        let t = tokens[i].clone();
                        tokens.insert(i, t);
                    }
                    2 => tokens[i] = soup.to_string(),
                    _ => {
                        let j = (i + 1) % tokens.len();
                        tokens.swap(i, j);
                    }
                }
            }
            tokens.join(if tight { "" } else { " " })
        })
}

// ---------------------------------------------------------------------------
// Random members and the reference evaluator
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Member {
    values: BTreeMap<Field, FactValue>,
    tags: BTreeSet<String>,
}

fn fact_for(field: Field) -> BoxedStrategy<Option<FactValue>> {
    let some = match field.kind() {
        Kind::Int { .. } => value_for(field, true)
            .prop_map(|v| match v {
                Value::Int(i) => FactValue::Int(i),
                _ => FactValue::Int(0),
            })
            .boxed(),
        Kind::Float { .. } => prop::sample::select(vec![0.0, 0.1, 0.25, 0.3, 0.5, 0.99, 1.0])
            .prop_map(FactValue::Float)
            .boxed(),
        Kind::Bool => prop_oneof![
            any::<bool>().prop_map(FactValue::Bool),
            (0i64..=1).prop_map(FactValue::Int),
        ]
        .boxed(),
        Kind::Enum { values, .. } => {
            let mut pool: Vec<&'static str> = values.to_vec();
            pool.push("not_a_value");
            prop::sample::select(pool)
                .prop_map(|s| FactValue::Text(s.to_string()))
                .boxed()
        }
        Kind::Text | Kind::Set => prop::sample::select(vec!["成都", "辣", "a", "", "A"])
            .prop_map(|s| FactValue::Text(s.to_string()))
            .boxed(),
    };
    prop::option::weighted(0.75, some).boxed()
}

fn member() -> impl Strategy<Value = Member> {
    let facts: Vec<BoxedStrategy<Option<FactValue>>> =
        Field::ALL.iter().map(|f| fact_for(*f)).collect();
    (
        facts,
        prop::collection::btree_set(
            prop::sample::select(vec!["成都", "辣", "a", "", "A", "素食"]).prop_map(String::from),
            0..4,
        ),
    )
        .prop_map(|(facts, tags)| Member {
            values: Field::ALL
                .iter()
                .zip(facts)
                .filter(|(f, _)| **f != Field::Tag)
                .filter_map(|(f, v)| v.map(|v| (*f, v)))
                .collect(),
            tags,
        })
}

/// Three-valued truth, written out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum T3 {
    True,
    False,
    Unknown,
}

impl T3 {
    fn of(b: bool) -> T3 {
        if b {
            T3::True
        } else {
            T3::False
        }
    }
    fn and(self, other: T3) -> T3 {
        match (self, other) {
            (T3::False, _) | (_, T3::False) => T3::False,
            (T3::True, T3::True) => T3::True,
            _ => T3::Unknown,
        }
    }
    fn or(self, other: T3) -> T3 {
        match (self, other) {
            (T3::True, _) | (_, T3::True) => T3::True,
            (T3::False, T3::False) => T3::False,
            _ => T3::Unknown,
        }
    }
    fn not(self) -> T3 {
        match self {
            T3::True => T3::False,
            T3::False => T3::True,
            T3::Unknown => T3::Unknown,
        }
    }
    fn selected(self) -> Option<bool> {
        match self {
            T3::True => Some(true),
            T3::False => Some(false),
            T3::Unknown => None,
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Enum(s) => s.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

/// Whether the fact equals / compares to the value, per the field's kind.
/// `None` when the member has no value.
fn reference_compare(field: Field, op: Op, value: &Value, m: &Member) -> T3 {
    if field == Field::Tag {
        let has = m.tags.contains(&text_of(value));
        return T3::of(if op == Op::Eq { has } else { !has });
    }
    let Some(fact) = m.values.get(&field) else {
        return T3::Unknown;
    };
    let ordering = match (field.kind(), fact, value) {
        (Kind::Enum { values, ordered }, FactValue::Text(s), v) => {
            if ordered && op != Op::Eq && op != Op::Ne {
                // By rank; a value the enum doesn't know has no rank and
                // satisfies no ordering.
                let rank = |x: &str| values.iter().position(|v| *v == x);
                match (rank(s), rank(&text_of(v))) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    _ => return T3::False,
                }
            } else {
                s.as_str().cmp(text_of(v).as_str())
            }
        }
        (Kind::Int { .. }, FactValue::Int(a), Value::Int(b)) => a.cmp(b),
        (Kind::Float { .. }, FactValue::Float(a), Value::Float(b)) => {
            a.partial_cmp(b).expect("no NaN in tests")
        }
        (Kind::Bool, FactValue::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Kind::Bool, FactValue::Int(a), Value::Bool(b)) => a.cmp(&i64::from(*b)),
        (Kind::Text, FactValue::Text(a), Value::Text(b)) => a.cmp(b),
        other => panic!("ill-typed test case {other:?}"),
    };
    T3::of(match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
    })
}

fn reference(e: &Expr, m: &Member) -> T3 {
    match e {
        Expr::And(items) => items
            .iter()
            .fold(T3::True, |acc, item| acc.and(reference(item, m))),
        Expr::Or(items) => items
            .iter()
            .fold(T3::False, |acc, item| acc.or(reference(item, m))),
        Expr::Not(inner) => reference(inner, m).not(),
        Expr::Compare { field, op, value } => reference_compare(*field, *op, value, m),
        Expr::In {
            field,
            values,
            negated,
        } => {
            // x IN (a, b) is x = a OR x = b; NOT IN is its negation.
            let any = values.iter().fold(T3::False, |acc, v| {
                acc.or(reference_compare(*field, Op::Eq, v, m))
            });
            if *negated {
                any.not()
            } else {
                any
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(input in any::<String>()) {
        check(&input);
    }

    #[test]
    fn never_panics_on_printable_text(input in "\\PC{0,120}") {
        check(&input);
    }

    #[test]
    fn never_panics_on_token_soup(input in soup()) {
        check(&input);
    }

    #[test]
    fn never_panics_on_mutated_segments(input in mutated()) {
        check(&input);
    }

    #[test]
    fn never_panics_on_soup_after_a_valid_prefix(prefix in tree(false), rest in soup()) {
        check(&format!("{prefix} {rest}"));
        check(&format!("({prefix}{rest}"));
    }

    #[test]
    fn numbers_of_any_size(digits in "-?[0-9_]{1,45}(\\.[0-9]{0,30})?") {
        for field in ["points_balance", "p_alive", "r_score", "rfm", "city", "tier"] {
            let input = format!("{field} >= {digits}");
            check(&input);
            let input = format!("{field} in [{digits}, {digits}]");
            check(&input);
        }
        let clean: String = digits.chars().filter(|c| *c != '_').collect();
        let parsed = parse(&format!("points_balance = {digits}"));
        let valid_int = !digits.contains('.')
            && digits.trim_start_matches('-').starts_with(|c: char| c.is_ascii_digit());
        match clean.parse::<i64>() {
            Ok(n) if valid_int => prop_assert_eq!(
                parsed,
                Ok(Expr::Compare { field: Field::PointsBalance, op: Op::Eq, value: Value::Int(n) })
            ),
            _ => prop_assert!(parsed.is_err()),
        }
    }

    #[test]
    fn well_typed_trees_round_trip(expr in tree(false)) {
        let text = expr.to_string();
        prop_assert!(text.chars().count() <= MAX_INPUT_CHARS);
        prop_assert_eq!(parse(&text), Ok(expr.clone()), "{}", text);
    }

    #[test]
    fn matches_agrees_with_the_reference(expr in tree(true), m in member()) {
        let facts = Facts {
            values: m.values.clone(),
            tags: m.tags.iter().cloned().collect(),
        };
        prop_assert_eq!(matches(&expr, &facts), reference(&expr, &m).selected(), "{}", expr);
        // The same holds after printing and parsing again.
        let reparsed = parse(&expr.to_string());
        prop_assert_eq!(reparsed.map(|e| matches(&e, &facts)), Ok(matches(&expr, &facts)));
    }

    #[test]
    fn sql_binds_every_value(expr in tree(false)) {
        let (sql, values) = to_sql(&expr, &columns, 7);
        // Placeholders appear in increasing order, each once per value.
        let mut last = 6;
        let mut rest = sql.as_str();
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            let n: usize = rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .expect("a placeholder number");
            prop_assert_eq!(n, last + 1, "{}", sql);
            last = n;
        }
        prop_assert_eq!(last - 6, values.len());
        for v in &values {
            if let SqlValue::Text(t) = v {
                // Text is bound, never spliced (the SQL text only contains
                // column names, keywords and placeholders).
                let quoted = format!("'{t}'");
                prop_assert!(t.is_empty() || !sql.contains(&quoted));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Extremes
// ---------------------------------------------------------------------------

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for input in [
        "(".repeat(10_000),
        format!("{}vip = true{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}vip = true", "not ".repeat(10_000)),
        format!("{}vip = true", "!".repeat(10_000)),
        "[".repeat(10_000),
        ")".repeat(10_000),
        format!("tier in [{}]", "gold,".repeat(10_000)),
        "vip = true and ".repeat(10_000),
        "\"".repeat(10_000),
        "\\".repeat(10_000),
    ] {
        check(&input);
        assert!(parse(&input).is_err());
    }
    let at_limit = format!(
        "{}vip = true{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(parse(&at_limit).is_ok());
    let over = format!(
        "{}vip = true{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = parse(&over).unwrap_err();
    assert_eq!(e.position, MAX_DEPTH);
    assert!(e.message.contains("nested"));
    // Within the length limit, the deepest accepted nesting is still shallow.
    let mixed = format!("{}vip = true{}", "(not ".repeat(16), ")".repeat(16));
    assert!(parse(&mixed).is_ok());
    let mixed = format!("{}vip = true{}", "(not ".repeat(17), ")".repeat(17));
    assert!(parse(&mixed).is_err());
}

#[test]
fn length_limit_counts_characters() {
    let fits = format!("city = \"{}\"", "成".repeat(MAX_INPUT_CHARS - 9));
    assert_eq!(fits.chars().count(), MAX_INPUT_CHARS);
    assert!(parse(&fits).is_ok());
    let over = format!("city = \"{}\"", "成".repeat(MAX_INPUT_CHARS - 8));
    let e = parse(&over).unwrap_err();
    assert_eq!(e.position, MAX_INPUT_CHARS);
    let huge = "x".repeat(1_000_000);
    assert!(parse(&huge).is_err());
}

#[test]
fn every_enum_value_and_field_round_trips() {
    for info in catalogue() {
        let field = Field::parse(&info.name).unwrap();
        for value in enum_values(field) {
            let e = parse(&format!("{} = {value}", info.name)).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e);
        }
        let e = parse(&info.example).unwrap();
        assert_eq!(parse(&e.to_string()).unwrap(), e);
    }
}
