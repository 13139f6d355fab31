resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == null ? 0 : 1

  project      = var.project_id
  display_name = "${local.prefix} alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  user_labels = local.labels

  depends_on = [google_project_service.apis]
}

locals {
  alert_channels = concat(google_monitoring_notification_channel.email[*].id, var.notification_channels)
}

# Counts worker log entries that record a failed job.
resource "google_logging_metric" "failed_jobs" {
  project     = var.project_id
  name        = local.failed_jobs_metric
  description = "Jobs the voice cloning worker recorded as failed."
  filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${local.worker_service_name}\"",
    "(jsonPayload.status=\"failed\" OR jsonPayload.message=\"job failed\" OR textPayload:\"job failed\")",
  ])

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Failed voice cloning jobs"
  }

  depends_on = [google_project_service.apis]
}

# A new log-based metric takes minutes to become visible to Cloud Monitoring:
# an alert policy created at once fails with 404 "Cannot find metric(s)".
resource "time_sleep" "failed_jobs_metric_visible" {
  create_duration = "180s"

  triggers = {
    metric = google_logging_metric.failed_jobs.id
  }
}

resource "google_monitoring_alert_policy" "failed_jobs" {
  project               = var.project_id
  display_name          = "${local.prefix}: voice cloning jobs failed"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "Failed jobs in 5 minutes > ${var.failed_jobs_alert_threshold}"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.failed_jobs.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.failed_jobs_alert_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Jobs were recorded as failed (bad input or retries exhausted). Read the `error` field of the job documents and the worker logs: `resource.labels.service_name=\"${local.worker_service_name}\" jsonPayload.status=\"failed\"`."
  }

  depends_on = [time_sleep.failed_jobs_metric_visible]
}

locals {
  push_subscription_ids = join(", ", [for s in google_pubsub_subscription.push : "\"${s.name}\""])
}

# Messages that exhausted max_delivery_attempts on either push subscription, and
# any left unhandled in the dead-letter subscription.
resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${local.prefix}: deliveries dead-lettered"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "Messages dead-lettered from ${local.storage_events_topic}-push or ${local.tasks_topic}-push"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=one_of(${local.push_subscription_ids})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "Undelivered messages in ${local.dead_letter_sub} > 0"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pub/Sub deliveries (storage events or part tasks) exhausted max_delivery_attempts and were dead-lettered to ${local.dead_letter_topic}. Inspect them with `gcloud pubsub subscriptions pull ${local.dead_letter_sub} --limit=10 --format=json` (docs/DEPLOY.md, \"Retries and dead letters\")."
  }
}
