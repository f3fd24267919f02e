"""The concierge workflow: requests, claims, offers, payments, messages, users, the audit trail.

No HTTP here: services take a database session factory and plain values, and raise typed errors
(`workflow.errors`) that the web layer maps to status codes.
"""
