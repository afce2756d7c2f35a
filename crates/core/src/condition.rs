//! CEL expressions over an assertion's claims: a trusted issuer's `--condition` and
//! `--subject-expr`, compiled once when the issuer is added and evaluated per grant
//! at a bounded cost.
//!
//! [`Expression::compile`] refuses what is not CEL, and what it could not evaluate
//! within the bounds below, with the line and column ([`ExpressionError`]). The one
//! variable is `assertion`, the JWT's claims as a map of what JSON has (strings,
//! numbers, booleans, lists, maps, `null`):
//!
//! ```text
//! assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main"
//! assertion["kubernetes.io"].namespace == "ci"
//! assertion.sub.startsWith("spiffe://example.org/")
//! "jwtgrant" in assertion.aud && assertion.email_verified == true
//! assertion.groups.exists(g, g.startsWith("team-"))
//! ```
//!
//! [`Expression::evaluate_condition`] must yield a `bool`. Anything else, and every
//! failure (a missing claim, a claim of the wrong type), is an [`EvaluationError`],
//! which refuses the grant: an error is never `false`, so `!` can never turn one
//! into `true`. As CEL defines them, `&&` and `||` absorb an error when their other
//! side decides (`error || true` is `true`, `error && false` is `false`).
//! `has(assertion.x)` tests for an optional claim; `==` between different types is
//! `false` (`"true" == true`), `<` between them an error.
//! [`Expression::evaluate_subject`] must yield a non-empty string of at most
//! [`MAX_SUBJECT_BYTES`]; a number is refused, not formatted (`string(assertion.uid)`
//! converts one on purpose), so the subject is always spelt as the expression says.
//!
//! # What bounds one evaluation
//!
//! The claims are bounded before any expression runs: the assertion is at most
//! [`crate::jws::MAX_ASSERTION_BYTES`] (16 KiB). Compilation bounds the rest:
//!
//! - **The expression's size.** At most [`MAX_SOURCE_BYTES`] of source, an AST of
//!   at most [`MAX_NODES`] nodes (after macro expansion) and [`MAX_DEPTH`] levels.
//!   The depth also keeps the parser and the interpreter, which both recurse, far
//!   from the end of a 2 MiB thread stack.
//! - **Only what is known.** The identifiers are `assertion` and the macros'
//!   variables; the functions are the operators and [`FUNCTIONS`] and nothing else
//!   (no extension, no timestamp arithmetic), so a misspelt function or variable is
//!   refused at compile time with its position.
//! - **Loops.** CEL's only loops are its macros (`all`, `exists`, `exists_one`,
//!   `map`, `filter`). A macro's range must be a claim (`assertion.groups`,
//!   `assertion["x"].y`) or a list literal, and at evaluation a claim used as a
//!   range must have at most [`MAX_ITERATIONS`] elements (else
//!   [`EvaluationError::RangeTooLong`], before anything runs). A macro's body may
//!   not contain another macro, nor refer to `assertion`: it sees one element at a
//!   time, so over the whole loop each of its nodes handles at most the claims
//!   once. The nodes one evaluation can evaluate, a body's counting
//!   [`MAX_ITERATIONS`] times, are at most [`MAX_COST`].
//! - **Each node.** Every allowed operator and function is linear in the size of
//!   its operands. `+` needs a side that is a string or number (a literal,
//!   `string(..)`, `size(..)`, ...), so it concatenates strings and never lists;
//!   with the depth bound, strings built by `+` stay within `MAX_DEPTH` times the
//!   claims.
//! - **Copies.** The claims are converted to CEL values at most once per
//!   evaluation (a string, number or boolean read by its path is taken as is), and
//!   borrowed from there. Values are copied only where a list or map literal holds
//!   a non-literal element, and where a macro takes its elements: at most
//!   [`MAX_COPIES`] such places, each copying at most the claims.
//! - **Regular expressions.** `matches` takes a string literal as its pattern,
//!   compiled once at compile time (at most [`MAX_REGEX_BYTES`] compiled); a claim
//!   cannot choose it. The `regex` crate matches in time linear in the input, with
//!   no backtracking.
//!
//! So one evaluation makes at most [`MAX_COST`] node evaluations, reads the claims
//! at most [`MAX_NODES`] times over and copies them at most [`MAX_COPIES`] times.
//! The `condition/worst_case_*` benchmarks measure the worst expressions that
//! compile over the worst claims that fit in an assertion: about 3 ms at most
//! (eight copies of 3,500 values), against about 1 µs for the GitHub condition
//! above and 50 µs for the core's RS256 grant path. That is enough: an operator
//! writes the expressions, and the claims of a hostile issuer cannot make one cost
//! more than its worst case.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo,
};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::parser::Parser;
use cel::{Context, Env, Value};
use serde_json::Value as Json;

