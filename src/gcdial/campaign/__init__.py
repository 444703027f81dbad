"""Bulk dialing: a contact list dialed once per contact, within the rules, resumable after a crash.

Modules, in the order data flows: ``csvinput`` (read and validate the list), ``rules`` (do-not-call,
calling window, retries), ``journal`` (the durable record), ``pacing`` (agents and order),
``report`` (status and per-contact report).
"""
