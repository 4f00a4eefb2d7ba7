//! Paged lists as informers and the pod-stress reference issue them: one
//! call per page, following `continue` tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kube::Client;
use kube::api::ListParams;
use kube::core::Request;
use measure::{ClassId, Recorder};
use serde::Deserialize;

use crate::outcome;

/// The part of a list response the lister reads: items are counted from
/// the raw answer without building typed objects, so the client's decoding
/// does not limit the rate.
#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

/// Pages through list responses, one recorded call per page.
pub(crate) struct Pager {
    pub client: Client,
    pub recorder: Recorder,
    /// Page size; 0 asks for everything at once.
    pub limit: u32,
    /// Pages received, across pagers sharing the counter.
    pub pages: Arc<AtomicU64>,
    /// Items received, across pagers sharing the counter.
    pub items: Arc<AtomicU64>,
}

impl Pager {
    /// Lists everything at `url` (a collection path), following continue
    /// tokens; stops at the first failed page.
    pub async fn page_through(&self, url: &str, class: ClassId) {
        let mut params = ListParams::default();
        if self.limit > 0 {
            params = params.limit(self.limit);
        }
        loop {
            let request = match Request::new(url).list(&params) {
                Ok(request) => request,
                Err(err) => {
                    tracing::error!(error = %err, "cannot build a list request");
                    return;
                }
            };
            let started = Instant::now();
            let result = self.client.request::<ListPage>(request).await;
            self.recorder
                .record(class, started.elapsed(), outcome::of(&result));
            let Ok(page) = result else { return };
            self.pages.fetch_add(1, Ordering::Relaxed);
            self.items
                .fetch_add(page.items.len() as u64, Ordering::Relaxed);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return,
            }
        }
    }
}
