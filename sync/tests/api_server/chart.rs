//! The chart (`charts/hook-sidecar-policy`) as the API server sees it, and the job run as the
//! chart deploys it.

use anyhow::{Result, anyhow, ensure};
use kube::Client;
use serde_json::{Value, json};

use super::feature_gate::{create_kubevirt, feature_gates};
use super::{PROPAGATION, list, wait_for_list};
use test_support::*;

/// Value sets covering every template: the defaults, and every optional part on.
const VALUE_SETS: [&[&str]; 5] = [
    &[],
    &[
        "sync.featureGate.enabled=true",
        "sync.featureGate.target=managedchart",
    ],
    &[
        "sync.featureGate.enabled=true",
        "sync.featureGate.target=kubevirt",
    ],
    &[
        "sync.featureGate.enabled=true",
        "launcherPodPolicy.enabled=true",
        "policy.contextAware.enabled=true",
        "policy.mode=protect",
        "policy.settings.allowCommand=true",
        "registry=registry.example.com/mirror/",
        "sync.image.digest=sha256:0123456789012345678901234567890123456789012345678901234567890123",
    ],
    &["sync.enabled=false"],
];

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .collect()
}

fn the_policy(objects: &[Value], name: &str) -> Result<Value> {
    objects
        .iter()
        .find(|object| {
            object["kind"] == "ClusterAdmissionPolicy" && object["metadata"]["name"] == name
        })
        .cloned()
        .ok_or_else(|| anyhow!("no ClusterAdmissionPolicy {name} rendered"))
}

/// `kubectl apply --dry-run=server` of every rendering: the real API server validates each object
/// against its schema (the CRDs of Kubewarden included) and the RBAC rules.
pub async fn chart_is_accepted_by_the_api_server(
    cluster: &Cluster,
    _client: &Client,
) -> Result<()> {
    for (n, values) in VALUE_SETS.iter().enumerate() {
        let objects = cluster.render_chart(values)?;
        ensure!(!objects.is_empty(), "{values:?} rendered nothing");
        let file = cluster.manifest_file(&format!("chart-{n}.json"), &objects)?;
        let applied: Value = serde_json::from_str(&cluster.kubectl(&[
            "apply",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            &file.display().to_string(),
        ])?)?;
        // kubectl prints a List for several objects, the object itself for one.
        let accepted = match applied["items"].as_array() {
            Some(items) => items.len(),
            None => usize::from(applied["kind"] == objects[0]["kind"]),
        };
        ensure!(
            accepted == objects.len(),
            "{values:?}: {accepted} of {} objects accepted",
            objects.len()
        );
        // The API server takes any settings object: the policy's own validation must take them
        // too, or policy-server would refuse to load the policy.
        for policy in of_kind(&objects, "ClusterAdmissionPolicy") {
            hook_sidecar_policy::parse_and_validate(&policy["spec"]["settings"])
                .map_err(|e| anyhow!("{values:?}: {}: {e}", policy["metadata"]["name"]))?;
        }
    }
    Ok(())
}

