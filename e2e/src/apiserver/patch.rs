//! The three patch formats: JSON merge patch (RFC 7386), a strategic merge patch close
//! enough for kubectl, and JSON patch (RFC 6902).
//!
//! The strategic merge patch has no schema: lists are replaced, except lists whose
//! merge key the patch itself names through a `$setElementOrder/<field>` directive (as
//! kubectl's apply writes them) and a few well-known fields (`containers`, `env`,
//! `volumes`, `ports`, `conditions`, `ownerReferences` by key; `finalizers` as a set).
//! `$patch: replace|delete`, `$retainKeys` and `$deleteFromPrimitiveList/<field>` are
//! honoured; other directives are dropped.

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of a well-known list field (`None`: the list is replaced), given one
/// element of the patch list.
fn known_merge_key(field: &str, element: &Value) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "volumeMounts"
        | "imagePullSecrets" => Some("name"),
        "ports" if element.get("port").is_some() => Some("port"),
        "ports" if element.get("containerPort").is_some() => Some("containerPort"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// A strategic merge patch without a schema (see the module docs).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        Some("replace") => {
            let mut replacement = patch.clone();
            replacement.remove("$patch");
            *target = strip_directives(Value::Object(replacement));
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return;
    };
    for (k, v) in patch {
        if k.starts_with('$') {
            if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v)
            {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let order = patch.get(&format!("$setElementOrder/{k}"));
        match v {
            Value::Array(items) => {
                let merged = merge_list(k, t.get(k), items, order);
                t.insert(k.clone(), merged);
            }
            Value::Object(_) => {
                let entry = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge_patch(entry, v);
                if entry.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
}

fn merge_list(
    field: &str,
    current: Option<&Value>,
    items: &[Value],
    order: Option<&Value>,
) -> Value {
    let current: Vec<Value> = match current {
        Some(Value::Array(c)) => c.clone(),
        _ => Vec::new(),
    };
    // The merge key: named by the order directive, else well known.
    let order_key = order
        .and_then(Value::as_array)
        .and_then(|o| o.first())
        .and_then(Value::as_object)
        .and_then(|o| (o.len() == 1).then(|| o.keys().next().cloned()).flatten());
    let key = order_key.or_else(|| {
        items
            .iter()
            .find(|i| i.is_object())
            .and_then(|i| known_merge_key(field, i))
            .map(str::to_string)
    });
    if field == "finalizers" && items.iter().all(Value::is_string) {
        let mut out = current;
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Value::Array(out);
    }
    let Some(key) = key else {
        return strip_directives(Value::Array(items.to_vec()));
    };
    let mut out = current;
    for item in items {
        let Some(id) = item.get(&key) else {
            out.push(strip_directives(item.clone()));
            continue;
        };
        let pos = out.iter().position(|c| c.get(&key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                out.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => strategic_merge_patch(&mut out[p], item),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge_patch(&mut fresh, item);
                out.push(fresh);
            }
        }
    }
    if let Some(Value::Array(order)) = order {
        let rank = |v: &Value| {
            order
                .iter()
                .position(|o| o.get(&key) == v.get(&key))
                .unwrap_or(usize::MAX)
        };
        out.sort_by_key(rank);
    }
    Value::Array(out)
}

/// Removes `$`-directives left in values that are stored as they are.
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPatchError(pub String);

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits a JSON pointer into its parent pointer and last (unescaped) token.
fn split_pointer(path: &str) -> Result<(&str, String), JsonPatchError> {
    if path.is_empty() {
        return Err(JsonPatchError("the root cannot be the target".into()));
    }
    let idx = path
        .rfind('/')
        .ok_or_else(|| JsonPatchError(format!("invalid JSON pointer {path:?}")))?;
    Ok((&path[..idx], unescape(&path[idx + 1..])))
}

fn parent_mut<'a>(doc: &'a mut Value, parent: &str) -> Result<&'a mut Value, JsonPatchError> {
    doc.pointer_mut(parent)
        .ok_or_else(|| JsonPatchError(format!("path {parent:?} does not exist")))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match parent_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| JsonPatchError(format!("invalid index {last:?}")))?
            };
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(JsonPatchError(format!(
            "path {parent:?} is not a container"
        ))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, JsonPatchError> {
    let (parent, last) = split_pointer(path)?;
    let missing = || JsonPatchError(format!("path {path:?} does not exist"));
    match parent_mut(doc, parent)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let idx = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < a.len())
                .ok_or_else(missing)?;
            Ok(a.remove(idx))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902: `add`, `remove`, `replace`, `move`, `copy`, `test`.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), JsonPatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| JsonPatchError("a JSON patch is an array of operations".into()))?;
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| JsonPatchError(format!("operation without a path: {op}")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| JsonPatchError(format!("operation without a value: {op}")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| JsonPatchError(format!("operation without from: {op}")))
        };
        match name {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                let target = doc
                    .pointer_mut(path)
                    .ok_or_else(|| JsonPatchError(format!("path {path:?} does not exist")))?;
                *target = value()?;
            }
            "move" => {
                let v = remove(doc, from()?)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| JsonPatchError(format!("path {:?} does not exist", from())))?;
                add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(JsonPatchError(format!("test failed at {path:?}")));
                }
            }
            other => return Err(JsonPatchError(format!("unknown operation {other:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn strategic_merges_lists_by_key() {
        let mut t = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
            "metadata": {"finalizers": ["a"]}});
        strategic_merge_patch(
            &mut t,
            &json!({"spec": {"ports": [{"port": 443, "name": "tls"}, {"port": 8080}]},
                "metadata": {"finalizers": ["b"]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}, {"port": 8080}]},
                "metadata": {"finalizers": ["a", "b"]}})
        );
        // kubectl apply style: the order directive names the key, and deletes.
        strategic_merge_patch(
            &mut t,
            &json!({"spec": {"$setElementOrder/ports": [{"port": 8080}, {"port": 80}],
                "ports": [{"port": 443, "$patch": "delete"}]},
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"ports": [{"port": 8080}, {"port": 80, "name": "http"}]},
                "metadata": {"finalizers": ["b"]}})
        );
        // Unknown lists are replaced.
        let mut t = json!({"rules": [{"host": "a"}]});
        strategic_merge_patch(&mut t, &json!({"rules": [{"host": "b"}]}));
        assert_eq!(t, json!({"rules": [{"host": "b"}]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"metadata": {"labels": {"a/b": "1"}}, "l": [1, 2]});
        json_patch(
            &mut d,
            &json!([
                {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "remove", "path": "/l/0"},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
                {"op": "copy", "from": "/l", "path": "/m"},
                {"op": "move", "from": "/m", "path": "/n"}
            ]),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"metadata": {"labels": {"a/b": "2"}}, "l": [2, 3], "n": [2, 3]})
        );
        assert!(json_patch(&mut d, &json!([{"op": "test", "path": "/l", "value": 1}])).is_err());
    }
}
