//! The Kubernetes manifests in `deploy/` parse, and name the probes, the config path, the keys Secret and the port
//! the service actually uses. YAML is read with python3's `yaml` module (serde_yaml is not a dependency); without it
//! the test prints a loud SKIP line.

mod service_support;

use std::process::Command;

use locus_verifier::service::{config, keys};
use serde_json::Value;
use service_support::*;

fn manifests() -> Option<Vec<Value>> {
    let dir = repo_root().join("deploy");
    let script = r#"
import json, sys, glob, os, yaml
docs = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    with open(f) as fh:
        for d in yaml.safe_load_all(fh):
            if d is not None:
                docs.append(d)
print(json.dumps(docs))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named") {
            return None;
        }
        panic!("deploy/*.yaml does not parse:\n{err}");
    }
    Some(serde_json::from_slice(&out.stdout).expect("python printed JSON"))
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_parse_and_name_what_the_service_uses() {
    let Some(docs) = manifests() else {
        eprintln!("SKIP: python3 with the yaml module is not available; deploy/*.yaml not checked");
        return;
    };
    let cm = find(&docs, "ConfigMap");
    let secret = find(&docs, "Secret");
    let deploy = find(&docs, "Deployment");
    let svc = find(&docs, "Service");

    // The config in the ConfigMap is valid for the service.
    let toml = cm["data"]["verifier.toml"]
        .as_str()
        .expect("verifier.toml in the ConfigMap");
    let cfg = config::parse(toml, std::path::Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !cfg.trust.simulator,
        "the deployment must not trust the simulator"
    );
    let listen = cfg.server.listen.expect("listen");

    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert!(deploy["spec"]["replicas"].as_u64().expect("replicas") >= 2);
    // Probes hit the service's real endpoints on the named container port, over TLS.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let port_name = c["livenessProbe"]["httpGet"]["port"]
        .as_str()
        .expect("named port");
    let port = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == port_name)
        .expect("probe port is declared");
    assert_eq!(
        port["containerPort"].as_u64(),
        Some(u64::from(listen.port()))
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(
        svc["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"]
    );

    // The Secret is mounted where the config reads its keys, read-only.
    let secret_name = secret["metadata"]["name"].as_str().expect("secret name");
    let volumes = pod["volumes"].as_array().expect("volumes");
    let keys_vol = volumes
        .iter()
        .find(|v| v["secret"]["secretName"] == secret_name)
        .expect("the Secret is a volume");
    let mounts = c["volumeMounts"].as_array().expect("mounts");
    let keys_mount = mounts
        .iter()
        .find(|m| m["name"] == keys_vol["name"])
        .expect("the Secret is mounted");
    assert_eq!(
        keys_mount["mountPath"].as_str(),
        cfg.server.keys_dir.to_str()
    );
    assert_eq!(keys_mount["readOnly"], true);
    // The Secret's files pass the verifier's permission check at load (group/other write and other read are
    // refused), also with the group read that Kubernetes adds to them when the pod sets `fsGroup`.
    let mode = keys_vol["secret"]["defaultMode"]
        .as_u64()
        .and_then(|m| u32::try_from(m).ok())
        .expect("the Secret volume sets defaultMode (YAML octal, e.g. 0400)");
    let file = std::path::Path::new("challenge.key");
    keys::check_mode(file, mode).unwrap_or_else(|e| panic!("defaultMode: {e}"));
    if pod["securityContext"]["fsGroup"].is_u64() {
        keys::check_mode(file, mode | 0o440)
            .unwrap_or_else(|e| panic!("defaultMode with fsGroup: {e}"));
    }
    assert!(
        keys::check_mode(file, mode | 0o004).is_err(),
        "the check this relies on"
    );

    // TLS: the certificate and key come from a mounted Secret; the audit log is a file on a mounted volume.
    let (tls_cert, tls_key) = cfg.server.tls.clone().expect("the deployment serves TLS");
    let tls_dir = tls_cert.parent().expect("tls dir");
    assert_eq!(tls_key.parent(), Some(tls_dir));
    let tls_mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == tls_dir.to_str())
        .expect("the TLS Secret is mounted where tls_cert points");
    assert!(volumes
        .iter()
        .any(|v| v["name"] == tls_mount["name"] && v["secret"]["secretName"].is_string()));
    let audit_path = match &cfg.server.audit {
        config::AuditTarget::File(p) => p.clone(),
        config::AuditTarget::Stdout => {
            panic!("the manifests keep the audit log in a file on a volume")
        }
    };
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"].as_str() == audit_path.parent().and_then(|p| p.to_str())));

    // The ConfigMap is mounted where `--config` points.
    let cm_name = cm["metadata"]["name"].as_str().expect("cm name");
    let cm_vol = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == cm_name)
        .expect("the ConfigMap is a volume");
    let cm_mount = mounts
        .iter()
        .find(|m| m["name"] == cm_vol["name"])
        .expect("the ConfigMap is mounted");
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "serve");
    let config_arg = args
        .iter()
        .position(|a| *a == "--config")
        .map(|i| args[i + 1])
        .expect("--config");
    assert_eq!(
        config_arg,
        format!(
            "{}/verifier.toml",
            cm_mount["mountPath"].as_str().expect("path")
        )
    );

    // The state dir is writable (emptyDir) and is where the config keeps state.
    let state_mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == cfg.server.state_dir.to_str())
        .expect("state_dir is mounted");
    let state_vol = volumes
        .iter()
        .find(|v| v["name"] == state_mount["name"])
        .expect("state volume");
    assert!(state_vol["emptyDir"].is_object());

    // And the binary serves that config over TLS, answering the probe paths.
    let dir = tempdir();
    let tls = locus_simulator::tls::test_tls(
        3,
        &["localhost"],
        &["127.0.0.1".parse().expect("ip")],
        1_700_000_000,
        4_102_444_800,
    )
    .expect("test TLS");
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir_all(&tls_dir).expect("mkdir");
    std::fs::write(tls_dir.join("tls.crt"), &tls.chain_pem).expect("cert");
    std::fs::write(tls_dir.join("tls.key"), &tls.key_pem).expect("key");
    let text = toml
        .replace(
            "/var/lib/locus",
            &dir.path().join("state").display().to_string(),
        )
        .replace("/var/run/secrets/locus-tls", &tls_dir.display().to_string())
        .replace(
            "/var/run/secrets/locus",
            &dir.path().join("keys").display().to_string(),
        )
        .replace(
            "/var/log/locus",
            &dir.path().join("audit").display().to_string(),
        );
    let v = Verifier::start(dir.path(), &text);
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).expect("ca"))
        .build()
        .expect("client");
    for path in ["/healthz", "/readyz"] {
        let resp = https
            .get(format!("{}{path}", v.base.replace("http://", "https://")))
            .send()
            .await
            .expect("probe");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
}
