//! The one interface every load driver implements, so that a run (from the
//! command line, or a phase of a scenario) is turned into a validated
//! driver once and then goes through one lifecycle ([`crate::lifecycle`]).
//!
//! A driver is built with every option settled, random seeds and generated
//! names included: what [`Driver::options`] returns is what runs, and is
//! what results.json records.

use async_trait::async_trait;
use kube::Client;
use measure::Class;
use podlatency::Selection;
use serde::Serialize;
use serde_json::Value;

use crate::churn::Churn;
use crate::lifecycle::PodLatencyOptions;
use crate::objects::{Template, payload};
use crate::resource::{self, Resource};
use crate::thrash::Thrash;
use crate::watch_latency::DeleteLog;
use crate::{Context, Error, Output, RUN_LABEL};

/// A load driver with its options settled.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The driver's name, as `kstress run` takes it (or the scenario's).
    fn name(&self) -> &str;

    /// The operation classes it records.
    fn classes(&self) -> Vec<Class>;

    /// Checks the options; called before any cluster is touched.
    fn validate(&self) -> Result<(), Error>;

    /// The options exactly as the driver runs with them.
    fn options(&self) -> Value;

    /// Whether the driver works on objects of a resource (given to
    /// [`Driver::run`] as [`Objects`]); pod-stress writes pods of its own.
    fn uses_objects(&self) -> bool {
        true
    }

    /// Whether the driver runs for the run's duration (a progress bar fills
    /// up) rather than until its work is done (a spinner).
    fn runs_for_duration(&self) -> bool {
        true
    }

    /// Whether the run creates a namespace of its own for the driver (and
    /// deletes it afterwards); a scenario creates the namespaces its jobs
    /// name instead.
    fn uses_namespace(&self) -> bool {
        true
    }

    /// Pod startup latency the driver asks for itself (a scenario's
    /// `podLatency` measurement), besides what the command line asks for.
    fn pod_latency(&self) -> Option<PodLatencyOptions> {
        None
    }

    /// The pods a pod latency measurement of the run watches: by default
    /// those carrying the run's label in its namespace, in one group named
    /// after the driver.
    fn pod_selection(&self, ctx: &Context) -> Selection {
        Selection {
            namespace: (!ctx.namespace.is_empty()).then(|| ctx.namespace.clone()),
            label_selector: format!("{RUN_LABEL}={}", ctx.run_id),
            group_label: None,
            group: self.name().to_owned(),
            records: false,
        }
    }

    /// Checks the cluster before the run's namespace is created; `embedded`
    /// tells that kstress started the cluster itself.
    async fn check_cluster(&self, _client: &Client, _embedded: bool) -> Result<(), Error> {
        Ok(())
    }

    /// Runs until `ctx.stop` is cancelled (or the driver's work is done),
    /// then lets its in-flight requests finish. The options have passed
    /// [`Driver::validate`]: [`crate::lifecycle::Plan::new`] checks them
    /// once, before any cluster is touched.
    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error>;
}

/// The largest object the API server stores: etcd's default request limit,
/// which kube-apiserver and the embedded server both enforce. A payload of
/// this size leaves no room for the object around it.
const MAX_OBJECT_BYTES: u64 = 1536 * 1024;

/// The most a template can be padded by: its payload goes into an
/// annotation, and the API server caps an object's annotations at 256 KiB
/// in all.
const MAX_TEMPLATE_PAYLOAD_BYTES: u64 = 256 * 1024;

/// Payload bytes of built-in objects when no size is given.
const DEFAULT_OBJECT_SIZE: u64 = 1024;

/// The objects a driver writes, seeds or reads, as asked for.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectSpec {
    /// A plural (configmaps), NAME.GROUP or GROUP/VERSION/NAME.
    pub resource: String,
    /// A YAML or JSON object of the resource's kind to write instead of the
    /// built-in shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Payload bytes per object; `None` writes a template as it is.
    pub object_size: Option<u64>,
}

