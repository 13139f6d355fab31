terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.x: google_cloud_run_v2_service gpu_zonal_redundancy_disabled and node_selector.
      version = ">= 6.40, < 8.0"
    }
    google-beta = {
      source = "hashicorp/google-beta"
      # google_project_service_identity (Pub/Sub service agent), google_firebase_project,
      # google_firebase_web_app and data.google_firebase_web_app_config.
      version = ">= 6.40, < 8.0"
    }
  }
}
