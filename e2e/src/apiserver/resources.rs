//! The kinds the stand-in serves: one static table, read by discovery, routing and the
//! store.

/// One served resource (a kind at one group/version), as discovery describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Plural resource name, the URL segment (`ingresses`).
    pub plural: &'static str,
    /// Singular name (`ingress`).
    pub singular: &'static str,
    /// Kind (`Ingress`).
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether the kind has a `/status` subresource: then a normal write ignores
    /// `.status`, a status write changes nothing else, and a create drops `.status`.
    pub status_subresource: bool,
    /// Whether DELETE answers with the deleted object rather than a `Status`
    /// (as the real server does for pods, services and namespaces).
    pub returns_deleted_object: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
}

impl ResourceType {
    /// `apiVersion` of the objects: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `kind` of list answers (`IngressList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `plural.group` (or `plural` for the core group), as error messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        status_subresource,
        returns_deleted_object: false,
        short_names,
    }
}

const fn returning_object(mut t: ResourceType) -> ResourceType {
    t.returns_deleted_object = true;
    t
}

/// Every served resource. All are `v1` of their group.
pub static RESOURCES: &[ResourceType] = &[
    returning_object(rt(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        true,
        &["ns"],
    )),
    returning_object(rt(
        "",
        "services",
        "service",
        "Service",
        true,
        true,
        &["svc"],
    )),
    rt(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        false,
        &["ep"],
    ),
    rt("", "secrets", "secret", "Secret", true, false, &[]),
    rt(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        false,
        &["cm"],
    ),
    rt("", "events", "event", "Event", true, false, &["ev"]),
    returning_object(rt("", "pods", "pod", "Pod", true, true, &["po"])),
    rt(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        false,
        &[],
    ),
    rt(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        true,
        &["ing"],
    ),
    rt(
        "networking.k8s.io",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        false,
        &[],
    ),
    rt(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        false,
        &[],
    ),
    rt(
        "events.k8s.io",
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
    ),
];

/// The resource at `group`/`version` named `plural`.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of objects with this `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// `networking.k8s.io/v1` -> (`networking.k8s.io`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The groups served under `/apis`, in table order, without duplicates.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}
