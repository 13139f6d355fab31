# ---------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project ID: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for Cloud Run, Artifact Registry and both buckets. Pick a region with Cloud Run L4 GPUs if gpu = true."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a single Google Cloud region such as europe-west1 (not a multi-region)."
  }
}

variable "name_prefix" {
  description = "Prefix for every resource name (service accounts, services, topics, repository). Keep it short: service account IDs are limited to 30 characters."
  type        = string
  default     = "voiceclone"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name_prefix))
    error_message = "name_prefix must be 2-15 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels added to every resource that supports labels (merged over the module's own app/component labels)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may use lowercase letters, digits, '_' and '-' (max 63 characters)."
  }
}

variable "enable_apis" {
  description = "Enable the Google Cloud APIs this deployment needs. Set false when APIs are managed elsewhere (for example by a project factory)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services and the Firestore database from deletion. Set false and apply before `terraform destroy`."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------

variable "input_bucket_name" {
  description = "Name of the input (trigger) bucket that receives voices/ and requests/. Null: \"<project_id>-<name_prefix>-input\"."
  type        = string
  default     = null

  validation {
    condition     = var.input_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.input_bucket_name))
    error_message = "input_bucket_name must be a valid bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'."
  }
}

variable "output_bucket_name" {
  description = "Name of the output bucket for synthesised audio and voice latents. Must differ from the input bucket. Null: \"<project_id>-<name_prefix>-output\"."
  type        = string
  default     = null

  validation {
    condition     = var.output_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.output_bucket_name))
    error_message = "output_bucket_name must be a valid bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'."
  }
}

variable "bucket_force_destroy" {
  description = "Allow `terraform destroy` to delete the buckets even when they still hold objects. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

variable "retention_days" {
  description = "VOICECLONING_RETENTION_DAYS: keep finished work this many days. The output bucket deletes outputs/, parts/ and users/*/outputs/ audio older than this (voice latents stay), and a Firestore TTL policy deletes job and part documents after their expire_at, which the code sets. 0 keeps everything forever."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 0 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days, 0 or more."
  }
}

variable "input_noncurrent_retention_days" {
  description = "Delete noncurrent (overwritten or deleted) object versions in the versioned input bucket after this many days."
  type        = number
  default     = 7

  validation {
    condition     = var.input_noncurrent_retention_days >= 1 && floor(var.input_noncurrent_retention_days) == var.input_noncurrent_retention_days
    error_message = "input_noncurrent_retention_days must be a whole number of days, 1 or more."
  }
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) used as the default encryption key of both buckets. The key must be in the buckets' region; the module grants the Cloud Storage service agent access to it. Null: Google-managed encryption."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must look like projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

# ---------------------------------------------------------------------------
# Firestore
# ---------------------------------------------------------------------------

variable "firestore_database_name" {
  description = "Firestore database ID. \"(default)\" is the one Firebase client SDKs use without extra configuration."
  type        = string
  default     = "(default)"

  validation {
    condition     = var.firestore_database_name == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database_name))
    error_message = "firestore_database_name must be \"(default)\" or 4-63 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Firestore location: a region (for example europe-west1) or a multi-region (eur3, nam5). Null: var.region. Cannot be changed after creation."
  type        = string
  default     = null
}

variable "firestore_point_in_time_recovery" {
  description = "Enable Firestore point-in-time recovery (7 days of versions; billed as extra storage)."
  type        = bool
  default     = true
}

variable "enable_firebase" {
  description = "Add Firebase to the project (google_firebase_project), which web frontends need to sign users in and read Firestore under the security rules. Leave false if Firebase is already enabled."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Web page (docs/WEB.md, web.tf)
# ---------------------------------------------------------------------------

variable "enable_web" {
  description = "Deploy what the web page needs: a Firebase web app (its settings in the web_config output) and Firebase Authentication with email + password sign-in (Identity Platform). Requires http_api_public = true (the page calls the API with Firebase ID tokens, which the function verifies itself) and Firebase on the project (enable_firebase = true, or already enabled)."
  type        = bool
  default     = false
}

variable "web_self_signup" {
  description = "With enable_web: let anyone create an email + password account through the Firebase Auth API (the page itself has no sign-up form). False: only administrators add users (Firebase console or the Admin API), so only people you invite can clone voices and run jobs."
  type        = bool
  default     = false
}

variable "web_origins" {
  description = "Origins the web page is served from, such as https://voices.example.com (scheme://host[:port], no path or trailing slash); they become VOICECLONING_CORS_ORIGINS of the HTTP API. Empty with enable_web = true: the Firebase Hosting origins https://<project_id>.web.app and https://<project_id>.firebaseapp.com."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.web_origins : can(regex("^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$", o))])
    error_message = "web_origins entries must be origins such as https://voices.example.com: lowercase scheme://host[:port], no path, no trailing slash, no wildcard."
  }
}

