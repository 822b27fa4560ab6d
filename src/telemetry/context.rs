//! The log context of a task: named values that every JSON line logged inside it carries, such
//! as a request's `request_id`, `method`, `path` and, once known, `user_id`.
//!
//! Why not span fields: a span per request cost more than serving `/health` (a registry slot,
//! its fields rendered, an enter and an exit on every poll); a task-local list of strings costs
//! a few allocations. The JSON layer reads the context of the task that logs. A task spawned
//! from inside a context does not inherit it (nor would it a span).

use std::cell::RefCell;
use std::future::Future;

/// The values of one context, in the order they appear on a line.
#[derive(Debug, Default)]
pub struct Fields(RefCell<Vec<(&'static str, String)>>);

impl Fields {
    /// A context holding `fields`.
    pub fn new(fields: Vec<(&'static str, String)>) -> Self {
        Self(RefCell::new(fields))
    }
}

tokio::task_local! {
    static CONTEXT: Fields;
}

/// Runs `future` with `fields` as its log context.
pub fn scope<F: Future>(fields: Fields, future: F) -> impl Future<Output = F::Output> {
    CONTEXT.scope(fields, future)
}

/// Sets `key` to `value` in the current task's context (no-op outside one).
pub fn record(key: &'static str, value: String) {
    let _ = CONTEXT.try_with(|fields| {
        if let Ok(mut fields) = fields.0.try_borrow_mut() {
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v = value,
                None => fields.push((key, value)),
            }
        }
    });
}

/// The value of `key` in the current task's context, if any.
pub fn get(key: &str) -> Option<String> {
    CONTEXT
        .try_with(|fields| {
            fields.0.try_borrow().ok().and_then(|fields| {
                fields
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            })
        })
        .ok()
        .flatten()
}

/// Calls `f` with each field of the current task's context, in order (none outside one).
pub fn for_each(mut f: impl FnMut(&'static str, &str)) {
    let _ = CONTEXT.try_with(|fields| {
        if let Ok(fields) = fields.0.try_borrow() {
            for (key, value) in fields.iter() {
                f(key, value);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_context_holds_its_fields_for_its_task_only() {
        assert_eq!(get("request_id"), None, "no context outside a scope");
        record("user_id", "ignored".to_owned());

        let inside = scope(Fields::new(vec![("request_id", "r-1".to_owned())]), async {
            record("user_id", "u-1".to_owned());
            record("user_id", "u-2".to_owned());
            let spawned = tokio::spawn(async { get("request_id") }).await.unwrap();
            let mut seen = Vec::new();
            for_each(|k, v| seen.push((k, v.to_owned())));
            (get("request_id"), spawned, seen)
        })
        .await;

        assert_eq!(inside.0.as_deref(), Some("r-1"));
        assert_eq!(inside.1, None, "a spawned task does not inherit it");
        assert_eq!(
            inside.2,
            [
                ("request_id", "r-1".to_owned()),
                ("user_id", "u-2".to_owned())
            ]
        );
        let mut outside = 0;
        for_each(|_, _| outside += 1);
        assert_eq!(outside, 0);
    }
}
