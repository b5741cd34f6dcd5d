"""Kubernetes support: rendering the kustomize tree and keeping its generated copies in sync."""