# ---------------------------------------------------------------------------
# Container image
# ---------------------------------------------------------------------------

variable "image" {
  description = "Container image URI (tag or, better, digest) built from Dockerfile, used by the HTTP API and, unless worker_image is set, by the worker."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "image must be a full image URI with a tag or digest, such as europe-west1-docker.pkg.dev/PROJECT/REPO/voicecloning:v1."
  }
}

variable "worker_image" {
  description = "Optional image for the worker only, such as the Dockerfile.gpu build when gpu = true. Null: var.image."
  type        = string
  default     = null

  validation {
    condition     = var.worker_image == null || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.worker_image))
    error_message = "worker_image must be a full image URI with a tag or digest."
  }
}

variable "artifact_untagged_retention_days" {
  description = "Artifact Registry cleanup policy: delete untagged images older than this many days, except the digests var.image / var.worker_image pin and the artifact_keep_recent_versions newest."
  type        = number
  default     = 30

  validation {
    condition     = var.artifact_untagged_retention_days >= 1
    error_message = "artifact_untagged_retention_days must be at least 1."
  }
}

variable "artifact_keep_recent_versions" {
  description = "Artifact Registry cleanup policy: never delete the newest this-many versions of each image (rollback targets, revisions still running an older digest)."
  type        = number
  default     = 10

  validation {
    condition     = var.artifact_keep_recent_versions >= 1 && floor(var.artifact_keep_recent_versions) == var.artifact_keep_recent_versions
    error_message = "artifact_keep_recent_versions must be a whole number, 1 or more."
  }
}

# ---------------------------------------------------------------------------
# Worker service (HTTP target on_push: POST /storage, POST /tasks)
# ---------------------------------------------------------------------------

variable "worker_cpu" {
  description = "vCPUs per worker instance without a GPU (Cloud Run CPU limit). Also the default thread count."
  type        = string
  default     = "2"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.worker_cpu)
    error_message = "worker_cpu must be one of 1, 2, 4, 6, 8."
  }
}

variable "worker_memory" {
  description = "Memory per worker instance without a GPU (Cloud Run memory limit, e.g. 4Gi). XTTS-v2 needs about 4 GiB. Must fit worker_cpu in Cloud Run's table: 1 vCPU up to 4Gi, 2 up to 8Gi, 4 from 2Gi to 16Gi, 6 from 4Gi to 24Gi, 8 from 4Gi to 32Gi (checked at plan)."
  type        = string
  default     = "4Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.worker_memory))
    error_message = "worker_memory must be a Kubernetes-style quantity such as 4096Mi or 4Gi."
  }
}

variable "gpu" {
  description = "Run the worker on one NVIDIA L4 GPU (node_selector accelerator nvidia-l4). Requires worker_image (the Dockerfile.gpu build), a region that offers Cloud Run GPUs, and GPU quota (gpu_instance_quota); all checked at plan."
  type        = bool
  default     = false
}

variable "gpu_cpu" {
  description = "vCPUs per worker instance when gpu = true. Cloud Run requires at least 4 with an L4."
  type        = string
  default     = "4"

  validation {
    condition     = contains(["4", "6", "8"], var.gpu_cpu)
    error_message = "gpu_cpu must be 4, 6 or 8 (Cloud Run needs at least 4 vCPUs with an L4 GPU)."
  }
}

variable "gpu_memory" {
  description = "Memory per worker instance when gpu = true. Cloud Run requires at least 16Gi with an L4; at most 16Gi with 4 vCPU, 24Gi with 6, 32Gi with 8."
  type        = string
  default     = "16Gi"

  validation {
    condition     = can(regex("^[0-9]+Gi$", var.gpu_memory)) && try(tonumber(trimsuffix(var.gpu_memory, "Gi")) >= 16 && tonumber(trimsuffix(var.gpu_memory, "Gi")) <= 32, false)
    error_message = "gpu_memory must be 16Gi to 32Gi, written in Gi (e.g. 16Gi, 24Gi)."
  }
}

