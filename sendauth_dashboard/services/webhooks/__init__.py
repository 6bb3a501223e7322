"""Outgoing webhooks (Standard Webhooks): endpoints, payloads, the queue and its sender, and
the SSRF guard every send passes."""