/// The longest source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// The most nodes an expression may have, after macro expansion.
pub const MAX_NODES: usize = 256;
/// The deepest an expression may nest (a node and its operands are two levels).
pub const MAX_DEPTH: usize = 32;
/// The most elements a claim may have when a macro iterates over it.
pub const MAX_ITERATIONS: usize = 256;
/// The most node evaluations one evaluation may make, a node in a macro's body
/// counting [`MAX_ITERATIONS`] times.
pub const MAX_COST: usize = 8192;
/// The most places in an expression that may copy a value: each non-literal element
/// (or key or value) of a list or map literal, and each macro.
pub const MAX_COPIES: usize = 8;
/// The most memory one compiled `matches` pattern may take.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// The longest subject an expression may yield, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 1024;
/// The deepest a claim may nest; serde_json parses at most 128 levels, so parsed
/// claims never reach it.
const MAX_CLAIM_DEPTH: usize = 128;

/// The name of the one variable: the claims of the assertion.
pub const VARIABLE: &str = "assertion";

/// The functions an expression may call, besides the operators. The conversions
/// (`string`, `int`, `uint`, `double`, `bool`) are included; the macros expand into
/// comprehensions and are no functions.
pub const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "string",
    "int",
    "uint",
    "double",
    "bool",
];

/// The operators, as cel's AST spells them, and `@not_strictly_false`, which the
/// macros' expansions call.
const OPERATORS: &[&str] = &[
    "_?_:_",
    "_&&_",
    "_||_",
    "!_",
    "-_",
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_[_]",
    "@in",
    "@not_strictly_false",
];

/// A compiled CEL expression over `assertion`. Compile it once (when the issuer is
/// added or loaded) and share it: it is `Send + Sync`, and evaluating takes `&self`.
pub struct Expression {
    /// The source as compiled: what `issuer show` prints.
    source: String,
    /// The checked AST, its `matches` calls rewritten to call [`Self::regexes`]; the
    /// interpreter walks it directly.
    ast: IdedExpr,
    /// The claims the macros iterate over, whose length is checked before each
    /// evaluation.
    ranges: Vec<Vec<PathStep>>,
    /// The `matches` patterns, compiled once, under the function names the AST
    /// calls them by.
    regexes: Vec<(String, Arc<regex::Regex>)>,
    /// cel's standard library, which the interpreter looks functions up in.
    env: Arc<Env>,
}

/// One step of a claim path: `.field` or `["key"]`, or `[0]` on a list.
#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(i64),
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why an expression was refused at compile time, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ExpressionError {
    /// The line of the source, from 1.
    pub line: u32,
    /// The column in that line, in characters, from 1.
    pub column: u32,
    /// What is wrong.
    pub kind: ExpressionErrorKind,
}

