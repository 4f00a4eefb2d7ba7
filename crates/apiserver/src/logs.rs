//! `GET pods/{name}/log`: the API server finds the pod's node and proxies
//! the request to the node's log endpoint, as upstream proxies to the
//! kubelet port the Node advertises in `status.daemonEndpoints`.
//!
//! The node is reached over plain HTTP at its `InternalIP` (kstress nodes
//! serve `/containerLogs/{namespace}/{pod}/{container}` without TLS on
//! loopback); the body streams back as `text/plain`.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::api::Api;
use crate::error::ApiError;
use crate::server::Body;

/// Query parameters passed on to the node.
const FORWARDED: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];

/// Serves `pods/{name}/log` for the pod `name` in `namespace`.
pub async fn pod_log(
    api: &Api,
    namespace: Option<&str>,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let snapshot = api.registry.snapshot();
    let pods = snapshot
        .get("", "v1", "pods")
        .ok_or_else(ApiError::no_route)?;
    let nodes = snapshot
        .get("", "v1", "nodes")
        .ok_or_else(ApiError::no_route)?;
    let pod = api.get(&pods, namespace, name).await?.value.clone();
    let container = container_name(&pod, name, query.get("container").map(String::as_str))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let node = api
        .get(&nodes, None, node_name)
        .await
        .map_err(|_| ApiError::bad_request(format!("node {node_name:?} of pod {name} not found")))?
        .value
        .clone();
    let address = node_address(&node)
        .ok_or_else(|| ApiError::bad_request(format!("node {node_name:?} has no address")))?;
    let port = node
        // The field is capitalised in the Kubernetes API (`Port`).
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!("node {node_name:?} advertises no kubelet port"))
        })?;
    let path = format!(
        "/containerLogs/{}/{name}/{container}?{}",
        namespace.unwrap_or_default(),
        forwarded_query(query)
    );
    proxy(&address, port, &path).await
}

/// The query string passed on to the node.
fn forwarded_query(query: &HashMap<String, String>) -> String {
    let mut forwarded = form_urlencoded::Serializer::new(String::new());
    for key in FORWARDED {
        if let Some(value) = query.get(*key) {
            forwarded.append_pair(key, value);
        }
    }
    forwarded.finish()
}

/// The container to read: the one named, or the pod's only container.
fn container_name(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(container) if containers.iter().chain(&init).any(|c| c == container) => {
            Ok(container.to_owned())
        }
        Some(container) => Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// The node's `InternalIP`, else its first address.
fn node_address(node: &Value) -> Option<String> {
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let of_type = |t: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
    };
    of_type("InternalIP")
        .or_else(|| addresses.first())
        .and_then(|a| a.get("address"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// GETs `path` from the node and streams the answer back; a node error
/// becomes a Status with the node's code and message.
async fn proxy(address: &str, port: u64, path: &str) -> Result<Response<Body>, ApiError> {
    let unavailable = |err: &dyn std::fmt::Display| {
        ApiError::internal(format!("cannot reach node {address}:{port}: {err}"))
    };
    let host = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    let stream = TcpStream::connect(&host)
        .await
        .map_err(|e| unavailable(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unavailable(&e))?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, &host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(&e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&body).trim().to_owned();
        return Err(if status.is_client_error() {
            ApiError::bad_request(message)
        } else {
            ApiError::internal(message)
        });
    }
    let body = StreamBody::new(futures::stream::unfold(
        response.into_body(),
        |mut body| async move {
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => return Some((Ok::<_, Infallible>(Frame::data(data)), body)),
                        Err(_) => continue,
                    },
                    Some(Err(_)) | None => return None,
                }
            }
        },
    ));
    let mut response = Response::new(BodyExt::boxed(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}
