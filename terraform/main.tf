# Voice-cloning service on Cloud Run: one container image, two services.
#
#   gs://INPUT  --finalized--> Eventarc --> worker (on_object_finalized) --> gs://OUTPUT + Firestore
#   frontends  --> Firestore users/<uid>/{jobs,voices} (read-only, security rules)
#   http_api (health, model info; with a Firebase ID token: uploads to gs://INPUT
#             users/<uid>/..., downloads from gs://OUTPUT users/<uid>/outputs/)
#   web page (enable_web, web.tf) --> http_api + Firestore
#
# Resource names live in locals below; every other file refers to them.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  prefix = var.name_prefix

  labels = merge(var.labels, {
    app        = "voicecloning"
    managed-by = "terraform"
  })

  input_bucket_name  = coalesce(var.input_bucket_name, "${var.project_id}-${local.prefix}-input")
  output_bucket_name = coalesce(var.output_bucket_name, "${var.project_id}-${local.prefix}-output")

  repository_id       = "${local.prefix}-images"
  worker_service_name = "${local.prefix}-worker"
  api_service_name    = "${local.prefix}-api"
  trigger_name        = "${local.prefix}-object-finalized"
  dead_letter_topic   = "${local.prefix}-dead-letter"
  dead_letter_sub     = "${local.prefix}-dead-letter-inspect"
  failed_jobs_metric  = "${local.prefix}_failed_jobs"

  worker_sa_id  = "${local.prefix}-worker"
  api_sa_id     = "${local.prefix}-api"
  trigger_sa_id = "${local.prefix}-trigger"

  firestore_location = coalesce(var.firestore_location, var.region)
  # Security rules are released per database: "cloud.firestore" for (default),
  # "cloud.firestore/<id>" for a named database.
  rules_release_name = var.firestore_database_name == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.firestore_database_name}"

  worker_image  = coalesce(var.worker_image, var.image)
  worker_cpu    = var.gpu ? var.gpu_cpu : var.worker_cpu
  worker_memory = var.gpu ? var.gpu_memory : var.worker_memory

  # The environment contract of voicecloning/settings.py, shared by both services.
  common_env = {
    VOICECLONING_BACKEND               = "gcp"
    VOICECLONING_INPUT_BUCKET          = google_storage_bucket.input.name
    VOICECLONING_OUTPUT_BUCKET         = google_storage_bucket.output.name
    GOOGLE_CLOUD_PROJECT               = var.project_id
    VOICECLONING_FIRESTORE_DATABASE    = google_firestore_database.this.name
    VOICECLONING_MODEL_DIR             = "/opt/model-fast"
    VOICECLONING_PRECISION             = var.precision
    VOICECLONING_MAX_ATTEMPTS          = tostring(var.max_attempts)
    VOICECLONING_LEASE_SECONDS         = tostring(var.lease_seconds)
    VOICECLONING_MAX_EVENT_AGE_SECONDS = tostring(var.max_event_age_seconds)
    VOICECLONING_REQUIRE_CONSENT       = var.require_consent ? "true" : "false"
    VOICECLONING_LOG_LEVEL             = var.log_level
  }

  worker_env = merge(local.common_env, {
    FUNCTION_TARGET      = "on_object_finalized"
    VOICECLONING_DEVICE  = var.gpu ? "cuda" : "cpu"
    VOICECLONING_THREADS = tostring(coalesce(var.threads, tonumber(local.worker_cpu)))
  })

  # Plus the web page's settings (voicecloning/web_settings.py). FIREBASE_AUTH_EMULATOR_HOST is never set here.
  api_env = merge(local.common_env, {
    FUNCTION_TARGET               = "http_api"
    VOICECLONING_DEVICE           = "cpu"
    VOICECLONING_THREADS          = tostring(coalesce(var.threads, tonumber(var.http_api_cpu)))
    VOICECLONING_CORS_ORIGINS     = local.cors_origins
    VOICECLONING_FIREBASE_PROJECT = var.project_id
    VOICECLONING_MAX_UPLOAD_BYTES = tostring(var.max_upload_bytes)
  })

  services = setunion(
    [
      "artifactregistry.googleapis.com",
      "eventarc.googleapis.com",
      "firebaserules.googleapis.com",
      "firestore.googleapis.com",
      "iam.googleapis.com",
      "logging.googleapis.com",
      "monitoring.googleapis.com",
      "pubsub.googleapis.com",
      "run.googleapis.com",
      "storage.googleapis.com",
    ],
    var.enable_firebase || var.enable_web ? ["firebase.googleapis.com"] : [],
    # Firebase Hosting (firebase deploy) and Firebase Authentication / Identity Platform.
    var.enable_web ? ["firebasehosting.googleapis.com", "identitytoolkit.googleapis.com"] : [],
  )
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.services : toset([])

  project = var.project_id
  service = each.value
  # Other workloads in the project may use these APIs: never switch them off on destroy.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Images hold code and public model weights, no customer data; Google-managed encryption is sufficient.
  project       = var.project_id
  location      = var.region
  repository_id = local.repository_id
  description   = "Container images of the voice-cloning service (Dockerfile, Dockerfile.gpu)."
  format        = "DOCKER"
  labels        = local.labels

  docker_config {
    immutable_tags = false
  }

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.artifact_untagged_retention_days * 86400}s"
    }
  }

  depends_on = [google_project_service.apis]
}
