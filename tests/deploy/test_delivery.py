"""Pub/Sub delivery in terraform/pubsub.tf: one `terraform apply` sets every deadline and policy.

For a push subscription the ack deadline *is* the push request's timeout (10 s
when unset), a 429 from a busy worker counts as a delivery attempt, and the
dead-letter policy only works with the Pub/Sub service agent's two roles.
"""

from __future__ import annotations

import math
import re

import pytest

from tests.deploy.conftest import TERRAFORM_DIR, Module, one, refs
from tests.deploy.test_terraform import env_of

ROUTES = {
    "storage": ("google_pubsub_topic.storage_events", "/storage"),
    "tasks": ("google_pubsub_topic.tasks", "/tasks"),
}
# The backlog docs/DEPLOY.md and terraform/README.md promise with the defaults.
DOCUMENTED_BACKLOG = 500


@pytest.fixture(scope="module")
def push(module: Module) -> dict:
    return module.resource("google_pubsub_subscription.push")


def test_there_is_no_eventarc_trigger(module: Module) -> None:
    """The Eventarc design is gone: no trigger, no trigger service account, no eventarc API."""
    assert not [a for a in module.resources() if a.startswith("google_eventarc_")]
    assert "google_service_account.trigger" not in module.resources()
    assert "eventarc" not in " ".join(p.read_text() for p in TERRAFORM_DIR.glob("*.tf")).replace("no Eventarc", "")


def test_input_bucket_notifies_finalized_objects_after_the_publisher_grant_propagates(module: Module) -> None:
    """OBJECT_FINALIZE as JSON_API_V1 to the storage-events topic, created after the grant and a time_sleep."""
    notification = module.resource("google_storage_notification.input_finalized")
    assert refs(notification["bucket"]) == {"google_storage_bucket.input"}
    assert refs(notification["topic"]) == {"google_pubsub_topic.storage_events"}
    assert notification["payload_format"] == "JSON_API_V1"
    assert notification["event_types"] == ["OBJECT_FINALIZE"]
    assert refs(notification["depends_on"]) >= {
        "google_pubsub_topic_iam_member.gcs_agent_publishes_storage_events",
        "time_sleep.gcs_publisher_propagation",
    }
    grant = module.resource("google_pubsub_topic_iam_member.gcs_agent_publishes_storage_events")
    assert grant["role"] == "roles/pubsub.publisher"
    assert refs(grant["topic"]) == {"google_pubsub_topic.storage_events"}
    assert "data.google_storage_project_service_account.gcs" in refs(grant["member"])
    sleep = module.resource("time_sleep.gcs_publisher_propagation")
    assert "google_pubsub_topic_iam_member.gcs_agent_publishes_storage_events" in refs(sleep["triggers"])
    assert int(sleep["create_duration"].rstrip("s")) >= 30


def test_two_push_routes_to_the_worker(module: Module, push: dict) -> None:
    """storage-events -> POST /storage and tasks -> POST /tasks, named <prefix>-<topic>-push."""
    assert push["for_each"] == "${local.push_routes}"
    routes = module.locals["push_routes"]
    assert set(routes) == set(ROUTES)
    for key, (topic, path) in ROUTES.items():
        assert refs(routes[key]["topic"]) == {topic}
        assert routes[key]["path"] == path
    assert routes["storage"]["name"] == "${local.storage_events_topic}-push"
    assert module.locals["storage_events_topic"] == "${local.prefix}-storage-events"
    assert module.locals["tasks_topic"] == "${local.prefix}-tasks"
    config = one(push["push_config"])
    assert config["push_endpoint"] == "${google_cloud_run_v2_service.worker.uri}${each.value.path}"


def test_push_ack_deadline_is_set_to_600_seconds(module: Module, push: dict) -> None:
    """Unset, a push's deadline is 10 s and every longer job is redelivered while it runs."""
    assert push["ack_deadline_seconds"] == "${local.ack_deadline_seconds}"
    assert module.locals["ack_deadline_seconds"] == 600


