# Minimal deployment of the voice-cloning service with the module in ../..
#
#   cd terraform/examples/basic
#   cp terraform.tfvars.example terraform.tfvars   # then edit it
#   terraform init && terraform apply
#
# See docs/DEPLOY.md for the order (repository, image, then everything).
# Credentials: `gcloud auth application-default login` plus a quota project
# (docs/DEPLOY.md step 0); the providers bill API calls to var.project_id.

terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.42, < 8.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.42, < 8.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9, < 1.0"
    }
  }
}

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region for every regional resource."
  type        = string
  default     = "europe-west1"
}

variable "image" {
  description = "Image URI built from Dockerfile and pushed to the module's Artifact Registry repository."
  type        = string
}

variable "worker_image" {
  description = "Optional Dockerfile.gpu image for the worker when gpu = true."
  type        = string
  default     = null
}

variable "gpu" {
  description = "Run the worker on an NVIDIA L4 GPU."
  type        = bool
  default     = false
}

variable "gpu_instance_quota" {
  description = "With gpu = true: the Cloud Run L4 GPU quota granted in the region (none by default; request it)."
  type        = number
  default     = 0
}

variable "worker_max_instances" {
  description = "Parts rendered at once (worker instances, concurrency 1 each)."
  type        = number
  default     = 5
}

variable "alert_email" {
  description = "Optional e-mail address for alerts."
  type        = string
  default     = null
}

variable "enable_firebase" {
  description = "Add Firebase to the project; leave false if it is already a Firebase project."
  type        = bool
  default     = false
}

variable "enable_web" {
  description = "Deploy the web page's Firebase app and email + password sign-in, and make the HTTP API public (the page calls it with Firebase ID tokens)."
  type        = bool
  default     = false
}

variable "web_origins" {
  description = "Origins the web page is served from; empty: the Firebase Hosting origins of the project."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect Cloud Run services and Firestore from deletion; set false and apply before destroy."
  type        = bool
  default     = true
}

# With user credentials (application-default login), the Firebase and Identity Platform
# APIs refuse calls without a quota project: bill every call to the project itself.
provider "google" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

module "voicecloning" {
  source = "../.."

  project_id           = var.project_id
  region               = var.region
  image                = var.image
  worker_image         = var.worker_image
  gpu                  = var.gpu
  gpu_instance_quota   = var.gpu_instance_quota
  worker_max_instances = var.worker_max_instances
  alert_email          = var.alert_email
  deletion_protection  = var.deletion_protection

  enable_firebase = var.enable_firebase
  enable_web      = var.enable_web
  http_api_public = var.enable_web # the web page requires a public API
  web_origins     = var.web_origins

  labels = {
    env = "dev"
  }
}

output "input_bucket" {
  description = "Upload voices/<id>.<ext> and requests/<id>.json here."
  value       = module.voicecloning.input_bucket
}

output "output_bucket" {
  description = "Synthesised audio and voice latents."
  value       = module.voicecloning.output_bucket
}

output "artifact_registry_repository" {
  description = "Push images here."
  value       = module.voicecloning.artifact_registry_repository
}

output "http_api_url" {
  description = "URL of the HTTP API."
  value       = module.voicecloning.http_api_url
}

output "job_events_topic" {
  description = "Subscribe to this topic to follow jobs."
  value       = module.voicecloning.job_events_topic
}

output "dead_letter_subscription" {
  description = "Dead-lettered deliveries, kept for inspection."
  value       = module.voicecloning.dead_letter_subscription
}

output "supported_backlog" {
  description = "Full-length deliveries that can wait before one is dead-lettered."
  value       = module.voicecloning.supported_backlog
}

output "web_config" {
  description = "The web page's config.json (null unless enable_web): terraform output -json web_config > web/public/config.json"
  value       = module.voicecloning.web_config
}

output "web_origins" {
  description = "Origins the HTTP API accepts cross-origin calls from: the page must be served from one of them."
  value       = module.voicecloning.web_origins
}
