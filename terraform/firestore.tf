# Firestore (native mode) holds job, part and voice status documents:
#   voices/<id>, jobs/<id>, users/<uid>/voices/<id>, users/<uid>/jobs/<id>, and the jobs' parts

resource "google_firestore_database" "this" {
  project     = var.project_id
  name        = var.firestore_database_name
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"

  # With protection on, the API refuses to delete the database and Terraform only
  # forgets it on destroy (ABANDON). Turn deletion_protection off and apply first
  # to really delete it.
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.apis]
}

# Frontends list a user's jobs / voices newest first, optionally filtered by status:
#   users/<uid>/jobs where status == "done" order by created_at desc
# An index with query_scope COLLECTION applies to every collection with that ID
# (the "collection group" in the index path), top-level and under users/<uid>.
resource "google_firestore_index" "status_created_at" {
  for_each = toset(["jobs", "voices"])

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# Retention: the code writes expire_at (a timestamp) on job and part documents;
# Firestore deletes them some time after it (usually within a day). A TTL
# policy is per collection group, so "jobs" covers jobs/ and users/<uid>/jobs/.
# The field is exempt from indexing (index_config {}): nothing queries it, and an
# index on an ever-increasing timestamp only costs writes.
resource "google_firestore_field" "expire_at" {
  for_each = var.retention_days > 0 ? toset(["jobs", "parts"]) : toset([])

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value
  field      = "expire_at"

  ttl_config {}
  index_config {}
}

resource "google_firebaserules_ruleset" "firestore" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.apis, google_firestore_database.this]
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = local.rules_release_name
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}

# Firebase client SDKs (sign-in, onSnapshot) need Firebase on the project.
resource "google_firebase_project" "this" {
  count    = var.enable_firebase ? 1 : 0
  provider = google-beta

  project = var.project_id

  depends_on = [google_project_service.apis]
}
