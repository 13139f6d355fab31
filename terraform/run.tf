# Two Cloud Run services from one image; FUNCTION_TARGET picks the entry point.

resource "google_cloud_run_v2_service" "worker" {
  project             = var.project_id
  name                = local.worker_service_name
  location            = var.region
  description         = "XTTS-v2 worker (on_push): POST /storage (Cloud Storage notifications of the input bucket) and POST /tasks (part tasks), both Pub/Sub pushes."
  labels              = merge(local.labels, { component = "worker" })
  deletion_protection = var.deletion_protection
  # Reachable only from inside the project (Pub/Sub push from the same project counts as internal).
  ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  # Keep the IAM invoker check: only the push service account may call it.
  invoker_iam_disabled = false

  template {
    service_account = google_service_account.worker.email
    # One delivery at a time: the model uses every vCPU (or the GPU) of the instance. A busy
    # service answers 429, which Pub/Sub retries (and counts toward max_delivery_attempts).
    max_instance_request_concurrency = 1
    # Below the 600 s ack deadline of the push subscriptions, with headroom (variables.tf).
    timeout                       = "${var.worker_timeout_seconds}s"
    execution_environment         = "EXECUTION_ENVIRONMENT_GEN2"
    labels                        = merge(local.labels, { component = "worker" })
    gpu_zonal_redundancy_disabled = var.gpu ? var.gpu_zonal_redundancy_disabled : null

    scaling {
      min_instance_count = var.worker_min_instances
      max_instance_count = var.worker_max_instances
    }

    dynamic "node_selector" {
      for_each = var.gpu ? ["nvidia-l4"] : []
      content {
        accelerator = node_selector.value
      }
    }

    containers {
      image = local.worker_image

      resources {
        limits = merge(
          {
            cpu    = local.worker_cpu
            memory = local.worker_memory
          },
          var.gpu ? { "nvidia.com/gpu" = "1" } : {},
        )
        # GPU instances need CPU always allocated; CPU-only work happens inside the request.
        cpu_idle          = !var.gpu
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.worker_env
        content {
          name  = env.key
          value = env.value
        }
      }

      # HMAC key for signing job-event webhooks, only when a secret is configured.
      dynamic "env" {
        for_each = var.webhook_secret_id == null ? [] : [var.webhook_secret_id]
        content {
          name = "VOICECLONING_WEBHOOK_SECRET"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      # functions-framework answers on $PORT once the module is imported; the
      # model itself loads lazily on the first event.
      startup_probe {
        tcp_socket {
          port = 8080
        }
        initial_delay_seconds = 0
        period_seconds        = 5
        timeout_seconds       = 3
        failure_threshold     = 24
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.worker_datastore,
    google_secret_manager_secret_iam_member.worker_webhook_secret,
  ]

  lifecycle {
    precondition {
      condition     = !var.gpu || var.worker_image != null
      error_message = "gpu = true requires worker_image (the Dockerfile.gpu build): var.image is the CPU build, and VOICECLONING_DEVICE=cuda on it would run nothing on the L4."
    }
    precondition {
      condition     = !var.gpu || var.worker_max_instances <= var.gpu_instance_quota
      error_message = "gpu = true requires Cloud Run L4 GPU quota in var.region (there is none by default; request it, docs/DEPLOY.md step 0): set gpu_instance_quota to the quota granted, and worker_max_instances to at most that."
    }
    precondition {
      condition     = local.worker_memory_mib >= local.memory_min_mib[local.worker_cpu] && local.worker_memory_mib <= local.memory_max_mib[local.worker_cpu]
      error_message = "Worker memory does not fit its CPU count in Cloud Run's table: 1 vCPU up to 4Gi, 2 up to 8Gi, 4 from 2Gi to 16Gi, 6 from 4Gi to 24Gi, 8 from 4Gi to 32Gi (gpu_cpu/gpu_memory when gpu = true, else worker_cpu/worker_memory)."
    }
  }
}

resource "google_cloud_run_v2_service" "api" {
  project             = var.project_id
  name                = local.api_service_name
  location            = var.region
  description         = "Voice cloning HTTP API: GET /health, GET /model/info; with a Firebase ID token PUT /voices/<id>.<ext>, POST /jobs, GET /outputs/<job_id>.<fmt>."
  labels              = merge(local.labels, { component = "api" })
  deletion_protection = var.deletion_protection
  ingress             = "INGRESS_TRAFFIC_ALL"

  template {
    service_account                  = google_service_account.api.email
    max_instance_request_concurrency = 20
    timeout                          = "30s"
    labels                           = merge(local.labels, { component = "api" })

    scaling {
      min_instance_count = 0
      max_instance_count = var.http_api_max_instances
    }

    containers {
      image = var.image

      resources {
        limits = {
          cpu    = var.http_api_cpu
          memory = var.http_api_memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.api_env
        content {
          name  = env.key
          value = env.value
        }
      }

      liveness_probe {
        http_get {
          path = "/health"
        }
        period_seconds    = 30
        failure_threshold = 3
      }
    }
  }

  depends_on = [google_project_service.apis]

  lifecycle {
    # Cross-variable checks belong here: variable validations may only refer to other variables from Terraform 1.9.
    precondition {
      condition     = local.api_memory_mib >= local.memory_min_mib[var.http_api_cpu] && local.api_memory_mib <= local.memory_max_mib[var.http_api_cpu]
      error_message = "http_api_memory does not fit http_api_cpu in Cloud Run's table: 1 vCPU up to 4Gi, 2 up to 8Gi, 4 from 2Gi to 16Gi."
    }
    precondition {
      condition     = !var.enable_web || var.http_api_public
      error_message = "enable_web = true requires http_api_public = true: browsers call the HTTP API with a Firebase ID token, which the function verifies itself, so Cloud Run must let unauthenticated requests through (allUsers invoker). The worker stays private either way."
    }
  }
}

# Public access to the HTTP API only when explicitly requested (enable_web requires it).
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  count = var.http_api_public ? 1 : 0

  project  = google_cloud_run_v2_service.api.project
  location = google_cloud_run_v2_service.api.location
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker" # anyone may reach the API (http_api_public = true): /health, /model/info; the web routes check Firebase ID tokens
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "api_invokers" {
  for_each = var.http_api_public ? toset([]) : var.http_api_invokers

  project  = google_cloud_run_v2_service.api.project
  location = google_cloud_run_v2_service.api.location
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker" # named frontends or operators may call the private API
  member   = each.value
}
