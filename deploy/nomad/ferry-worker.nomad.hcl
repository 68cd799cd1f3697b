# ferry-worker.nomad.hcl -- the ferry worker fleet on Nomad (docker driver).
#   nomad var put nomad/jobs/ferry-worker aws_access_key_id=... \
#       aws_secret_access_key=... redis_password=...
#   nomad job run -var image=registry.example.com/ferry:0.1.0 -var count=4 ferry-worker.nomad.hcl
# Workers are stateless consumers in Kafka group "ferry-workers": scale with
# `count` (never above the partitions of ferry.dataset.onboard). Secrets come from
# Nomad Variables at the job's own path, readable only by this job's tasks, and
# are rendered into the task's secrets/ directory -- never into the job file.

variable "image" {
  type        = string
  description = "The ferry image built from deploy/docker/Dockerfile"
  default     = "registry.example.com/ferry:0.1.0"
}

variable "count" {
  type        = number
  description = "Workers; at most the partition count of ferry.dataset.onboard"
  default     = 3
}

variable "kafka_brokers" {
  type    = string
  default = "kafka-0.service.consul:9092,kafka-1.service.consul:9092"
}

variable "redis_url" {
  type    = string
  default = "redis://redis.service.consul:6379/0"
}

variable "s3_endpoint" {
  type    = string
  default = "https://s3.amazonaws.com"
}

job "ferry-worker" {
  type        = "service"
  datacenters = ["*"]

  # Replace one worker at a time: each replacement is a checkpointed hand-over.
  update {
    max_parallel     = 1
    min_healthy_time = "30s"
    healthy_deadline = "5m"
    auto_revert      = true
  }

  group "worker" {
    count = var.count

    network {
      port "http" {
        to = 9464
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    # /healthz: the process is alive; /readyz: in the group and Kafka, Redis and
    # S3 reachable. Scrape /metrics from the same port.
    service {
      name     = "ferry-worker"
      provider = "nomad"
      port     = "http"
      tags     = ["metrics"]

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "20s"
        timeout  = "5s"
      }

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "5s"
      }
    }

    task "worker" {
      driver = "docker"

      # SIGTERM: the worker checkpoints and leaves the group within
      # shutdown.timeout_ms (30 s, below); Nomad sends SIGKILL only after kill_timeout.
      kill_signal  = "SIGTERM"
      kill_timeout = "45s"

      config {
        image           = var.image
        entrypoint      = ["ferry-worker"]
        args            = ["run", "--config", "/local/worker.conf"]
        ports           = ["http"]
        readonly_rootfs = true
        cap_drop        = ["ALL"]
        security_opt    = ["no-new-privileges"]

        mount {
          type   = "tmpfs"
          target = "/tmp"
          tmpfs_options {
            size = 67108864
          }
        }
      }

      env {
        FERRY_HTTP_LISTEN         = "0.0.0.0:9464"
        FERRY_WORKER_ID           = "${NOMAD_JOB_NAME}-${NOMAD_ALLOC_INDEX}-${NOMAD_SHORT_ALLOC_ID}"
        FERRY_KAFKA_BROKERS       = var.kafka_brokers
        FERRY_REDIS_URL           = var.redis_url
        FERRY_S3_ENDPOINT         = var.s3_endpoint
        FERRY_REDIS_PASSWORD_FILE = "/secrets/redis-password"
        FERRY_LOG_FORMAT          = "json"
      }

      # Settings (ferry's key=value format; `ferry-worker --help` lists the keys).
      template {
        destination = "local/worker.conf"
        change_mode = "restart"
        data        = <<-EOT
          worker.group=ferry-workers
          worker.concurrency=2
          copy.max_in_flight=256
          lease.ttl_ms=30000
          retry.max_attempts=6
          shutdown.timeout_ms=30000
          log.level=info
        EOT
      }

      # S3 credentials as environment (the only way besides a credentials file).
      template {
        destination = "secrets/s3.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ferry-worker" -}}
          AWS_ACCESS_KEY_ID={{ .aws_access_key_id }}
          AWS_SECRET_ACCESS_KEY={{ .aws_secret_access_key }}
          {{- end }}
        EOT
      }

      template {
        destination = "secrets/redis-password"
        perms       = "0400"
        uid         = 10001 # the image's user
        gid         = 10001
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ferry-worker" }}{{ .redis_password }}{{ end }}
        EOT
      }

      resources {
        cpu        = 500
        memory     = 256
        memory_max = 512
      }
    }
  }
}
