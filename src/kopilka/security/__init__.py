"""Security: who may call what, abuse limits, encryption of personal data, web hardening.

See ``docs/security.md``.
"""
