"""Policy of a login, on plain facts: no database, no protocol peer (vestibule.domain.plan).

Each named test is an attack or a rule, and asserts the victim's end state as
the plan leaves it: what it would write, and what it refuses. The property
tests below hold for any facts hypothesis builds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vestibule.domain.claims import ClaimMapping
from vestibule.domain.emails import email_domain, email_key
from vestibule.domain.pipeline import Action, AssertedIdentity, MappingRoleGrants
from vestibule.domain.plan import (
    APPROVED,
    MANUAL,
    PASSWORD_LOGIN,
    PENDING,
    SCIM,
    SSO,
    SSO_LOGIN,
    ConnectionFacts,
    Grant,
    InvitationFacts,
    LoginFacts,
    LoginPlan,
    MembershipFacts,
    UserFacts,
    plan,
)
from vestibule.domain.roles import DEFAULT_CATALOG

ACME, BETA = 1, 2
CONN = "c0ffee00-0000-4000-8000-000000000001"
OTHER_CONN = "c0ffee00-0000-4000-8000-000000000002"
OWNERS = {"acme.com": ACME, "acme.io": ACME}


def identity(
    email: str = "alice@acme.com", *, subject: str = "sub-alice", name: str = "Alice", **claims: Any
) -> AssertedIdentity:
    return AssertedIdentity(
        external_id=subject, email=email, email_key=email_key(email), domain=email_domain(email), name=name,
        role_mapping=claims.get("role_mapping"), roles=claims.get("roles"),
    )  # fmt: skip


def connection(**fields: Any) -> ConnectionFacts:
    base: dict[str, Any] = {
        "connection_id": CONN, "account_id": ACME, "enabled": True, "auto_provision": True,
        "provisioned_users_can_login": True, "sso_authorization": False, "mapping": ClaimMapping(), "owners": OWNERS,
    }  # fmt: skip
    return ConnectionFacts(**{**base, **fields})


def person(email: str = "alice@acme.com", **fields: Any) -> UserFacts:
    return UserFacts(**{"id": 7, "email": email, "email_key": email_key(email), "name": "Alice", **fields})


def facts(**fields: Any) -> LoginFacts:
    base: dict[str, Any] = {"connection": connection(), "identity": identity(), "catalog": DEFAULT_CATALOG}
    return LoginFacts(**{**base, **fields})


def linked(user: UserFacts | None = None, **fields: Any) -> LoginFacts:
    """A repeat login: the subject is linked to ``user``, a member here."""
    return facts(linked=True, user=user or person(), membership=MembershipFacts(), **fields)


def codes(p: LoginPlan) -> list[str]:
    return [e.code for e in p.audit]


def assert_writes_nothing(p: LoginPlan) -> None:
    assert p.refused
    assert not (p.create_user or p.create_link or p.upgrade or p.roles or p.access or p.audit)
    assert p.new_email is None and p.new_name is None and p.new_membership is None and p.accept_invitation is None


# ---- Named attacks and rules ---------------------------------------------------


def test_cross_tenant_domain_is_refused_before_anyone_is_looked_at() -> None:
    # beta's provider asserts an acme.com address: acme.com is not one beta's connection serves.
    p = plan(
        facts(
            connection=connection(account_id=BETA, owners={"beta.com": BETA}),
            user=person(),
            membership=MembershipFacts(),
        )
    )
    assert p.failure is not None and p.failure.code == "sso.email_domain_not_owned"
    assert_writes_nothing(p)
    assert [n.step for n in p.notes] == ["claims"]


def test_unclaimed_domain_is_refused() -> None:
    p = plan(facts(identity=identity("mallory@unclaimed.example")))
    assert p.failure is not None and p.failure.code == "sso.email_domain_not_owned"
    assert_writes_nothing(p)


def test_revoked_share_the_linked_persons_address_is_no_longer_served() -> None:
    # Linked while acme shared acme.io with this (sandbox) account; the share is gone.
    sandbox = connection(account_id=BETA, owners={"acme.com": ACME})
    p = plan(linked(person("alice@acme.io"), connection=sandbox))
    assert p.failure is not None and p.failure.code == "sso.email_domain_not_owned"
    assert "a linked user" in (p.failure.received or "")
    assert_writes_nothing(p)


def test_email_change_takeover_across_owners_is_refused() -> None:
    # acme's provider renames its person to an address another account owns.
    conn = connection(owners={**OWNERS, "beta.com": BETA})
    p = plan(linked(person("alice@acme.com"), connection=conn, identity=identity("victim@beta.com")))
    assert p.failure is not None and p.failure.code == "sso.email_change_refused"
    assert_writes_nothing(p)


def test_email_change_through_a_connection_that_is_not_home_is_refused() -> None:
    # beta serves acme.com as a share: only acme's own provider may rename acme's people.
    sandbox = connection(account_id=BETA)
    p = plan(linked(person("alice@acme.com"), connection=sandbox, identity=identity("alice@acme.io")))
    assert p.failure is not None and p.failure.code == "sso.email_change_refused"
    assert_writes_nothing(p)


def test_email_change_within_the_home_owner_follows_unless_the_address_is_taken() -> None:
    p = plan(linked(person("alice@acme.com"), identity=identity("alice@acme.io")))
    assert p.new_email == "alice@acme.io" and "sso.email_changed" in codes(p)
    taken = plan(linked(person("alice@acme.com"), identity=identity("alice@acme.io"), new_email_taken=True))
    assert not taken.refused and taken.new_email is None and "sso.email_changed" not in codes(taken)


def test_external_id_conflict_a_second_subject_cannot_take_over_a_linked_person() -> None:
    p = plan(
        facts(
            user=person(), membership=MembershipFacts(), linked_elsewhere=True, identity=identity(subject="sub-mallory")
        )
    )
    assert p.failure is not None and p.failure.code == "sso.external_id_conflict"
    assert_writes_nothing(p)


def test_email_links_an_unlinked_person_once() -> None:
    p = plan(facts(user=person(login_method=SSO_LOGIN), membership=MembershipFacts(), grants=(Grant("analyst", id=1),)))
    assert p.action is Action.LINK and p.create_link and codes(p) == ["sso.identity_linked"]


def test_break_glass_administrator_of_the_home_account_keeps_the_password() -> None:
    admin = person(login_method=PASSWORD_LOGIN)
    p = plan(linked(admin, grants=(Grant("administrator", id=1),)))
    assert not p.upgrade and p.kept_password is not None and "break-glass" in p.kept_password
    assert "sso.user_upgraded" not in codes(p)


def test_break_glass_sso_admin_keeps_the_password() -> None:
    p = plan(linked(person(login_method=PASSWORD_LOGIN), grants=(Grant("sso-admin", id=1),)))
    assert not p.upgrade and p.kept_password is not None


def test_user_manager_is_upgraded_to_sso_only() -> None:
    p = plan(linked(person(login_method=PASSWORD_LOGIN), grants=(Grant("user-manager", id=1),)))
    assert p.upgrade and p.kept_password is None and codes(p) == ["sso.user_upgraded"]


def test_break_glass_does_not_count_while_the_membership_waits_for_approval() -> None:
    p = plan(
        facts(
            linked=True,
            user=person(login_method=PASSWORD_LOGIN),
            membership=MembershipFacts(approval=PENDING),
            grants=(Grant("sso-admin", id=1),),
        )
    )
    assert p.upgrade and p.refusal is not None and p.refusal.code == "sso.pending_approval"


def test_a_pinned_password_is_kept() -> None:
    p = plan(linked(person(login_method=PASSWORD_LOGIN, password_pinned=True), grants=(Grant("analyst", id=1),)))
    assert not p.upgrade and "switched" in (p.kept_password or "")


def test_a_partners_provider_never_upgrades_or_renames() -> None:
    # beta serves acme.com (a share): it may let Alice into beta, not change her identity.
    sandbox = connection(account_id=BETA, sso_authorization=False)
    p = plan(
        linked(
            person(login_method=PASSWORD_LOGIN, name="Alice"),
            connection=sandbox,
            identity=identity(name="Mallory's name"),
        )
    )
    assert not p.refused and not p.home and not p.upgrade and p.new_name is None
    assert "shared domain" in (p.kept_password or "")


def test_the_operator_is_never_converted_or_renamed() -> None:
    operator = person(login_method=PASSWORD_LOGIN, is_operator=True)
    p = plan(linked(operator, identity=identity(name="Renamed")))
    assert not p.home and not p.upgrade and p.new_name is None


def test_pending_approval_provisions_a_waiting_member_and_refuses_after() -> None:
    p = plan(facts(connection=connection(provisioned_users_can_login=False)))
    assert p.create_user and p.new_membership == PENDING and p.newly_pending
    assert p.refusal is not None and p.refusal.code == "sso.pending_approval"
    assert codes(p) == ["sso.user_provisioned"]


def test_provisioning_off_refuses_a_stranger() -> None:
    p = plan(facts(connection=connection(auto_provision=False)))
    assert p.failure is not None and p.failure.code == "sso.provisioning_disabled"
    assert_writes_nothing(p)


def test_provisioning_off_refuses_a_known_person_who_is_not_a_member() -> None:
    p = plan(facts(connection=connection(auto_provision=False), user=person()))
    assert p.failure is not None and p.failure.code == "sso.provisioning_disabled"


def test_provisioning_off_an_invitation_lets_the_invited_address_join() -> None:
    invitation = InvitationFacts(id=5, email_key="alice@acme.com", account_roles=frozenset({"user-manager"}))
    p = plan(facts(connection=connection(auto_provision=False), invitation=invitation))
    assert p.accept_invitation == 5 and p.new_membership is None
    assert "user.invitation_accepted" in codes(p)
    # The invitation's roles stand: no default role is added on top.
    assert not p.roles


def test_an_invitation_for_another_address_is_not_the_linked_persons_to_accept() -> None:
    invitation = InvitationFacts(id=5, email_key="alice@acme.io")
    p = plan(
        facts(
            connection=connection(auto_provision=False),
            linked=True,
            user=person(),
            invitation=invitation,
            identity=identity("alice@acme.io"),
            new_email_taken=True,
        )
    )
    assert p.failure is not None and p.failure.code == "sso.provisioning_disabled"


def test_a_deactivated_person_is_refused_after_the_login_is_recorded() -> None:
    p = plan(linked(person(is_active=False), grants=(Grant("analyst", id=1),)))
    assert p.refusal is not None and p.refusal.code == "sso.user_disabled"


def _sso_authorization(**fields: Any) -> ConnectionFacts:
    mapping = ClaimMapping(role_source="mapping_roles")
    roles = (MappingRoleGrants("engineers", frozenset({"analyst"}), {"production": frozenset({"report-viewer"})}),)
    return connection(
        sso_authorization=True, mapping=mapping, mapping_roles=roles, project_ids={"production": 11}, **fields
    )


def test_sso_authorization_replaces_manual_grants_too() -> None:
    grants = (Grant("administrator", id=1), Grant("analyst", None, SSO, CONN, True, id=2))
    p = plan(linked(grants=grants, connection=_sso_authorization(), identity=identity(role_mapping=("engineers",))))
    # The hand-made administrator goes; the matching SSO analyst stays untouched.
    assert p.roles.delete == (1,)
    assert {(g.role, g.project_id, g.managed) for g in p.roles.create} == {("report-viewer", 11, True)}
    assert p.access.add == (11,)


def test_sso_authorization_leaves_the_grants_of_the_directory_alone() -> None:
    # A SCIM group named after a mapping role granted customer-support; the login's provider says analyst.
    grants = (Grant("administrator", id=1), Grant("customer-support", None, SCIM, None, True, id=3))
    p = plan(linked(grants=grants, connection=_sso_authorization(), identity=identity(role_mapping=("engineers",))))
    assert p.roles.delete == (1,)
    assert 3 not in p.roles.delete and not p.roles.sweep
    assert {g.role for g in p.roles.create} == {"analyst", "report-viewer"}


def test_without_sso_authorization_a_roles_claim_replaces_only_sso_grants() -> None:
    mapping = ClaimMapping(role_source="roles_claim", roles="groups")
    grants = (Grant("administrator", id=1), Grant("report-viewer", None, SSO, OTHER_CONN, False, id=2))
    p = plan(
        linked(grants=grants, connection=connection(mapping=mapping), identity=identity(roles=("customer-support",)))
    )
    assert p.roles.delete == (2,)
    assert [(g.role, g.source, g.managed) for g in p.roles.create] == [("customer-support", SSO, False)]


def test_sso_authorization_with_no_mapping_role_refuses_and_keeps_every_grant() -> None:
    grants = (Grant("administrator", id=1),)
    p = plan(linked(grants=grants, connection=_sso_authorization(), identity=identity()))
    assert p.failure is not None and p.failure.code == "sso.role_mapping_missing"
    assert_writes_nothing(p)


def test_a_repeat_login_with_nothing_changed_writes_no_grant_and_no_access() -> None:
    grants = (Grant("analyst", id=1),)
    p = plan(linked(grants=grants, connection=connection(linked_project_ids=frozenset({3})), sso_access=frozenset({3})))
    assert not p.roles and not p.access and p.audit == () and p.new_name is None


def test_access_from_a_removed_project_link_goes() -> None:
    p = plan(
        linked(
            grants=(Grant("analyst", id=1),),
            connection=connection(linked_project_ids=frozenset({4})),
            sso_access=frozenset({3}),
        )
    )
    assert p.access.add == (4,) and p.access.remove == (3,)


def test_a_member_without_roles_gets_the_default_role() -> None:
    p = plan(linked())
    assert [(g.role, g.source) for g in p.roles.create] == [("analyst", MANUAL)]


def test_the_trace_notes_follow_the_steps() -> None:
    p = plan(linked(person(login_method=PASSWORD_LOGIN), grants=(Grant("analyst", id=1),)))
    assert [n.step for n in p.notes] == ["claims", "domain", "user", "upgrade"]


# ---- Properties ----------------------------------------------------------------

_ROLES = sorted(DEFAULT_CATALOG.roles)
_grants = st.lists(
    st.builds(
        Grant,
        role=st.sampled_from([*_ROLES, "retired-role"]),
        project_id=st.sampled_from([None, None, 11, 12]),
        source=st.sampled_from([MANUAL, SSO]),
        connection_id=st.sampled_from([None, CONN, OTHER_CONN]),
        managed=st.booleans(),
        id=st.integers(1, 10_000),
    ),
    max_size=6,
    unique_by=lambda g: g.id,
)
_addresses = st.sampled_from(["alice@acme.com", "alice@acme.io", "alice@beta.com", "bob@acme.com"])
_role_sets = st.frozensets(st.sampled_from(_ROLES), max_size=3)
_mappings = st.builds(
    lambda source, policy: ClaimMapping(
        role_source=source, roles="groups" if source == "roles_claim" else "", requirement_policy=policy
    ),
    st.sampled_from(["mapping_roles", "roles_claim"]),
    st.sampled_from(["refuse", "drop"]),
)
_connections = st.builds(
    connection,
    account_id=st.sampled_from([ACME, BETA]),
    enabled=st.booleans(),
    auto_provision=st.booleans(),
    provisioned_users_can_login=st.booleans(),
    sso_authorization=st.booleans(),
    mapping=_mappings,
    owners=st.sampled_from([OWNERS, {"acme.com": ACME}, {**OWNERS, "beta.com": BETA}]),
    linked_project_ids=st.frozensets(st.sampled_from([11, 12, 13])),
    mapping_roles=st.builds(
        lambda a, p: (MappingRoleGrants("engineers", a, {"production": p}),), _role_sets, _role_sets
    ),
    project_ids=st.just({"production": 11}),
)
_identities = st.builds(
    identity,
    _addresses,
    name=st.sampled_from(["Alice", "Alice B."]),
    role_mapping=st.sampled_from([None, ("engineers",), ("nobody",)]),
    roles=st.sampled_from([None, (), ("analyst",), ("pii-viewer",), ("unknown",)]),
)
_people = st.builds(
    person, _addresses, login_method=st.sampled_from([PASSWORD_LOGIN, SSO_LOGIN]), is_active=st.booleans(),
    is_operator=st.booleans(), password_pinned=st.booleans(), name=st.sampled_from(["Alice", "Old name"]),
)  # fmt: skip
_invitations = st.none() | st.builds(InvitationFacts, id=st.just(5), email_key=_addresses, account_roles=_role_sets)
_memberships = st.none() | st.builds(
    MembershipFacts, is_active=st.booleans(), approval=st.sampled_from([APPROVED, PENDING])
)


def _facts(
    conn: ConnectionFacts,
    asserted: AssertedIdentity,
    user: UserFacts | None,
    flags: tuple[bool, bool, bool],
    membership: MembershipFacts | None,
    invitation: InvitationFacts | None,
    grants: list[Grant],
    access: frozenset[int],
) -> LoginFacts:
    is_linked, elsewhere, taken = flags
    return LoginFacts(
        connection=conn, identity=asserted, catalog=DEFAULT_CATALOG, linked=user is not None and is_linked, user=user,
        linked_elsewhere=elsewhere, membership=membership if user else None, invitation=invitation,
        grants=tuple(grants) if user else (), sso_access=access, new_email_taken=taken,
    )  # fmt: skip


login_facts = st.builds(
    _facts, _connections, _identities, st.none() | _people, st.tuples(st.booleans(), st.booleans(), st.booleans()),
    _memberships, _invitations, _grants, st.frozensets(st.sampled_from([11, 12, 13])),
)  # fmt: skip


def never_grants_a_role_outside_the_catalog(f: LoginFacts, p: LoginPlan) -> None:
    assert all(g.role in DEFAULT_CATALOG.roles for g in p.roles.create)


def a_refused_plan_writes_nothing(f: LoginFacts, p: LoginPlan) -> None:
    if p.refused:
        assert_writes_nothing(p)


def without_sso_authorization_manual_grants_are_never_deleted(f: LoginFacts, p: LoginPlan) -> None:
    if not f.connection.sso_authorization:
        manual = {g.id for g in f.grants if g.source == MANUAL}
        assert not manual & set(p.roles.delete) and not p.roles.sweep


def a_connection_that_is_not_home_never_upgrades_renames_or_readdresses(f: LoginFacts, p: LoginPlan) -> None:
    if not p.home:
        assert not p.upgrade and p.new_name is None and p.new_email is None


def only_the_owner_of_the_persons_domain_is_home(f: LoginFacts, p: LoginPlan) -> None:
    if p.home and f.user is not None:
        assert f.connection.owner_of(f.user.email) == f.connection.account_id and not f.user.is_operator


def plan_is_deterministic(f: LoginFacts, p: LoginPlan) -> None:
    again = plan(f)
    assert replace(again, failure=None, refusal=None) == replace(p, failure=None, refusal=None)
    for x, y in ((again.failure, p.failure), (again.refusal, p.refusal)):
        assert (x and (x.code, x.step, x.message, x.expected, x.received)) == (
            y and (y.code, y.step, y.message, y.expected, y.received)
        )


PROPERTIES = (
    never_grants_a_role_outside_the_catalog,
    a_refused_plan_writes_nothing,
    without_sso_authorization_manual_grants_are_never_deleted,
    a_connection_that_is_not_home_never_upgrades_renames_or_readdresses,
    only_the_owner_of_the_persons_domain_is_home,
    plan_is_deterministic,
)


# One pass of generated facts checks every property (generating them is what
# costs; planning one takes some 40 microseconds), so the file stays well under a second.
@settings(max_examples=60, deadline=None, database=None)
@given(login_facts)
def test_plan_properties_hold_for_any_facts(f: LoginFacts) -> None:
    p = plan(f)
    for prop in PROPERTIES:
        prop(f, p)


@settings(max_examples=20, deadline=None, database=None)
@given(login_facts)
def test_manual_grants_survive_any_login_without_sso_authorization(f: LoginFacts) -> None:
    # The facts above switch authorization on about half the time; here it is always off.
    f = replace(f, connection=replace(f.connection, sso_authorization=False))
    without_sso_authorization_manual_grants_are_never_deleted(f, plan(f))
