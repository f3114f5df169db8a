"""What the packages offer, registered in one place: routers, jobs, authenticators, privacy
hooks, verify checks, the outbox's consumer and what runs when a programme is applied.

The packages do not import each other to find out who plugs into them: each offers a
registry (``core.auth.use_identity``, ``security.identity.use_api_keys`` and
``register_authenticator``, ``members.privacy.register_exporter``, ``register_eraser``,
``use_ledger`` and ``use_purchases``, ``members.service.use_card_codes`` and
``on_enrolled``, ``purchases.hooks.register``, ``tiers.service.use_purchase_history`` and
its ``rules`` twin, ``security.velocity.use_purchases``, ``ledger.verify.register_check``,
``events.service.use_consumer``, ``program.service.on_apply``,
``security.rotation.use_metadata``, the ``@job`` decorator of ``core.jobs``) and this
module, on top of every layer, fills them. ``create_app`` calls
``wire`` and ``install``; the commands of ``kopilka`` that run domain code call ``wire``.
Adding a capability means a line here, not an import from one domain into another
(ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI

from kopilka.adjustments.api import members_router as member_adjustments_router
from kopilka.adjustments.api import router as adjustments_router
from kopilka.apikeys import service as apikeys
from kopilka.apikeys.api import router as apikeys_router
from kopilka.audit.api import router as audit_router
from kopilka.challenges import service as challenges
from kopilka.challenges.api import router as challenges_router
from kopilka.challenges.hook import HOOK as challenge_hook
from kopilka.challenges.report_api import reports_router as challenge_reports_router
from kopilka.challenges.report_api import router as challenge_console_router
from kopilka.console import auth as console_auth
from kopilka.core.auth import use_identity
from kopilka.coupons import jobs as coupons_jobs
from kopilka.coupons.api import router as coupons_router
from kopilka.custom_events import service as custom_events
from kopilka.custom_events.api import router as custom_events_router
from kopilka.events.service import use_consumer
from kopilka.health.api import router as health_router
from kopilka.leaderboards import jobs as leaderboards_jobs
from kopilka.leaderboards import service as leaderboards
from kopilka.leaderboards.api import router as leaderboards_router
from kopilka.leaderboards.hook import HOOK as leaderboard_hook
from kopilka.ledger import jobs as ledger_jobs
from kopilka.ledger import notices as ledger_notices
from kopilka.ledger import service as ledger
from kopilka.ledger.api import router as ledger_router
from kopilka.ledger.verify import register_check
from kopilka.memberapp import api as memberapp_api
from kopilka.memberapp import jobs as memberapp_jobs
from kopilka.memberapp import service as memberapp
from kopilka.memberapp.api import router as memberapp_router
from kopilka.members import privacy
from kopilka.members import service as members
from kopilka.members.api import router as members_router
from kopilka.models import metadata as every_table
from kopilka.program import service as program
from kopilka.program.api import router as program_router
from kopilka.purchases import figures as purchase_figures
from kopilka.purchases import hooks as receipt_hooks
from kopilka.purchases import jobs as purchases_jobs
from kopilka.purchases import queries as purchases
from kopilka.purchases.api import router as purchases_router
from kopilka.purchases.api import simulation_router
from kopilka.purchases.checks import purchase_checks
from kopilka.referrals import jobs as referrals_jobs
from kopilka.referrals import service as referrals
from kopilka.referrals.api import reports_router as referral_reports_router
from kopilka.referrals.api import router as referrals_router
from kopilka.referrals.hook import HOOK as referral_hook
from kopilka.reports import jobs as reports_jobs
from kopilka.reports import service as reports
from kopilka.reports.api import router as reports_router
from kopilka.rewards import service as rewards
from kopilka.rewards.api import router as rewards_router
from kopilka.rewards.checks import reward_checks
from kopilka.rules import service as rules
from kopilka.rules.api import router as rules_router
from kopilka.security import identity, rotation, velocity
from kopilka.security import jobs as security_jobs
from kopilka.security.api import router as security_router
from kopilka.tiers import jobs as tiers_jobs
from kopilka.tiers import service as tiers
from kopilka.tiers.api import router as tiers_router
from kopilka.web.admin.views import mount as mount_console
from kopilka.web.app.views import mount as mount_member_app
from kopilka.web.docs import mount as mount_api_docs
from kopilka.webhooks import service as webhooks
from kopilka.webhooks.api import router as webhooks_router
from kopilka.worker.api import router as jobs_router
from kopilka.worker.metrics import router as metrics_router

# The routers of /api/v1, the till's purchases first: a request is matched against the
# routes in this order (FastAPI 0.165 also walks every router nested under the one it
# matches, so each is included into the app directly rather than under an /api/v1
# router: 0.33 -> 0.25 ms of CPU per purchase request through the stack, in-process).
API_ROUTERS: tuple[APIRouter, ...] = (
    purchases_router,
    members_router,
    ledger_router,
    member_adjustments_router,
    adjustments_router,
    custom_events_router,
    program_router,
    rules_router,
    simulation_router,
    apikeys_router,
    audit_router,
    security_router,
    webhooks_router,
    jobs_router,
    coupons_router,
    referral_reports_router,
    challenge_reports_router,
    challenge_console_router,
    reports_router,
    memberapp_router,
    tiers_router,
    referrals_router,
    # --- leaderboards ---
    leaderboards_router,
    rewards_router,
    challenges_router,
)

# The modules whose ``@job`` functions ``kopilka worker`` runs: importing one registers its
# jobs (``kopilka.core.jobs``).
JOB_MODULES: tuple[ModuleType, ...] = (
    coupons_jobs,
    ledger_jobs,
    ledger_notices,
    memberapp_jobs,
    purchases_jobs,
    referrals_jobs,
    reports_jobs,
    security_jobs,
    tiers_jobs,
    # --- leaderboards ---
    leaderboards_jobs,
)

# Ways to recognise a caller without an API key, asked in this order.
AUTHENTICATORS: tuple[tuple[str, identity.Authenticator], ...] = (
    (console_auth.NAME, console_auth.authenticate),
    (memberapp_api.AUTHENTICATOR, memberapp_api.authenticate),
)

# What each part holds about a member: its section of a member's export, and its eraser
# (``kopilka.members.privacy``).
PRIVACY_HOOKS: tuple[tuple[str, Callable[..., Any], Callable[..., None]], ...] = (
    ("member_app", memberapp.export_devices, memberapp.erase_devices),
    ("custom_events", custom_events.export_events, custom_events.erase_events),
    ("referrals", referrals.export_referrals, referrals.erase_referrals),
    # --- leaderboards ---
    ("leaderboards", leaderboards.export_leaderboards, leaderboards.erase_leaderboards),
    ("rewards", rewards.export_claims, rewards.erase_claims),
    ("challenges", challenges.export_member, challenges.erase_member),
)


def wire() -> None:
    """Fill every registry of the packages (idempotent: each registers by name or once)."""
    use_identity(identity.cached_principal, identity.resolve_principal)
    identity.use_api_keys(apikeys.cached, apikeys.authenticate)
    for name, authenticate in AUTHENTICATORS:
        identity.register_authenticator(name, authenticate)
    for name, exporter, eraser in PRIVACY_HOOKS:
        privacy.register_exporter(name, exporter)
        privacy.register_eraser(name, eraser)
    register_check(purchase_checks)
    program.on_apply(rules.sync_versions)
    members.use_card_codes(memberapp.resolve_card_code)
    members.on_enrolled(referrals.on_enrolled)
    receipt_hooks.register(referral_hook)
    # GET /reports/referrals, /reports/challenges: their domains' own routes
    reports.served_elsewhere("referrals")
    reports.served_elsewhere("challenges")
    # --- rewards ---
    receipt_hooks.register(rewards.HOOK)
    receipt_hooks.register_hold(rewards.HOOK)
    register_check(reward_checks)
    purchase_figures.use_reward_stock(rewards.stock_left)
    # what tiers, rules and the velocity checks read of purchases (the purchases package
    # moves tiers and draws on rules, so neither can import it)
    tiers.use_purchase_history(purchases)
    rules.use_purchase_history(purchases)
    velocity.use_purchases(purchases.recent_of_members)
    privacy.use_ledger(ledger.export_member)
    privacy.use_purchases(purchases.export_member)
    use_consumer(webhooks)
    rotation.use_metadata(every_table)
    # --- leaderboards ---
    receipt_hooks.register(leaderboard_hook)
    wire_challenges()


def install(app: FastAPI) -> None:
    """Put every router and page of Kopilka on ``app``: ``/api/v1``, health and metrics,
    the console, the member app and the API's docs."""
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v1")
    app.include_router(health_router)
    app.include_router(metrics_router)
    mount_console(app)
    mount_member_app(app)
    mount_api_docs(app)


# --- challenges ---


def wire_challenges() -> None:
    """The challenges' receipt hook, and what custom events and referrals tell them."""
    receipt_hooks.register(challenge_hook)
    custom_events.on_recorded(challenges.on_event)
    referrals.on_qualification(challenges.on_referral)
