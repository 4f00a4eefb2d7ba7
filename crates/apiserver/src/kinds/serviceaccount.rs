//! core/v1 ServiceAccount.

use super::{Builtin, Kind};

pub static SERVICE_ACCOUNT: Builtin = Builtin {
    short_names: &["sa"],
    ..Builtin::new(
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        &ServiceAccount,
        openapi::type_schema::<k8s_openapi::api::core::v1::ServiceAccount>(),
    )
};

struct ServiceAccount;

impl Kind for ServiceAccount {}
