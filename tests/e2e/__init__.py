"""End-to-end tests: the whole stack (NGINX, replicas, Redis, Prometheus) on loopback."""
