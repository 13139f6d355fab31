# Storage events reach the worker through Eventarc, which creates and owns a
# Pub/Sub topic + push subscription for the trigger ("transport").
#
# Retries: the worker answers 500 when it raises (transient trouble) and the
# push subscription redelivers with exponential backoff for up to 24 h
# (message retention); a 2xx acknowledges. The worker also counts attempts in
# Firestore (VOICECLONING_MAX_ATTEMPTS) and drops events older than
# VOICECLONING_MAX_EVENT_AGE_SECONDS, so a poison event ends as a "failed" job.
#
# Dead-lettering, honestly: google_eventarc_trigger has no dead-letter
# argument, and the subscription it creates is owned by Eventarc, so this
# module cannot set its dead_letter_policy without fighting Eventarc over the
# resource. What Terraform does here:
#   - the dead-letter topic and a pull subscription that keeps its messages,
#   - the Pub/Sub service agent's publisher role on that topic and
#     subscriber role on the Eventarc subscription (both required),
#   - the exact gcloud command that attaches the policy, as the
#     dead_letter_setup_command output (run it once after apply; see
#     docs/DEPLOY.md). Re-run it if the trigger is ever recreated.

resource "google_eventarc_trigger" "object_finalized" {
  project         = var.project_id
  name            = local.trigger_name
  location        = var.region
  service_account = google_service_account.trigger.email
  labels          = local.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }

  # Eventarc cannot filter Storage events by prefix: the worker ignores
  # objects outside voices/, requests/ and users/<uid>/{voices,requests}/.
  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.input.name
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.worker.name
      region  = var.region
      path    = "/"
    }
  }

  event_data_content_type = "application/json"

  depends_on = [
    google_project_iam_member.gcs_agent_pubsub_publisher,
    google_project_iam_member.trigger,
    google_cloud_run_v2_service_iam_member.trigger_invokes_worker,
  ]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead-lettered messages carry only object names and metadata (no audio); Google-managed encryption is sufficient.
  project = var.project_id
  name    = local.dead_letter_topic
  labels  = merge(local.labels, { component = "dead-letter" })

  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"

  depends_on = [google_project_service.apis]
}

# A topic without subscriptions drops what it receives: this one keeps
# dead-lettered events for inspection and replay (docs/DEPLOY.md).
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = local.dead_letter_sub
  topic   = google_pubsub_topic.dead_letter.id
  labels  = merge(local.labels, { component = "dead-letter" })

  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = "" # never expire, even when nobody pulls for 31 days
  }
}

locals {
  eventarc_subscription = google_eventarc_trigger.object_finalized.transport[0].pubsub[0].subscription

  dead_letter_setup_command = join(" ", [
    "gcloud pubsub subscriptions update",
    local.eventarc_subscription,
    "--project=${var.project_id}",
    "--dead-letter-topic=${google_pubsub_topic.dead_letter.id}",
    "--max-delivery-attempts=${var.max_delivery_attempts}",
  ])
}
