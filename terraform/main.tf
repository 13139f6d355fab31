# Voice-cloning service on Cloud Run: one container image, two services.
#
#   gs://INPUT --OBJECT_FINALIZE--> topic <prefix>-storage-events --push--> worker POST /storage
#   worker --render/assemble tasks--> topic <prefix>-tasks --push--> worker POST /tasks
#   worker --job events--> topic <prefix>-job-events (users subscribe; no subscription of ours)
#   undeliverable pushes --> topic <prefix>-dead-letter --> <prefix>-dead-letter-inspect (kept, alerted on)
#   worker --> gs://OUTPUT + Firestore; frontends --> Firestore users/<uid>/{jobs,voices} (read-only, rules)
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

  repository_id        = "${local.prefix}-images"
  worker_service_name  = "${local.prefix}-worker"
  api_service_name     = "${local.prefix}-api"
  storage_events_topic = "${local.prefix}-storage-events"
  tasks_topic          = "${local.prefix}-tasks"
  job_events_topic     = "${local.prefix}-job-events"
  dead_letter_topic    = "${local.prefix}-dead-letter"
  dead_letter_sub      = "${local.prefix}-dead-letter-inspect"
  failed_jobs_metric   = "${local.prefix}_failed_jobs"

  worker_sa_id = "${local.prefix}-worker"
  api_sa_id    = "${local.prefix}-api"
  push_sa_id   = "${local.prefix}-push"

  firestore_location = coalesce(var.firestore_location, var.region)
  # Security rules are released per database: "cloud.firestore" for (default),
  # "cloud.firestore/<id>" for a named database.
  rules_release_name = var.firestore_database_name == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.firestore_database_name}"

  worker_image  = coalesce(var.worker_image, var.image)
  worker_cpu    = var.gpu ? var.gpu_cpu : var.worker_cpu
  worker_memory = var.gpu ? var.gpu_memory : var.worker_memory

  # Cloud Run's CPU/memory table (configuring/services/cpu and memory-limits): the memory a
  # CPU count allows, in MiB. 1 vCPU: up to 4 GiB; 2: up to 8; 4: 2-16; 6: 4-24; 8: 4-32.
  memory_min_mib    = { "1" = 512, "2" = 512, "4" = 2048, "6" = 4096, "8" = 4096 }
  memory_max_mib    = { "1" = 4096, "2" = 8192, "4" = 16384, "6" = 24576, "8" = 32768 }
  worker_memory_mib = tonumber(trimsuffix(trimsuffix(local.worker_memory, "Gi"), "Mi")) * (endswith(local.worker_memory, "Gi") ? 1024 : 1)
  api_memory_mib    = tonumber(trimsuffix(trimsuffix(var.http_api_memory, "Gi"), "Mi")) * (endswith(var.http_api_memory, "Gi") ? 1024 : 1)

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
    VOICECLONING_RETENTION_DAYS        = tostring(var.retention_days)
  }

  # on_push: POST /storage (Cloud Storage notifications) and POST /tasks (part tasks), both Pub/Sub push bodies.
  # VOICECLONING_WEBHOOK_SECRET comes from Secret Manager (run.tf) when var.webhook_secret_id is set.
  worker_env = merge(local.common_env, {
    FUNCTION_TARGET           = "on_push"
    VOICECLONING_DEVICE       = var.gpu ? "cuda" : "cpu"
    VOICECLONING_THREADS      = tostring(coalesce(var.threads, tonumber(local.worker_cpu)))
    VOICECLONING_TASKS_TOPIC  = google_pubsub_topic.tasks.id
    VOICECLONING_EVENTS_TOPIC = google_pubsub_topic.job_events.id
  })

  # Plus the web page's settings (voicecloning/web_settings.py). FIREBASE_AUTH_EMULATOR_HOST is never set here.
  api_env = merge(local.common_env, {
    FUNCTION_TARGET                  = "http_api"
    VOICECLONING_DEVICE              = "cpu"
    VOICECLONING_THREADS             = tostring(coalesce(var.threads, tonumber(var.http_api_cpu)))
    VOICECLONING_CORS_ORIGINS        = local.cors_origins
    VOICECLONING_FIREBASE_PROJECT    = var.project_id
    VOICECLONING_MAX_UPLOAD_BYTES    = tostring(var.max_upload_bytes)
    VOICECLONING_UPLOAD_BUFFER_BYTES = tostring(var.upload_buffer_bytes)
  })

  services = setunion(
    [
      "artifactregistry.googleapis.com",
      "firebaserules.googleapis.com",
      "firestore.googleapis.com",
      "iam.googleapis.com",
      "logging.googleapis.com",
      "monitoring.googleapis.com",
      "pubsub.googleapis.com",
      "run.googleapis.com",
      "storage.googleapis.com",
    ],
    var.webhook_secret_id == null ? [] : ["secretmanager.googleapis.com"],
    var.enable_firebase || var.enable_web ? ["firebase.googleapis.com"] : [],
    # Firebase Hosting (firebase deploy) and Firebase Authentication / Identity Platform.
    var.enable_web ? ["firebasehosting.googleapis.com", "identitytoolkit.googleapis.com"] : [],
  )
}

locals {
  # Docker versions are named by digest: the ones var.image / var.worker_image pin (@sha256:...).
  deployed_digests = distinct([
    for image in compact([var.image, var.worker_image]) : regex("@(sha256:[0-9a-f]{64})$", image)[0]
    if can(regex("@(sha256:[0-9a-f]{64})$", image))
  ])
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

  # Cleanup deletes untagged images after a while, but a revision may still run an untagged
  # digest (a tag moved on, the service was not redeployed): KEEP policies win over DELETE ones,
  # so the digests deployed by this module and the most recent versions are never deleted.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.artifact_untagged_retention_days * 86400}s"
    }
  }
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.artifact_keep_recent_versions
    }
  }
  dynamic "cleanup_policies" {
    for_each = length(local.deployed_digests) > 0 ? ["keep-deployed"] : []
    content {
      id     = cleanup_policies.value
      action = "KEEP"
      condition {
        tag_state             = "ANY"
        version_name_prefixes = local.deployed_digests
      }
    }
  }

  depends_on = [google_project_service.apis]
}
