"""Imports every domain's tables so that ``Base.metadata`` is complete (Alembic, tests,
key rotation through ``kopilka.wiring``).

One line per domain; keep them sorted.
"""

import kopilka.adjustments.models
import kopilka.apikeys.models
import kopilka.audit.models
import kopilka.challenges.models
import kopilka.console.models
import kopilka.core.idempotency
import kopilka.core.jobs
import kopilka.coupons.models
import kopilka.custom_events.models
import kopilka.events.models
import kopilka.leaderboards.models
import kopilka.ledger.models
import kopilka.memberapp.models
import kopilka.members.models
import kopilka.program.models
import kopilka.purchases.models
import kopilka.referrals.models
import kopilka.reports.models
import kopilka.rewards.models
import kopilka.rules.models
import kopilka.security.models
import kopilka.tiers.models
import kopilka.users.models
import kopilka.webhooks.models  # noqa: F401
from kopilka.core.db import Base

# Every table of Kopilka, complete once this module is imported.
metadata = Base.metadata
