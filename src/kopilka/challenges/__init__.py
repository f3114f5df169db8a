"""Challenges and badges (issue 22)."""
