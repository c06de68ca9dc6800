"""A test sign-in's result as the wizard stores and shows it: claims received, and the decision."""

from __future__ import annotations

from typing import Any

from vestibule.accounts.models import Project
from vestibule.domain import rehearsal as outcomes
from vestibule.domain.pipeline import Action
from vestibule.signin.dry_run import DryRun

__all__ = ["outcome_of"]

_LABELS = {
    outcomes.SIGN_IN: "Would sign in an existing person",
    outcomes.CREATE: "Would create a new person and sign them in",
    outcomes.PENDING_APPROVAL: "Would create the person, waiting for an administrator's approval",
    outcomes.REFUSED: "Would refuse the sign-in",
}


def outcome_of(run: DryRun) -> dict[str, Any]:
    """JSON for ``SetupLink.last_test``: nothing here is a secret (the claims are the provider's statement about the tester)."""
    out: dict[str, Any] = {"subject": run.subject or "", "claims": {k: list(v) for k, v in (run.claims or {}).items()}}
    if run.identity is not None:
        i = run.identity
        out["identity"] = {
            "email": i.email,
            "name": i.name,
            "external_id": i.external_id,
            "role_mapping": list(i.role_mapping) if i.role_mapping is not None else None,
            "roles": list(i.roles) if i.roles is not None else None,
        }
    r = run.rehearsal
    outcome = r.outcome if r is not None else outcomes.REFUSED
    out["outcome"] = outcome
    out["outcome_label"] = _LABELS[outcome]
    if r is not None:
        plan = r.plan
        out["existing_person"] = r.existing_person
        out["links_now"] = plan.action is Action.LINK
        out["membership"] = plan.new_membership or ("invitation" if plan.accept_invitation is not None else "existing")
        out["account_roles"] = list(r.account_roles)
        slugs = dict(Project.objects.filter(pk__in={pid for pid, _ in r.project_roles}).values_list("pk", "slug"))
        out["project_roles"] = [[slugs.get(pid, str(pid)), role] for pid, role in r.project_roles]
        out["notes"] = [[note.step, ", ".join(f"{k}={v}" for k, v in note.info)] for note in plan.notes]
    failure = run.failure or (r.failure if r is not None else None)
    if failure is not None:
        out.update(
            code=failure.code,
            title=failure.title,
            message=failure.message,
            step=failure.step,
            expected=failure.expected or "",
            received=failure.received or "",
            fix_in=str(failure.fix_in),
            detail_code=failure.detail_code or "",
        )
    return out
