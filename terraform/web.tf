# The web page (docs/WEB.md), when enable_web = true: a Firebase web app,
# email + password sign-in, and the values of the page's config.json (output
# web_config). The page sends a Firebase ID token to the HTTP API, which
# verifies it itself (firebase-admin fetches Google's public keys; no IAM role
# needed), so the API must let unauthenticated requests reach it: enable_web
# requires http_api_public = true (precondition on the API service, run.tf).
# The static files are deployed with `firebase deploy --only hosting` or to a
# bucket behind a load balancer (docs/DEPLOY.md), not by Terraform.

locals {
  # Firebase Hosting's default origins: the CORS origins when enable_web is on and web_origins is empty.
  firebase_hosting_origins = ["https://${var.project_id}.web.app", "https://${var.project_id}.firebaseapp.com"]
  web_origins              = var.enable_web && length(var.web_origins) == 0 ? local.firebase_hosting_origins : var.web_origins
  cors_origins             = join(",", local.web_origins)
}

resource "google_firebase_web_app" "this" {
  count    = var.enable_web ? 1 : 0
  provider = google-beta

  project      = var.project_id
  display_name = "${local.prefix} voice cloning page"
  # With protection on, destroy only forgets the app: deleting it would break the deployed page's config.json.
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_firebase_project.this, google_project_service.apis]
}

data "google_firebase_web_app_config" "this" {
  count    = var.enable_web ? 1 : 0
  provider = google-beta

  project    = var.project_id
  web_app_id = google_firebase_web_app.this[0].app_id
}

# Firebase Authentication (Identity Platform): email + password sign-in only.
# Created once per project and never deleted by the API: destroy only forgets it.
resource "google_identity_platform_config" "this" {
  count = var.enable_web ? 1 : 0

  project = var.project_id

  sign_in {
    allow_duplicate_emails = false

    email {
      enabled           = true
      password_required = true
    }
  }

  # The page has no sign-up form, but the public apiKey would let anyone create an
  # account through the Auth REST API, and every account may clone voices and run jobs.
  client {
    permissions {
      disabled_user_signup = !var.web_self_signup
    }
  }

  depends_on = [google_firebase_project.this, google_project_service.apis]
}