variable "gpu_instance_quota" {
  description = "With gpu = true: the Cloud Run L4 GPU quota granted to the project in var.region (instances, one GPU each; the no-zonal-redundancy quota when gpu_zonal_redundancy_disabled). There is no quota by default: request it first (docs/DEPLOY.md step 0). worker_max_instances must not exceed it."
  type        = number
  default     = 0

  validation {
    condition     = var.gpu_instance_quota >= 0 && floor(var.gpu_instance_quota) == var.gpu_instance_quota
    error_message = "gpu_instance_quota must be a whole number, 0 or more."
  }
}

variable "gpu_zonal_redundancy_disabled" {
  description = "With gpu = true: true skips zonal redundancy for GPU instances (cheaper, the default GPU quota); false reserves redundant capacity (needs the zonal-redundancy quota)."
  type        = bool
  default     = true
}

variable "worker_min_instances" {
  description = "Minimum worker instances kept warm (0 scales to zero; each warm instance is billed)."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_min_instances >= 0
    error_message = "worker_min_instances must be 0 or more."
  }
}

variable "worker_max_instances" {
  description = "The fan-out width: maximum worker instances, and with concurrency 1 the number of parts (render / assemble tasks, or storage events) processed at once. With gpu = true, at most gpu_instance_quota."
  type        = number
  default     = 5

  validation {
    condition     = var.worker_max_instances >= 1 && var.worker_max_instances <= 1000
    error_message = "worker_max_instances must be between 1 and 1000."
  }
}

variable "worker_timeout_seconds" {
  description = "Request timeout of the worker. A push delivery's ack deadline (its request timeout) is 600 s, Pub/Sub's maximum, and includes a cold start and queueing: the worker's timeout stays at least 60 s below it, or Pub/Sub redelivers work that is still running."
  type        = number
  default     = 540

  validation {
    condition     = var.worker_timeout_seconds >= 60 && var.worker_timeout_seconds <= 540
    error_message = "worker_timeout_seconds must be between 60 and 540 (60 s below the 600 s push ack deadline)."
  }
}

# ---------------------------------------------------------------------------
# HTTP API service (target http_api)
# ---------------------------------------------------------------------------

variable "http_api_cpu" {
  description = "vCPUs per HTTP API instance."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4"], var.http_api_cpu)
    error_message = "http_api_cpu must be 1, 2 or 4."
  }
}

variable "http_api_memory" {
  description = "Memory per HTTP API instance."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.http_api_memory))
    error_message = "http_api_memory must be a Kubernetes-style quantity such as 512Mi or 1Gi."
  }
}

variable "http_api_max_instances" {
  description = "Maximum HTTP API instances."
  type        = number
  default     = 3

  validation {
    condition     = var.http_api_max_instances >= 1
    error_message = "http_api_max_instances must be at least 1."
  }
}

variable "http_api_public" {
  description = "Grant roles/run.invoker to allUsers on the HTTP API: anyone may reach /health and /model/info, and the web page's routes (uploads, jobs, downloads) check Firebase ID tokens themselves. Required by enable_web. Off by default; the worker is never public."
  type        = bool
  default     = false
}

variable "http_api_invokers" {
  description = "Members (e.g. \"group:frontend@example.com\", \"serviceAccount:...\") granted roles/run.invoker on the HTTP API when it is not public."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.http_api_invokers : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", m))])
    error_message = "http_api_invokers must be IAM members such as group:team@example.com; use http_api_public for allUsers."
  }
}

# ---------------------------------------------------------------------------
# Application settings (become VOICECLONING_* environment variables)
# ---------------------------------------------------------------------------

variable "precision" {
  description = "VOICECLONING_PRECISION: auto, fp32, fast, fp16 or bf16."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "fp32", "fast", "fp16", "bf16"], var.precision)
    error_message = "precision must be one of auto, fp32, fast, fp16, bf16."
  }
}

variable "threads" {
  description = "VOICECLONING_THREADS: torch threads per worker. Null: the worker's vCPU count."
  type        = number
  default     = null

  validation {
    condition     = var.threads == null || try(var.threads >= 1, false)
    error_message = "threads must be null or at least 1."
  }
}

variable "max_attempts" {
  description = "VOICECLONING_MAX_ATTEMPTS: attempts the worker makes at one job before recording it as failed."
  type        = number
  default     = 5

  validation {
    condition     = var.max_attempts >= 1 && var.max_attempts <= 100
    error_message = "max_attempts must be between 1 and 100."
  }
}

