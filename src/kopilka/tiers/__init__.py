"""Member tiers: levels reached by a qualifying metric over a window, grace, manual floors."""
