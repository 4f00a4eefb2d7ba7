//! get: closed-loop single-object reads, the cheapest call of the API
//! server, from many workers. It shows the server's read ceiling, and
//! whether the client side can keep up with it: responses are received in
//! full but not decoded into typed objects.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use kube::Resource as _;
use kube::api::{DynamicObject, PostParams};
use measure::{Class, Kind};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::churn::dynamic_api;
use crate::driver::{Driver, Objects, options_of, required};
use crate::objects::Template;
use crate::resource::Resource;
use crate::{Context, Error, Output, outcome};

/// Options of the get driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Gets {
    /// Concurrent workers.
    pub workers: usize,
}

impl Gets {
    /// Single-object reads.
    pub fn classes() -> Vec<Class> {
        vec![Class::new("get", Kind::Read)]
    }

    /// Creates one object of `resource`, then reads it from every worker
    /// until `ctx.stop` is cancelled.
    async fn read(
        &self,
        ctx: &Context,
        resource: &Resource,
        template: &Template,
    ) -> Result<Output, Error> {
        let namespace = resource.namespaced.then_some(ctx.namespace.as_str());
        let name = format!("{}-get", ctx.run_id);
        let object = template.object(&name, namespace, &ctx.run_id);
        dynamic_api(ctx, resource)
            .create(&PostParams::default(), &object)
            .await
            .map_err(|err| {
                Error::api(
                    format!("cannot create the object to read ({resource})"),
                    err,
                )
            })?;
        let url: Arc<str> = format!(
            "{}/{name}",
            DynamicObject::url_path(&resource.api, namespace)
        )
        .into();
        let class = ctx.measurement.class("get")?;
        let mut workers = JoinSet::new();
        for _ in 0..self.workers {
            let client = ctx.client.clone();
            let recorder = ctx.measurement.recorder();
            let stop = ctx.stop.clone();
            let url = Arc::clone(&url);
            workers.spawn(async move {
                while !stop.is_cancelled() {
                    let request = http::Request::get(&*url)
                        .body(Vec::new())
                        .expect("a GET of a valid path is a valid request");
                    let started = Instant::now();
                    let result = client.request_text(request).await;
                    recorder.record(class, started.elapsed(), outcome::of(&result));
                }
            });
        }
        while workers.join_next().await.is_some() {}
        Ok(Output {
            extra: [("get".to_owned(), json!({ "object": name }))].into(),
            ..Output::default()
        })
    }
}

#[async_trait]
impl Driver for Gets {
    fn name(&self) -> &str {
        "get"
    }

    fn classes(&self) -> Vec<Class> {
        Self::classes()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.workers == 0 {
            return Err(Error::Invalid("--workers must be positive".into()));
        }
        Ok(())
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error> {
        let objects = required(objects)?;
        self.read(ctx, &objects.resource, &objects.template).await
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Request;

    use super::*;

    #[test]
    fn the_read_path_is_the_object_path() {
        let api = kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&());
        let path = format!("{}/{}", DynamicObject::url_path(&api, Some("ns")), "p");
        assert_eq!(path, "/api/v1/namespaces/ns/pods/p");
        let request = Request::new(DynamicObject::url_path(&api, Some("ns")))
            .get("p", &Default::default())
            .expect("request");
        assert_eq!(request.uri().path(), path);
    }
}