def test_push_has_exponential_retry_and_a_dead_letter_policy(module: Module, push: dict) -> None:
    retry = one(push["retry_policy"])
    assert retry == {"minimum_backoff": "${local.minimum_backoff}", "maximum_backoff": "${local.maximum_backoff}"}
    assert (module.locals["minimum_backoff"], module.locals["maximum_backoff"]) == ("10s", "600s")
    dead = one(push["dead_letter_policy"])
    assert refs(dead["dead_letter_topic"]) == {"google_pubsub_topic.dead_letter"}
    assert dead["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert one(push["expiration_policy"])["ttl"] == ""


def test_push_authenticates_with_a_dedicated_invoker(module: Module, push: dict) -> None:
    """OIDC tokens of the push service account, audience the worker URL; that account may only invoke the worker."""
    token = one(one(push["push_config"])["oidc_token"])
    assert refs(token["service_account_email"]) == {"google_service_account.push"}
    assert token["audience"] == "${google_cloud_run_v2_service.worker.uri}"
    invoker = module.resource("google_cloud_run_v2_service_iam_member.push_invokes_worker")
    assert invoker["role"] == "roles/run.invoker"
    assert refs(invoker["name"]) == {"google_cloud_run_v2_service.worker"}
    assert refs(invoker["member"]) == {"google_service_account.push"}
    assert "google_cloud_run_v2_service_iam_member.push_invokes_worker" in refs(push["depends_on"])


def test_pubsub_agent_can_dead_letter(module: Module) -> None:
    """Publisher on the dead-letter topic and subscriber on each source subscription, else nothing is dead-lettered."""
    publisher = module.resource("google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher")
    assert publisher["role"] == "roles/pubsub.publisher"
    assert refs(publisher["topic"]) == {"google_pubsub_topic.dead_letter"}
    subscriber = module.resource("google_pubsub_subscription_iam_member.pubsub_agent_source_subscriber")
    assert subscriber["for_each"] == "${google_pubsub_subscription.push}"
    assert subscriber["role"] == "roles/pubsub.subscriber"
    for grant in (publisher, subscriber):
        assert grant["member"] == "${local.pubsub_agent}"
    assert "gcp-sa-pubsub" in module.locals["pubsub_agent"]


def test_token_creator_for_old_projects_is_optional_and_narrow(module: Module) -> None:
    """Projects from before April 2021: the agent may mint tokens for the push account only, when asked."""
    grant = module.resource("google_service_account_iam_member.pubsub_agent_token_creator")
    assert grant["count"] == "${var.pubsub_agent_token_creator ? 1 : 0}"
    assert refs(grant["service_account_id"]) == {"google_service_account.push"}
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
    assert module.variables["pubsub_agent_token_creator"]["default"] is False


def _delivery_window(attempts: int) -> int:
    """Seconds between the first and the last delivery: backoff 10 s doubling, capped at 600 s."""
    return sum(min(600, 10 * 2**i) for i in range(attempts - 1))


def test_dead_lettering_waits_out_the_documented_backlog(module: Module) -> None:
    """With the defaults, ~500 full-length deliveries may queue ahead (429s counting) before one is dead-lettered."""
    attempts = module.variables["max_delivery_attempts"]["default"]
    instances = module.variables["worker_max_instances"]["default"]
    timeout = module.variables["worker_timeout_seconds"]["default"]
    backlog = math.floor(_delivery_window(attempts) * instances / timeout)
    assert backlog >= DOCUMENTED_BACKLOG, backlog
    assert module.locals["delivery_window_seconds"] == (
        "${sum([for i in range(var.max_delivery_attempts - 1) : min(600, 10 * pow(2, i))])}"
    )
    assert "var.worker_max_instances" in module.locals["supported_backlog"]
    assert module.outputs["supported_backlog"]["value"] == "${local.supported_backlog}"
    # The window stays inside the worker's own give-up age, or old events would be dropped, not dead-lettered.
    assert _delivery_window(attempts) < module.variables["max_event_age_seconds"]["default"]
    for doc in (TERRAFORM_DIR / "README.md", TERRAFORM_DIR.parent / "docs" / "DEPLOY.md"):
        assert re.search(rf"\b{backlog}\b", doc.read_text()), (
            f"{doc.name} should state the supported backlog ({backlog})"
        )


def test_worker_publishes_tasks_and_job_events(module: Module) -> None:
    """The worker gets both topic names and may publish to both; job events have no subscription of ours."""
    env = env_of(module, "worker")
    assert env["VOICECLONING_TASKS_TOPIC"] == "google_pubsub_topic.tasks.id"
    assert env["VOICECLONING_EVENTS_TOPIC"] == "google_pubsub_topic.job_events.id"
    assert module.locals["worker_topics"] == {
        "tasks": "${google_pubsub_topic.tasks.name}",
        "job_events": "${google_pubsub_topic.job_events.name}",
    }
    subscribed = {t for body in module.resources("google_pubsub_subscription").values() for t in refs(body["topic"])}
    assert "google_pubsub_topic.job_events" not in subscribed
    assert module.outputs["job_events_topic"]["value"] == "${google_pubsub_topic.job_events.id}"


def test_webhook_secret_is_optional(module: Module) -> None:
    """VOICECLONING_WEBHOOK_SECRET from Secret Manager, and the accessor role, only with var.webhook_secret_id."""
    container = one(one(module.resource("google_cloud_run_v2_service.worker")["template"])["containers"])
    secret_env = [d["env"] for d in container["dynamic"] if "env" in d and "webhook_secret_id" in d["env"]["for_each"]]
    content = one(one(secret_env)["content"])
    assert content["name"] == "VOICECLONING_WEBHOOK_SECRET"
    assert one(one(content["value_source"])["secret_key_ref"])["secret"] == "${env.value}"
    grant = module.resource("google_secret_manager_secret_iam_member.worker_webhook_secret")
    assert grant["count"] == "${var.webhook_secret_id == null ? 0 : 1}"
    assert module.variables["webhook_secret_id"]["default"] is None


def test_dead_letters_are_kept_and_alerted_on(module: Module) -> None:
    """The dead-letter topic has a subscription that keeps messages; an alert watches dead-lettering and that backlog."""
    sub = module.resource("google_pubsub_subscription.dead_letter")
    assert refs(sub["topic"]) == {"google_pubsub_topic.dead_letter"}
    assert one(sub["expiration_policy"])["ttl"] == ""
    conditions = module.resource("google_monitoring_alert_policy.dead_letters")["conditions"]
    filters = [one(c["condition_threshold"])["filter"] for c in conditions]
    assert any("subscription/dead_letter_message_count" in f and "local.push_subscription_ids" in f for f in filters)
    assert any("google_pubsub_subscription.dead_letter" in refs(f) for f in filters)
    assert "google_pubsub_subscription.push" in refs(module.locals["push_subscription_ids"])
