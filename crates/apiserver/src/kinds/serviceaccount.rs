//! core/v1 ServiceAccount.

use prost::Message;
use serde_json::{Value, json};

use super::{Builtin, Kind};
use crate::protobuf;

pub static SERVICE_ACCOUNT: Builtin = Builtin {
    short_names: &["sa"],
    ..Builtin::new(
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        &ServiceAccount,
        openapi::type_schema::<k8s_openapi::api::core::v1::ServiceAccount>(),
    )
};

struct ServiceAccount;

impl Kind for ServiceAccount {
    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        let sa = match k8s_pb::api::core::v1::ServiceAccount::decode(raw) {
            Ok(sa) => sa,
            Err(err) => return Some(Err(err)),
        };
        let mut obj = json!({"metadata": protobuf::object_meta(sa.metadata.unwrap_or_default())});
        if !sa.image_pull_secrets.is_empty() {
            let names: Vec<Value> = sa
                .image_pull_secrets
                .into_iter()
                .map(|s| json!({"name": s.name.unwrap_or_default()}))
                .collect();
            obj["imagePullSecrets"] = names.into();
        }
        if let Some(automount) = sa.automount_service_account_token {
            obj["automountServiceAccountToken"] = automount.into();
        }
        Some(Ok(obj))
    }
}
