terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.42: google_firestore_database.deletion_policy is no longer deprecated; 6.x also has
      # google_cloud_run_v2_service gpu_zonal_redundancy_disabled and node_selector.
      version = ">= 6.42, < 8.0"
    }
    google-beta = {
      source = "hashicorp/google-beta"
      # google_project_service_identity (Pub/Sub service agent), google_firebase_project,
      # google_firebase_web_app and data.google_firebase_web_app_config.
      version = ">= 6.42, < 8.0"
    }
    time = {
      source = "hashicorp/time"
      # time_sleep: wait for IAM grants and new log-based metrics to propagate within one apply.
      version = ">= 0.9, < 1.0"
    }
  }
}
