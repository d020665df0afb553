//! The object store: every object as JSON, one global resourceVersion counter, a bounded
//! history of changes for watch replay, and a broadcast of changes for live watches.
//!
//! All writes go through [`Store::create`], [`Store::update`], [`Store::patch`] and
//! [`Store::delete`], which stamp metadata (uid, creationTimestamp, resourceVersion,
//! generation), check preconditions and record a [`Change`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::meta;
use super::patch;
use super::resources::{self, ResourceType};
use super::selectors::Selectors;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated (including a deletion that waits for finalizers).
    Modified,
    /// Removed.
    Deleted,
}

/// One recorded change, as watches replay and stream it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of the change (the object's, for all kinds of change).
    pub rv: u64,
    /// The object's resource.
    pub resource: &'static ResourceType,
    /// The object's namespace (`""` for cluster-scoped kinds).
    pub namespace: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for a deletion, its last state).
    pub object: Value,
    /// The object before a modification.
    pub prev: Option<Value>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The object itself: `.status` is kept as it was for kinds with a status subresource.
    Main,
    /// The `/status` subresource: only `.status` changes.
    Status,
}

/// The patch formats, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml` (server-side apply, done as create-or-merge).
    Apply,
}

/// The outcome of a deletion.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(Value),
    /// The object has finalizers: it now has a `deletionTimestamp` and stays until they
    /// are removed.
    Pending(Value),
}

type Key = (&'static str, &'static str, String, String);

fn key(rt: &'static ResourceType, ns: &str, name: &str) -> Key {
    (rt.group, rt.plural, ns.to_string(), name.to_string())
}

fn namespaces() -> &'static ResourceType {
    &resources::RESOURCES[0]
}

/// The in-memory state of the API server.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
    next_cluster_ip: u32,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// The object without the fields that do not make up its "spec" (metadata, status,
/// type meta): a change elsewhere bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

