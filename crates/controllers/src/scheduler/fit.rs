//! The scheduling decision as pure functions: which nodes a pod fits
//! (node unschedulable, taints and tolerations, readiness, node affinity and
//! selector, resources) and how a fitting node scores (least allocated).
//! Messages follow the wording `kubectl describe pod` shows for a pod no
//! node fits.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint,
    Toleration,
};

use super::quantity::{milli_value, value};

/// The CPU (millicores) a container without a CPU request counts for when
/// nodes are scored, so that pods without requests still spread.
const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory (bytes) a container without a memory request counts for when
/// nodes are scored.
const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
/// The highest score a node can get.
const MAX_NODE_SCORE: i64 = 100;
/// Pod capacity of a node that does not report `pods` in its allocatable.
pub const DEFAULT_MAX_PODS: i64 = 110;

const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Amounts of compute resources: CPU in millicores, memory in bytes, every
/// other resource in thousandths of its unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub other: BTreeMap<String, i64>,
}

impl Resources {
    fn from_list(
        list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    ) -> Resources {
        let mut resources = Resources::default();
        for (name, quantity) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => resources.milli_cpu = milli_value(quantity),
                "memory" => resources.memory = value(quantity),
                "pods" => {}
                _ => {
                    resources.other.insert(name.clone(), milli_value(quantity));
                }
            }
        }
        resources
    }

    fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        for (name, amount) in &other.other {
            *self.other.entry(name.clone()).or_default() += amount;
        }
    }

    fn subtract(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        for (name, amount) in &other.other {
            let left = self.other.entry(name.clone()).or_default();
            *left -= amount;
            if *left == 0 {
                self.other.remove(name);
            }
        }
    }

    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        for (name, amount) in &other.other {
            let current = self.other.entry(name.clone()).or_default();
            *current = (*current).max(*amount);
        }
    }

    fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.other.values().all(|v| *v == 0)
    }
}

/// What a pod takes from the node it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The effective requests: regular and sidecar containers together, or
    /// the largest init container if that is more, plus the pod overhead.
    pub requests: Resources,
    /// CPU and memory with defaults for containers that request none; used
    /// only for scoring.
    pub nonzero_milli_cpu: i64,
    pub nonzero_memory: i64,
}

impl Usage {
    pub fn of(pod: &Pod) -> Usage {
        let Some(spec) = &pod.spec else {
            return Usage::default();
        };
        let mut requests = Resources::default();
        let (mut nonzero_cpu, mut nonzero_memory) = (0, 0);
        for container in &spec.containers {
            let r = container_requests(container);
            nonzero_cpu += nonzero(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
            nonzero_memory += nonzero(r.memory, DEFAULT_MEMORY_REQUEST);
            requests.add(&r);
        }
        // Init containers run one at a time before the regular ones; sidecars
        // (restartPolicy Always) keep running next to everything after them.
        let mut sidecars = Resources::default();
        let mut init_peak = Resources::default();
        let (mut init_cpu_peak, mut init_memory_peak) = (0, 0);
        for container in spec.init_containers.iter().flatten() {
            let r = container_requests(container);
            if container.restart_policy.as_deref() == Some("Always") {
                sidecars.add(&r);
                nonzero_cpu += nonzero(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
                nonzero_memory += nonzero(r.memory, DEFAULT_MEMORY_REQUEST);
                init_peak.max(&sidecars);
            } else {
                let mut running = sidecars.clone();
                running.add(&r);
                init_cpu_peak = init_cpu_peak.max(nonzero(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST));
                init_memory_peak = init_memory_peak.max(nonzero(r.memory, DEFAULT_MEMORY_REQUEST));
                init_peak.max(&running);
            }
        }
        requests.add(&sidecars);
        requests.max(&init_peak);
        let overhead = Resources::from_list(spec.overhead.as_ref());
        requests.add(&overhead);
        Usage {
            requests,
            nonzero_milli_cpu: nonzero_cpu.max(init_cpu_peak) + overhead.milli_cpu,
            nonzero_memory: nonzero_memory.max(init_memory_peak) + overhead.memory,
        }
    }
}

fn container_requests(container: &Container) -> Resources {
    let Some(resources) = &container.resources else {
        return Resources::default();
    };
    // A limit without a request implies an equal request.
    let mut requests = Resources::from_list(resources.limits.as_ref());
    let explicit = Resources::from_list(resources.requests.as_ref());
    if resources
        .requests
        .as_ref()
        .is_some_and(|r| r.contains_key("cpu"))
    {
        requests.milli_cpu = explicit.milli_cpu;
    }
    if resources
        .requests
        .as_ref()
        .is_some_and(|r| r.contains_key("memory"))
    {
        requests.memory = explicit.memory;
    }
    requests.other.extend(explicit.other);
    requests
}

fn nonzero(amount: i64, default: i64) -> i64 {
    if amount == 0 { default } else { amount }
}

/// The parts of a pod's spec that decide where it may go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirements {
    pub usage: Usage,
    pub node_selector: BTreeMap<String, String>,
    pub required_affinity: Option<NodeSelector>,
    pub tolerations: Vec<Toleration>,
}

impl Requirements {
    pub fn of(pod: &Pod) -> Requirements {
        let spec = pod.spec.as_ref();
        Requirements {
            usage: Usage::of(pod),
            node_selector: spec
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default(),
            required_affinity: spec
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .clone()
                }),
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
        }
    }
}

