"""Deployment support: the local stack runner and the templates every target renders."""
