# One service account per role-holder, least privilege. Storage access is
# granted on single buckets, never project-wide. Every role has a reason.

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = local.worker_sa_id
  display_name = "Voice cloning worker (Cloud Run, on_object_finalized)"
}

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = local.api_sa_id
  display_name = "Voice cloning HTTP API (Cloud Run, http_api)"
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = local.trigger_sa_id
  display_name = "Voice cloning Eventarc trigger (invokes the worker)"
}

locals {
  worker_project_roles = [
    "roles/datastore.user",          # read/write voices/, jobs/ and users/<uid>/... documents in transactions
    "roles/logging.logWriter",       # structured job logs (the failed-jobs metric reads them)
    "roles/monitoring.metricWriter", # custom metrics from the runtime
  ]

  api_project_roles = [
    "roles/logging.logWriter",       # request logs
    "roles/monitoring.metricWriter", # custom metrics from the runtime
  ]

  trigger_project_roles = [
    "roles/eventarc.eventReceiver", # receive events from the Eventarc-managed Pub/Sub subscription
  ]
}

resource "google_project_iam_member" "worker" {
  for_each = toset(local.worker_project_roles)

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_project_iam_member" "api" {
  for_each = toset(local.api_project_roles)

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.api.email}"
}

resource "google_project_iam_member" "trigger" {
  for_each = toset(local.trigger_project_roles)

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# Worker: read uploads from the input bucket only (clips, request JSON).
resource "google_storage_bucket_iam_member" "worker_input_viewer" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer" # download voices/ and requests/ objects named in events
  member = "serviceAccount:${google_service_account.worker.email}"
}

# Worker: write outputs and voice latents to the output bucket only.
resource "google_storage_bucket_iam_member" "worker_output_admin" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectAdmin" # create/overwrite outputs and latents, with generation preconditions
  member = "serviceAccount:${google_service_account.worker.email}"
}

# HTTP API: the web page's uploads and downloads, always under the caller's
# users/<uid>/ prefix (handlers/uploads.py builds every name from the verified uid).
locals {
  api_bucket_roles = {
    input = {
      bucket = google_storage_bucket.input.name
      role   = "roles/storage.objectUser" # PUT /voices, POST /jobs: write users/<uid>/{voices,requests}/ objects; replacing a clip re-enrolls the voice (old versions kept by versioning)
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

# Trigger: may invoke the worker service and nothing else.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_worker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.worker.location
  name     = google_cloud_run_v2_service.worker.name
  role     = "roles/run.invoker" # Eventarc pushes events to the worker with this identity
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Google-managed service agents.

resource "google_project_iam_member" "gcs_agent_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher" # Cloud Storage publishes object events to Eventarc's Pub/Sub topic
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# The Pub/Sub service agent forwards undeliverable events to the dead-letter topic.
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
  role    = "roles/pubsub.publisher" # move events that exhausted their deliveries to the dead-letter topic
  member  = local.pubsub_agent

  depends_on = [google_project_service_identity.pubsub]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_trigger_subscriber" {
  project      = var.project_id
  subscription = google_eventarc_trigger.object_finalized.transport[0].pubsub[0].subscription
  role         = "roles/pubsub.subscriber" # acknowledge the dead-lettered message on the Eventarc subscription
  member       = local.pubsub_agent

  depends_on = [google_project_service_identity.pubsub]
}
