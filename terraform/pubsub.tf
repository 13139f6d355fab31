# Delivery: Pub/Sub topics and push subscriptions managed here, so every ack
# deadline, retry policy and dead-letter policy is explicit and set by one
# `terraform apply` (no Eventarc trigger, no command to run afterwards).
#
#   storage-events  <- Cloud Storage notification (OBJECT_FINALIZE, JSON_API_V1) on the input bucket
#                   -> push to ${worker}/storage
#   tasks           <- the worker (render / assemble part tasks) -> push to ${worker}/tasks
#   job-events      <- the worker (job notifications); users subscribe, we do not
#   dead-letter     <- the Pub/Sub service agent, after max_delivery_attempts -> dead-letter-inspect
#
# For a push subscription the ack deadline is the push request's timeout
# (10 s when unset): both are 600 s, the maximum, and the worker's request
# timeout stays below it with headroom (var.worker_timeout_seconds <= 540).
# A 2xx acknowledges; any other answer, a timeout, or a 429 from a busy
# worker is a failed delivery, retried with exponential backoff, and counts
# toward max_delivery_attempts (sized for the backlog, see variables.tf).

locals {
  ack_deadline_seconds = 600
  minimum_backoff      = "10s"
  maximum_backoff      = "600s"

  # The two push routes of the worker's on_push function.
  push_routes = {
    storage = {
      name  = "${local.storage_events_topic}-push"
      topic = google_pubsub_topic.storage_events.id
      path  = "/storage"
    }
    tasks = {
      name  = "${local.tasks_topic}-push"
      topic = google_pubsub_topic.tasks.id
      path  = "/tasks"
    }
  }
}

resource "google_pubsub_topic" "storage_events" {
  #checkov:skip=CKV_GCP_83:Notifications carry object names and metadata only (no audio or text); Google-managed encryption is sufficient.
  project = var.project_id
  name    = local.storage_events_topic
  labels  = merge(local.labels, { component = "delivery" })

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "tasks" {
  #checkov:skip=CKV_GCP_83:Part tasks carry job ids and part numbers only; Google-managed encryption is sufficient.
  project = var.project_id
  name    = local.tasks_topic
  labels  = merge(local.labels, { component = "delivery" })

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "job_events" {
  #checkov:skip=CKV_GCP_83:Job events carry ids, status and object names only; Google-managed encryption is sufficient.
  project = var.project_id
  name    = local.job_events_topic
  labels  = merge(local.labels, { component = "notifications" })

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead-lettered messages carry only object names, ids and metadata (no audio); Google-managed encryption is sufficient.
  project = var.project_id
  name    = local.dead_letter_topic
  labels  = merge(local.labels, { component = "dead-letter" })

  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"

  depends_on = [google_project_service.apis]
}

# Cloud Storage publishes the input bucket's notifications as its service agent.
resource "google_pubsub_topic_iam_member" "gcs_agent_publishes_storage_events" {
  project = var.project_id
  topic   = google_pubsub_topic.storage_events.name
  role    = "roles/pubsub.publisher" # Cloud Storage publishes OBJECT_FINALIZE notifications of the input bucket
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# A fresh grant takes a while to reach Cloud Storage; creating the notification
# at once fails with a permission error on a new project.
resource "time_sleep" "gcs_publisher_propagation" {
  create_duration = "60s"

  triggers = {
    member = google_pubsub_topic_iam_member.gcs_agent_publishes_storage_events.member
  }
}

resource "google_storage_notification" "input_finalized" {
  bucket         = google_storage_bucket.input.name
  topic          = google_pubsub_topic.storage_events.id
  payload_format = "JSON_API_V1"
  # Only finished uploads; the worker ignores objects outside voices/, requests/ and users/<uid>/{voices,requests}/.
  event_types = ["OBJECT_FINALIZE"]

  depends_on = [
    google_pubsub_topic_iam_member.gcs_agent_publishes_storage_events,
    time_sleep.gcs_publisher_propagation,
  ]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push_routes

  project = var.project_id
  name    = each.value.name
  topic   = each.value.topic
  labels  = merge(local.labels, { component = "delivery" })

  ack_deadline_seconds       = local.ack_deadline_seconds
  message_retention_duration = "604800s" # 7 days, the most a subscription keeps unacknowledged messages
  retain_acked_messages      = false

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.worker.uri}${each.value.path}"

    # Signed by the push service account, which may invoke the worker and nothing else.
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.worker.uri
    }
  }

  retry_policy {
    minimum_backoff = local.minimum_backoff
    maximum_backoff = local.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expire, even in a month without uploads
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invokes_worker,
    google_pubsub_topic_iam_member.pubsub_agent_dead_letter_publisher,
  ]
}

# A topic without subscriptions drops what it receives: this one keeps
# dead-lettered messages for inspection and replay (docs/DEPLOY.md).
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
  # Full-length (worker_timeout_seconds) deliveries that may queue ahead of a message before it is
  # dead-lettered: with exponential backoff from 10 s doubling to the 600 s cap (10, 20, ... 320,
  # then 600 s each), every attempt a busy worker answers with 429 counts toward the limit.
  delivery_window_seconds = sum([for i in range(var.max_delivery_attempts - 1) : min(600, 10 * pow(2, i))])
  supported_backlog       = floor(local.delivery_window_seconds * var.worker_max_instances / var.worker_timeout_seconds)
}