/// What is wrong with an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpressionErrorKind {
    /// Longer than [`MAX_SOURCE_BYTES`].
    #[error("the expression is {len} bytes, more than {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not CEL, as cel's parser says.
    #[error("{0}")]
    Syntax(String),
    /// More than [`MAX_NODES`] nodes.
    #[error("the expression has more than {max} nodes")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
    /// Nested more than [`MAX_DEPTH`] levels.
    #[error("the expression nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Could evaluate more than [`MAX_COST`] nodes.
    #[error("the expression could evaluate more than {max} nodes: shorten the macros' bodies")]
    TooCostly {
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_COPIES`] places that copy a value.
    #[error(
        "more than {max} macros and non-literal elements of list or map literals, which copy values"
    )]
    TooManyCopies {
        /// The limit.
        max: usize,
    },
    /// An identifier that is neither `assertion` nor a macro's variable.
    #[error("unknown variable '{0}': the claims are 'assertion'")]
    UnknownVariable(String),
    /// A function that is neither an operator nor among [`FUNCTIONS`].
    #[error("unknown or unsupported function '{0}'")]
    UnknownFunction(String),
    /// A construct jwtgrant does not evaluate (a message literal, optional syntax).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A macro inside another macro.
    #[error("a macro ('all', 'exists', 'map', ...) may not be nested in another")]
    NestedComprehension,
    /// A macro whose range is neither a claim nor a list literal.
    #[error("a macro's range must be a claim (assertion.x) or a list literal")]
    ComprehensionRange,
    /// `assertion` in a macro's body.
    #[error("a macro's body may not refer to 'assertion', only to its own variables")]
    ClaimsInComprehension,
    /// A `+` with neither side known to be a string or a number.
    #[error(
        "'+' needs a string or number on one side (a literal, string(..), size(..)); lists are not concatenated"
    )]
    AddOperands,
    /// A `matches` pattern that is not a string literal, or not a valid regex.
    #[error("{0}")]
    Regex(String),
}

/// Why an evaluation yielded no result. Each refuses the grant. The text may quote
/// claim values: it is for the log and `explain`, never for the wire.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvaluationError {
    /// The expression failed: a missing claim, a claim of the wrong type, an
    /// operator that does not apply, ... (cel's message).
    #[error("{0}")]
    Failed(String),
    /// A condition that yielded something other than a boolean.
    #[error("the condition yielded a {got}, not a bool")]
    NotBool {
        /// The CEL type it yielded.
        got: String,
    },
    /// A subject expression that yielded something other than a string.
    #[error("the subject expression yielded a {got}, not a string")]
    NotString {
        /// The CEL type it yielded.
        got: String,
    },
    /// A subject expression that yielded the empty string.
    #[error("the subject expression yielded an empty string")]
    EmptySubject,
    /// A subject expression that yielded more than [`MAX_SUBJECT_BYTES`].
    #[error("the subject expression yielded {len} bytes, more than {max}")]
    SubjectTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A claim a macro iterates over has more than [`MAX_ITERATIONS`] elements.
    #[error("a macro would iterate over {len} elements, more than {max}")]
    RangeTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The claims nest deeper than parsed claims can.
    #[error("the claims nest deeper than {max} levels")]
    ClaimsTooDeep {
        /// The limit.
        max: usize,
    },
}

impl Expression {
    /// Parses and checks `source`. Refuses, with the position, what is not CEL and
    /// what exceeds the bounds in the module's docs.
    pub fn compile(source: &str) -> Result<Expression, ExpressionError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(ExpressionError {
                line: 1,
                column: 1,
                kind: ExpressionErrorKind::TooLong {
                    len: source.len(),
                    max: MAX_SOURCE_BYTES,
                },
            });
        }
        // cel's own limit counts nested sub-expressions (parentheses, arguments,
        // list elements) while parsing; ours counts the AST's levels afterwards.
        let parser = Parser::new().max_recursion_depth(MAX_DEPTH as u16);
        let (mut ast, info) = parser
            .parse_with_source_info(source)
            .map_err(|errors| syntax_error(&errors))?;
        let mut checker = Checker {
            nodes: 0,
            cost: 0,
            copies: 0,
            ranges: Vec::new(),
            regexes: Vec::new(),
            scope: Vec::new(),
        };
        let top = At {
            depth: 1,
            in_comprehension: false,
            in_body: false,
        };
        checker.check(&mut ast, top).map_err(|(id, kind)| {
            let (line, column) = position(&info, id);
            ExpressionError { line, column, kind }
        })?;
        Ok(Expression {
            source: source.to_owned(),
            ast,
            ranges: checker.ranges,
            regexes: checker.regexes,
            env: Arc::new(Env::stdlib()),
        })
    }

    /// The source this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates a condition over `claims`: `Ok(true)` only if it yields `true`,
    /// `Ok(false)` only if it yields `false`.
    pub fn evaluate_condition(
        &self,
        claims: &serde_json::Map<String, Json>,
    ) -> Result<bool, EvaluationError> {
        self.evaluate(claims, |value| match value.downcast_ref::<CelBool>() {
            Some(b) => Ok(*b.inner()),
            None => Err(EvaluationError::NotBool {
                got: value.get_type().name().to_owned(),
            }),
        })
    }

    /// Evaluates a subject expression over `claims`: a non-empty string of at most
    /// [`MAX_SUBJECT_BYTES`]. A number (or anything else) is refused, not
    /// formatted.
    pub fn evaluate_subject(
        &self,
        claims: &serde_json::Map<String, Json>,
    ) -> Result<String, EvaluationError> {
        self.evaluate(claims, |value| {
            let Some(s) = value.downcast_ref::<CelString>() else {
                return Err(EvaluationError::NotString {
                    got: value.get_type().name().to_owned(),
                });
            };
            let s = s.inner();
            if s.is_empty() {
                return Err(EvaluationError::EmptySubject);
            }
            if s.len() > MAX_SUBJECT_BYTES {
                return Err(EvaluationError::SubjectTooLong {
                    len: s.len(),
                    max: MAX_SUBJECT_BYTES,
                });
            }
            Ok(s.to_owned())
        })
    }

    fn evaluate<T>(
        &self,
        claims: &serde_json::Map<String, Json>,
        result: impl FnOnce(&dyn Val) -> Result<T, EvaluationError>,
    ) -> Result<T, EvaluationError> {
        for path in &self.ranges {
            if let Some(len) = range_len(claims, path)
                && len > MAX_ITERATIONS
            {
                return Err(EvaluationError::RangeTooLong {
                    len,
                    max: MAX_ITERATIONS,
                });
            }
        }
        let claims = Claims {
            claims,
            whole: OnceLock::new(),
            too_deep: AtomicBool::new(false),
        };
        let mut context = Context::with_env(Arc::clone(&self.env));
        for (name, regex) in &self.regexes {
            let regex = Arc::clone(regex);
            context
                .add_function(name, move |s: Arc<String>| regex.is_match(&s))
                .map_err(|e| EvaluationError::Failed(e.to_string()))?;
        }
        context.set_variable_resolver(&claims);
        let value = Value::resolve_val(&self.ast, &context);
        if claims.too_deep.load(Ordering::Relaxed) {
            return Err(EvaluationError::ClaimsTooDeep {
                max: MAX_CLAIM_DEPTH,
            });
        }
        result(&*value.map_err(|error| EvaluationError::Failed(error.to_string()))?)
    }
}

/// The claims as the interpreter looks them up. cel asks for the longest name
/// first: when `assertion.a.b` is a string, number, boolean or null it is taken
/// from the JSON as is (a string is borrowed, not copied). Anything else, and
/// `assertion` alone (as in `assertion["k"]` or `has(assertion.k)`), comes from the
/// claims converted whole, once per evaluation, and is borrowed from there. A name
/// not found is left to cel, which selects on a shorter one and fails with the key
/// it did not find.
struct Claims<'a> {
    claims: &'a serde_json::Map<String, Json>,
    whole: OnceLock<Option<Box<dyn Val + 'a>>>,
    /// Set when a claim nests deeper than [`MAX_CLAIM_DEPTH`].
    too_deep: AtomicBool,
}

impl<'a> Claims<'a> {
    fn converted(
        &self,
        value: Result<Box<dyn Val + 'a>, EvaluationError>,
    ) -> Option<Box<dyn Val + 'a>> {
        value
            .inspect_err(|_| self.too_deep.store(true, Ordering::Relaxed))
            .ok()
    }
}

impl VariableResolver for Claims<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let rest = variable.strip_prefix(VARIABLE)?;
        if rest.is_empty() {
            let whole = self
                .whole
                .get_or_init(|| self.converted(object_to_val(self.claims, 0)));
            return whole.as_deref().map(CowVal::Borrowed);
        }
        let mut keys = rest.strip_prefix('.')?.split('.');
        let mut value = self.claims.get(keys.next()?)?;
        for key in keys {
            value = value.as_object()?.get(key)?;
        }
        if value.is_array() || value.is_object() {
            // Converting it here for every mention would copy it each time.
            return None;
        }
        self.converted(json_to_val(value, 1)).map(CowVal::Owned)
    }
}

/// The line and column of the node `id`, from 1; (1, 1) if cel did not record it.
fn position(info: &SourceInfo, id: u64) -> (u32, u32) {
    let Some((start, _)) = info.offset_for(id) else {
        return (1, 1);
    };
    offset_to_position(&info.source, start as usize)
}

/// The line and column (in characters, from 1) of the byte `offset` of `source`,
/// which is how cel records where a node is.
fn offset_to_position(source: &str, offset: usize) -> (u32, u32) {
    let mut line = 1u32;
    let mut column = 1u32;
    for (i, c) in source.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    (line, column)
}

/// The first of cel's parse errors, with its position.
fn syntax_error(errors: &cel::ParseErrors) -> ExpressionError {
    let Some(first) = errors.errors.first() else {
        return ExpressionError {
            line: 1,
            column: 1,
            kind: ExpressionErrorKind::Syntax("not a CEL expression".into()),
        };
    };
    // cel reports its recursion limit as a syntax error that quotes the limit's
    // own error; an error of the parser itself comes without a position, its cause
    // beside it.
    let message = match &first.source {
        Some(cause) if first.pos.0 < 1 => cause.to_string(),
        _ => first.msg.clone(),
    };
    let kind = if message.contains("Recursion limit") {
        ExpressionErrorKind::TooDeep { max: MAX_DEPTH }
    } else {
        ExpressionErrorKind::Syntax(message)
    };
    let (line, column) = first.pos;
    ExpressionError {
        line: u32::try_from(line).unwrap_or(1).max(1),
        column: u32::try_from(column).unwrap_or(1).max(1),
        kind,
    }
}

/// Walks the AST once: counts, measures, refuses what is unknown, and rewrites
/// `matches` to its precompiled pattern.
struct Checker {
    /// The nodes seen.
    nodes: usize,
    /// The most node evaluations one evaluation can make.
    cost: usize,
    /// The places that copy a value.
    copies: usize,
    /// The claims the macros iterate over.
    ranges: Vec<Vec<PathStep>>,
    /// The `matches` patterns seen, compiled.
    regexes: Vec<(String, Arc<regex::Regex>)>,
    /// The macro variables in scope.
    scope: Vec<String>,
}

/// Where a node is.
#[derive(Clone, Copy)]
struct At {
    depth: usize,
    /// Inside a macro (its range, its body, its result): no macro may be there.
    in_comprehension: bool,
    /// In a macro's body, evaluated once per element.
    in_body: bool,
}

impl At {
    fn below(self) -> At {
        At {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// What the checker knows of a node's value: enough to tell a `+` of strings or
/// numbers from one of lists.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// A literal (`"a"`, `1`, `true`, `null`).
    Literal,
    /// A string or a number, whatever the claims are.
    Scalar,
    /// Anything, as far as the checker knows.
    Unknown,
}

impl Shape {
    fn is_scalar(self) -> bool {
        matches!(self, Shape::Literal | Shape::Scalar)
    }
}

type CheckError = (u64, ExpressionErrorKind);

impl Checker {
    fn check(&mut self, node: &mut IdedExpr, at: At) -> Result<Shape, CheckError> {
        let id = node.id;
        let refuse = |kind| Err((id, kind));
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return refuse(ExpressionErrorKind::TooManyNodes { max: MAX_NODES });
        }
        if at.depth > MAX_DEPTH {
            return refuse(ExpressionErrorKind::TooDeep { max: MAX_DEPTH });
        }
        self.cost += if at.in_body { MAX_ITERATIONS } else { 1 };
        if self.cost > MAX_COST {
            return refuse(ExpressionErrorKind::TooCostly { max: MAX_COST });
        }
        let below = at.below();
        match &mut node.expr {
            Expr::Unspecified => refuse(ExpressionErrorKind::Unsupported("an empty expression")),
            Expr::Literal(_) => Ok(Shape::Literal),
            Expr::Ident(name) => {
                if self.scope.iter().any(|s| s == name) {
                    Ok(Shape::Unknown)
                } else if name == VARIABLE {
                    if at.in_body {
                        return refuse(ExpressionErrorKind::ClaimsInComprehension);
                    }
                    Ok(Shape::Unknown)
                } else {
                    refuse(ExpressionErrorKind::UnknownVariable(name.clone()))
                }
            }
            Expr::Select(select) => {
                self.check(&mut select.operand, below)?;
                // `has(x.f)` is a bool.
                Ok(if select.test {
                    Shape::Scalar
                } else {
                    Shape::Unknown
                })
            }
            Expr::Call(call) => self.check_call(id, call, below),
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return refuse(ExpressionErrorKind::Unsupported("optional elements"));
                }
                for element in &mut list.elements {
                    let shape = self.check(element, below)?;
                    self.copy_unless_literal(element.id, shape)?;
                }
                Ok(Shape::Unknown)
            }
            Expr::Map(map) => {
                for entry in &mut map.entries {
                    let entry_id = entry.id;
                    let EntryExpr::MapEntry(entry) = &mut entry.expr else {
                        return refuse(ExpressionErrorKind::Unsupported("message fields"));
                    };
                    if entry.optional {
                        return refuse(ExpressionErrorKind::Unsupported("optional entries"));
                    }
                    let key = self.check(&mut entry.key, below)?;
                    let value = self.check(&mut entry.value, below)?;
                    self.copy_unless_literal(entry_id, key)?;
                    self.copy_unless_literal(entry_id, value)?;
                }
                Ok(Shape::Unknown)
            }
            Expr::Struct(_) => refuse(ExpressionErrorKind::Unsupported("message literals")),
            Expr::Comprehension(comprehension) => {
                if at.in_comprehension {
                    return refuse(ExpressionErrorKind::NestedComprehension);
                }
                self.copy(id)?;
                self.check_comprehension(id, comprehension, below)?;
                Ok(Shape::Unknown)
            }
        }
    }

    fn copy(&mut self, id: u64) -> Result<(), CheckError> {
        self.copies += 1;
        if self.copies > MAX_COPIES {
            return Err((id, ExpressionErrorKind::TooManyCopies { max: MAX_COPIES }));
        }
        Ok(())
    }

    fn copy_unless_literal(&mut self, id: u64, shape: Shape) -> Result<(), CheckError> {
        if shape == Shape::Literal {
            Ok(())
        } else {
            self.copy(id)
        }
    }

    fn check_call(&mut self, id: u64, call: &mut CallExpr, at: At) -> Result<Shape, CheckError> {
        let name = call.func_name.as_str();
        if !OPERATORS.contains(&name) && !FUNCTIONS.contains(&name) {
            return Err((id, ExpressionErrorKind::UnknownFunction(name.to_owned())));
        }
        if name == "matches" {
            self.rewrite_matches(id, call)?;
        }
        let mut shapes = Vec::with_capacity(call.args.len() + 1);
        if let Some(target) = &mut call.target {
            shapes.push(self.check(target, at)?);
        }
        for arg in &mut call.args {
            shapes.push(self.check(arg, at)?);
        }
        Ok(match call.func_name.as_str() {
            "_+_" => {
                // `map` and `filter` expand to `@result + [x]`, which cel appends
                // in place.
                let appends = call
                    .args
                    .iter()
                    .any(|arg| matches!(&arg.expr, Expr::Ident(name) if name.starts_with('@')));
                if !appends && !shapes.iter().any(|s| s.is_scalar()) {
                    return Err((id, ExpressionErrorKind::AddOperands));
                }
                Shape::Scalar
            }
            "_?_:_" | "_[_]" => Shape::Unknown,
            // Everything else yields a bool, a number or a string (`string(x)`,
            // `size(x)`, `-x`, `x == y`, `x.startsWith(y)`, ...).
            _ => Shape::Scalar,
        })
    }

    /// Turns `s.matches("re")` (or `matches(s, "re")`) into a call of the
    /// precompiled pattern, `@matchesN(s)`.
    fn rewrite_matches(&mut self, id: u64, call: &mut CallExpr) -> Result<(), CheckError> {
        let refuse = |message: String| Err((id, ExpressionErrorKind::Regex(message)));
        let mut args = std::mem::take(&mut call.args);
        if let Some(target) = call.target.take() {
            args.insert(0, *target);
        }
        let (subject, pattern) = match <[IdedExpr; 2]>::try_from(args) {
            Ok([subject, pattern]) => (subject, pattern),
            Err(_) => return refuse("'matches' takes a string and a pattern".into()),
        };
        let Expr::Literal(LiteralValue::String(pattern)) = &pattern.expr else {
            return refuse("the pattern of 'matches' must be a string literal".into());
        };
        let regex = match regex::RegexBuilder::new(pattern.inner())
            .size_limit(MAX_REGEX_BYTES)
            .build()
        {
            Ok(regex) => regex,
            Err(error) => return refuse(format!("invalid pattern: {error}")),
        };
        let name = format!("@matches{}", self.regexes.len());
        self.regexes.push((name.clone(), Arc::new(regex)));
        call.func_name = name;
        call.args = vec![subject];
        Ok(())
    }

    fn check_comprehension(
        &mut self,
        id: u64,
        comprehension: &mut ComprehensionExpr,
        at: At,
    ) -> Result<(), CheckError> {
        let inside = At {
            in_comprehension: true,
            ..at
        };
        let range = &mut comprehension.iter_range;
        if !matches!(range.expr, Expr::List(_)) {
            let Some(path) = claim_path(range, &self.scope) else {
                return Err((id, ExpressionErrorKind::ComprehensionRange));
            };
            self.ranges.push(path);
        }
        self.check(range, inside)?;
        self.check(&mut comprehension.accu_init, inside)?;
        let outer = self.scope.len();
        self.scope.push(comprehension.iter_var.clone());
        if let Some(var) = &comprehension.iter_var2 {
            self.scope.push(var.clone());
        }
        self.scope.push(comprehension.accu_var.clone());
        let body = At {
            in_body: true,
            ..inside
        };
        let checked = self
            .check(&mut comprehension.loop_cond, body)
            .and_then(|_| self.check(&mut comprehension.loop_step, body))
            .and_then(|_| self.check(&mut comprehension.result, inside));
        self.scope.truncate(outer);
        checked.map(|_| ())
    }
}

/// The claim path `node` spells (`assertion.a["b"][0]`), unless a macro variable
/// shadows `assertion` or it is anything else.
fn claim_path(node: &IdedExpr, scope: &[String]) -> Option<Vec<PathStep>> {
    let mut steps = Vec::new();
    let mut node = node;
    loop {
        match &node.expr {
            Expr::Ident(name) if name == VARIABLE && !scope.iter().any(|s| s == name) => {
                steps.reverse();
                return Some(steps);
            }
            Expr::Select(select) if !select.test => {
                steps.push(PathStep::Key(select.field.clone()));
                node = &select.operand;
            }
            Expr::Call(call) if call.func_name == "_[_]" && call.target.is_none() => {
                let [operand, key] = call.args.as_slice() else {
                    return None;
                };
                match &key.expr {
                    Expr::Literal(LiteralValue::String(s)) => {
                        steps.push(PathStep::Key(s.inner().to_owned()));
                    }
                    Expr::Literal(LiteralValue::Int(i)) => steps.push(PathStep::Index(*i.inner())),
                    _ => return None,
                }
                node = operand;
            }
            _ => return None,
        }
    }
}

/// The length of the list or map at `path` in the claims, if there is one there.
fn range_len(claims: &serde_json::Map<String, Json>, path: &[PathStep]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let PathStep::Key(key) = first else {
        return None;
    };
    let mut value = claims.get(key)?;
    for step in rest {
        value = match (step, value) {
            (PathStep::Key(key), Json::Object(map)) => map.get(key)?,
            (PathStep::Index(i), Json::Array(list)) => list.get(usize::try_from(*i).ok()?)?,
            _ => return None,
        };
    }
    match value {
        Json::Array(list) => Some(list.len()),
        Json::Object(map) => Some(map.len()),
        _ => None,
    }
}

/// The claims as a CEL map; its strings borrow the claims'.
fn object_to_val<'v>(
    object: &'v serde_json::Map<String, Json>,
    depth: usize,
) -> Result<Box<dyn Val + 'v>, EvaluationError> {
    let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::with_capacity(object.len());
    for (key, value) in object {
        map.insert(
            CelMapKey::from(key.as_str()),
            json_to_val(value, depth + 1)?,
        );
    }
    Ok(Box::new(CelMap::from(map)))
}

fn json_to_val<'v>(value: &'v Json, depth: usize) -> Result<Box<dyn Val + 'v>, EvaluationError> {
    if depth > MAX_CLAIM_DEPTH {
        return Err(EvaluationError::ClaimsTooDeep {
            max: MAX_CLAIM_DEPTH,
        });
    }
    Ok(match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(list) => {
            let elements = list
                .iter()
                .map(|element| json_to_val(element, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(CelList::from(elements))
        }
        Json::Object(object) => object_to_val(object, depth)?,
    })
}

#[cfg(test)]
mod tests;