/// The chart's rules are the module's metadata: policy-metadata.yml, read here, not a copy.
pub async fn chart_policy_matches_the_metadata(cluster: &Cluster, _client: &Client) -> Result<()> {
    let metadata: Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo_root().join("policy-metadata.yml"),
    )?)?;
    // The metadata's rules are split: the Pod rule goes to the launcher-Pod policy, which selects
    // launcher Pods; every other rule to the VM policy. Together they are the metadata's rules.
    let rules = metadata["rules"].as_array().cloned().unwrap_or_default();
    let (pod_rules, vm_rules): (Vec<Value>, Vec<Value>) = rules.into_iter().partition(|rule| {
        rule["resources"]
            .as_array()
            .is_some_and(|resources| resources.contains(&json!("pods")))
    });
    ensure!(
        !pod_rules.is_empty() && !vm_rules.is_empty(),
        "{}",
        metadata["rules"]
    );
    let objects = cluster.render_chart(&[])?;
    let policy = the_policy(&objects, POLICY)?;
    let spec = &policy["spec"];
    ensure!(
        spec["rules"] == json!(vm_rules),
        "rules {} != policy-metadata.yml's without pods {}",
        spec["rules"],
        json!(vm_rules)
    );
    ensure!(spec["mutating"] == metadata["mutating"], "{spec}");
    // protect by default: the safe start while the Sidecar gate is off (docs/runbook.md, path A);
    // the job owns allowedImages.
    ensure!(spec["mode"] == "protect", "{spec}");
    ensure!(spec["matchPolicy"] == "Equivalent", "{spec}");
    ensure!(spec["policyServer"] == "default", "{spec}");
    ensure!(spec["settings"] == json!({}), "{spec}");
    ensure!(
        spec["module"]
            == "registry://ghcr.io/kubewarden-contrib/policies/hook-sidecar-policy:v0.1.0",
        "{spec}"
    );
    // The gate is off by default: no flag, no permission.
    let deployment = of_kind(&objects, "Deployment");
    let args = &deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"];
    ensure!(
        !args.to_string().contains("--ensure-sidecar-feature-gate"),
        "{args}"
    );
    ensure!(
        of_kind(&objects, "Role").is_empty(),
        "gate Roles rendered with the gate off"
    );
    ensure!(the_policy(&objects, "hook-sidecars-launcher-pods").is_err());

    // One registry value moves both artifacts.
    let objects = cluster.render_chart(&["registry=registry.example.com/mirror"])?;
    let module = &the_policy(&objects, POLICY)?["spec"]["module"];
    ensure!(
        module == "registry://registry.example.com/mirror/hook-sidecar-policy:v0.1.0",
        "{module}"
    );
    let image =
        &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"];
    ensure!(
        image == "registry.example.com/mirror/hook-sidecar-sync:v0.1.0",
        "{image}"
    );

    // The launcher-Pod policy: same module and settings, launcher Pods only, protect.
    let objects = cluster.render_chart(&[
        "launcherPodPolicy.enabled=true",
        "policy.settings.allowPVC=true",
    ])?;
    let pods = the_policy(&objects, "hook-sidecars-launcher-pods")?;
    let vms = the_policy(&objects, POLICY)?;
    ensure!(pods["spec"]["module"] == vms["spec"]["module"]);
    ensure!(
        pods["spec"]["settings"] == json!({ "allowPVC": true }),
        "{pods}"
    );
    ensure!(pods["spec"]["mode"] == "protect");
    ensure!(pods["spec"]["matchPolicy"] == "Equivalent", "{pods}");
    ensure!(
        pods["spec"]["rules"] == json!(pod_rules),
        "{} != policy-metadata.yml's Pod rules {}",
        pods["spec"]["rules"],
        json!(pod_rules)
    );
    ensure!(
        pods["spec"]["objectSelector"]
            == json!({ "matchLabels": { "kubevirt.io": "virt-launcher" } }),
        "{pods}"
    );
    let args =
        of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            .clone();
    ensure!(
        args.as_array()
            .is_some_and(|args| args.contains(&json!("--policy-name=hook-sidecars-launcher-pods"))),
        "the job is not told to keep the launcher-Pod policy: {args}"
    );

    // allowedImages in the values is refused: the Setting is its one source.
    let refused =
        cluster.render_chart(&["policy.settings.allowedImages[0]=registry.example.com/a:1"]);
    let error = refused
        .expect_err("allowedImages in the chart's values rendered")
        .to_string();
    ensure!(error.contains("policy.settings.allowedImages"), "{error}");
    Ok(())
}

/// examples/harvester/addon.yaml against Harvester's Addon CRD.
pub async fn addon_example_is_accepted(cluster: &Cluster, _client: &Client) -> Result<()> {
    let addon = repo_root().join("examples/harvester/addon.yaml");
    let applied: Value = serde_json::from_str(&cluster.kubectl(&[
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        &addon.display().to_string(),
    ])?)?;
    ensure!(applied["kind"] == "Addon", "{applied}");
    ensure!(
        applied["metadata"]["labels"]["addon.harvesterhci.io/experimental"] == "true",
        "{applied}"
    );
    let values: Value = serde_yaml::from_str(
        applied["spec"]["valuesContent"]
            .as_str()
            .ok_or_else(|| anyhow!("no valuesContent"))?,
    )?;
    // The Addon's values are values of this chart.
    let mut flags = Vec::new();
    flatten("", &values, &mut flags);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    cluster.render_chart(&flags)?;
    // Path A of the runbook: protect, the gate handed to the job; the release in the namespace
    // Kubewarden runs in, which the values name too.
    ensure!(values["policy"]["mode"] == "protect", "{values}");
    ensure!(values["sync"]["featureGate"]["enabled"] == true, "{values}");
    ensure!(
        values["kubewarden"]["namespace"] == applied["metadata"]["namespace"],
        "{values} vs the Addon's namespace {}",
        applied["metadata"]["namespace"]
    );
    Ok(())
}

