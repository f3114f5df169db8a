"""Leaderboards: members who opted in, ranked by a metric over a period (issue 22, part 3)."""
