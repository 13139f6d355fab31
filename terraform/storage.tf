# Two buckets. The input bucket's notifications (pubsub.tf) reach the worker,
# which writes only to the output bucket, so its own writes can never trigger it again.

# Creating this data source also creates the Cloud Storage service agent.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id

  depends_on = [google_project_service.apis]
}

resource "google_kms_crypto_key_iam_member" "gcs_cmek" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter" # Cloud Storage encrypts objects with the buckets' default key
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

locals {
  # Retention (var.retention_days, also VOICECLONING_RETENTION_DAYS for the code):
  # synthesised audio and rendered parts expire here, their Firestore documents
  # by the TTL policy on expire_at (firestore.tf). Voices and their latents stay.
  # Lifecycle prefixes cannot hold wildcards, so users/<uid>/outputs/... is
  # matched as "under users/ and ends in an audio extension": latents under
  # users/<uid>/voices/ are not audio files and survive.
  output_expiry_candidates = {
    outputs = {
      prefixes = ["outputs/", "parts/"]
      suffixes = null
    }
    user_outputs = {
      prefixes = ["users/"]
      suffixes = [".wav", ".mp3", ".ogg", ".opus", ".flac"]
    }
  }
  output_expiry_rules = { for k, v in local.output_expiry_candidates : k => v if var.retention_days > 0 }
}

resource "google_storage_bucket" "input" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (enable Data Access logs for storage.googleapis.com); legacy usage-log buckets add a third bucket to manage.
  project                     = var.project_id
  name                        = local.input_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.bucket_force_destroy
  labels                      = merge(local.labels, { component = "input" })

  # Uploads (reference clips, request JSON) are the only copy of user input: keep overwritten versions for a while.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.input_noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_cmek]
}

resource "google_storage_bucket" "output" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (enable Data Access logs for storage.googleapis.com); legacy usage-log buckets add a third bucket to manage.
  #checkov:skip=CKV_GCP_78:Outputs and voice latents are regenerated from the versioned input bucket and expire by lifecycle rule; versions would only keep deleted audio longer.
  project                     = var.project_id
  name                        = local.output_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.bucket_force_destroy
  labels                      = merge(local.labels, { component = "output" })

  # Synthesised audio expires; voice latents (voices/, users/<uid>/voices/) are kept.
  dynamic "lifecycle_rule" {
    for_each = local.output_expiry_rules
    content {
      condition {
        age            = var.retention_days
        matches_prefix = lifecycle_rule.value.prefixes
        matches_suffix = lifecycle_rule.value.suffixes
      }
      action {
        type = "Delete"
      }
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_cmek]

  lifecycle {
    precondition {
      condition     = local.output_bucket_name != local.input_bucket_name
      error_message = "The output bucket must differ from the input (trigger) bucket, or every output would trigger the worker again."
    }
  }
}