/// A body that names an object must name the one of the URL.
fn check_name(body: &Value, name: &str) -> Result<(), ApiError> {
    match str_at(body, "/metadata/name") {
        Some(n) if n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

impl Store {
    /// An empty store with the namespaces every cluster has (`default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`).
    pub fn new(history_limit: usize) -> Store {
        let (tx, _) = broadcast::channel(4096);
        let mut store = Store {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            tx,
            next_cluster_ip: 1,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = store.create(namespaces(), "", json!({"metadata": {"name": ns}}), false);
        }
        store
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// The changes after `rv`, or 410 Expired when some of them are no longer kept.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted
            )));
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Forgets the history: a watch from any resourceVersion handed out so far gets 410
    /// Expired; a relist (which sees a new resourceVersion) then watches fine.
    pub fn expire(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
    }

    /// One object.
    pub fn get(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The objects of a resource, in one namespace or all (`None`), that match.
    pub fn list(&self, rt: &'static ResourceType, ns: Option<&str>, sel: &Selectors) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), obj)| {
                *g == rt.group && *p == rt.plural && ns.is_none_or(|ns| ns == n) && sel.matches(obj)
            })
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    fn record(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        kind: ChangeKind,
        object: Value,
        prev: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: rt,
            namespace: ns.to_string(),
            kind,
            object,
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(change);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Sets (or checks) `apiVersion` and `kind`.
    fn check_type(rt: &'static ResourceType, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body is not a JSON object"));
        }
        let api_version = rt.api_version();
        match str_at(obj, "/apiVersion") {
            Some(v) if !v.is_empty() && v != api_version => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
            _ => obj["apiVersion"] = json!(api_version),
        }
        match str_at(obj, "/kind") {
            Some(k) if !k.is_empty() && k != rt.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    rt.kind
                )));
            }
            _ => obj["kind"] = json!(rt.kind),
        }
        Ok(())
    }

    fn check_namespace(
        rt: &'static ResourceType,
        ns: &str,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        let meta = metadata_mut(obj);
        if rt.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(b) if !b.is_empty() && b != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// Creates an object (POST). `ns` is `""` for cluster-scoped kinds.
    pub fn create(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        Self::check_type(rt, &mut obj)?;
        Self::check_namespace(rt, ns, &mut obj)?;
        if rt.namespaced && !self.objects.contains_key(&key(namespaces(), "", ns)) {
            return Err(ApiError::not_found(namespaces(), ns));
        }
        let meta = metadata_mut(&mut obj);
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let prefix = prefix.to_string();
                    let mut name = meta::generated_name(&prefix);
                    while self.objects.contains_key(&key(rt, ns, &name)) {
                        name = meta::generated_name(&prefix);
                    }
                    name
                }
                _ => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        if !meta::valid_name(&name) {
            return Err(ApiError::invalid(
                rt,
                &name,
                &format!(
                    "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            ));
        }
        if self.objects.contains_key(&key(rt, ns, &name)) {
            return Err(ApiError::already_exists(rt, &name));
        }
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(meta::uid()));
        meta.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if rt.status_subresource
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        match rt.kind {
            "Namespace" => obj["status"] = json!({"phase": "Active"}),
            "Pod" => obj["status"] = json!({"phase": "Pending"}),
            _ => {}
        }
        meta::default_object(rt.kind, &mut obj);
        if rt.kind == "Service" {
            self.allocate_cluster_ip(&mut obj);
        }
        if dry_run {
            return Ok(obj);
        }
        let rv = self.next_rv();
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects.insert(key(rt, ns, &name), obj.clone());
        self.record(rt, ns, ChangeKind::Added, obj.clone(), None);
        Ok(obj)
    }

    fn allocate_cluster_ip(&mut self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName")
            || spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty())
        {
            return;
        }
        let n = self.next_cluster_ip;
        self.next_cluster_ip += 1;
        let ip = format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff);
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }

    /// Replaces an object (PUT), or its status (PUT `/status`).
    pub fn update(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        new: Value,
        target: Target,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        check_name(&new, name)?;
        let old = self.get(rt, ns, name)?;
        self.update_from(rt, ns, name, old, new, target, dry_run)
    }

    /// Patches an object or its status (PATCH). An apply patch creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        target: Target,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Apply {
            let mut typed = body.clone();
            Self::check_type(rt, &mut typed)?;
            if str_at(body, "/metadata/name").is_none() {
                return Err(ApiError::bad_request(
                    "metadata.name is required in an apply patch",
                ));
            }
            check_name(body, name)?;
        }
        let old = match self.get(rt, ns, name) {
            Ok(old) => old,
            Err(e) if kind == PatchKind::Apply && target == Target::Main && e.code == 404 => {
                let mut obj = body.clone();
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
                return self.create(rt, ns, obj, dry_run);
            }
            Err(e) => return Err(e),
        };
        let mut patched = old.clone();
        match kind {
            PatchKind::Merge | PatchKind::Apply => patch::merge_patch(&mut patched, body),
            PatchKind::Strategic => patch::strategic_merge_patch(&mut patched, body),
            PatchKind::Json => patch::json_patch(&mut patched, body).map_err(|e| {
                ApiError::invalid(rt, name, &format!("the JSON patch failed: {}", e.0))
            })?,
        }
        self.update_from(rt, ns, name, old, patched, target, dry_run)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_from(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        old: Value,
        mut new: Value,
        target: Target,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        Self::check_type(rt, &mut new)?;
        Self::check_namespace(rt, ns, &mut new)?;
        check_name(&new, name)?;
        metadata_mut(&mut new).insert("name".into(), json!(name));
        let old_rv = str_at(&old, "/metadata/resourceVersion").unwrap_or_default();
        if let Some(rv) = str_at(&new, "/metadata/resourceVersion")
            && !rv.is_empty()
            && rv != old_rv
        {
            return Err(ApiError::conflict(
                rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let old_uid = str_at(&old, "/metadata/uid").unwrap_or_default();
        if let Some(uid) = str_at(&new, "/metadata/uid")
            && !uid.is_empty()
            && uid != old_uid
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
                ),
            ));
        }
        let mut result = match target {
            Target::Main => {
                if rt.status_subresource {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                meta::default_object(rt.kind, &mut new);
                new
            }
            Target::Status => {
                let mut r = old.clone();
                match new.get("status") {
                    Some(s) if !s.is_null() => r["status"] = s.clone(),
                    _ => {
                        if let Some(m) = r.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                r
            }
        };
        // Metadata the client cannot change.
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let meta = metadata_mut(&mut result);
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
        }
        if rt.kind == "Service" {
            // The allocated clusterIP survives a replace that does not mention it.
            for k in ["clusterIP", "clusterIPs"] {
                if let Some(v) = old.pointer(&format!("/spec/{k}"))
                    && result.pointer(&format!("/spec/{k}")).is_none()
                    && let Some(spec) = result.get_mut("spec").and_then(Value::as_object_mut)
                {
                    spec.insert(k.into(), v.clone());
                }
            }
        }
        if spec_part(&old) != spec_part(&result) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut result).insert("generation".into(), json!(generation + 1));
        }
        if result == old || dry_run {
            // A no-op write changes nothing, not even the resourceVersion.
            return Ok(result);
        }
        let rv = self.next_rv();
        metadata_mut(&mut result).insert("resourceVersion".into(), json!(rv.to_string()));
        if result.pointer("/metadata/deletionTimestamp").is_some() && !has_finalizers(&result) {
            self.objects.remove(&key(rt, ns, name));
            self.record(rt, ns, ChangeKind::Deleted, result.clone(), Some(old));
            return Ok(result);
        }
        self.objects.insert(key(rt, ns, name), result.clone());
        self.record(rt, ns, ChangeKind::Modified, result.clone(), Some(old));
        Ok(result)
    }

    /// Deletes an object (DELETE), honouring `preconditions` (uid, resourceVersion) from
    /// the DeleteOptions and `metadata.finalizers`. Deleting a namespace deletes its
    /// objects at once.
    pub fn delete(
        &mut self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(rt, ns, name)?;
        if let Some(uid) = str_at(options, "/preconditions/uid") {
            let actual = str_at(&old, "/metadata/uid").unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(rv) = str_at(options, "/preconditions/resourceVersion") {
            let actual = str_at(&old, "/metadata/resourceVersion").unwrap_or_default();
            if rv != actual {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!(
                        "Precondition failed: the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                    ),
                ));
            }
        }
        if has_finalizers(&old) {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Deleted::Pending(old));
            }
            let mut pending = old.clone();
            let meta = metadata_mut(&mut pending);
            meta.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if dry_run {
                return Ok(Deleted::Pending(pending));
            }
            let rv = self.next_rv();
            metadata_mut(&mut pending).insert("resourceVersion".into(), json!(rv.to_string()));
            self.objects.insert(key(rt, ns, name), pending.clone());
            self.record(rt, ns, ChangeKind::Modified, pending.clone(), Some(old));
            return Ok(Deleted::Pending(pending));
        }
        if dry_run {
            return Ok(Deleted::Gone(old));
        }
        if rt.kind == "Namespace" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|(_, _, n, _)| n == name)
                .cloned()
                .collect();
            for k in inside {
                let Some(rt) = resources::RESOURCES
                    .iter()
                    .find(|r| r.group == k.0 && r.plural == k.1)
                else {
                    continue;
                };
                if let Some(obj) = self.objects.remove(&k) {
                    self.remove_recorded(rt, &k.2, obj);
                }
            }
        }
        self.objects.remove(&key(rt, ns, name));
        Ok(Deleted::Gone(self.remove_recorded(rt, ns, old)))
    }

    fn remove_recorded(&mut self, rt: &'static ResourceType, ns: &str, mut obj: Value) -> Value {
        let rv = self.next_rv();
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.record(rt, ns, ChangeKind::Deleted, obj.clone(), None);
        obj
    }

    /// Deletes every matching object of a resource (DELETE on a collection).
    pub fn delete_collection(
        &mut self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        sel: &Selectors,
        dry_run: bool,
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for obj in self.list(rt, ns, sel) {
            let ns = str_at(&obj, "/metadata/namespace")
                .unwrap_or_default()
                .to_string();
            let name = str_at(&obj, "/metadata/name")
                .unwrap_or_default()
                .to_string();
            match self.delete(rt, &ns, &name, &Value::Null, dry_run)? {
                Deleted::Gone(o) | Deleted::Pending(o) => out.push(o),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cm() -> &'static ResourceType {
        resources::by_kind("v1", "ConfigMap").unwrap()
    }

    #[test]
    fn writes_stamp_metadata_and_record_changes() {
        let mut s = Store::new(100);
        let rv0 = s.resource_version();
        let created = s
            .create(
                cm(),
                "default",
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
                false,
            )
            .unwrap();
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(
            created["metadata"]["resourceVersion"],
            (rv0 + 1).to_string()
        );
        assert_eq!(created["metadata"]["generation"], 1);
        // No-op update: same resourceVersion, no change recorded.
        let same = s
            .update(cm(), "default", "a", created.clone(), Target::Main, false)
            .unwrap();
        assert_eq!(same, created);
        assert_eq!(s.resource_version(), rv0 + 1);
        let mut stale = created.clone();
        stale["data"]["k"] = json!("w");
        s.update(cm(), "default", "a", stale.clone(), Target::Main, false)
            .unwrap();
        let err = s
            .update(cm(), "default", "a", stale, Target::Main, false)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let changes = s.changes_since(rv0).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].kind, ChangeKind::Modified);
        assert_eq!(
            s.get(cm(), "default", "a").unwrap()["metadata"]["generation"],
            2
        );
        s.expire();
        assert_eq!(s.changes_since(rv0).unwrap_err().code, 410);
        assert!(s.changes_since(s.resource_version()).unwrap().is_empty());
    }

    #[test]
    fn finalizers_defer_deletion() {
        let mut s = Store::new(100);
        s.create(
            cm(),
            "default",
            json!({"metadata": {"name": "f", "finalizers": ["x/y"]}}),
            false,
        )
        .unwrap();
        let Deleted::Pending(p) = s.delete(cm(), "default", "f", &Value::Null, false).unwrap()
        else {
            unreachable!()
        };
        assert!(p["metadata"]["deletionTimestamp"].is_string());
        s.patch(
            cm(),
            "default",
            "f",
            PatchKind::Merge,
            &json!({"metadata": {"finalizers": null}}),
            Target::Main,
            false,
        )
        .unwrap();
        assert_eq!(s.get(cm(), "default", "f").unwrap_err().code, 404);
    }
}
