"""A login rehearsed: the plan of a login as if the connection were enabled, summarised, applied never.

A setup link's test sign-in (``vestibule.setup``) validates a real response
from the identity provider, then asks what the pipeline *would* do with it:
who would be signed in, created or refused, holding which roles. The plan is
the very one a login computes (:func:`vestibule.domain.plan.plan`); only the
connection's ``enabled`` switch is taken as on, since the connection is
tested before an administrator enables it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vestibule.domain.pipeline import Action, LoginFailure
from vestibule.domain.plan import PENDING, LoginFacts, LoginPlan, plan

__all__ = ["Rehearsal", "rehearse", "SIGN_IN", "CREATE", "PENDING_APPROVAL", "REFUSED"]

#: An existing person would be signed in (linked to this subject now, or already).
SIGN_IN = "sign_in"
#: A new person would be created and signed in.
CREATE = "create"
#: The person (new or joining this account) would be created and wait for an administrator's approval.
PENDING_APPROVAL = "pending_approval"
REFUSED = "refused"


@dataclass(frozen=True)
class Rehearsal:
    outcome: str
    plan: LoginPlan
    # Why not signed in (``outcome`` REFUSED or PENDING_APPROVAL).
    failure: LoginFailure | None
    # Roles the person would hold in the account (role names) and per project (project id, role).
    account_roles: tuple[str, ...] = ()
    project_roles: tuple[tuple[int, str], ...] = ()

    @property
    def existing_person(self) -> bool:
        return self.plan.action in (Action.AUTH, Action.LINK)


def rehearse(facts: LoginFacts) -> Rehearsal:
    login = plan(replace(facts, connection=replace(facts.connection, enabled=True)))
    if login.failure is not None:
        return Rehearsal(REFUSED, login, login.failure)
    account_roles = tuple(sorted({g.role for g in login.grants_after if g.project_id is None}))
    project_roles = tuple(sorted({(g.project_id, g.role) for g in login.grants_after if g.project_id is not None}))
    if login.refusal is not None:
        waiting = login.refusal.code == "sso.pending_approval" or login.new_membership == PENDING
        outcome = PENDING_APPROVAL if waiting else REFUSED
        return Rehearsal(outcome, login, login.refusal, account_roles, project_roles)
    outcome = CREATE if login.create_user else SIGN_IN
    return Rehearsal(outcome, login, None, account_roles, project_roles)
