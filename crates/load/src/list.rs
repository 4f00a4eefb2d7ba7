//! list: clients paging through a resource, in the run's namespace and
//! across all namespaces, the read pattern of informers starting up and of
//! dashboards. The namespace is first seeded with objects to list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Resource as _};
use measure::{Class, Kind};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::churn::dynamic_api;
use crate::driver::{Driver, Objects, options_of, required};
use crate::objects::Template;
use crate::paging::Pager;
use crate::resource::Resource;
use crate::{Context, Error, Output, outcome};

/// Creates in flight while seeding.
const SEED_CONCURRENCY: usize = 16;

/// Options of the list driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Lists {
    /// Concurrent listing clients.
    pub clients: usize,
    /// Page size (`limit`); 0 lists everything in one response.
    pub limit: u32,
    /// Objects created in the namespace before the clients start.
    pub seed_objects: u64,
}

impl Lists {
    /// Seeding creates, namespaced list pages and cluster-wide list pages.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("seed-create", Kind::Mutating),
            Class::new("list-namespaced", Kind::ListNamespaced),
            Class::new("list-cluster", Kind::ListCluster),
        ]
    }

    /// Seeds the namespace, then lists until `ctx.stop` is cancelled.
    async fn seed_and_list(
        &self,
        ctx: &Context,
        resource: &Resource,
        template: &Template,
    ) -> Result<Output, Error> {
        let seeded = self.seed(ctx, resource, template).await?;
        let namespaced_class = ctx.measurement.class("list-namespaced")?;
        let cluster_class = ctx.measurement.class("list-cluster")?;
        let namespaced_url = resource
            .namespaced
            .then(|| DynamicObject::url_path(&resource.api, Some(&ctx.namespace)));
        let cluster_url = DynamicObject::url_path(&resource.api, None);
        let pages = Arc::new(AtomicU64::new(0));
        let items = Arc::new(AtomicU64::new(0));
        let mut clients = JoinSet::new();
        for _ in 0..self.clients {
            let lister = Pager {
                client: ctx.client.clone(),
                recorder: ctx.measurement.recorder(),
                limit: self.limit,
                pages: Arc::clone(&pages),
                items: Arc::clone(&items),
            };
            let stop = ctx.stop.clone();
            let namespaced_url = namespaced_url.clone();
            let cluster_url = cluster_url.clone();
            clients.spawn(async move {
                while !stop.is_cancelled() {
                    if let Some(url) = &namespaced_url {
                        lister.page_through(url, namespaced_class).await;
                    }
                    if stop.is_cancelled() {
                        break;
                    }
                    lister.page_through(&cluster_url, cluster_class).await;
                }
            });
        }
        while clients.join_next().await.is_some() {}
        Ok(Output {
            extra: [(
                "list".to_owned(),
                json!({
                    "seeded": seeded,
                    "pages": pages.load(Ordering::Relaxed),
                    "items": items.load(Ordering::Relaxed),
                }),
            )]
            .into(),
            ..Output::default()
        })
    }

    /// Creates `seed_objects` objects in the namespace.
    async fn seed(
        &self,
        ctx: &Context,
        resource: &Resource,
        template: &Template,
    ) -> Result<u64, Error> {
        let api: Api<DynamicObject> = dynamic_api(ctx, resource);
        let class = ctx.measurement.class("seed-create")?;
        let recorder = ctx.measurement.recorder();
        let namespace = resource.namespaced.then_some(ctx.namespace.as_str());
        let created = futures::stream::iter(0..self.seed_objects)
            .map(|index| {
                let object =
                    template.object(&format!("{}-{index}", ctx.run_id), namespace, &ctx.run_id);
                let api = api.clone();
                let recorder = recorder.clone();
                async move {
                    let started = Instant::now();
                    let result = api.create(&PostParams::default(), &object).await;
                    recorder.record(class, started.elapsed(), outcome::of(&result));
                    result.map(|_| ())
                }
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .take_until(ctx.stop.cancelled())
            .fold(Ok(0_u64), |total, result| async move {
                match (total, result) {
                    (Ok(total), Ok(())) => Ok(total + 1),
                    (Err(err), _) | (Ok(_), Err(err)) => Err(err),
                }
            })
            .await;
        created.map_err(|err| Error::api("cannot seed objects to list", err))
    }
}

#[async_trait]
impl Driver for Lists {
    fn name(&self) -> &str {
        "list"
    }

    fn classes(&self) -> Vec<Class> {
        Self::classes()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.clients == 0 {
            return Err(Error::Invalid("--clients must be positive".into()));
        }
        Ok(())
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error> {
        let objects = required(objects)?;
        self.seed_and_list(ctx, &objects.resource, &objects.template)
            .await
    }
}
