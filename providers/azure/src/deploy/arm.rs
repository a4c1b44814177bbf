//! ARM template expressions: the `[...]` strings Resource Manager
//! evaluates at deployment, built from pieces so that quoting and brackets
//! come out right.
//!
//! Functions here return the *inside* of an expression
//! (`parameters('prefix')`); [`expr`] wraps one in brackets for a JSON
//! string.

/// `inner` as a JSON string ARM evaluates: `[inner]`.
pub(super) fn expr(inner: &str) -> String {
    format!("[{inner}]")
}

/// `text` as a string literal inside an expression: `'text'`, with `'`
/// doubled.
pub(super) fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A JSON string ARM takes as it is: one starting with `[` would be read as
/// an expression, so its bracket is doubled.
pub(super) fn literal_value(text: &str) -> String {
    if text.starts_with('[') {
        format!("[{text}")
    } else {
        text.to_owned()
    }
}

/// `name(args, ...)`.
pub(super) fn call(name: &str, args: &[&str]) -> String {
    format!("{name}({})", args.join(", "))
}

/// `parameters('name')`.
pub(super) fn param(name: &str) -> String {
    call("parameters", &[&lit(name)])
}

/// `variables('name')`.
pub(super) fn var(name: &str) -> String {
    call("variables", &[&lit(name)])
}

/// `format('pattern', args...)`; `pattern` is a .NET format string, so its
/// own braces must already be doubled ([`format_text`]).
pub(super) fn format(pattern: &str, args: &[&str]) -> String {
    let mut all = vec![lit(pattern)];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    call("format", &all)
}

/// `text` as it stands in a `format` pattern: braces doubled.
pub(super) fn format_text(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// A resource of this template, by type and names (each an expression):
/// its id, its `name` property and its `scope` form for extension
/// resources (role assignments).
#[derive(Debug, Clone)]
pub(super) struct Resource {
    /// The full type: `Microsoft.Storage/storageAccounts/queueServices/queues`.
    pub(super) kind: &'static str,
    /// One name per type segment after the namespace, outermost first.
    pub(super) names: Vec<String>,
}

impl Resource {
    /// A resource of type `kind` with `names` (expressions).
    pub(super) fn new(kind: &'static str, names: Vec<String>) -> Self {
        Self { kind, names }
    }

    /// `resourceId('kind', names...)`.
    pub(super) fn id(&self) -> String {
        let mut args = vec![lit(self.kind)];
        args.extend(self.names.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        call("resourceId", &args)
    }

    /// The `name` property: the names joined by `/`.
    pub(super) fn name(&self) -> String {
        match self.names.as_slice() {
            [one] => one.clone(),
            names => {
                let pattern = (0..names.len())
                    .map(|i| format!("{{{i}}}"))
                    .collect::<Vec<_>>()
                    .join("/");
                let args: Vec<&str> = names.iter().map(String::as_str).collect();
                format(&pattern, &args)
            }
        }
    }

    /// The `scope` an extension resource takes to sit on this one:
    /// `Microsoft.Storage/storageAccounts/{0}/queueServices/{1}/queues/{2}`.
    pub(super) fn scope(&self) -> String {
        let mut parts = self.kind.split('/');
        let namespace = parts.next().unwrap_or_default();
        let mut pattern = namespace.to_owned();
        for (i, segment) in parts.enumerate() {
            pattern.push_str(&format!("/{segment}/{{{i}}}"));
        }
        let args: Vec<&str> = self.names.iter().map(String::as_str).collect();
        format(&pattern, &args)
    }
}

/// Whether `value`, a JSON string of the template, is well formed: a
/// literal, or one `[...]` expression whose parentheses and brackets pair
/// up outside its `'...'` literals (`''` inside one is a quote).
#[cfg(test)]
pub(super) fn well_formed(value: &str) -> bool {
    if !value.starts_with('[') || value.starts_with("[[") {
        return true;
    }
    if !value.ends_with(']') {
        return false;
    }
    let mut open = Vec::new();
    let mut chars = value.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    quoted = false;
                }
            }
            continue;
        }
        match c {
            '\'' => quoted = true,
            '(' | '[' => open.push(c),
            ')' if open.pop() != Some('(') => return false,
            ']' if open.pop() != Some('[') => return false,
            _ => {}
        }
        // The outer bracket closes only at the very end.
        if open.is_empty() && chars.peek().is_some() {
            return false;
        }
    }
    !quoted && open.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_quote_and_nest() {
        assert_eq!(lit("it's"), "'it''s'");
        assert_eq!(
            format("{0}-orders", &[&param("prefix")]),
            "format('{0}-orders', parameters('prefix'))"
        );
        assert_eq!(format_text("a{b}"), "a{{b}}");
        assert_eq!(literal_value("[x]"), "[[x]");
        let queue = Resource::new(
            "Microsoft.Storage/storageAccounts/queueServices/queues",
            vec![var("storageAccountName"), lit("default"), lit("q")],
        );
        assert_eq!(
            queue.id(),
            "resourceId('Microsoft.Storage/storageAccounts/queueServices/queues', variables('storageAccountName'), 'default', 'q')"
        );
        assert_eq!(
            queue.name(),
            "format('{0}/{1}/{2}', variables('storageAccountName'), 'default', 'q')"
        );
        assert_eq!(
            queue.scope(),
            "format('Microsoft.Storage/storageAccounts/{0}/queueServices/{1}/queues/{2}', variables('storageAccountName'), 'default', 'q')"
        );
    }

    #[test]
    fn well_formed_expressions_pair_up() {
        assert!(well_formed("plain"));
        assert!(well_formed("[[not an expression"));
        assert!(well_formed("[format('{0}]', parameters('p'))]"));
        assert!(well_formed("[concat('it''s', 'x')]"));
        assert!(!well_formed("[format('a', parameters('p')]"));
        assert!(!well_formed("[parameters('p')"));
        assert!(!well_formed("[parameters('p)]"));
        assert!(!well_formed("[a()] [b()]"));
    }
}
