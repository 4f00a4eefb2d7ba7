//! rbac.authorization.k8s.io/v1 Roles, ClusterRoles and their bindings.
//! Their names are path segments (`system:discovery`), not DNS names; what
//! they grant is evaluated by `crate::rbac`.

use super::{Builtin, Kind, NameRule};

const GROUP: &str = "rbac.authorization.k8s.io";

pub static CLUSTER_ROLE: Builtin = Builtin {
    namespaced: false,
    ..Builtin::new(
        (GROUP, "v1", "ClusterRole", "clusterroles"),
        &ClusterRole,
        openapi::type_schema::<k8s_openapi::api::rbac::v1::ClusterRole>(),
    )
};

pub static CLUSTER_ROLE_BINDING: Builtin = Builtin {
    namespaced: false,
    ..Builtin::new(
        (GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings"),
        &ClusterRoleBinding,
        openapi::type_schema::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(),
    )
};

pub static ROLE: Builtin = Builtin::new(
    (GROUP, "v1", "Role", "roles"),
    &Role,
    openapi::type_schema::<k8s_openapi::api::rbac::v1::Role>(),
);

pub static ROLE_BINDING: Builtin = Builtin::new(
    (GROUP, "v1", "RoleBinding", "rolebindings"),
    &RoleBinding,
    openapi::type_schema::<k8s_openapi::api::rbac::v1::RoleBinding>(),
);

struct Role;
struct ClusterRole;
struct RoleBinding;
struct ClusterRoleBinding;

impl Kind for Role {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Kind for ClusterRole {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Kind for RoleBinding {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Kind for ClusterRoleBinding {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}
