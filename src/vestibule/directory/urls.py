"""``/scim/v2/…`` (RFC 7644 §3.2): the resource endpoints, discovery, and a SCIM 404 for everything else."""

from django.urls import URLPattern, re_path

from vestibule.directory import views

# A trailing slash is tolerated: directories differ, and a redirect would drop a PATCH body.
urlpatterns: list[URLPattern] = [
    re_path(r"^ServiceProviderConfig/?$", views.service_provider_config, name="scim-service-provider-config"),
    re_path(r"^ResourceTypes/?$", views.resource_types, name="scim-resource-types"),
    re_path(r"^ResourceTypes/(?P<item>[^/]+)/?$", views.resource_types, name="scim-resource-type"),
    re_path(r"^Schemas/?$", views.schemas, name="scim-schemas"),
    re_path(r"^Schemas/(?P<item>[^/]+)/?$", views.schemas, name="scim-schema"),
    re_path(r"^\.search/?$", views.search, name="scim-search"),
    re_path(r"^Users/\.search/?$", views.users_search, name="scim-users-search"),
    re_path(r"^Groups/\.search/?$", views.groups_search, name="scim-groups-search"),
    re_path(r"^Users/?$", views.users, name="scim-users"),
    re_path(r"^Users/(?P<user_id>[^/]+)/?$", views.user, name="scim-user"),
    re_path(r"^Groups/?$", views.groups, name="scim-groups"),
    re_path(r"^Groups/(?P<group_id>[^/]+)/?$", views.group, name="scim-group"),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="scim-unknown"),
]
