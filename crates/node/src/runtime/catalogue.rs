//! The node's image store, shared by both runtimes: the image name only
//! decides pull behaviour, nothing is downloaded. Images from registries
//! whose host starts with the unpullable prefix (`invalid.` by default)
//! fail to pull; `sim.kstress.io/pull-duration` and
//! `sim.kstress.io/pull-failure` pod annotations slow down or fail every
//! pull of the pod.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use parking_lot::Mutex;

use super::sim::{SimScript, annotation};
use crate::images::{ImageRef, ImageService, ImageSpec, RuntimeError, parse_image_name};

/// Which images are "on the node", and which can be pulled.
#[derive(Debug)]
pub struct Catalogue {
    unpullable_prefix: String,
    present: Mutex<HashSet<String>>,
}

impl Catalogue {
    /// An empty catalogue refusing registries that start with `unpullable_prefix`.
    pub fn new(unpullable_prefix: impl Into<String>) -> Self {
        Catalogue {
            unpullable_prefix: unpullable_prefix.into(),
            present: Mutex::new(HashSet::new()),
        }
    }

    fn registry_host(image: &str) -> String {
        parse_image_name(image)
            .map(|name| {
                name.repository
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    }
}

fn image_ref(image: &str) -> ImageRef {
    let mut hasher = DefaultHasher::new();
    image.hash(&mut hasher);
    ImageRef::new(format!("sha256:{:064x}", u128::from(hasher.finish())))
}

#[async_trait]
impl ImageService for Catalogue {
    async fn image_status(&self, spec: &ImageSpec) -> Result<Option<ImageRef>, RuntimeError> {
        Ok(self
            .present
            .lock()
            .contains(&spec.image)
            .then(|| image_ref(&spec.image)))
    }

    async fn pull_image(
        &self,
        spec: &ImageSpec,
        _pull_secrets: &[Secret],
    ) -> Result<ImageRef, RuntimeError> {
        let script = SimScript::new(&spec.annotations);
        if let Some(delay) = script.duration(annotation::PULL_DURATION) {
            tokio::time::sleep(delay).await;
        }
        let host = Self::registry_host(&spec.image);
        if !self.unpullable_prefix.is_empty() && host.starts_with(&self.unpullable_prefix) {
            return Err(RuntimeError::Failed(format!(
                "failed to pull and unpack image {:?}: failed to resolve reference {:?}: \
                 dial tcp: lookup {host}: no such host",
                spec.image, spec.image
            )));
        }
        if script.flag(annotation::PULL_FAILURE) {
            return Err(RuntimeError::Failed(format!(
                "failed to pull and unpack image {:?}: simulated pull failure",
                spec.image
            )));
        }
        self.present.lock().insert(spec.image.clone());
        Ok(image_ref(&spec.image))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec(image: &str, annotations: &[(&str, &str)]) -> ImageSpec {
        ImageSpec {
            image: image.into(),
            runtime_handler: None,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[tokio::test]
    async fn pulled_images_become_present() {
        let catalogue = Catalogue::new("invalid.");
        let busybox = spec("busybox:latest", &[]);
        assert_eq!(catalogue.image_status(&busybox).await, Ok(None));
        let pulled = catalogue.pull_image(&busybox, &[]).await.unwrap();
        assert_eq!(catalogue.image_status(&busybox).await, Ok(Some(pulled)));
    }

    #[tokio::test]
    async fn invalid_registries_and_failure_annotations_fail() {
        let catalogue = Catalogue::new("invalid.");
        let err = catalogue
            .pull_image(
                &spec("invalid.registry.k8s.io/invalid/alpine:3.1", &[]),
                &[],
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such host"), "{err}");
        let failing = spec("busybox:1", &[("sim.kstress.io/pull-failure", "true")]);
        assert!(catalogue.pull_image(&failing, &[]).await.is_err());
        assert_eq!(catalogue.image_status(&failing).await, Ok(None));
    }
}
