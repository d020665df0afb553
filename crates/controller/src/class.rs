//! Which Ingresses are ours: ingress-nginx's class rules.
//!
//! In order (the first that applies decides):
//! 1. `spec.ingressClassName` set: ours iff it names an IngressClass whose
//!    `spec.controller` is our controller class (`--controller-class`), or, with
//!    `--ingress-class-by-name`, iff it equals our class name (`--ingress-class`)
//!    whatever the IngressClass object says or whether it exists.
//! 2. The legacy annotation `kubernetes.io/ingress.class` set: ours iff it equals our
//!    class name (`--ingress-class`).
//! 3. Neither: ours with `--watch-ingress-without-class`, or when one of our
//!    IngressClasses is marked default (`ingressclass.kubernetes.io/is-default-class:
//!    "true"`). The API server's admission plugin writes the default class into new
//!    Ingresses; honouring the mark here does the same for older Ingresses and for
//!    manifest directories, which have no admission.

use std::collections::HashSet;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::state::name;
use crate::translate::TranslateOptions;

/// The legacy class annotation on Ingresses.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The annotation that marks an IngressClass as the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The class rules, prepared for one translation.
pub(crate) struct ClassFilter<'a> {
    ours: HashSet<&'a str>,
    default_is_ours: bool,
    options: &'a TranslateOptions,
}

impl<'a> ClassFilter<'a> {
    pub(crate) fn new(
        classes: &'a [std::sync::Arc<IngressClass>],
        options: &'a TranslateOptions,
    ) -> Self {
        let mut ours = HashSet::new();
        let mut default_is_ours = false;
        for class in classes {
            let controller = class.spec.as_ref().and_then(|s| s.controller.as_deref());
            if controller != Some(options.controller_class.as_str()) {
                continue;
            }
            ours.insert(name(&class.metadata));
            default_is_ours |= class
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true");
        }
        ClassFilter {
            ours,
            default_is_ours,
            options,
        }
    }

    /// True when `ingress` belongs to this controller.
    pub(crate) fn accepts(&self, ingress: &Ingress) -> bool {
        if let Some(class) = ingress
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref())
        {
            return self.ours.contains(class)
                || (self.options.ingress_class_by_name && class == self.options.ingress_class);
        }
        if let Some(value) = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLASS_ANNOTATION))
        {
            return *value == self.options.ingress_class;
        }
        self.options.watch_ingress_without_class || self.default_is_ours
    }
}
