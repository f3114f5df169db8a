"""Sticker collections and the rewards catalogue (issue 22)."""
