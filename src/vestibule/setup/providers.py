"""What the IT admin pastes where, per identity provider: the values of one connection and each console's steps.

The values come from the connection (its SP URLs, its OIDC redirect URI)
and its claim mapping (:class:`vestibule.domain.claims.ClaimMapping`): a
connection whose email claim is ``mail`` asks for an attribute named
``mail``. Step texts name the provider's own menus and fields, as their
consoles label them, so the admin can follow them without other docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vestibule.connections.models import Connection
from vestibule.domain.claims import ClaimMapping, ClaimMappingError
from vestibule.setup.models import SetupLink
from vestibule.signin import adapters

__all__ = ["Attribute", "Guide", "Value", "guide"]


@dataclass(frozen=True)
class Value:
    key: str
    label: str
    value: str
    help: str = ""


@dataclass(frozen=True)
class Attribute:
    """An attribute (SAML) or claim (OIDC) the provider must send, and where the provider takes it from."""

    name: str
    meaning: str
    source: str
    required: bool = True


@dataclass(frozen=True)
class Guide:
    provider: str
    provider_label: str
    protocol: str
    values: list[Value]
    attributes: list[Attribute]
    steps: list[str]
    metadata_hint: str = ""
    issuer_hint: str = ""
    notes: list[str] = field(default_factory=list)


# Where each provider takes the person's email, display name and groups from.
_SOURCES: dict[str, tuple[str, str, str]] = {
    "okta": ("user.email", "user.displayName", "a Group Attribute Statement (filter: Matches regex .*)"),
    "entra": ("user.mail", "user.displayname", "a group claim, or user.assignedroles for app roles"),
    "google": (
        "Basic Information › Primary email",
        "Basic Information › First name",
        "Group membership (pick the groups)",
    ),
    "adfs": (
        "LDAP attribute E-Mail-Addresses",
        "LDAP attribute Display-Name",
        "LDAP attribute Token-Groups - Unqualified Names",
    ),
    "onelogin": ("Email", "Name", "User Roles"),
    "keycloak": ("User Property email", "User Property firstName (or a User Attribute mapper)", "a Role list mapper"),
    "saml": ("the person's email address", "the person's display name", "the person's groups or roles"),
    "oidc": ("the email claim (scope email)", "the name claim (scope profile)", "the groups or roles claim"),
}

_SAML_STEPS: dict[str, list[str]] = {
    "okta": [
        "In the Okta Admin Console open Applications › Applications and choose Create App Integration.",
        "Pick SAML 2.0 and choose Next. Give the app a name (for example your service's name) and choose Next.",
        "Under Configure SAML paste the ACS URL into Single sign-on URL and keep “Use this for Recipient URL and Destination URL” ticked.",
        "Paste the SP entity ID into Audience URI (SP Entity ID). Set Name ID format to EmailAddress and Application username to Email.",
        "Under Attribute Statements add each attribute below (Name format: Unspecified). Under Group Attribute Statements add the role_mapping name with the filter Matches regex .* (or a narrower one).",
        "Choose Next, then Finish. On the Sign On tab copy the Metadata URL (under SAML 2.0 › Metadata details), and on the Assignments tab assign the people or groups who may sign in.",
    ],
    "entra": [
        "In the Microsoft Entra admin center open Identity › Applications › Enterprise applications and choose New application.",
        "Choose Create your own application, name it, pick “Integrate any other application you don't find in the gallery (Non-gallery)” and choose Create.",
        "Open Single sign-on and pick SAML. In Basic SAML Configuration choose Edit: paste the SP entity ID into Identifier (Entity ID) and the ACS URL into Reply URL (Assertion Consumer Service URL); Sign on URL may take the sign-in URL. Save.",
        "In Attributes & Claims choose Edit, then Add new claim for each attribute below, with the Namespace field left empty. For role_mapping use Add a group claim, and under Advanced options tick “Customize the name of the group claim” and enter the name below.",
        "In SAML Certificates copy the App Federation Metadata Url.",
        "Open Users and groups and assign the people or groups who may sign in.",
    ],
    "google": [
        "In the Google Admin console open Apps › Web and mobile apps, then Add app › Add custom SAML app.",
        "Name the app and choose Continue. On Google Identity Provider details choose Download Metadata (Option 1) and keep the file: Google publishes no metadata URL, so you will paste the file's contents in the next step. Choose Continue.",
        "Paste the ACS URL into ACS URL and the SP entity ID into Entity ID. Leave Signed response off. Set Name ID format to EMAIL and Name ID to Basic Information › Primary email. Choose Continue.",
        "Under Attribute mapping choose Add mapping for each attribute below (Google Directory attribute on the left, the app attribute name on the right). For role_mapping use Group membership, pick the groups, and enter the name below as the app attribute.",
        "Choose Finish. Then open the app's User access and turn it ON for everyone or for the organizational units who may sign in (it can take a few minutes to apply).",
    ],
    "adfs": [
        "In AD FS Management open Relying Party Trusts and choose Add Relying Party Trust…; pick Claims aware and choose Start.",
        "Pick “Import data about the relying party published online or on a local network” and paste the SP metadata URL (it carries the SP entity ID and the ACS URL). If AD FS cannot reach it, pick “Enter data about the relying party manually”, enable SAML 2.0 WebSSO with the ACS URL, and add the SP entity ID as relying party trust identifier.",
        "Choose an access control policy (for example Permit everyone, or a group), then finish the wizard with “Configure claims issuance policy for this application” ticked.",
        "In Edit Claim Issuance Policy choose Add Rule… › Send LDAP Attributes as Claims, attribute store Active Directory, and map each LDAP attribute below to the outgoing claim type typed exactly as the attribute name.",
        "Add a second rule, Transform an Incoming Claim: incoming E-Mail Address, outgoing Name ID, format Email.",
        "Your metadata URL is https://<your AD FS host>/FederationMetadata/2007-06/FederationMetadata.xml.",
    ],
    "onelogin": [
        "In OneLogin open Applications › Applications, choose Add App, search for “SAML Custom Connector (Advanced)” and Save it under a name of your choice.",
        "On the Configuration tab paste the SP entity ID into Audience (EntityID), and the ACS URL into Recipient and into ACS (Consumer) URL. ACS (Consumer) URL Validator takes a regular expression: the ACS URL with each dot written \\. works.",
        "Set SAML nameID format to Email and SAML signature element to Assertion (or Both). Save.",
        "On the Parameters tab add each attribute below (Field name as shown, value as listed) and tick “Include in SAML assertion”; for role_mapping also tick Multi-value parameter.",
        "On the SSO tab copy the Issuer URL: it is the metadata URL. Assign the app to people or roles on their Applications tab.",
    ],
    "keycloak": [
        "In the Keycloak admin console pick your realm, open Clients and choose Create client.",
        "Set Client type to SAML and paste the SP entity ID into Client ID. Choose Next, paste the ACS URL into Valid redirect URIs and Master SAML Processing URL, and Save.",
        "On the client's Settings tab set Name ID format to email and turn Force name ID format on. Save.",
        "Open Client scopes › the client's dedicated scope › Add mapper › By configuration: add a User Property mapper for each attribute below (SAML Attribute Name as shown), and a Role list mapper with Role attribute name set to the role_mapping name and Single Role Attribute on.",
        "Your metadata URL is https://<your Keycloak host>/realms/<realm>/protocol/saml/descriptor.",
    ],
    "saml": [
        "In your identity provider create a SAML 2.0 application (service provider) for this service.",
        "Enter the ACS URL as its Assertion Consumer Service (HTTP-POST binding) and the SP entity ID as its audience / entity ID. If it can import service provider metadata, give it the SP metadata URL instead.",
        "Send the person's email address as the NameID (format emailAddress), and sign the response or the assertion.",
        "Send each attribute below, named exactly as shown.",
        "Copy the identity provider's metadata URL, or download its metadata XML, for the next step.",
    ],
}

_OIDC_STEPS: dict[str, list[str]] = {
    "okta": [
        "In the Okta Admin Console open Applications › Applications › Create App Integration, pick OIDC - OpenID Connect and Web Application, and choose Next.",
        "Keep the Authorization Code grant type and paste the redirect URI into Sign-in redirect URIs. Under Assignments choose who may sign in. Save.",
        "On the General tab copy the Client ID and the Client secret. The issuer is https://<your Okta domain> (or https://<your Okta domain>/oauth2/default for the default authorization server).",
        "For roles, on the Sign On tab edit OpenID Connect ID Token: Groups claim type Filter, name as role_mapping below, Matches regex .* (or narrower).",
    ],
    "entra": [
        "In the Microsoft Entra admin center open Identity › Applications › App registrations and choose New registration.",
        "Name it, choose who may use it (single tenant for your organization), and under Redirect URI pick Web and paste the redirect URI. Register.",
        "On Overview copy the Application (client) ID and the Directory (tenant) ID. The issuer is https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0.",
        "In Certificates & secrets choose New client secret and copy its Value (not its ID) at once: Entra shows it only now.",
        "In Token configuration add the optional claim email to the ID token, and Add groups claim (or define App roles: they arrive in the roles claim).",
    ],
    "google": [
        "In the Google Cloud console open APIs & Services › OAuth consent screen and set it up as Internal (your organization only).",
        "Open APIs & Services › Credentials › Create credentials › OAuth client ID, pick Web application, and paste the redirect URI under Authorized redirect URIs. Create.",
        "Copy the Client ID and Client secret. The issuer is https://accounts.google.com.",
        "Google's ID tokens carry no groups: roles are then given in this service by its administrators.",
    ],
    "onelogin": [
        "In OneLogin open Applications › Applications › Add App, search for “OpenId Connect (OIDC)” and Save it under a name of your choice.",
        "On the Configuration tab paste the redirect URI into Redirect URI's. Save.",
        "On the SSO tab copy the Client ID and Client Secret, and set Token Endpoint Authentication Method to POST or Basic. The issuer is https://<your subdomain>.onelogin.com/oidc/2.",
        "For roles, on the Parameters tab set Groups to User Roles and tick “Include in claim”.",
    ],
    "keycloak": [
        "In the Keycloak admin console pick your realm, open Clients and choose Create client with Client type OpenID Connect; enter a Client ID and choose Next.",
        "Turn Client authentication on, keep Standard flow, choose Next, and paste the redirect URI into Valid redirect URIs. Save.",
        "On the Credentials tab copy the Client secret. The issuer is https://<your Keycloak host>/realms/<realm>.",
        "For roles, open Client scopes › the client's dedicated scope › Add mapper › By configuration › User Realm Role, Token Claim Name as role_mapping below, Multivalued and Add to ID token on.",
    ],
    "oidc": [
        "In your provider create an OpenID Connect client (confidential, authorization code flow).",
        "Register the redirect URI exactly as shown.",
        "Copy the issuer (the URL whose /.well-known/openid-configuration your provider serves), the client ID and the client secret.",
        "Include the email and name claims (scopes email and profile), and the roles claim below if your organization manages roles there.",
    ],
}

_METADATA_HINTS = {
    "okta": "Okta: the Metadata URL on the app's Sign On tab.",
    "entra": "Entra ID: the App Federation Metadata Url under SAML Certificates.",
    "google": "Google Workspace publishes no metadata URL: paste the contents of the downloaded metadata file.",
    "adfs": "ADFS: https://<your AD FS host>/FederationMetadata/2007-06/FederationMetadata.xml.",
    "onelogin": "OneLogin: the Issuer URL on the app's SSO tab.",
    "keycloak": "Keycloak: https://<host>/realms/<realm>/protocol/saml/descriptor.",
    "saml": "Your identity provider's SAML metadata URL, or its metadata XML.",
}


def _mapping(connection: Connection) -> ClaimMapping:
    try:
        return ClaimMapping.from_dict(connection.claims)
    except ClaimMappingError:
        return ClaimMapping()


def attributes(link: SetupLink) -> list[Attribute]:
    mapping = _mapping(link.connection)
    email, name, groups = _SOURCES.get(link.provider, _SOURCES["saml"])
    roles_needed = link.connection.sso_authorization
    found = [
        Attribute(mapping.email, "The person's email address", email),
        Attribute(mapping.name, "The person's display name", name),
    ]
    if mapping.role_source == "roles_claim" and mapping.roles:
        found.append(Attribute(mapping.roles, "The person's roles (values are role names)", groups, roles_needed))
    else:
        found.append(
            Attribute(mapping.role_mapping, "Groups compared with the account's mapping roles", groups, roles_needed)
        )
        if mapping.roles:
            found.append(Attribute(mapping.roles, "The person's roles", groups, False))
    return found


def guide(link: SetupLink) -> Guide:
    connection = link.connection
    label = str(SetupLink.Provider(link.provider).label)
    if connection.protocol == Connection.Protocol.SAML:
        urls = adapters.sp_urls(connection)
        values = [
            Value(
                "acs_url",
                "ACS URL (Single sign-on URL, Reply URL)",
                urls["acs_url"],
                "Where your provider posts the SAML response.",
            ),
            Value("sp_entity_id", "SP entity ID (Audience URI, Identifier)", urls["sp_entity_id"]),
            Value(
                "metadata_url",
                "SP metadata URL",
                urls["metadata_url"],
                "For providers that import service provider metadata.",
            ),
            Value("sign_in_url", "Sign-in URL (optional)", urls["sign_in_url"], "Starts a sign-in from this service."),
            Value("name_id", "NameID format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
        ]
        steps = _SAML_STEPS.get(link.provider, _SAML_STEPS["saml"])
        return Guide(
            link.provider,
            label,
            "saml",
            values,
            attributes(link),
            steps,
            metadata_hint=_METADATA_HINTS.get(link.provider, ""),
        )
    values = [
        Value("redirect_uri", "Redirect URI (sign-in redirect, callback)", adapters.redirect_uri(connection)),
        Value("scopes", "Scopes", "openid email profile"),
    ]
    steps = _OIDC_STEPS.get(link.provider, _OIDC_STEPS["oidc"])
    return Guide(link.provider, label, "oidc", values, attributes(link), steps)