/// The schema refuses unknown keys everywhere, naming them: a misspelt value is not ignored.
pub async fn unknown_values_are_refused(cluster: &Cluster, _client: &Client) -> Result<()> {
    for (value, named) in [
        ("sync.featureGates.enabled=true", "featureGates"),
        ("policy.settings.allowComand=true", "allowComand"),
        (
            "policy.contextAware.policyServerServiceAccount.namespace=x",
            "namespace",
        ),
        ("launcherPodPolicy.mode=audit", "launcherPodPolicy/mode"),
        ("typo=1", "typo"),
    ] {
        let error = cluster
            .render_chart(&[value])
            .expect_err(&format!("--set {value} rendered"))
            .to_string();
        ensure!(
            error.contains("values don't meet the specifications of the schema")
                && error.contains(named),
            "--set {value}: {error}"
        );
    }
    // The policy's settings are typed: a string where the policy wants a boolean.
    let error = cluster
        .render_chart(&["policy.settings.allowPVC=yes"])
        .expect_err("allowPVC=yes rendered")
        .to_string();
    ensure!(error.contains("allowPVC"), "{error}");
    Ok(())
}

/// The Kubewarden namespace is a value: context-aware mode grants the Setting to policy-server's
/// ServiceAccount there.
pub async fn the_kubewarden_namespace_is_a_value(
    cluster: &Cluster,
    _client: &Client,
) -> Result<()> {
    let subject = |values: &[&str]| -> Result<Value> {
        let objects = cluster.render_chart(values)?;
        let binding = objects
            .iter()
            .find(|object| {
                object["kind"] == "ClusterRoleBinding"
                    && object["metadata"]["name"] == "hook-sidecar-policy-policy-server-settings"
            })
            .ok_or_else(|| anyhow!("no policy-server binding rendered"))?;
        Ok(binding["subjects"][0].clone())
    };
    ensure!(
        subject(&["policy.contextAware.enabled=true"])?
            == json!({ "kind": "ServiceAccount", "name": "policy-server", "namespace": "kubewarden" })
    );
    ensure!(
        subject(&[
            "policy.contextAware.enabled=true",
            "kubewarden.namespace=cattle-kubewarden-system"
        ])?["namespace"]
            == "cattle-kubewarden-system"
    );
    Ok(())
}

/// In context-aware mode, helm install (and upgrade, and helm-controller) look at where
/// policy-server runs and refuse a namespace or ServiceAccount it does not run in: a mismatch
/// would otherwise leave the policy unable to read the Setting, rejecting every sidecar.
pub async fn context_aware_install_checks_where_policy_server_runs(
    cluster: &Cluster,
    _client: &Client,
) -> Result<()> {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "policy-server-default", "namespace": JOB_NAMESPACE },
        "spec": {
            "selector": { "matchLabels": { "app": "kubewarden-policy-server-default" } },
            "template": {
                "metadata": { "labels": { "app": "kubewarden-policy-server-default" } },
                "spec": {
                    "serviceAccountName": "policy-server",
                    "containers": [{ "name": "policy-server", "image": "ghcr.io/kubewarden/policy-server:v1.35.0" }],
                },
            },
        },
    });
    let file = cluster.manifest_file("policy-server-deployment.json", &[deployment])?;
    cluster.kubectl(&["apply", "-f", &file.display().to_string()])?;
    let chart = repo_root()
        .join("charts/hook-sidecar-policy")
        .display()
        .to_string();
    let install = |extra: &[&str]| {
        let mut args = vec![
            "install",
            "check-context-aware",
            chart.as_str(),
            "--namespace",
            JOB_NAMESPACE,
            "--dry-run=server",
            "--set",
            "policy.contextAware.enabled=true",
        ];
        args.extend_from_slice(extra);
        cluster.helm(&args)
    };
    install(&[])?;
    let error = install(&["--set", "kubewarden.namespace=cattle-kubewarden-system"])
        .expect_err("a namespace policy-server does not run in was accepted")
        .to_string();
    ensure!(
        error.contains("Deployment cattle-kubewarden-system/policy-server-default not found: kubewarden.namespace (cattle-kubewarden-system) must be the namespace in which Kubewarden runs the PolicyServer default"),
        "{error}"
    );
    let error = install(&[
        "--set",
        "policy.contextAware.policyServerServiceAccount.name=other",
    ])
    .expect_err("a ServiceAccount policy-server does not run as was accepted")
    .to_string();
    ensure!(
        error.contains("policy.contextAware.policyServerServiceAccount.name is other, but Deployment kubewarden/policy-server-default runs as ServiceAccount policy-server"),
        "{error}"
    );
    // helm template has no cluster to look in: it renders (the check is helm install's).
    cluster.render_chart(&[
        "policy.contextAware.enabled=true",
        "kubewarden.namespace=elsewhere",
    ])?;
    cluster.kubectl(&["delete", "-f", &file.display().to_string()])?;
    Ok(())
}

