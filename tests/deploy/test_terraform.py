"""The Terraform module in terraform/ deploys the service safely.

Parsed with python-hcl2 (providers cannot be fetched here, so there is no
`terraform validate`/`plan`): these tests assert on the configuration itself.
checkov has no checks for Cloud Run v2 IAM, Pub/Sub delivery settings or
Firestore; those are covered here (delivery in test_delivery.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.deploy.conftest import ROOT, TERRAFORM_DIR, Module, one, refs
from voicecloning.settings import DEVICES, PRECISIONS
from voicecloning.web_settings import CLOUD_RUN_REQUEST_LIMIT

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}

# Every role a service account of ours may hold, and where. Anything else fails.
# No logging.logWriter / monitoring.metricWriter: Cloud Run ships stdout itself and no custom metrics exist.
ALLOWED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "worker": {
        ("project", "roles/datastore.user"),
        ("google_storage_bucket.input", "roles/storage.objectViewer"),
        # Less than objectAdmin (no object ACL / IAM management): create, read, list, overwrite, delete.
        ("google_storage_bucket.output", "roles/storage.objectUser"),
        ("google_pubsub_topic.tasks", "roles/pubsub.publisher"),
        ("google_pubsub_topic.job_events", "roles/pubsub.publisher"),
        # Only with var.webhook_secret_id (count), on that secret only.
        ("${var.webhook_secret_id}", "roles/secretmanager.secretAccessor"),
    },
    "api": {
        # The web page's routes: create users/<uid>/{voices,requests}/ uploads, read users/<uid>/outputs/.
        ("google_storage_bucket.input", "roles/storage.objectUser"),
        ("google_storage_bucket.output", "roles/storage.objectViewer"),
    },
    "push": {
        ("google_cloud_run_v2_service.worker", "roles/run.invoker"),
    },
}

# Env vars of the contract in voicecloning/settings.py that Terraform must set.
REQUIRED_ENV = {
    "VOICECLONING_BACKEND",
    "VOICECLONING_INPUT_BUCKET",
    "VOICECLONING_OUTPUT_BUCKET",
    "GOOGLE_CLOUD_PROJECT",
    "VOICECLONING_FIRESTORE_DATABASE",
    "VOICECLONING_MODEL_DIR",
    "VOICECLONING_PRECISION",
    "VOICECLONING_DEVICE",
    "VOICECLONING_THREADS",
    "VOICECLONING_MAX_ATTEMPTS",
    "VOICECLONING_LEASE_SECONDS",
    "VOICECLONING_MAX_EVENT_AGE_SECONDS",
    "VOICECLONING_REQUIRE_CONSENT",
    "VOICECLONING_LOG_LEVEL",
    "FUNCTION_TARGET",
}

# Env vars of voicecloning/web_settings.py that Terraform must set on the HTTP API only.
WEB_ENV = {
    "VOICECLONING_CORS_ORIGINS",
    "VOICECLONING_FIREBASE_PROJECT",
    "VOICECLONING_MAX_UPLOAD_BYTES",
    "VOICECLONING_UPLOAD_BUFFER_BYTES",
}


# --------------------------------------------------------------------------- helpers


def iam_grants(module: Module) -> list[dict[str, Any]]:
    """Every IAM member resource as {address, scope, roles, member}, roles resolved through for_each.

    Three for_each shapes are understood: ``toset(local.roles)`` with ``role = each.value`` (one grant
    per role, on the resource's own target); ``local.grants``, a map of ``{bucket, role}`` objects
    with ``bucket = each.value.bucket`` and ``role = each.value.role`` (one grant per entry); and
    ``local.targets``, a map of targets with ``<target> = each.value`` and a literal role.
    """
    grants = []
    for address, body in module.resources().items():
        rtype = address.split(".")[0]
        if not rtype.endswith("_iam_member"):
            continue
        for target, roles in _grant_targets(module, address, body):
            if rtype == "google_project_iam_member":
                scope = "project"
            else:
                targets = {r for r in refs(target) if not r.startswith(("var.", "local.", "each."))}
                scope = ",".join(sorted(targets)) or str(target)
            grants.append({"address": address, "scope": scope, "roles": roles, "member": body["member"]})
    return grants


def _grant_targets(module: Module, address: str, body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(target expression, roles) pairs of one IAM member resource."""
    target = next((body[k] for k in TARGET_KEYS if body.get(k)), "")
    role = body["role"]
    if role in ("${each.value}", "${each.key}"):
        match = re.fullmatch(r"\$\{toset\(local\.(\w+)\)\}", body.get("for_each", ""))
        assert match, f"{address}: role comes from for_each {body.get('for_each')!r}, which the test cannot resolve"
        return [(target, module.locals[match.group(1)])]
    if role == "${each.value.role}":
        match = re.fullmatch(r"\$\{local\.(\w+)\}", body.get("for_each", ""))
        assert match, f"{address}: role comes from for_each {body.get('for_each')!r}, which the test cannot resolve"
        assert target == "${each.value.bucket}", f"{address}: target {target!r} should be each.value.bucket"
        entries = module.locals[match.group(1)]
        for key, entry in entries.items():
            assert "${" not in entry["role"], f"{address}[{key}]: role {entry['role']!r} is not a literal"
        return [(entry["bucket"], [entry["role"]]) for entry in entries.values()]
    assert "${" not in role, f"{address}: role {role!r} is not a literal"
    if target == "${each.value}":
        match = re.fullmatch(r"\$\{local\.(\w+)\}", body.get("for_each", ""))
        assert match, f"{address}: target comes from for_each {body.get('for_each')!r}, which the test cannot resolve"
        return [(value, [role]) for value in module.locals[match.group(1)].values()]
    return [(target, [role])]


TARGET_KEYS = ("bucket", "name", "topic", "subscription", "secret_id", "service_account_id")


def service_account_of(member: str) -> str | None:
    match = re.search(r"google_service_account\.(\w+)\.", member)
    return match.group(1) if match else None


def template(module: Module, service: str) -> dict[str, Any]:
    return one(module.resource(f"google_cloud_run_v2_service.{service}")["template"])


def seconds(module: Module, value: str) -> tuple[int, str]:
    """(largest possible seconds, how it was found) of a duration such as "600s" or "${var.x}s"."""
    if match := re.fullmatch(r"(\d+)s", value):
        return int(match.group(1)), "literal"
    match = re.fullmatch(r"\$\{var\.(\w+)\}s", value)
    assert match, f"cannot interpret duration {value!r}"
    variable = module.variables[match.group(1)]
    condition = " ".join(v["condition"] for v in variable.get("validation", []))
    upper = re.search(rf"var\.{match.group(1)}\s*<=\s*(\d+)", condition)
    assert upper, f"var.{match.group(1)} has no upper bound in its validation"
    assert variable["default"] <= int(upper.group(1))
    return int(upper.group(1)), f"validation of var.{match.group(1)}"


def env_of(module: Module, service: str) -> dict[str, str]:
    """The environment a service gets: its dynamic env for_each over merged locals."""
    container = one(template(module, service)["containers"])
    dynamic_env = [d["env"] for d in container.get("dynamic", []) if "env" in d]
    from_locals = [e for e in dynamic_env if re.fullmatch(r"\$\{local\.\w+\}", e["for_each"])]
    assert len(from_locals) == 1, f"{service}: expected one dynamic env block over a local"
    source = re.fullmatch(r"\$\{local\.(\w+)\}", from_locals[0]["for_each"])
    assert source
    return resolve_env_local(module, source.group(1))


def resolve_env_local(module: Module, name: str) -> dict[str, str]:
    value = module.locals[name]
    if isinstance(value, dict):
        return value
    match = re.fullmatch(r"\$\{merge\(local\.(\w+), \{(.*)\}\)\}", value, re.S)
    assert match, f"local.{name} = {value!r} is not merge(local.x, {{...}})"
    merged = dict(resolve_env_local(module, match.group(1)))
    for key, expr in re.findall(r"(\w+)\s*=\s*((?:[^,\"]|\"[^\"]*\")+)", match.group(2)):
        merged[key] = expr.strip().strip('"')
    return merged


# --------------------------------------------------------------------------- IAM


def test_worker_service_is_never_public(module: Module) -> None:
    """No IAM grant on the worker service names allUsers or allAuthenticatedUsers, and its ingress is internal."""
    on_worker = [g for g in iam_grants(module) if "google_cloud_run_v2_service.worker" in g["scope"]]
    assert on_worker, "expected at least the push service account's run.invoker grant on the worker"
    for grant in on_worker:
        assert grant["member"] not in PUBLIC_MEMBERS, f"{grant['address']} makes the worker public"
    worker = module.resource("google_cloud_run_v2_service.worker")
    assert worker["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert worker.get("invoker_iam_disabled", False) is False


def test_only_the_http_api_can_be_public_and_only_when_asked(module: Module) -> None:
    """allUsers appears once, on the HTTP API, behind var.http_api_public (default false)."""
    public = [(a, b) for a, b in module.resources().items() if b.get("member") in PUBLIC_MEMBERS]
    assert [a for a, _ in public] == ["google_cloud_run_v2_service_iam_member.api_public"]
    body = public[0][1]
    assert body["count"] == "${var.http_api_public ? 1 : 0}"
    assert refs(body["name"]) == {"google_cloud_run_v2_service.api"}
    assert module.variables["http_api_public"]["default"] is False


def test_iam_is_additive_only(module: Module) -> None:
    """No authoritative *_iam_binding / *_iam_policy resources, which would hide grants from these checks."""
    authoritative = [a for a in module.resources() if re.search(r"_iam_(binding|policy)\.", a)]
    assert authoritative == []


def test_service_accounts_hold_only_allowed_roles(module: Module) -> None:
    """Every role granted to the worker, API and push service accounts is on the allowed list, at the allowed scope."""
    granted: dict[str, set[tuple[str, str]]] = {sa: set() for sa in ALLOWED_GRANTS}
    for grant in iam_grants(module):
        sa = service_account_of(grant["member"])
        if sa is None:
            continue
        assert sa in ALLOWED_GRANTS, f"{grant['address']}: unexpected service account {sa}"
        granted[sa] |= {(grant["scope"], role) for role in grant["roles"]}
    for sa, grants in granted.items():
        extra = grants - ALLOWED_GRANTS[sa]
        assert not extra, f"{sa} is granted roles outside its allowed list: {sorted(extra)}"
    assert set(module.resources("google_service_account")) == {f"google_service_account.{sa}" for sa in ALLOWED_GRANTS}


def test_service_accounts_hold_the_roles_they_need(module: Module) -> None:
    """The allowed grants are all present: a missing one breaks the pipeline at run time."""
    granted: dict[str, set[tuple[str, str]]] = {sa: set() for sa in ALLOWED_GRANTS}
    for grant in iam_grants(module):
        sa = service_account_of(grant["member"])
        if sa in granted:
            granted[sa] |= {(grant["scope"], role) for role in grant["roles"]}
    assert granted == ALLOWED_GRANTS


def test_no_project_wide_grants_but_firestore(module: Module) -> None:
    """The only project-level role of ours is the worker's datastore.user; nothing holds logWriter / metricWriter."""
    project_grants = {
        (service_account_of(g["member"]), r) for g in iam_grants(module) if g["scope"] == "project" for r in g["roles"]
    }
    assert project_grants == {("worker", "roles/datastore.user")}
    text = " ".join(p.read_text() for p in TERRAFORM_DIR.glob("*.tf"))
    assert '"roles/logging.logWriter"' not in text and '"roles/monitoring.metricWriter"' not in text


def test_every_role_has_a_reason() -> None:
    """Each line that grants a role carries a one-line comment saying why."""
    missing = []
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r'"roles/[\w.]+"', line) and "#" not in line:
                missing.append(f"{path.name}:{number}: {line.strip()}")
    assert missing == []


def test_the_web_page_requires_a_public_api(module: Module) -> None:
    """enable_web (default false) fails at plan unless http_api_public is true: the page's ID tokens are checked by the function."""
    assert module.variables["enable_web"]["default"] is False
    api = module.resource("google_cloud_run_v2_service.api")
    preconditions = [p for lc in api.get("lifecycle", []) for p in lc.get("precondition", [])]
    assert any(p["condition"] == "${!var.enable_web || var.http_api_public}" for p in preconditions)
    message = next(p["error_message"] for p in preconditions if "var.enable_web" in p["condition"])
    assert "http_api_public = true" in message


# --------------------------------------------------------------------------- buckets


def test_output_bucket_is_never_the_notifying_bucket(module: Module) -> None:
    """The worker writes to a bucket other than the one whose notifications reach it, and cannot write to that one."""
    notification = module.resource("google_storage_notification.input_finalized")
    assert refs(notification["bucket"]) == {"google_storage_bucket.input"}
    env = env_of(module, "worker")
    assert refs(env["VOICECLONING_OUTPUT_BUCKET"]) == {"google_storage_bucket.output"}
    assert refs(env["VOICECLONING_INPUT_BUCKET"]) == {"google_storage_bucket.input"}
    assert [a for a in module.resources("google_storage_notification")] == [
        "google_storage_notification.input_finalized"
    ]

    input_name = module.resource("google_storage_bucket.input")["name"]
    output_name = module.resource("google_storage_bucket.output")["name"]
    assert input_name != output_name
    assert module.locals["input_bucket_name"] != module.locals["output_bucket_name"]
    preconditions = [
        p
        for lc in module.resource("google_storage_bucket.output").get("lifecycle", [])
        for p in lc.get("precondition", [])
    ]
    assert any("local.output_bucket_name != local.input_bucket_name" in p["condition"] for p in preconditions)

    # Only the HTTP API may put objects into the input bucket (the web page's uploads; a re-upload
    # under the same name replaces the clip, which the contract defines as re-enrollment).
    writes_to_input = {
        (service_account_of(g["member"]), role)
        for g in iam_grants(module)
        if g["scope"] == "google_storage_bucket.input"
        for role in g["roles"]
        if role != "roles/storage.objectViewer"
    }
    assert writes_to_input <= {("api", "roles/storage.objectUser")}


def test_buckets_are_private_and_protected(module: Module) -> None:
    """Both buckets: uniform access, public access prevention, no force-destroy by default, labels; input versioned."""
    for name in ("input", "output"):
        bucket = module.resource(f"google_storage_bucket.{name}")
        assert bucket["uniform_bucket_level_access"] is True
        assert bucket["public_access_prevention"] == "enforced"
        assert bucket["force_destroy"] == "${var.bucket_force_destroy}"
        assert "labels" in bucket
    assert module.variables["bucket_force_destroy"]["default"] is False
    assert one(module.resource("google_storage_bucket.input")["versioning"])["enabled"] is True


def test_outputs_expire_but_voice_latents_do_not(module: Module) -> None:
    """The output bucket deletes synthesised audio and parts after var.retention_days and spares voices/ latents."""
    output = module.resource("google_storage_bucket.output")
    rule = [d["lifecycle_rule"] for d in output["dynamic"] if "lifecycle_rule" in d][0]
    condition = one(one(rule["content"])["condition"])
    assert condition["age"] == "${var.retention_days}"
    assert "var.retention_days > 0" in module.locals["output_expiry_rules"]
    candidates = module.locals["output_expiry_candidates"]
    prefixes = [p for rule in candidates.values() for p in rule["prefixes"]]
    assert {"outputs/", "parts/"} <= set(prefixes)
    assert not any(p.startswith("voices") for p in prefixes)
    user_rule = next(r for r in candidates.values() if r["prefixes"] == ["users/"])
    assert user_rule["suffixes"], "users/ expiry must be narrowed to audio files, or it deletes users' voice latents"


# --------------------------------------------------------------------------- Cloud Run


def test_worker_processes_one_request_per_instance(module: Module) -> None:
    """Worker concurrency is 1: the model uses the whole instance."""
    assert template(module, "worker")["max_instance_request_concurrency"] == 1


def test_worker_timeout_stays_below_the_ack_deadline_with_headroom(module: Module) -> None:
    """The worker's request timeout is at most 540 s, 60 s below the push subscriptions' 600 s ack deadline."""
    limit, _ = seconds(module, template(module, "worker")["timeout"])
    assert module.locals["ack_deadline_seconds"] == 600
    assert limit + 60 <= module.locals["ack_deadline_seconds"]
    assert module.variables["worker_timeout_seconds"]["default"] == 540


def test_worker_defaults_to_two_cpus_and_4gi(module: Module) -> None:
    """Worker CPU and memory come from variables defaulting to 2 vCPU / 4Gi, with startup CPU boost."""
    assert module.variables["worker_cpu"]["default"] == "2"
    assert module.variables["worker_memory"]["default"] == "4Gi"
    resources = one(one(template(module, "worker")["containers"])["resources"])
    assert resources["startup_cpu_boost"] is True
    assert "local.worker_cpu" in resources["limits"] and "local.worker_memory" in resources["limits"]
    assert module.locals["worker_cpu"] == "${var.gpu ? var.gpu_cpu : var.worker_cpu}"
    assert module.locals["worker_memory"] == "${var.gpu ? var.gpu_memory : var.worker_memory}"


def test_gpu_variable_adds_one_l4_with_enough_cpu_and_memory(module: Module) -> None:
    """gpu = true selects nvidia-l4, requests nvidia.com/gpu = 1, at least 4 vCPU / 16Gi, and sets zonal redundancy."""
    tpl = template(module, "worker")
    selector = [d["node_selector"] for d in tpl["dynamic"] if "node_selector" in d][0]
    assert selector["for_each"] == '${var.gpu ? ["nvidia-l4"] : []}'
    assert one(selector["content"])["accelerator"] == "${node_selector.value}"
    limits = one(one(tpl["containers"])["resources"])["limits"]
    assert '"nvidia.com/gpu" = "1"' in limits and "var.gpu ?" in limits
    assert "var.gpu" in tpl["gpu_zonal_redundancy_disabled"]
    assert module.variables["gpu"]["default"] is False
    assert module.variables["gpu_cpu"]["default"] == "4"
    assert module.variables["gpu_memory"]["default"] == "16Gi"
    gpu_cpu_rule = one(module.variables["gpu_cpu"]["validation"])["condition"]
    assert '"1"' not in gpu_cpu_rule and '"2"' not in gpu_cpu_rule


@pytest.mark.parametrize("service", ["worker", "api"])
def test_services_have_deletion_protection(module: Module, service: str) -> None:
    """Both Cloud Run services follow var.deletion_protection, which defaults to true."""
    assert (
        module.resource(f"google_cloud_run_v2_service.{service}")["deletion_protection"] == "${var.deletion_protection}"
    )
    assert module.variables["deletion_protection"]["default"] is True


@pytest.mark.parametrize(("service", "target"), [("worker", "on_push"), ("api", "http_api")])
def test_services_get_the_whole_env_contract(module: Module, service: str, target: str) -> None:
    """Each service receives every variable the settings module reads in the cloud, and its own FUNCTION_TARGET."""
    env = env_of(module, service)
    assert set(env) >= REQUIRED_ENV, f"missing: {sorted(REQUIRED_ENV - set(env))}"
    assert env["FUNCTION_TARGET"] == target
    assert env["VOICECLONING_BACKEND"] == "gcp"
    assert env["VOICECLONING_MODEL_DIR"] == "/opt/model-fast"


def test_only_the_api_gets_the_web_settings(module: Module) -> None:
    """The HTTP API gets every VOICECLONING_ variable web_settings.py reads; the worker none; nobody the Auth emulator."""
    source = (ROOT / "voicecloning" / "web_settings.py").read_text()
    read = set(re.findall(r'"(VOICECLONING_\w+)"', source))  # every name it reads, quoted in code
    assert read == WEB_ENV
    api, worker = env_of(module, "api"), env_of(module, "worker")
    assert set(api) >= WEB_ENV
    assert not set(worker) & WEB_ENV
    assert "FIREBASE_AUTH_EMULATOR_HOST" not in set(api) | set(worker)
    assert api["VOICECLONING_CORS_ORIGINS"] == "local.cors_origins"
    assert module.locals["cors_origins"] == '${join(",", local.web_origins)}'
    assert api["VOICECLONING_FIREBASE_PROJECT"] == "var.project_id"
    assert api["VOICECLONING_MAX_UPLOAD_BYTES"] == "tostring(var.max_upload_bytes)"
    assert api["VOICECLONING_UPLOAD_BUFFER_BYTES"] == "tostring(var.upload_buffer_bytes)"


def test_upload_limit_defaults_to_cloud_runs_request_cap(module: Module) -> None:
    """max_upload_bytes defaults to 32 MiB, the settings' default, and cannot exceed Cloud Run's request limit."""
    variable = module.variables["max_upload_bytes"]
    assert variable["default"] == CLOUD_RUN_REQUEST_LIMIT == 33554432
    condition = one(variable["validation"])["condition"]
    assert f"var.max_upload_bytes <= {CLOUD_RUN_REQUEST_LIMIT}" in condition


def test_web_origins_are_origins_and_default_to_firebase_hosting(module: Module) -> None:
    """web_origins is validated as scheme://host[:port]; empty with enable_web means the Firebase Hosting origins."""
    variable = module.variables["web_origins"]
    assert variable["type"] == "${list(string)}" and variable["default"] == []
    assert variable.get("validation")
    assert "var.enable_web" in module.locals["web_origins"]
    assert sorted(module.locals["firebase_hosting_origins"]) == [
        "https://${var.project_id}.firebaseapp.com",
        "https://${var.project_id}.web.app",
    ]


def test_enum_variables_match_the_settings_module(module: Module) -> None:
    """The precision validation accepts exactly the values voicecloning.settings accepts; the device follows gpu."""
    condition = one(module.variables["precision"]["validation"])["condition"]
    listed = re.search(r"contains\(\[(.*?)\]", condition)
    assert listed
    assert tuple(v.strip().strip('"') for v in listed.group(1).split(",")) == PRECISIONS
    device = env_of(module, "worker")["VOICECLONING_DEVICE"]
    assert set(re.findall(r'"(\w+)"', device)) <= set(DEVICES)


# --------------------------------------------------------------------------- Firestore, dead letters, alerts


def test_firestore_is_native_and_protected(module: Module) -> None:
    """The database is native mode with delete protection and an abandon policy while protection is on."""
    db = module.resource("google_firestore_database.this")
    assert db["type"] == "FIRESTORE_NATIVE"
    assert "DELETE_PROTECTION_ENABLED" in db["delete_protection_state"]
    assert "var.deletion_protection" in db["delete_protection_state"]
    assert db["deletion_policy"] == '${var.deletion_protection ? "ABANDON" : "DELETE"}'


def test_firestore_indexes_serve_status_filtered_newest_first_listings(module: Module) -> None:
    """jobs and voices have a (status ASC, created_at DESC) composite index."""
    index = module.resource("google_firestore_index.status_created_at")
    assert index["for_each"] == '${toset(["jobs", "voices"])}'
    assert index["collection"] == "${each.value}"
    assert [(f["field_path"], f["order"]) for f in index["fields"]] == [
        ("status", "ASCENDING"),
        ("created_at", "DESCENDING"),
    ]


def test_security_rules_are_released_from_the_rules_file(module: Module) -> None:
    """The ruleset is built from terraform/firestore.rules and released for the module's database."""
    ruleset = module.resource("google_firebaserules_ruleset.firestore")
    files = one(one(ruleset["source"])["files"])
    assert files["content"] == '${file("${path.module}/firestore.rules")}'
    release = module.resource("google_firebaserules_release.firestore")
    assert release["name"] == "${local.rules_release_name}"
    assert "google_firebaserules_ruleset.firestore" in refs(release["ruleset_name"])


def test_failed_jobs_are_counted_and_alerted_on(module: Module) -> None:
    """A log-based metric counts failed-job entries of the worker, and an alert policy watches it."""
    metric = module.resource("google_logging_metric.failed_jobs")
    assert 'jsonPayload.status=\\"failed\\"' in metric["filter"] or 'jsonPayload.status="failed"' in metric["filter"]
    assert "job failed" in metric["filter"]
    policy = module.resource("google_monitoring_alert_policy.failed_jobs")
    alert = one(policy["conditions"])
    assert "google_logging_metric.failed_jobs" in refs(one(alert["condition_threshold"])["filter"])


def test_failed_jobs_alert_waits_until_its_new_metric_is_visible(module: Module) -> None:
    """A new log-based metric 404s in Monitoring for minutes: the alert waits on a time_sleep after the metric."""
    policy = module.resource("google_monitoring_alert_policy.failed_jobs")
    assert "time_sleep.failed_jobs_metric_visible" in refs(policy["depends_on"])
    sleep = module.resource("time_sleep.failed_jobs_metric_visible")
    assert "google_logging_metric.failed_jobs" in refs(sleep["triggers"])
    assert int(sleep["create_duration"].rstrip("s")) >= 60


def test_firebase_project_waits_for_its_api(module: Module) -> None:
    """google_firebase_project depends on the API enablement, like every other resource."""
    firebase = module.resource("google_firebase_project.this")
    assert "google_project_service.apis" in refs(firebase["depends_on"])


def test_retention_deletes_job_and_part_documents_by_ttl(module: Module) -> None:
    """With retention_days > 0: TTL policies on expire_at for the jobs and parts collection groups, not indexed."""
    field = module.resource("google_firestore_field.expire_at")
    assert field["for_each"] == '${var.retention_days > 0 ? toset(["jobs", "parts"]) : toset([])}'
    assert field["collection"] == "${each.value}" and field["field"] == "expire_at"
    assert field["ttl_config"] == [{}] and field["index_config"] == [{}]
    assert module.variables["retention_days"]["default"] == 30
    assert env_of(module, "worker")["VOICECLONING_RETENTION_DAYS"] == "${tostring(var.retention_days)}"


def test_artifact_cleanup_keeps_deployed_digests(module: Module) -> None:
    """Untagged images are deleted after a while, but never the digests this module deploys, nor the newest ones."""
    repo = module.resource("google_artifact_registry_repository.images")
    policies = {p["id"]: p for p in repo["cleanup_policies"]}
    assert policies["delete-old-untagged"]["action"] == "DELETE"
    assert policies["keep-recent"]["action"] == "KEEP"
    assert one(policies["keep-recent"]["most_recent_versions"])["keep_count"] == "${var.artifact_keep_recent_versions}"
    deployed = one([d["cleanup_policies"] for d in repo["dynamic"] if "cleanup_policies" in d])
    content = one(deployed["content"])
    assert content["action"] == "KEEP"
    assert one(content["condition"])["version_name_prefixes"] == "${local.deployed_digests}"
    assert {"var.image", "var.worker_image"} <= refs(module.locals["deployed_digests"])


def test_gpu_worker_needs_the_gpu_image_and_quota(module: Module) -> None:
    """gpu = true fails at plan without worker_image, and when worker_max_instances exceeds the granted GPU quota."""
    worker = module.resource("google_cloud_run_v2_service.worker")
    conditions = [p["condition"] for lc in worker["lifecycle"] for p in lc["precondition"]]
    assert "${!var.gpu || var.worker_image != null}" in conditions
    assert "${!var.gpu || var.worker_max_instances <= var.gpu_instance_quota}" in conditions
    assert module.variables["gpu_instance_quota"]["default"] == 0


CLOUD_RUN_MEMORY_MIB = {"1": (512, 4096), "2": (512, 8192), "4": (2048, 16384), "6": (4096, 24576), "8": (4096, 32768)}


@pytest.mark.parametrize("service", ["worker", "api"])
def test_memory_must_fit_the_cpu_count(module: Module, service: str) -> None:
    """Cloud Run's CPU/memory table is encoded once and checked at plan for both services."""
    assert {
        k: (module.locals["memory_min_mib"][k], module.locals["memory_max_mib"][k]) for k in CLOUD_RUN_MEMORY_MIB
    } == CLOUD_RUN_MEMORY_MIB
    body = module.resource(f"google_cloud_run_v2_service.{service}")
    conditions = " ".join(p["condition"] for lc in body["lifecycle"] for p in lc["precondition"])
    assert "local.memory_min_mib[" in conditions and "local.memory_max_mib[" in conditions
    default_cpu = module.variables["worker_cpu" if service == "worker" else "http_api_cpu"]["default"]
    default_mem = module.variables["worker_memory" if service == "worker" else "http_api_memory"]["default"]
    mib = int(default_mem[:-2]) * (1024 if default_mem.endswith("Gi") else 1)
    low, high = CLOUD_RUN_MEMORY_MIB[default_cpu]
    assert low <= mib <= high


def test_web_page_gets_a_firebase_app_and_email_password_sign_in(module: Module) -> None:
    """With enable_web: a Firebase web app (google-beta), its config data source, and email + password sign-in."""
    for address in (
        "google_firebase_web_app.this",
        "google_identity_platform_config.this",
    ):
        assert module.resource(address)["count"] == "${var.enable_web ? 1 : 0}", address
    web_app = module.resource("google_firebase_web_app.this")
    assert web_app["provider"] == "google-beta"
    assert "var.deletion_protection" in web_app["deletion_policy"]
    config = [
        b["google_firebase_web_app_config"]["this"]
        for b in module.blocks("data")
        if "google_firebase_web_app_config" in b
    ]
    assert len(config) == 1 and "google_firebase_web_app.this" in refs(config[0]["web_app_id"])
    sign_in = one(module.resource("google_identity_platform_config.this")["sign_in"])
    email = one(sign_in["email"])
    assert email["enabled"] is True and email["password_required"] is True


def test_only_invited_users_can_sign_in_by_default(module: Module) -> None:
    """Self sign-up through the public API key is off unless web_self_signup: every account may run jobs."""
    assert module.variables["web_self_signup"]["default"] is False
    client = one(module.resource("google_identity_platform_config.this")["client"])
    assert one(client["permissions"])["disabled_user_signup"] == "${!var.web_self_signup}"


def test_web_config_output_fills_the_pages_config_file(module: Module) -> None:
    """web_config has every key of web/public/config.json (less the local emulators), and points at the API service."""
    output = module.outputs["web_config"]
    keys = set(re.findall(r"[{,]\s*(\w+)\s*=", output["value"]))
    assert keys == {"apiKey", "authDomain", "projectId", "appId", "functionsBaseUrl"}
    page_config = json.loads((ROOT / "web" / "public" / "config.json").read_text())
    assert set(page_config) - {"emulators"} <= keys
    base_url = re.search(r"functionsBaseUrl\s*=\s*([\w.\[\]]+)", output["value"])
    assert base_url and base_url.group(1) == "google_cloud_run_v2_service.api.uri"
    assert module.outputs["http_api_url"]["value"] == "${google_cloud_run_v2_service.api.uri}"


# --------------------------------------------------------------------------- module hygiene


def test_every_variable_has_a_type_and_a_description(module: Module, example: Module) -> None:
    """terraform-google-modules style: no untyped or undocumented variable, in the module or the example."""
    for where, mod in (("module", module), ("example", example)):
        for name, body in mod.variables.items():
            assert body.get("type"), f"{where}: variable {name} has no type"
            assert str(body.get("description", "")).strip(), f"{where}: variable {name} has no description"


def test_every_output_has_a_description(module: Module, example: Module) -> None:
    for where, mod in (("module", module), ("example", example)):
        assert mod.outputs, f"{where} has no outputs"
        for name, body in mod.outputs.items():
            assert str(body.get("description", "")).strip(), f"{where}: output {name} has no description"


@pytest.mark.parametrize(
    "name",
    [
        "region",
        "name_prefix",
        "precision",
        "log_level",
        "worker_cpu",
        "gpu_cpu",
        "input_bucket_name",
        "output_bucket_name",
    ],
)
def test_enum_like_and_name_variables_are_validated(module: Module, name: str) -> None:
    assert module.variables[name].get("validation"), f"variable {name} has no validation block"


def test_labels_on_every_resource_that_takes_them(module: Module) -> None:
    labelled = (
        "google_storage_bucket",
        "google_cloud_run_v2_service",
        "google_pubsub_topic",
        "google_pubsub_subscription",
        "google_artifact_registry_repository",
    )
    for address, body in module.resources().items():
        if address.split(".")[0] in labelled:
            assert "labels" in body, f"{address} has no labels"
        if address.startswith("google_monitoring_"):
            assert "user_labels" in body, f"{address} has no user_labels"


def test_provider_versions_are_bounded(module: Module, example: Module) -> None:
    """google, google-beta and time are pinned with a lower and an upper bound; google from 6.42."""
    for mod in (module, example):
        terraform = one(list(mod.blocks("terraform")))
        providers = one(terraform["required_providers"])
        assert set(providers) == {"google", "google-beta", "time"}
        for name, spec in providers.items():
            match = re.fullmatch(r">=\s*([\d.]+),\s*<\s*[\d.]+", spec["version"])
            assert match, f"{name}: {spec['version']!r}"
            if name != "time":
                # google_firestore_database.deletion_policy is no longer deprecated from 6.42.
                assert tuple(map(int, match.group(1).split("."))) >= (6, 42), f"{name}: {spec['version']!r}"


def test_example_providers_bill_the_project_for_user_credentials(example: Module) -> None:
    """With application-default user credentials, Firebase / Identity Platform calls need a quota project."""
    providers = {name: body for block in example.blocks("provider") for name, body in block.items()}
    for name in ("google", "google-beta"):
        assert providers[name]["user_project_override"] is True, name
        assert providers[name]["billing_project"] == "${var.project_id}", name


def test_example_uses_the_module(example: Module) -> None:
    """examples/basic calls the module with the required inputs, and its tfvars example sets them."""
    call = [body for block in example.blocks("module") for body in block.values()]
    assert len(call) == 1 and call[0]["source"] == "../.."
    assert {"project_id", "image"} <= set(call[0])
    tfvars = (TERRAFORM_DIR / "examples" / "basic" / "terraform.tfvars.example").read_text()
    for name in ("project_id", "image"):
        assert re.search(rf"^{name}\s*=", tfvars, re.M), f"{name} missing from terraform.tfvars.example"


def test_readme_documents_every_input_and_output(module: Module) -> None:
    """terraform/README.md has a table row for each variable and output."""
    readme = (TERRAFORM_DIR / "README.md").read_text()
    for name in [*module.variables, *module.outputs]:
        assert f"| `{name}` |" in readme, f"{name} is missing from terraform/README.md"