/// What the scheduler knows of a node: its scheduling-relevant facts and
/// the sum of what the pods assigned to it take.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub facts: NodeFacts,
    pub requested: Resources,
    pub nonzero_milli_cpu: i64,
    pub nonzero_memory: i64,
    pub pods: i64,
}

/// The fields of a Node that scheduling decisions depend on; a change of
/// any of them may let waiting pods fit.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Resources,
    pub allowed_pods: i64,
}

impl NodeFacts {
    pub fn of(node: &Node) -> NodeFacts {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let allocatable = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
        NodeFacts {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            allocatable: Resources::from_list(allocatable),
            allowed_pods: allocatable
                .and_then(|a| a.get("pods"))
                .map(value)
                .unwrap_or(DEFAULT_MAX_PODS),
        }
    }
}

impl NodeInfo {
    pub fn new(name: String, facts: NodeFacts) -> NodeInfo {
        NodeInfo {
            name,
            facts,
            requested: Resources::default(),
            nonzero_milli_cpu: 0,
            nonzero_memory: 0,
            pods: 0,
        }
    }

    pub fn add_pod(&mut self, usage: &Usage) {
        self.requested.add(&usage.requests);
        self.nonzero_milli_cpu += usage.nonzero_milli_cpu;
        self.nonzero_memory += usage.nonzero_memory;
        self.pods += 1;
    }

    pub fn remove_pod(&mut self, usage: &Usage) {
        self.requested.subtract(&usage.requests);
        self.nonzero_milli_cpu -= usage.nonzero_milli_cpu;
        self.nonzero_memory -= usage.nonzero_memory;
        self.pods -= 1;
    }
}

/// Why a node does not fit a pod: every reason of the first check that
/// fails (several only for resources).
pub fn filter(pod: &Requirements, node: &NodeInfo) -> Result<(), Vec<String>> {
    let facts = &node.facts;
    if facts.unschedulable
        && !pod.tolerations.iter().any(|t| {
            tolerates(
                t,
                &Taint {
                    key: UNSCHEDULABLE_TAINT.to_string(),
                    effect: "NoSchedule".to_string(),
                    ..Taint::default()
                },
            )
        })
    {
        return Err(vec!["node(s) were unschedulable".to_string()]);
    }
    if let Some(taint) = facts.taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !pod.tolerations.iter().any(|t| tolerates(t, taint))
    }) {
        return Err(vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or("")
        )]);
    }
    if !facts.ready {
        return Err(vec!["node(s) were not ready".to_string()]);
    }
    if !matches_node_selector(pod, node) {
        return Err(vec![
            "node(s) didn't match Pod's node affinity/selector".to_string(),
        ]);
    }
    let insufficient = insufficient_resources(&pod.usage.requests, node);
    if insufficient.is_empty() {
        Ok(())
    } else {
        Err(insufficient)
    }
}