variable "lease_seconds" {
  description = "VOICECLONING_LEASE_SECONDS: how long a worker's claim on a job lasts before another delivery may take it over."
  type        = number
  default     = 900

  validation {
    condition     = var.lease_seconds >= 60
    error_message = "lease_seconds must be at least 60 (and should exceed worker_timeout_seconds)."
  }
}

variable "max_event_age_seconds" {
  description = "VOICECLONING_MAX_EVENT_AGE_SECONDS: events older than this are acknowledged and dropped instead of retried."
  type        = number
  default     = 86400

  validation {
    condition     = var.max_event_age_seconds >= 600
    error_message = "max_event_age_seconds must be at least 600."
  }
}

variable "require_consent" {
  description = "VOICECLONING_REQUIRE_CONSENT: refuse to enrol a voice unless its upload records the speaker's consent."
  type        = bool
  default     = false
}

variable "max_upload_bytes" {
  description = "VOICECLONING_MAX_UPLOAD_BYTES: largest request body the HTTP API accepts from the web page (bytes). Cloud Run caps an HTTP/1 request at 32 MiB, the default and the maximum."
  type        = number
  default     = 33554432

  validation {
    condition     = var.max_upload_bytes >= 1 && var.max_upload_bytes <= 33554432 && floor(var.max_upload_bytes) == var.max_upload_bytes
    error_message = "max_upload_bytes must be a whole number of bytes between 1 and 33554432 (32 MiB, Cloud Run's request limit)."
  }
}

variable "upload_buffer_bytes" {
  description = "VOICECLONING_UPLOAD_BUFFER_BYTES: upload bytes one HTTP API instance holds at once, all requests together; past it, uploads get 503 with Retry-After. The default (192 MiB, six full-size bodies) fits the default http_api_memory of 1Gi; raise both together."
  type        = number
  default     = 201326592

  validation {
    condition     = var.upload_buffer_bytes >= 1 && floor(var.upload_buffer_bytes) == var.upload_buffer_bytes
    error_message = "upload_buffer_bytes must be a whole number of bytes (at least max_upload_bytes, or large uploads always get 503)."
  }
}

variable "log_level" {
  description = "VOICECLONING_LOG_LEVEL for both services."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

# ---------------------------------------------------------------------------
# Delivery, dead-lettering and alerting
# ---------------------------------------------------------------------------

variable "max_delivery_attempts" {
  description = "Pub/Sub deliveries of one message (storage event or part task) before it is dead-lettered (5-100). A 429 from a busy worker counts as an attempt, so this sizes the backlog that can wait without being dead-lettered: about (sum of the retry waits) x worker_max_instances / worker_timeout_seconds full-length deliveries, the supported_backlog output. The default, 100, with the retry policy (10 s doubling to 600 s) waits about 15.7 h: ~522 deliveries of 540 s at 5 instances."
  type        = number
  default     = 100

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub limits)."
  }
}

variable "dead_letter_retention_days" {
  description = "How long dead-lettered messages stay in the dead-letter subscription for inspection or replay (1-7 days)."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 7
    error_message = "dead_letter_retention_days must be between 1 and 7."
  }
}

variable "alert_email" {
  description = "Optional e-mail address that receives the dead-letter and failed-job alerts. Null: alerts are created without an e-mail channel."
  type        = string
  default     = null

  validation {
    condition     = var.alert_email == null || can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "notification_channels" {
  description = "Existing Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) that also receive the alerts."
  type        = list(string)
  default     = []
}

variable "failed_jobs_alert_threshold" {
  description = "Alert when more than this many jobs fail within 5 minutes (log-based metric on the worker)."
  type        = number
  default     = 0

  validation {
    condition     = var.failed_jobs_alert_threshold >= 0
    error_message = "failed_jobs_alert_threshold must be 0 or more."
  }
}

variable "pubsub_agent_token_creator" {
  description = "Grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator on the push service account. Needed only in projects created before 8 April 2021, where Pub/Sub cannot otherwise sign the push OIDC tokens (pushes then fail with 401/403)."
  type        = bool
  default     = false
}

variable "webhook_secret_id" {
  description = "Optional Secret Manager secret (its ID in this project) whose latest version becomes the worker's VOICECLONING_WEBHOOK_SECRET; the worker's service account gets secretAccessor on it only then. Null: no webhook secret."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.webhook_secret_id))
    error_message = "webhook_secret_id must be a secret ID in this project (letters, digits, '_' and '-'), not a path or version."
  }
}
