//! Conditions a choice tests on a step's JSON output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A test on a JSON value, by field path: `status`, `order.total` (names
/// of letters, digits and `_`, not starting with a digit, joined by dots). Paths are this plain
/// so that every engine a workflow is rendered to can say them.
///
/// ```
/// use cloudfn_core::workflow::Condition;
/// use serde_json::json;
///
/// let paid = Condition::equals("status", "paid").and(Condition::greater_than("total", 0.0));
/// assert!(paid.holds(&json!({"status": "paid", "total": 12.5})));
/// assert!(!paid.holds(&json!({"status": "new", "total": 12.5})));
/// assert!(!Condition::exists("refund.id").holds(&json!({"refund": {}})));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The field is present and equals the value.
    Equals {
        /// The field.
        path: String,
        /// The value.
        value: Value,
    },
    /// The field is a number greater than the value.
    GreaterThan {
        /// The field.
        path: String,
        /// The bound.
        value: f64,
    },
    /// The field is a number less than the value.
    LessThan {
        /// The field.
        path: String,
        /// The bound.
        value: f64,
    },
    /// The field is present (and not null).
    Exists {
        /// The field.
        path: String,
    },
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
}

impl Condition {
    /// Field `path` equals `value`.
    pub fn equals(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Equals {
            path: path.into(),
            value: value.into(),
        }
    }

    /// Field `path` is a number above `value`.
    pub fn greater_than(path: impl Into<String>, value: f64) -> Self {
        Self::GreaterThan {
            path: path.into(),
            value,
        }
    }

    /// Field `path` is a number below `value`.
    pub fn less_than(path: impl Into<String>, value: f64) -> Self {
        Self::LessThan {
            path: path.into(),
            value,
        }
    }

    /// Field `path` is present and not null.
    pub fn exists(path: impl Into<String>) -> Self {
        Self::Exists { path: path.into() }
    }

    /// This and `other`.
    pub fn and(self, other: Condition) -> Self {
        match self {
            Self::All(mut all) => {
                all.push(other);
                Self::All(all)
            }
            one => Self::All(vec![one, other]),
        }
    }

    /// This or `other`.
    pub fn or(self, other: Condition) -> Self {
        match self {
            Self::Any(mut any) => {
                any.push(other);
                Self::Any(any)
            }
            one => Self::Any(vec![one, other]),
        }
    }

    /// Not this.
    pub fn negate(self) -> Self {
        Self::Not(Box::new(self))
    }

    /// Whether the condition holds on `input`.
    pub fn holds(&self, input: &Value) -> bool {
        match self {
            Self::Equals { path, value } => field(input, path) == Some(value),
            Self::GreaterThan { path, value } => number(input, path).is_some_and(|n| n > *value),
            Self::LessThan { path, value } => number(input, path).is_some_and(|n| n < *value),
            Self::Exists { path } => field(input, path).is_some_and(|v| !v.is_null()),
            Self::All(all) => all.iter().all(|c| c.holds(input)),
            Self::Any(any) => any.iter().any(|c| c.holds(input)),
            Self::Not(not) => !not.holds(input),
        }
    }

    /// Every field path the condition reads.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Self::Equals { path, .. }
            | Self::GreaterThan { path, .. }
            | Self::LessThan { path, .. }
            | Self::Exists { path } => vec![path],
            Self::All(many) | Self::Any(many) => many.iter().flat_map(Self::paths).collect(),
            Self::Not(not) => not.paths(),
        }
    }
}

/// The field at dotted `path` of `input`.
fn field<'a>(input: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(input, |value, name| value.get(name))
}

fn number(input: &Value, path: &str) -> Option<f64> {
    field(input, path).and_then(Value::as_f64)
}

/// Whether `path` is one a condition may use; why not, if not.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let plain = |name: &str| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if path.split('.').all(plain) {
        Ok(())
    } else {
        Err(format!(
            "field path `{path}` must be names of letters, digits and `_` (not starting with a digit) joined by dots"
        ))
    }
}
