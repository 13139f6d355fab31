# One service account per role-holder, least privilege. Storage access is
# granted on single buckets and Pub/Sub access on single topics, never
# project-wide. Every role has a reason.
#
# Not granted, on purpose: roles/logging.logWriter and roles/monitoring.metricWriter.
# Cloud Run ships a container's stdout/stderr to Cloud Logging itself (the
# failed-jobs metric reads those entries), and the code writes no custom metrics.

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = local.worker_sa_id
  display_name = "Voice cloning worker (Cloud Run, on_push)"
}

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = local.api_sa_id
  display_name = "Voice cloning HTTP API (Cloud Run, http_api)"
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = local.push_sa_id
  display_name = "Voice cloning Pub/Sub push (signs the OIDC tokens that invoke the worker)"
}

resource "google_project_iam_member" "worker_datastore" {
  project = var.project_id
  role    = "roles/datastore.user" # read/write voices/, jobs/, parts and users/<uid>/... documents in transactions
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Worker: read uploads from the input bucket only (clips, request JSON).
resource "google_storage_bucket_iam_member" "worker_input_viewer" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer" # download and list voices/ and requests/ objects named in events
  member = "serviceAccount:${google_service_account.worker.email}"
}

# Worker: create, read, list, overwrite and delete objects in the output bucket;
# not objectAdmin, which also manages object ACLs / IAM.
resource "google_storage_bucket_iam_member" "worker_output_user" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectUser" # write outputs, parts and latents (overwrite needs delete), remove superseded latents
  member = "serviceAccount:${google_service_account.worker.email}"
}

locals {
  worker_topics = {
    tasks      = google_pubsub_topic.tasks.name
    job_events = google_pubsub_topic.job_events.name
  }
}

resource "google_pubsub_topic_iam_member" "worker_publishes" {
  for_each = local.worker_topics

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher" # publish render/assemble part tasks (tasks) and job notifications (job_events)
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Worker: VOICECLONING_WEBHOOK_SECRET, only when a secret is configured.
resource "google_secret_manager_secret_iam_member" "worker_webhook_secret" {
  count = var.webhook_secret_id == null ? 0 : 1

  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor" # read the webhook signing secret (env VOICECLONING_WEBHOOK_SECRET)
  member    = "serviceAccount:${google_service_account.worker.email}"

  depends_on = [google_project_service.apis]
}

# HTTP API: the web page's uploads and downloads. objectUser lets the API read,
# list, create, overwrite and delete any object of the input bucket; the code
# confines it to the caller's users/<uid>/ prefix (handlers/uploads.py builds
# every name from the verified uid) and only ever creates or replaces objects.
locals {
  api_bucket_roles = {
    input = {
      bucket = google_storage_bucket.input.name
      role   = "roles/storage.objectUser" # PUT /voices, POST /jobs: write users/<uid>/{voices,requests}/ objects; replacing a clip (overwrite = delete + create) re-enrolls the voice, versioning keeps the old one
    }
    output = {
      bucket = google_storage_bucket.output.name
      role   = "roles/storage.objectViewer" # GET /outputs: stream users/<uid>/outputs/ audio back to its owner
    }
  }
}

resource "google_storage_bucket_iam_member" "api" {
  for_each = local.api_bucket_roles

  bucket = each.value.bucket
  role   = each.value.role
  member = "serviceAccount:${google_service_account.api.email}"
}

# Push: may invoke the worker service and nothing else.
resource "google_cloud_run_v2_service_iam_member" "push_invokes_worker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.worker.location
  name     = google_cloud_run_v2_service.worker.name
  role     = "roles/run.invoker" # Pub/Sub pushes /storage and /tasks deliveries with this identity's OIDC token
  member   = "serviceAccount:${google_service_account.push.email}"
}

# Google-managed service agents. The Cloud Storage agent's publisher role is on
# its topic (pubsub.tf).

# The Pub/Sub service agent forwards undeliverable messages to the dead-letter topic.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.apis]
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher" # move messages that exhausted their deliveries to the dead-letter topic
  member  = local.pubsub_agent

  depends_on = [google_project_service_identity.pubsub]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_source_subscriber" {
  for_each = google_pubsub_subscription.push

  project      = var.project_id
  subscription = each.value.name
  role         = "roles/pubsub.subscriber" # acknowledge the dead-lettered message on its source subscription
  member       = local.pubsub_agent

  depends_on = [google_project_service_identity.pubsub]
}

# Projects created before 8 April 2021: the Pub/Sub service agent also needs
# the token-creator role to mint the push OIDC tokens (granted on the push
# service account only). Newer projects have it built in.
resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  count = var.pubsub_agent_token_creator ? 1 : 0

  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator" # projects before 2021-04-08: Pub/Sub signs the push OIDC tokens as the push service account
  member             = local.pubsub_agent

  depends_on = [google_project_service_identity.pubsub]
}
