"""Balance adjustments that wait for a second person's approval."""
