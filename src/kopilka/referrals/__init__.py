"""Referrals: a member invites a friend; both are rewarded when the friend's first qualifying
purchase is final, with the fraud checks a till can make (docs/referrals.md)."""
