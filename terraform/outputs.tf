output "input_bucket" {
  description = "Name of the input (trigger) bucket: upload voices/<id>.<ext> and requests/<id>.json here."
  value       = google_storage_bucket.input.name
}

output "output_bucket" {
  description = "Name of the output bucket: outputs/<job_id>.<fmt>, users/<uid>/outputs/... and voice latents."
  value       = google_storage_bucket.output.name
}

output "firestore_database" {
  description = "Firestore database ID holding voices/, jobs/ and users/<uid>/... documents."
  value       = google_firestore_database.this.name
}

output "artifact_registry_repository" {
  description = "Docker repository path to tag and push images to (REGION-docker.pkg.dev/PROJECT/REPO)."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "worker_service" {
  description = "Name of the worker Cloud Run service (internal ingress, invoked only by the Pub/Sub push subscriptions)."
  value       = google_cloud_run_v2_service.worker.name
}

output "http_api_url" {
  description = "URL of the HTTP API service: GET /health and GET /model/info; with a Firebase ID token PUT /voices/<id>.<ext>, POST /jobs and GET /outputs/<job_id>.<fmt> (the web page's functionsBaseUrl). Callers need roles/run.invoker unless http_api_public = true."
  value       = google_cloud_run_v2_service.api.uri
}

output "web_config" {
  description = "The web page's web/public/config.json when enable_web = true (null otherwise): Firebase apiKey (not a secret), authDomain, projectId, appId, and functionsBaseUrl = the HTTP API URL. Write it with `terraform output -json web_config > web/public/config.json`."
  value = var.enable_web ? {
    apiKey           = data.google_firebase_web_app_config.this[0].api_key
    authDomain       = data.google_firebase_web_app_config.this[0].auth_domain
    projectId        = var.project_id
    appId            = google_firebase_web_app.this[0].app_id
    functionsBaseUrl = google_cloud_run_v2_service.api.uri
  } : null
}

output "web_origins" {
  description = "Origins the HTTP API accepts cross-origin calls from (VOICECLONING_CORS_ORIGINS): the page must be served from one of them."
  value       = local.web_origins
}

output "service_accounts" {
  description = "E-mail addresses of the worker, HTTP API and Pub/Sub push (OIDC invoker) service accounts."
  value = {
    worker = google_service_account.worker.email
    api    = google_service_account.api.email
    push   = google_service_account.push.email
  }
}

output "storage_events_topic" {
  description = "Pub/Sub topic that receives the input bucket's OBJECT_FINALIZE notifications (JSON_API_V1)."
  value       = google_pubsub_topic.storage_events.id
}

output "tasks_topic" {
  description = "Pub/Sub topic of part tasks (render / assemble), published by the worker (VOICECLONING_TASKS_TOPIC) and pushed back to it at /tasks."
  value       = google_pubsub_topic.tasks.id
}

output "job_events_topic" {
  description = "Pub/Sub topic of job notifications (VOICECLONING_EVENTS_TOPIC): subscribe to it to follow jobs; the module creates no subscription."
  value       = google_pubsub_topic.job_events.id
}

output "push_subscriptions" {
  description = "The worker's push subscriptions (storage, tasks): 600 s ack deadline, exponential retry, dead-letter policy, OIDC."
  value       = { for k, s in google_pubsub_subscription.push : k => s.id }
}

output "dead_letter_topic" {
  description = "Pub/Sub topic that receives messages after max_delivery_attempts failed deliveries."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull subscription that keeps dead-lettered messages for inspection and replay."
  value       = google_pubsub_subscription.dead_letter.id
}

output "supported_backlog" {
  description = "Full-length deliveries (worker_timeout_seconds each) that can queue ahead of a message before it is dead-lettered, from max_delivery_attempts, the retry policy and worker_max_instances."
  value       = local.supported_backlog
}