/// examples/harvester/gpu-values.yaml, as `helm upgrade -f` gives it: the API server takes the
/// policy, and the policy's own validation takes its settings.
pub async fn gpu_example_values_are_valid(cluster: &Cluster, _client: &Client) -> Result<()> {
    let objects = cluster.render_chart_with(&["-f", "examples/harvester/gpu-values.yaml"])?;
    let policy = the_policy(&objects, POLICY)?;
    hook_sidecar_policy::parse_and_validate(&policy["spec"]["settings"])
        .map_err(|error| anyhow!("gpu-values.yaml: {error}"))?;
    ensure!(
        policy["spec"]["settings"]["profilesRequired"] == true,
        "{policy}"
    );
    let file = cluster.manifest_file("gpu-policy.json", &[policy])?;
    cluster.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        &file.display().to_string(),
    ])?;
    Ok(())
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        Value::Object(_) => {}
        Value::String(text) => out.push(format!("{prefix}={text}")),
        other => out.push(format!("{prefix}={other}")),
    }
}

/// The chart installed for real (its RBAC, its policy), and the job run with its Deployment's
/// arguments: the Setting mirrored, and the gate added once the policy is active.
pub async fn runs_as_the_chart_deploys(cluster: &Cluster, client: &Client) -> Result<()> {
    let values = [
        "sync.featureGate.enabled=true",
        "sync.featureGate.target=kubevirt",
    ];
    cluster.install_job_rbac(&values)?;
    let objects = cluster.render_chart(&values)?;
    let deployment = of_kind(&objects, "Deployment")[0].clone();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    ensure!(pod["serviceAccountName"] == SERVICE_ACCOUNT, "{pod}");
    ensure!(pod["securityContext"]["runAsNonRoot"] == true, "{pod}");
    ensure!(pod["securityContext"]["runAsUser"] == 65532, "{pod}");
    ensure!(
        container["securityContext"]["readOnlyRootFilesystem"] == true,
        "{container}"
    );
    ensure!(
        container["securityContext"]["allowPrivilegeEscalation"] == false,
        "{container}"
    );
    ensure!(
        container["resources"]["limits"]["memory"].is_string(),
        "{container}"
    );
    ensure!(
        container["livenessProbe"]["httpGet"]["path"] == "/healthz",
        "{container}"
    );
    ensure!(
        container["readinessProbe"]["httpGet"]["path"] == "/readyz",
        "{container}"
    );
    let service = of_kind(&objects, "Service");
    ensure!(
        service.len() == 1
            && service[0]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"],
        "{service:?}"
    );

    // The chart's policy, created for real.
    let policy = cluster.manifest_file("chart-policy.json", &[the_policy(&objects, POLICY)?])?;
    cluster.kubectl(&["apply", "-f", &policy.display().to_string()])?;
    create_kubevirt(client, json!({})).await?;
    let args: Vec<String> = serde_json::from_value(container["args"].clone())?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let job = cluster.start_job(&args)?;
    let created = wait_until("the Setting created", PROPAGATION, || async move {
        Ok(settings_api(client).get_opt(SETTING).await?)
    })
    .await?;
    ensure!(created.data["default"] == "", "{}", created.data);
    wait_for_list(client, list(&[])).await?;
    set_value(
        client,
        "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0",
    )
    .await?;
    wait_for_list(
        client,
        list(&["registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"]),
    )
    .await?;

    // The gate waits for the policy, then follows it.
    ensure!(feature_gates(&kubevirts_api(client).get(KUBEVIRT).await?) == Value::Null);
    set_policy_status(client, "active").await?;
    wait_until("the gate in the KubeVirt CR", PROPAGATION, || async move {
        Ok(
            (feature_gates(&kubevirts_api(client).get(KUBEVIRT).await?) == json!(["Sidecar"]))
                .then_some(()),
        )
    })
    .await?;
    // --log-format=json: one JSON object a line.
    for line in job.log().lines() {
        let entry: Value =
            serde_json::from_str(line).map_err(|error| anyhow!("{error}: {line}"))?;
        ensure!(
            entry["level"].is_string() && entry["message"].is_string(),
            "{line}"
        );
    }
    job.stop()?;
    cluster.install_job_rbac(&[])
}