impl ObjectSpec {
    /// The objects of `resource`: built-in ones carry
    /// [`DEFAULT_OBJECT_SIZE`] bytes unless `object_size` says otherwise, a
    /// template is written as it is unless a size is given.
    pub fn new(resource: String, template: Option<String>, object_size: Option<u64>) -> Self {
        let object_size = match (object_size, &template) {
            (Some(size), _) => Some(size),
            (None, None) => Some(DEFAULT_OBJECT_SIZE),
            (None, Some(_)) => None,
        };
        Self {
            resource,
            template,
            object_size,
        }
    }

    /// Checks the payload against what the API server stores.
    pub fn validate(&self) -> Result<(), Error> {
        let Some(size) = self.object_size else {
            return Ok(());
        };
        if self.template.is_some() && size > MAX_TEMPLATE_PAYLOAD_BYTES {
            return Err(Error::Invalid(format!(
                "--object-size {size} bytes cannot pad a --template: the payload goes into an \
                 annotation, and annotations are limited to {MAX_TEMPLATE_PAYLOAD_BYTES} bytes \
                 (256 KiB) in all"
            )));
        }
        check_object_size(size)
    }

    /// Resolves the resource against the cluster's discovery and builds
    /// the template.
    pub async fn resolve(&self, client: &Client) -> Result<Objects, Error> {
        let resource = resource::resolve(client, &self.resource).await?;
        let padding = self
            .object_size
            .map(|size| usize::try_from(size).map(payload))
            .transpose()
            .map_err(|_| Error::Invalid("--object-size does not fit in memory".into()))?;
        let template = match &self.template {
            Some(path) => Template::from_file(&resource, path, padding.as_deref())?,
            None => Template::builtin(&resource, padding.as_deref().unwrap_or_default())?,
        };
        Ok(Objects { resource, template })
    }
}

/// Refuses a payload the API server would refuse every write of.
pub(crate) fn check_object_size(size: u64) -> Result<(), Error> {
    if size >= MAX_OBJECT_BYTES {
        return Err(Error::Invalid(format!(
            "--object-size {size} bytes does not fit the API server's object limit of \
             {MAX_OBJECT_BYTES} bytes (1.5 MiB); every write would be refused"
        )));
    }
    Ok(())
}

/// The resolved objects of an [`ObjectSpec`].
#[derive(Clone, Debug)]
pub struct Objects {
    /// The resource, as the cluster serves it.
    pub resource: Resource,
    /// How its objects are built.
    pub template: Template,
}

/// The objects a driver that works on objects was given.
pub(crate) fn required(objects: Option<&Objects>) -> Result<&Objects, Error> {
    objects.ok_or_else(|| Error::Invalid("the driver needs a resource to work on".into()))
}

/// The writer that runs alongside a watch measurement.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum Writer {
    /// Open-loop churn.
    Churn(Churn),
    /// Closed-loop thrash.
    Thrash(Thrash),
    /// No writes: the watchers see only what others write.
    None,
}

impl Writer {
    /// The classes the writer records.
    pub fn classes(&self) -> Vec<Class> {
        match self {
            Writer::Churn(_) => Churn::classes(),
            Writer::Thrash(_) => Thrash::classes(),
            Writer::None => Vec::new(),
        }
    }

    /// Checks the writer's options.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Writer::Churn(churn) => churn.check(),
            Writer::Thrash(thrash) => thrash.check(),
            Writer::None => Ok(()),
        }
    }

    /// Writes until `ctx.stop` is cancelled, noting deletes in `deletes`.
    pub async fn write(
        &self,
        ctx: &Context,
        objects: &Objects,
        deletes: Option<DeleteLog>,
    ) -> Result<Output, Error> {
        match self {
            Writer::Churn(churn) => churn.write(ctx, objects, deletes).await,
            Writer::Thrash(thrash) => thrash.write(ctx, objects, deletes).await,
            Writer::None => {
                ctx.stop.cancelled().await;
                Ok(Output::default())
            }
        }
    }
}

/// A driver's options as a JSON object, for [`Driver::options`].
pub(crate) fn options_of(options: &impl Serialize) -> Value {
    serde_json::to_value(options).unwrap_or_default()
}
