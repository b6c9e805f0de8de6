"""`LakebookAuthorizer`: the plan's roles (admin, engineer, analyst, viewer) on lakebook's API.

Enable it in the server's config::

    c.ServerApp.authorizer_class = "lakebook.server.auth.LakebookAuthorizer"
    c.LakebookAuthorizer.roles = {"alice": "admin", "bob": "viewer"}
    c.LakebookAuthorizer.default_role = "engineer"  # users not listed in `roles`

It decides only for resource `lakebook`; every other Jupyter resource (contents, kernels, …) keeps
the default behaviour (allowed to any authenticated user, as with `AllowAllAuthorizer`).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from traitlets import Dict, TraitError, Unicode, validate

from lakebook.server.handlers import AUTH_RESOURCE, LakebookHandler

ROLES = ("admin", "engineer", "analyst", "viewer")

# What each role may do: action -> the handlers' `auth_scope`s it applies to ("*": every scope).
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {
    "admin": {"*": frozenset({"*"})},
    "engineer": {
        "read": frozenset({"*"}),
        "write": frozenset({"pipelines", "jobs", "runs", "incidents"}),
    },
    "analyst": {"read": frozenset({"*"})},
    "viewer": {"read": frozenset({"*"})},
}


def role_allows(role: str, action: str, scope: str) -> bool:
    """True when `role` may do `action` (read, write, execute) in `scope` (pipelines, jobs, …)."""
    grants = PERMISSIONS.get(role, {})
    scopes = grants.get(action, frozenset()) | grants.get("*", frozenset())
    return "*" in scopes or scope in scopes


def who_may(action: str, scope: str) -> list[str]:
    """The roles allowed `action` in `scope`, most powerful first."""
    return [role for role in ROLES if role_allows(role, action, scope)]


class LakebookAuthorizer(AllowAllAuthorizer):
    """Roles for lakebook: viewers and analysts read; engineers also write; admins do anything."""

    roles = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Role of each user by username: one of admin, engineer, analyst, viewer.",
    ).tag(config=True)
    default_role = Unicode(
        "engineer",
        help="Role of users not listed in `roles` (engineer keeps single-user Jupyter working).",
    ).tag(config=True)

    @validate("roles")
    def _check_roles(self, proposal: Any) -> dict[str, str]:
        roles: dict[str, str] = proposal["value"]
        for user, role in roles.items():
            if role not in ROLES:
                raise TraitError(
                    f"LakebookAuthorizer.roles: `{user}` has unknown role `{role}`; the roles are {', '.join(ROLES)}."
                )
        return roles

    @validate("default_role")
    def _check_default_role(self, proposal: Any) -> str:
        role: str = proposal["value"]
        if role not in ROLES:
            raise TraitError(
                f"LakebookAuthorizer.default_role `{role}` is unknown; the roles are {', '.join(ROLES)}."
            )
        return role

    def role_of(self, username: str) -> str:
        """The user's role."""
        return str(self.roles.get(username, self.default_role))

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if resource != AUTH_RESOURCE:
            return bool(super().is_authorized(handler, user, action, resource))
        username = str(getattr(user, "username", "") or "")
        role = self.role_of(username)
        scope = str(getattr(handler, "auth_scope", "meta"))
        if role_allows(role, action, scope):
            return True
        allowed = " or ".join(who_may(action, scope)) or "no role"
        message = f"User `{username}` has role `{role}`, which may not {action} lakebook {scope}; that needs role {allowed}."
        self.log.info("lakebook: refused %s %s: %s", action, scope, message)
        if isinstance(handler, LakebookHandler):
            handler.lakebook_refusal = message
        return False