/// Whether `toleration` tolerates `taint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return operator == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match operator {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn matches_node_selector(pod: &Requirements, node: &NodeInfo) -> bool {
    let labels = &node.facts.labels;
    let selector_matches = pod
        .node_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    selector_matches
        && pod.required_affinity.as_ref().is_none_or(|selector| {
            selector
                .node_selector_terms
                .iter()
                .any(|term| term_matches(term, &node.name, labels))
        })
}

/// A term matches when it has at least one requirement and all of them
/// hold.
fn term_matches(term: &NodeSelectorTerm, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_matches(r, value)
        })
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

fn insufficient_resources(requests: &Resources, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods + 1 > node.facts.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    if requests.is_zero() {
        return reasons;
    }
    let allocatable = &node.facts.allocatable;
    if requests.milli_cpu > 0
        && node.requested.milli_cpu + requests.milli_cpu > allocatable.milli_cpu
    {
        reasons.push("Insufficient cpu".to_string());
    }
    if requests.memory > 0 && node.requested.memory + requests.memory > allocatable.memory {
        reasons.push("Insufficient memory".to_string());
    }
    for (name, amount) in &requests.other {
        let used = node.requested.other.get(name).copied().unwrap_or(0);
        let available = allocatable.other.get(name).copied().unwrap_or(0);
        if *amount > 0 && used + amount > available {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

/// Least-allocated score in 0..=100: the share of CPU and memory left free
/// once the pod is placed, averaged, so that pods spread over the nodes.
pub fn score(pod: &Requirements, node: &NodeInfo) -> i64 {
    let allocatable = &node.facts.allocatable;
    let cpu = least_allocated(
        node.nonzero_milli_cpu + pod.usage.nonzero_milli_cpu,
        allocatable.milli_cpu,
    );
    let memory = least_allocated(
        node.nonzero_memory + pod.usage.nonzero_memory,
        allocatable.memory,
    );
    (cpu + memory) / 2
}

fn least_allocated(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// The message of a pod's `PodScheduled=False` condition: how many nodes
/// failed for each reason, e.g. `0/3 nodes are available: 1 node(s) didn't
/// match Pod's node affinity/selector, 2 Insufficient cpu.`
pub fn unschedulable_message(nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut counted: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    counted.sort();
    format!("0/{nodes} nodes are available: {}.", counted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeCondition, NodeSpec, NodeStatus, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    }

    fn node(cpu: &str, memory: &str, pods: &str) -> NodeInfo {
        let node = Node {
            metadata: Default::default(),
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(quantities(&[
                    ("cpu", cpu),
                    ("memory", memory),
                    ("pods", pods),
                ])),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
        };
        NodeInfo::new("n".into(), NodeFacts::of(&node))
    }

    fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(requests)),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn effective_requests_take_the_larger_of_init_and_regular_containers() {
        let usage = Usage::of(&pod(
            vec![container(&[("cpu", "100m")]), container(&[("cpu", "200m")])],
            vec![container(&[("cpu", "500m"), ("memory", "1Gi")])],
        ));
        assert_eq!(usage.requests.milli_cpu, 500);
        assert_eq!(usage.requests.memory, 1 << 30);
        // Scoring counts defaults for containers without requests.
        assert_eq!(usage.nonzero_milli_cpu, 500);
        assert_eq!(usage.nonzero_memory, 1 << 30);
        let empty = Usage::of(&pod(vec![container(&[])], vec![]));
        assert!(empty.requests.is_zero());
        assert_eq!(empty.nonzero_milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(empty.nonzero_memory, DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn resources_and_pod_count_must_fit() {
        let mut n = node("1", "1Gi", "2");
        let big = Requirements::of(&pod(
            vec![container(&[("cpu", "2"), ("memory", "2Gi")])],
            vec![],
        ));
        assert_eq!(
            filter(&big, &n),
            Err(vec![
                "Insufficient cpu".to_string(),
                "Insufficient memory".to_string()
            ])
        );
        let small = Requirements::of(&pod(vec![container(&[("cpu", "100m")])], vec![]));
        assert_eq!(filter(&small, &n), Ok(()));
        n.add_pod(&small.usage);
        n.add_pod(&small.usage);
        assert_eq!(filter(&small, &n), Err(vec!["Too many pods".to_string()]));
        n.remove_pod(&small.usage);
        assert_eq!(filter(&small, &n), Ok(()));
    }

    #[test]
    fn tolerations_match_taints() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let toleration =
            |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| Toleration {
                key: key.map(Into::into),
                operator: Some(op.into()),
                value: value.map(Into::into),
                effect: effect.map(Into::into),
                ..Toleration::default()
            };
        assert!(tolerates(
            &toleration(Some("k"), "Equal", Some("v"), None),
            &taint
        ));
        assert!(tolerates(
            &toleration(Some("k"), "Exists", None, Some("NoSchedule")),
            &taint
        ));
        assert!(tolerates(&toleration(None, "Exists", None, None), &taint));
        assert!(!tolerates(
            &toleration(Some("k"), "Equal", Some("w"), None),
            &taint
        ));
        assert!(!tolerates(
            &toleration(Some("k"), "Exists", None, Some("NoExecute")),
            &taint
        ));
        assert!(!tolerates(&toleration(None, "Equal", None, None), &taint));
    }

    #[test]
    fn node_affinity_terms_are_ored_and_requirements_anded() {
        let mut n = node("1", "1Gi", "10");
        n.facts.labels = BTreeMap::from([("zone".into(), "a".into()), ("gen".into(), "5".into())]);
        let requirement = |key: &str, operator: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let with_terms = |terms: Vec<Vec<NodeSelectorRequirement>>| Requirements {
            required_affinity: Some(NodeSelector {
                node_selector_terms: terms
                    .into_iter()
                    .map(|e| NodeSelectorTerm {
                        match_expressions: Some(e),
                        match_fields: None,
                    })
                    .collect(),
            }),
            ..Requirements::default()
        };
        let fits = |r: &Requirements| filter(r, &n).is_ok();
        assert!(fits(&with_terms(vec![vec![
            requirement("zone", "In", &["a", "b"]),
            requirement("gen", "Gt", &["4"])
        ]])));
        assert!(!fits(&with_terms(vec![vec![
            requirement("zone", "In", &["a"]),
            requirement("gen", "Lt", &["4"])
        ]])));
        assert!(fits(&with_terms(vec![
            vec![requirement("zone", "NotIn", &["a"])],
            vec![requirement("ssd", "DoesNotExist", &[])]
        ])));
        assert!(!fits(&with_terms(vec![vec![requirement(
            "ssd",
            "Exists",
            &[]
        )]])));
        assert!(!fits(&with_terms(vec![])));
    }

    #[test]
    fn least_allocated_scores_emptier_nodes_higher() {
        let pod = Requirements::of(&pod(
            vec![container(&[("cpu", "1"), ("memory", "1Gi")])],
            vec![],
        ));
        let empty = node("4", "4Gi", "110");
        let mut busy = node("4", "4Gi", "110");
        busy.add_pod(&pod.usage);
        assert_eq!(score(&pod, &empty), 75);
        assert_eq!(score(&pod, &busy), 50);
    }

    #[test]
    fn messages_count_nodes_per_reason_in_order() {
        let reasons = BTreeMap::from([
            ("Insufficient cpu".to_string(), 2),
            (
                "node(s) didn't match Pod's node affinity/selector".to_string(),
                1,
            ),
        ]);
        assert_eq!(
            unschedulable_message(3, &reasons),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."
        );
        assert_eq!(
            unschedulable_message(0, &BTreeMap::new()),
            "no nodes available to schedule pods"
        );
    }
}
